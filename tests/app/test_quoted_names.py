"""Names that need quoting through the pages (issue 11 items 3 and 5): a column such as
``SBP (mmHg)`` is written with backticks in formulas only; tables, figure titles and
sentences show it as the user wrote it, and the formula line is one intact code span."""

from __future__ import annotations

import numpy as np
import pytest

from dashboard.base.markup import code_span
from dashboard.state.session import Keys
from lmm_core import datasets
from tests.app.conftest import figures_on, texts, upload

W = Keys.MODEL_W
NAMES = {"Reaction": "SBP (mmHg)", "Days": "Visit day", "Subject": "Patient ID"}
FORMULA = "`SBP (mmHg)` ~ `Visit day` + `Sex (M/F)` + (`Visit day` | `Patient ID`)"


@pytest.fixture
def fitted(app):
    data = datasets.load_example("sleepstudy")[0].rename(columns=NAMES)
    data["Sex (M/F)"] = np.where(data["Patient ID"].astype(int) % 2 == 0, "F", "M")
    at = upload(app, "bp.csv", data.to_csv(index=False).encode())
    assert at.session_state[Keys.DATA_NAME] == "bp.csv", texts(at.error)
    at = at.switch_page("pages/model.py").run()
    at.multiselect(key=W + "subject_slopes").select("Visit day").run()
    assert at.code[0].value == FORMULA
    at.button(key="model_fit").click().run()
    assert not at.exception and not at.error, texts(at.error)
    return at


def _backticks_in(frame) -> list[str]:
    cells = [*map(str, frame.index), *map(str, frame.columns)]
    cells += [str(v) for v in frame.to_numpy().ravel() if isinstance(v, str)]
    return [c for c in cells if "`" in c]


def test_model_page_shows_names_as_written(fitted):
    at = fitted
    line = [m.value for m in at.markdown if m.value.startswith("Formula `")]
    assert line and line[0].startswith(f"Formula {code_span(FORMULA)}, estimated by REML")
    frames = [d.value for d in at.dataframe]
    assert frames and all(not _backticks_in(f) for f in frames), [_backticks_in(f) for f in frames]
    fixed = [f for f in frames if "Estimate" in f.columns][0]
    assert list(fixed.index) == ["(Intercept)", "Visit day", "Sex (M/F)M"]
    result = at.session_state[Keys.FITS][0].result
    for frame in (f for f in frames if "Estimate" in f.columns):  # every number is there
        np.testing.assert_allclose(frame["Estimate"], result.fixef, rtol=1e-10)
        assert frame.notna().all().all(), frame
    assert "slope on Visit day" in "".join(str(v) for f in frames for v in f.to_numpy().ravel())
    # the engine keeps R's coefficient names (R users see what lme4 prints)
    assert list(at.session_state[Keys.FITS][0].result.fixef.index)[1] == "`Visit day`"


@pytest.mark.parametrize(
    "page", ["pages/shrinkage.py", "pages/diagnostics.py", "pages/prediction.py"]
)
def test_figures_and_tables_show_names_as_written(fitted, page):
    at = fitted.switch_page(page).run()
    assert not at.exception
    for fig in figures_on(at):
        layout = fig.get("layout", {})
        titles = [a.get("text", "") for a in layout.get("annotations", [])]
        titles += [str(v.get("title", {}).get("text", "")) for v in layout.values()
                   if isinstance(v, dict) and isinstance(v.get("title"), dict)]  # fmt: skip
        assert not [t for t in titles if "`" in t], titles
    for frame in (d.value for d in at.dataframe):
        assert not _backticks_in(frame)
    for box in at.selectbox:
        assert not [o for o in box.options if "`" in str(o)], box.options
    if page == "pages/prediction.py":
        assert "its Visit day slope" in texts(at.markdown)


def test_compare_says_when_two_fits_are_one_model(app):
    """Issue 11 item 7: the Compare page reported a tie between identical models. The same
    model by REML and by ML is one model: the page says so."""
    at = app.switch_page("pages/model.py").run()
    at.button(key="model_fit").click().run()
    at.radio(key=W + "method").set_value("ML")
    at.button(key="model_fit").click().run()
    names = [r.name for r in at.session_state[Keys.FITS]]
    assert names == ["M1: random intercept", "M2: random intercept (ML)"]
    at = at.switch_page("pages/compare.py").run()
    assert not at.exception
    shown = texts(at.info).replace("\\", "")  # Markdown escapes of the names
    assert "M1: random intercept and M2: random intercept (ML) are the same model" in shown
