"""Every file of the bad-input corpus through the loader, the upload assessment and a fit.

The expected behaviour of each file is in ``tests/fixtures/bad_inputs/manifest.json``
(regenerate the files with ``make_corpus.py`` there). The same files go through the real
browser upload in ``tests/e2e/test_browser_bad_inputs.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dashboard.io.loading import UploadError, read_table
from dashboard.io.roles import Roles
from dashboard.io.validation import repair, validate
from dashboard.views.upload import assess
from lmm_core import LMMError, fit_lmm

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "bad_inputs"
MANIFEST: dict[str, dict] = {
    k: v for k, v in json.loads((CORPUS / "manifest.json").read_text()).items() if k[0] != "_"
}
FITS = {name: case["fit"] for name, case in MANIFEST.items() if "fit" in case}


def corpus_files() -> list[str]:
    """Names of the corpus data files (everything but the script and the manifest)."""
    return sorted(
        p.name for p in CORPUS.iterdir() if p.name not in {"manifest.json", "make_corpus.py"}
    )


def test_manifest_covers_the_corpus():
    assert corpus_files() == sorted(MANIFEST)
    assert len(MANIFEST) >= 30
    assert {c["result"] for c in MANIFEST.values()} == {"refused", "held", "wide", "loaded"}


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_file_through_the_loader(name):
    case = MANIFEST[name]
    raw = (CORPUS / name).read_bytes()
    if case["result"] == "refused":
        with pytest.raises(UploadError) as info:
            read_table(raw, name)
        assert case["message"] in str(info.value)
        assert info.value.hint, "the message says what to do"
        return
    table = read_table(raw, name)
    found = assess(table.data)
    shown = "\n".join([table.describe(), *(f.message for f in found.report.findings)])
    if case["result"] == "wide":  # the page says "looks like wide format" (browser test)
        assert found.wide is not None and found.wide.time_name == "time"
    else:
        assert case["message"] in shown
    assert found.usable == (case["result"] == "loaded"), [f.message for f in found.report.errors]
    assert (found.wide is not None) == (case["result"] == "wide")
    for col in table.data.columns:  # every cell is a plain value (hashable: no nested lists)
        table.data[col].nunique()


@pytest.mark.parametrize("name", sorted(FITS))
def test_fit_on_the_loaded_data_gives_a_message_not_a_traceback(name):
    expected = FITS[name]
    data = read_table((CORPUS / name).read_bytes(), name).data
    if expected.get("ok"):
        res = fit_lmm(expected["formula"], data)
        assert res.converged
        assert expected.get("note", "") in " ".join(res.messages)
        return
    with pytest.raises(LMMError) as info:
        fit_lmm(expected["formula"], data)
    assert expected["error"] in str(info.value)


def test_html_stays_text_in_names_and_cells():
    headers = read_table((CORPUS / "html_in_headers.csv").read_bytes(), "h.csv").data
    assert any(c.startswith("<img src=x") for c in headers.columns)
    cells = read_table((CORPUS / "html_in_cells.csv").read_bytes(), "c.csv").data
    assert cells["arm"].str.startswith("<script").any()


def test_infinite_values_repair_to_missing():
    data = read_table((CORPUS / "inf_nan_strings.csv").read_bytes(), "i.csv").data
    roles = Roles("patient", None, "week", "sbp", ("arm",))
    fixes = [f.fix for f in validate(data, roles).errors]
    assert fixes == ["nonfinite"]
    fixed = repair(data, roles, fixes)
    assert validate(fixed, roles).ok and fixed["sbp"].isna().sum() == 4
    assert fit_lmm("sbp ~ week + (1 | patient)", fixed).nobs == 28


def test_nested_parquet_is_flattened():
    table = read_table((CORPUS / "nested_columns.parquet").read_bytes(), "n.parquet")
    assert list(table.data.columns) == ["patient", "week", "sbp", "labs.hb", "labs.crp", "tags"]
    assert table.data["labs.hb"].dtype == float
    assert table.data["tags"].iloc[0] == "[a, b]"
    assert "list column(s) 'labs.crp', 'tags' kept as text" in table.describe()


@pytest.mark.parametrize(
    ("header", "refused"),
    [("P01,0,130.6,B", True), ("1,2,3", True), ("id,0,4,8", False), ("id,week,y", False)],
)
def test_a_first_row_of_values_is_not_taken_as_names(header, refused):
    raw = (
        f"{header}\na,1,2,3\n".encode() if header.count(",") == 3 else f"{header}\n1,2,3\n".encode()
    )
    if refused:
        with pytest.raises(UploadError, match="looks like data"):
            read_table(raw, "x.csv")
    else:
        read_table(raw, "x.csv")
