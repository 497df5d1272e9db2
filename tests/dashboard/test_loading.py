"""Reading uploads: encodings, delimiters, decimal marks, formats, and every bad input."""

from __future__ import annotations

import io
import time

import numpy as np
import pandas as pd
import pytest
from openpyxl import Workbook

from dashboard.io.loading import UploadError, excel_sheet_names, read_table

ROWS = [("José", 0, 1.5), ("José", 1, 2.25), ("Zoë", 0, 3.0), ("Zoë", 1, 4.75)]


def _text(delimiter: str, decimal: str) -> str:
    lines = [delimiter.join(["patient", "week", "score"])]
    for who, week, score in ROWS:
        lines.append(delimiter.join([who, str(week), f"{score}".replace(".", decimal)]))
    return "\n".join(lines) + "\n"


ENCODINGS = {
    "UTF-8": lambda s: s.encode("utf-8"),
    "UTF-8 with BOM": lambda s: s.encode("utf-8-sig"),
    "UTF-16": lambda s: s.encode("utf-16"),
    "UTF-16 (LE, no BOM)": lambda s: s.encode("utf-16-le"),
    "Windows-1252 (Latin-1)": lambda s: s.encode("latin-1"),
}


@pytest.mark.parametrize("encoding", list(ENCODINGS))
@pytest.mark.parametrize(
    ("delimiter", "decimal"),
    [(",", "."), (";", ","), (";", "."), ("\t", "."), ("\t", ","), ("|", ".")],
)
def test_text_files_are_detected(encoding, delimiter, decimal):
    raw = ENCODINGS[encoding](_text(delimiter, decimal))
    table = read_table(raw, "visits.csv")
    assert table.file_format == "csv"
    assert table.delimiter == delimiter and table.decimal == decimal
    assert table.encoding.startswith(encoding.split(" (")[0])
    assert list(table.data.columns) == ["patient", "week", "score"]
    assert table.data["patient"].tolist() == ["José", "José", "Zoë", "Zoë"]
    assert table.data["score"].tolist() == [1.5, 2.25, 3.0, 4.75]
    assert str(table.data["score"].dtype) == "float64"
    assert "4 rows x 3 columns" in table.describe()


def test_quoted_fields_and_crlf_and_blank_lines():
    raw = b'id,note,y\r\n"a","x, with comma",1\r\n\r\n"b","plain",2\r\n'
    table = read_table(raw, "q.csv")
    assert table.data["note"].tolist() == ["x, with comma", "plain"]


# Bad input (empty, binary, one column, ragged...): tests/dashboard/test_bad_inputs.py
# runs the corpus in tests/fixtures/bad_inputs through the loader.


def _workbook(sheets: dict[str, list[list]]) -> bytes:
    book = Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


DATA_ROWS = [["id", "t", "y"], ["007", 0, 1.5], ["007", 1, 2.5], ["b", 0, 3.5]]


def test_excel_with_several_sheets_reads_the_chosen_sheet():
    raw = _workbook({"Notes": [["Read me"]], "Visits": DATA_ROWS, "Empty": []})
    assert excel_sheet_names(raw) == ["Notes", "Visits", "Empty"]
    table = read_table(raw, "book.xlsx", sheet="Visits")
    assert table.file_format == "excel" and table.sheet == "Visits"
    assert table.sheet_names == ("Notes", "Visits", "Empty")
    assert table.data["id"].tolist() == ["007", "007", "b"]
    assert table.data["y"].tolist() == [1.5, 2.5, 3.5]
    with pytest.raises(UploadError, match="one column"):
        read_table(raw, "book.xlsx")  # first sheet: a note, not a table
    with pytest.raises(UploadError, match="sheet selector"):
        read_table(raw, "book.xlsx", sheet="Empty")
    with pytest.raises(UploadError, match="no sheet called"):
        read_table(raw, "book.xlsx", sheet="Missing")


def test_excel_duplicated_headers_are_refused():
    raw = _workbook({"S": [["id", "y", "y"], [1, 2, 3]]})
    with pytest.raises(UploadError, match="more than once"):
        read_table(raw, "dup.xlsx")


def test_parquet_round_trip_and_content_beats_extension():
    frame = pd.DataFrame({"id": ["a", "a", "b"], "t": [0, 1, 0], "y": [1.0, 2.0, 3.0]})
    buf = io.BytesIO()
    frame.to_parquet(buf)
    table = read_table(buf.getvalue(), "named-wrong.csv")
    assert table.file_format == "parquet"
    pd.testing.assert_frame_equal(table.data, frame, check_dtype=False)


def test_200k_row_csv_loads_in_a_few_seconds():
    rng = np.random.default_rng(0)
    n = 200_000
    frame = pd.DataFrame(
        {
            "patient": np.char.add("P", (np.arange(n) // 8).astype(str)),
            "time": np.tile(np.arange(8), n // 8) + rng.uniform(-0.2, 0.2, n).round(3),
            "y": rng.normal(140, 10, n).round(4),
            "arm": np.where(np.arange(n) // 8 % 2, "treatment", "control"),
        }
    )
    raw = frame.to_csv(index=False).encode()
    start = time.perf_counter()
    table = read_table(raw, "big.csv")
    elapsed = time.perf_counter() - start
    assert table.data.shape == (n, 4)
    assert elapsed < 3.0, f"{elapsed:.2f} s"
