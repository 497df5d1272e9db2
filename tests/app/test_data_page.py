"""Data page in AppTest: example load, uploads, bad input, role changes, repairs."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import Workbook

from dashboard.state.session import Keys
from tests.app.conftest import figures_on, texts, upload

GOOD_CSV = (
    "patient;week;sbp;arm\n"
    + "\n".join(
        f"P{p};{w};{120 + p + w * 0.5:.1f};{'AB'[p % 2]}".replace(".", ",")
        for p in range(8)
        for w in (0, 4, 8)
    )
).encode("latin-1")


def _metric(at, label):
    return next(m.value for m in at.metric if m.label == label)


def test_opens_with_sleepstudy_and_a_report(app):
    assert app.title[0].value == "Data"
    assert app.session_state[Keys.DATA_NAME] == "sleepstudy"
    assert "sleepstudy: 180 rows x 3 columns" in texts(app.sidebar.caption)
    assert "No models fitted yet." in texts(app.sidebar.caption)
    assert _metric(app, "Observations") == "180" and _metric(app, "Subjects") == "18"
    assert _metric(app, "Time range") == "0 to 9"
    assert "No problems found" in texts(app.success)
    assert app.selectbox(key="role_outcome_example:sleepstudy").value == "Reaction"
    assert app.dataframe[-1].value.shape == (180, 3)  # preview
    (hist,) = figures_on(app)
    assert list(hist["data"][0]["y"]) == [18]


def test_choosing_another_example(app):
    app.selectbox(key=Keys.W_EXAMPLE).select("orthodont").run()
    assert not app.exception
    assert app.session_state[Keys.DATA_NAME] == "orthodont"
    assert app.multiselect(key="role_covariates_example:orthodont").value == ["Sex"]
    assert _metric(app, "Subjects") == "27"
    # AppTest drops the sidebar on reruns of st.navigation apps (the browser test checks it)


def test_upload_csv_with_semicolons_and_decimal_comma(app):
    upload(app, "clinic.csv", GOOD_CSV)
    assert not app.exception
    assert app.session_state[Keys.DATA_NAME] == "clinic.csv"
    assert "semicolon-separated, decimal comma" in texts(app.success)
    data = app.session_state[Keys.DATASET]
    assert data["sbp"].dtype == float and data.shape == (24, 4)
    roles = app.session_state[Keys.ROLES]
    assert (roles["subject"], roles["time"], roles["outcome"]) == ("patient", "week", "sbp")
    assert app.selectbox(key=Keys.W_EXAMPLE).value is None  # picker follows the upload


def test_role_change_updates_report_and_state(app):
    key = "role_outcome_example:sleepstudy"
    app.selectbox(key=key).select("Subject").run()
    assert not app.exception
    assert app.session_state[Keys.ROLES]["outcome"] == "Subject"
    assert "'Subject' is used for two roles" in texts(app.error)
    app.selectbox(key=key).select("Reaction").run()
    app.selectbox(key="role_time_example:sleepstudy").select("(none)").run()
    assert app.session_state[Keys.ROLES]["time"] is None
    assert "No time column is chosen" in texts(app.error)


def _xlsx(sheets):
    book = Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "bad_inputs"
BAD_FILES = {  # a few corpus files; the browser test uploads all of them
    "empty": ("empty.csv", "The file is empty"),
    "binary garbage": ("binary_garbage.csv", "binary"),
    "fake excel": ("not_excel.xlsx", "not one"),
    "text in outcome": ("text_in_outcome.csv", "contains text"),
    "all-missing column": ("outcome_all_missing.csv", "empty in every"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_upload_shows_a_message_and_keeps_previous_data(app, case):
    name, words = BAD_FILES[case]
    upload(app, name, (CORPUS / name).read_bytes())
    assert not app.exception
    assert words in texts(app.error)
    assert "sleepstudy" in texts(app.error) or "Held back" in texts(app.markdown)
    assert app.session_state[Keys.DATA_NAME] == "sleepstudy"
    assert "**sleepstudy**: 180 rows" in texts(app.markdown)


@pytest.mark.parametrize(
    ("name", "check"),
    [
        ("text_in_outcome.csv", lambda d: d["sbp"].isna().sum() == 2),
        ("inf_nan_strings.csv", lambda d: d["sbp"].isna().sum() == 4),
    ],
)
def test_repair_button_loads_the_fixed_data(app, name, check):
    upload(app, name, (CORPUS / name).read_bytes())
    app.button(key=Keys.W_REPAIR).click().run()
    assert not app.exception
    assert app.session_state[Keys.DATA_NAME] == name
    assert check(app.session_state[Keys.DATASET])


def test_wide_upload_is_offered_a_conversion(app):
    wide = b"pid,sex,sbp_0,sbp_6,sbp_12\na,F,120,121,118\nb,M,130,129,131\nc,F,,140,141\n"
    upload(app, "wide.csv", wide)
    assert "looks like wide format" in texts(app.warning)
    assert app.session_state[Keys.DATA_NAME] == "sleepstudy"
    app.button(key=Keys.W_CONVERT_WIDE).click().run()
    assert not app.exception
    data = app.session_state[Keys.DATASET]
    assert list(data.columns) == ["pid", "sex", "time", "sbp"] and len(data) == 8
    assert app.session_state[Keys.ROLES]["time"] == "time"
    assert _metric(app, "Subjects") == "3"


def test_excel_with_several_sheets_lets_the_user_choose(app):
    rows = [["id", "t", "y"], ["a", 0, 1.0], ["a", 1, 2.0], ["b", 0, 3.0], ["b", 1, 4.0]]
    upload(app, "book.xlsx", _xlsx({"Notes": [["read me"]], "Visits": rows}))
    assert "Only one column" in texts(app.error)  # first sheet is a note
    assert app.session_state[Keys.DATA_NAME] == "sleepstudy"
    app.selectbox(key=Keys.W_SHEET).select("Visits").run()
    assert not app.exception
    assert app.session_state[Keys.DATA_NAME] == "book.xlsx [Visits]"
    assert app.session_state[Keys.DATASET].shape == (4, 3)


def test_parquet_upload(app):
    frame = pd.DataFrame({"id": list("aabb"), "t": [0, 1, 0, 1], "y": [1.0, 2.0, 3.0, 4.0]})
    buf = io.BytesIO()
    frame.to_parquet(buf)
    upload(app, "v.parquet", buf.getvalue())
    assert not app.exception and app.session_state[Keys.DATA_NAME] == "v.parquet"


def test_over_the_upload_limit_is_refused(app, monkeypatch):
    import streamlit as st

    real = st.get_option
    monkeypatch.setattr(
        st, "get_option", lambda key: 0.001 if key == "server.maxUploadSize" else real(key)
    )
    upload(app, "big.csv", GOOD_CSV + GOOD_CSV[GOOD_CSV.index(b"\n") :] * 10)  # ~3 kB
    assert "over the upload limit" in texts(app.error)
    assert app.session_state[Keys.DATA_NAME] == "sleepstudy"


def test_load_as_is_keeps_the_problem_visible_and_explore_guards(app):
    upload(app, "txt.csv", (CORPUS / "text_in_outcome.csv").read_bytes())
    app.button(key=Keys.W_LOAD_AS_IS).click().run()
    assert not app.exception
    assert app.session_state[Keys.DATA_NAME] == "txt.csv"
    assert "contains text" in texts(app.error)  # now in the report of the active data
    app.switch_page("pages/explore.py").run()
    assert not app.exception
    assert "needs a numeric outcome column" in texts(app.info)
