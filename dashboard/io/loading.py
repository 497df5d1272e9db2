"""Read an uploaded table (CSV/TSV, Excel .xlsx, Parquet) from bytes. No Streamlit here.

Text files: the encoding (UTF-8, UTF-8 with BOM, UTF-16 with or without BOM, Windows-1252 /
Latin-1), the delimiter (comma, semicolon, tab, pipe) and the decimal mark (point or comma)
are detected from the content. Every problem a user can cause raises :class:`UploadError`,
whose message says what is wrong and what to do; the app shows it as it is.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["LoadedTable", "UploadError", "excel_sheet_names", "read_table", "sniff_format"]

DELIMITERS = (",", ";", "\t", "|")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
SAMPLE_LINES = 200
_COMMA_NUMBER = re.compile(r"^\s*[+-]?\d+,\d+\s*$")
_POINT_NUMBER = re.compile(r"^\s*[+-]?\d*\.\d+\s*$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


class UploadError(ValueError):
    """A file that cannot be read as a table of visits.

    Parameters
    ----------
    problem
        What is wrong, in plain words.
    hint
        What the user can do about it.
    """

    def __init__(self, problem: str, hint: str = "") -> None:
        self.problem = problem
        self.hint = hint
        super().__init__(f"{problem} {hint}".strip())


@dataclass(frozen=True)
class LoadedTable:
    """A parsed table and how it was read.

    Attributes
    ----------
    data
        The rows; text columns stay text, numbers are parsed as numbers.
    file_format
        ``"csv"``, ``"excel"`` or ``"parquet"``.
    encoding, delimiter, decimal
        What was detected for text files (``None`` otherwise).
    sheet, sheet_names
        The Excel sheet read and all sheets of the workbook.
    notes
        What was changed while reading (nested Parquet columns flattened), for the caption.
    """

    data: pd.DataFrame
    file_format: str
    encoding: str | None = None
    delimiter: str | None = None
    decimal: str | None = None
    sheet: str | None = None
    sheet_names: tuple[str, ...] = field(default_factory=tuple)
    notes: tuple[str, ...] = field(default_factory=tuple)

    def describe(self) -> str:
        """One line saying how the file was read, for a caption."""
        rows, cols = self.data.shape
        if self.file_format == "csv":
            how = (
                f"text file, {self.encoding}, {DELIMITER_NAMES.get(self.delimiter or '', '?')}"
                f"-separated, decimal {'comma' if self.decimal == ',' else 'point'}"
            )
        elif self.file_format == "excel":
            how = f"Excel workbook, sheet '{self.sheet}'"
        else:
            how = "Parquet file"
        notes = "".join(f" Note: {n}." for n in self.notes)
        return f"Read {rows:,} rows x {cols} columns ({how}).{notes}"


def sniff_format(data: bytes, filename: str) -> str:
    """Return ``"excel"``, ``"parquet"`` or ``"csv"`` from the content and the file name.

    Raises
    ------
    UploadError
        For an empty file, an old ``.xls`` workbook, or a file named ``.xlsx`` / ``.parquet``
        whose content is not of that kind.
    """
    if not data or not data.strip():
        raise UploadError(
            "The file is empty.", "Choose a file that contains a header row and data rows."
        )
    name = filename.lower()
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise UploadError(
            "This is an old Excel 97-2003 (.xls) workbook, which cannot be read.",
            "Open it in Excel or LibreOffice and save it as .xlsx or .csv.",
        )
    if data.startswith(b"PK\x03\x04"):
        return "excel"
    if data.startswith(b"PAR1"):
        return "parquet"
    if name.endswith((".xlsx", ".xlsm", ".xls")):
        raise UploadError(
            f"'{filename}' is named like an Excel workbook but its content is not one.",
            "Open it in the program that made it and save it as .xlsx, or if it is a text "
            "table, rename it to .csv and upload again.",
        )
    if name.endswith(".parquet"):
        raise UploadError(
            f"'{filename}' is named like a Parquet file but its content is not one.",
            "Export it again as Parquet, or save it as CSV.",
        )
    return "csv"


def read_table(data: bytes, filename: str, sheet: str | None = None) -> LoadedTable:
    """Read an uploaded file into a DataFrame.

    Parameters
    ----------
    data
        The file content.
    filename
        The original file name (its extension is a hint; the content decides).
    sheet
        Excel sheet to read; the first sheet when ``None``.

    Returns
    -------
    LoadedTable

    Raises
    ------
    UploadError
        With a message saying what is wrong and what to do.
    """
    kind = sniff_format(data, filename)
    if kind == "excel":
        table = _read_excel(data, sheet)
    elif kind == "parquet":
        table = _read_parquet(data)
    else:
        table = _read_text(data)
    _check_shape(table.data)
    return table


# --- text -----------------------------------------------------------------------------------


def _decode(data: bytes) -> tuple[str, str]:
    """Return ``(text, encoding name)``; UTF-16 without BOM is recognised by its zero bytes."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace"), "UTF-8 with BOM"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace"), "UTF-16"
    head = data[:4000]
    if len(head) >= 4 and head.count(0) >= len(head) // 3:
        even, odd = head[0::2].count(0), head[1::2].count(0)
        codec = "utf-16-le" if odd > even else "utf-16-be"
        if max(even, odd) >= len(head) // 3:
            try:
                return data.decode(codec), "UTF-16"
            except UnicodeDecodeError:
                pass
    try:
        return data.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "Windows-1252 (Latin-1)"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "Latin-1"


def _looks_binary(text: str) -> bool:
    sample = text[:20000]
    if "\x00" in sample:
        return True
    return len(_CONTROL.findall(sample)) > max(2, len(sample) // 200)


def _sample_rows(lines: list[str], delimiter: str) -> list[list[str]]:
    return [row for row in csv.reader(lines, delimiter=delimiter) if row]


def _detect_delimiter(lines: list[str]) -> str:
    """Pick the delimiter that splits the sample into the most, consistently many, columns."""
    best, best_score = ",", (-1.0, 0)
    for delim in DELIMITERS:
        rows = _sample_rows(lines, delim)
        if not rows:
            continue
        counts = Counter(len(r) for r in rows)
        width, freq = counts.most_common(1)[0]
        if width < 2:
            continue
        score = (freq / len(rows), width)
        if score > best_score:
            best, best_score = delim, score
    return best


def _detect_decimal(rows: list[list[str]], delimiter: str) -> str:
    comma = point = 0
    for row in rows[1:]:
        for cell in row:
            if _COMMA_NUMBER.match(cell):
                comma += 1
            elif _POINT_NUMBER.match(cell):
                point += 1
    return "," if comma > point else "."


def _read_text(data: bytes) -> LoadedTable:
    text, encoding = _decode(data)
    if _looks_binary(text):
        raise UploadError(
            "The file does not look like a table: it contains binary (non-text) content.",
            "Upload a CSV/TSV text file, an Excel .xlsx workbook or a Parquet file.",
        )
    text = text.lstrip("\ufeff")
    lines = text.splitlines()
    sample = [ln for ln in lines[:SAMPLE_LINES] if ln.strip()]
    delimiter = _detect_delimiter(sample)
    rows = _sample_rows(sample, delimiter)
    header = rows[0] if rows else []
    _check_header([h.strip() for h in header])
    _check_header_is_not_data([h.strip() for h in header])
    _check_ragged(text, delimiter, len(header))
    decimal = _detect_decimal(rows, delimiter)
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=delimiter,
            decimal=decimal,
            skipinitialspace=True,
        )
    except (pd.errors.ParserError, ValueError) as exc:
        raise UploadError(
            f"The file could not be read as a table ({exc}).",
            "Check that every row has the same number of values as the header.",
        ) from exc
    frame = _tidy(frame)
    return LoadedTable(frame, "csv", encoding=encoding, delimiter=delimiter, decimal=decimal)


def _check_ragged(text: str, delimiter: str, width: int) -> None:
    """Raise if a data row has a different number of values than the header."""
    bad: list[tuple[int, int]] = []
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    for row in reader:
        if row and len(row) != width and any(cell.strip() for cell in row):
            bad.append((reader.line_num, len(row)))
            if len(bad) >= 3:
                break
    if bad:
        where = ", ".join(f"line {line} has {n}" for line, n in bad)
        raise UploadError(
            f"Rows have different numbers of values: the header has {width} columns but {where}.",
            "Fix those lines (a missing or extra separator, or an unquoted text containing "
            "the separator) and upload again.",
        )


# --- Excel and Parquet ----------------------------------------------------------------------


def excel_sheet_names(data: bytes) -> list[str]:
    """Return the sheet names of an .xlsx workbook.

    Raises
    ------
    UploadError
        If the bytes are not a readable workbook.
    """
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise UploadError(
            "The file looks like a zip archive but is not a readable Excel workbook.",
            "Open it in Excel or LibreOffice and save it again as .xlsx, or export a CSV.",
        ) from exc
    try:
        return list(book.sheetnames)
    finally:
        book.close()


def _read_excel(data: bytes, sheet: str | None) -> LoadedTable:
    names = excel_sheet_names(data)
    chosen = sheet if sheet is not None else names[0]
    if chosen not in names:
        raise UploadError(
            f"The workbook has no sheet called '{chosen}'.", f"Pick one of: {', '.join(names)}."
        )
    raw = pd.read_excel(io.BytesIO(data), sheet_name=chosen, header=None, engine="openpyxl")
    raw = raw.dropna(how="all").dropna(axis=1, how="all")
    if raw.empty:
        where = " with the sheet selector" if len(names) > 1 else ""
        raise UploadError(
            f"Sheet '{chosen}' is empty.", f"Choose the sheet holding the data{where}."
        )
    header = ["" if pd.isna(v) else str(v).strip() for v in raw.iloc[0]]
    _check_header(header)
    body = raw.iloc[1:].reset_index(drop=True)
    body.columns = header
    body = body.infer_objects()
    for col in body.columns:
        if body[col].dtype == object:
            converted = pd.to_numeric(body[col], errors="coerce")
            if converted.notna().sum() == body[col].notna().sum():
                body[col] = converted
            else:
                body[col] = body[col].map(lambda v: v if pd.isna(v) else str(v))
    return LoadedTable(_tidy(body), "excel", sheet=chosen, sheet_names=tuple(names))


def _read_parquet(data: bytes) -> LoadedTable:
    try:
        frame = pd.read_parquet(io.BytesIO(data))
    except Exception as exc:  # pyarrow raises several unrelated types for corrupt files
        raise UploadError(
            "The file starts like a Parquet file but could not be read (it may be truncated).",
            "Export it again, or save the table as CSV.",
        ) from exc
    _check_header([str(c) for c in frame.columns])
    frame, notes = _flatten_nested(frame.reset_index(drop=True))
    return LoadedTable(_tidy(frame), "parquet", notes=notes)


def _is_nested_value(value: object) -> bool:
    return isinstance(value, (dict, list, tuple, set, np.ndarray))


def _flatten_nested(frame: pd.DataFrame) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Spread record (struct) columns into one column per field (``labs.hb``) and turn list
    columns into text, so that every cell is a plain value; returns notes saying what changed.
    """
    notes: list[str] = []
    for _ in range(4):  # records inside records: a few levels are plenty
        nested = [
            c for c in frame.columns
            if frame[c].dtype == object and frame[c].map(_is_nested_value).any()
        ]  # fmt: skip
        records = [c for c in nested if frame[c].map(lambda v: isinstance(v, dict)).any()]
        if not records:
            break
        parts = []
        for col in frame.columns:
            if col in records:
                spread = pd.json_normalize(
                    [v if isinstance(v, dict) else {} for v in frame[col]], max_level=0
                )
                spread.columns = [f"{col}.{k}" for k in spread.columns]
                parts.append(spread)
            else:
                parts.append(frame[[col]])
        frame = pd.concat(parts, axis=1)
        notes.append(f"record column(s) {', '.join(map(repr, records))} spread into fields")
    lists = [
        c
        for c in frame.columns
        if frame[c].dtype == object and frame[c].map(_is_nested_value).any()
    ]
    for col in lists:
        frame[col] = frame[col].map(lambda v: _list_text(v) if _is_nested_value(v) else v)
    if lists:
        notes.append(f"list column(s) {', '.join(map(repr, lists))} kept as text")
    return frame, tuple(notes)


def _list_text(value: object) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_list_text(v)}" for k, v in value.items()) + "}"
    if _is_nested_value(value):
        return "[" + ", ".join(_list_text(v) for v in value) + "]"  # type: ignore[union-attr]
    return str(value)


# --- shared checks --------------------------------------------------------------------------


def _check_header(header: list[str]) -> None:
    if not header:
        raise UploadError("The file has no header row.", "Put the column names in the first row.")
    named = [h for h in header if h]
    dups = sorted({h for h in named if named.count(h) > 1})
    if dups:
        raise UploadError(
            f"Column names appear more than once: {', '.join(repr(d) for d in dups)}.",
            "Give every column a unique name in the header row and upload again.",
        )


def _check_header_is_not_data(header: list[str]) -> None:
    """Refuse a first row that holds values, not names: all numbers, or a decimal number.

    Whole numbers alone are allowed (``id,0,4,8`` is a wide table with visit weeks as names).
    """
    numbers = [h for h in header if re.fullmatch(r"[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?", h)]
    decimals = [h for h in numbers if not h.lstrip("+-").isdigit()]
    if header and (len(numbers) == len(header) or decimals):
        shown = ", ".join(repr(h) for h in header[:6])
        raise UploadError(
            f"The first row looks like data, not column names ({shown}).",
            "Add a header row naming the columns (for example patient, week, outcome) and "
            "upload again.",
        )


def _check_shape(frame: pd.DataFrame) -> None:
    if frame.shape[1] < 2:
        only = f" ('{frame.columns[0]}')" if frame.shape[1] == 1 else ""
        raise UploadError(
            f"Only one column was found{only}: longitudinal data need at least a subject "
            "id, a time and an outcome column.",
            "If the values are separated by something other than comma, semicolon, tab or "
            "pipe, save the file again as a standard CSV.",
        )
    if frame.shape[0] == 0:
        raise UploadError(
            "The file has a header row but no data rows.",
            "Upload the file that contains the measurements (one row per visit).",
        )


def _tidy(frame: pd.DataFrame) -> pd.DataFrame:
    """Name unnamed columns, strip names, drop fully empty rows."""
    names = []
    for i, col in enumerate(frame.columns):
        name = str(col).strip()
        if not name or name.startswith("Unnamed: "):
            name = f"column_{i + 1}"
        names.append(name)
    frame = frame.copy()
    frame.columns = names
    return frame.dropna(how="all").reset_index(drop=True)
