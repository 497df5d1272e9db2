"""MMRMs beyond the Trial page (AppTest, issue 14): the Model builder's "correlation between
a patient's visits", the fit, and every page with the MMRM active (a view, or one sentence
why it needs random effects; never an exception). Messy column names."""

from __future__ import annotations

import numpy as np
import pytest

from dashboard.io.roles import Roles
from dashboard.state.session import Keys
from lmm_core import datasets
from tests.app.conftest import figures_on, finish_jobs, texts, upload

W = Keys.MODEL_W
NAMES = {
    "patient": "Patient ID",
    "score": "Score (points)",
    "visit": "Visite n°",
    "arm": "Arm [group]",
}
PAGES = (
    "trajectories", "shrinkage", "diagnostics", "compare", "prediction", "export", "data",
    "explore", "teach", "glossary", "model",
)  # fmt: skip


def _fit(at, structure: str):
    at = at.switch_page("pages/model.py").run()
    at.selectbox(key=W + "visit_structure").select(structure).run()
    at.button(key="model_fit").click().run()
    finish_jobs(at)
    assert not at.exception and not at.error, texts(at.error)
    return at


@pytest.fixture
def trial(app):
    data = datasets.load_example("trial_visits")[0].rename(columns=NAMES)
    at = upload(app, "essai é.csv", data.to_csv(index=False).encode())
    at.session_state[Keys.ROLES] = Roles(
        subject="Patient ID", time="Visite n°", outcome="Score (points)",
        covariates=("Arm [group]", "baseline"),
    ).to_dict()  # fmt: skip
    return at


def test_builder_writes_the_mmrm_and_every_page_copes(trial):
    at = trial.switch_page("pages/model.py").run()
    box = at.selectbox(key=W + "visit_structure")
    assert box.value == "none" and not box.disabled
    at = _fit(at, "ar1")
    assert at.code[0].value == (
        "`Score (points)` ~ `Visite n°` + `Arm [group]` + baseline + "
        "ar1(`Visite n°` | `Patient ID`)"
    )
    assert "replaces the random effects of each Patient ID" in texts(at.info)
    assert "6 values of the time column `Visite n°`" in texts(at.caption)
    record = at.session_state[Keys.FITS][-1]
    assert record.name == "M1: AR(1) visits + Arm [group] + baseline"
    assert "The fit converged." in texts(at.success)
    frames = [d.value for d in at.dataframe]
    assert any("Visite n°" in f.index for f in frames)  # the fixed effects
    cov = next(f for f in frames if "SD" in f.columns)
    assert np.isclose(cov.iloc[0, 3], cov.iloc[0, 2] ** 2)  # AR(1): rho^2 two visits apart
    for page in PAGES:
        at = at.switch_page(f"pages/{page}.py").run()
        assert not at.exception, (page, at.exception)
        assert not at.error, (page, texts(at.error))
    at = at.switch_page("pages/shrinkage.py").run()
    assert "Shrinkage needs random effects" in texts(at.info)
    at = at.switch_page("pages/trajectories.py").run()
    assert "population mean" in texts(at.info)
    at = at.switch_page("pages/prediction.py").run()
    assert "population forecast" in texts(at.info)


def test_diagnostics_compare_and_export_of_mmrms(trial):
    at = _fit(trial, "ar1")
    at = _fit(at, "us")
    at = _fit(at, "none")  # the random intercept of the same fixed effects
    names = [r.name for r in at.session_state[Keys.FITS]]
    assert len(names) == 3 and names[1].startswith("M2: unstructured")
    at.session_state[Keys.ACTIVE_FIT] = names[0]
    at = at.switch_page("pages/diagnostics.py").run()
    assert not at.exception
    figures = figures_on(at)
    assert len(figures) == 3  # residuals vs fitted, QQ of normalized, correlation pair
    assert "QQ of normalized residuals" in figures[1]["layout"]["title"]["text"]
    heat = [t for t in figures[2]["data"] if t["type"] == "heatmap"]
    z = np.asarray(heat[0]["z"], float)
    assert len(heat) == 2 and np.isclose(z[0, 2], z[0, 1] ** 2)
    assert "Normalized residuals L_i^-1 r_i" in texts(at.caption)
    at = at.switch_page("pages/compare.py").run()
    assert not at.exception
    frames = [d.value for d in at.dataframe]
    table = next(f for f in frames if "kind" in f.columns)
    assert list(table["kind"]) == ["MMRM: AR(1)", "MMRM: unstructured", "random effects"]
    assert "not nested" in texts(at.info)
    tests = next(f for f in frames if "verdict" in f.columns)
    assert list(tests["test"]) == ["M1 in M2"] and tests["Df"].iloc[0] == 19
    at = at.switch_page("pages/export.py").run()
    assert not at.exception
    code = "\n".join(c.value for c in at.code)
    # mmrm needs plain names in its covariance term: the script copies the columns first
    assert "mmrm(" in code and "ar1(Visite_n_factor | Patient_ID)" in code
    # the visit is numeric and a fixed effect too: SAS's REPEATED uses a CLASS copy
    assert "REPEATED Visite_n_c / SUBJECT='Patient ID'n TYPE=AR(1);" in code
    assert "fit_lmm('`Score (points)` ~ `Visite n°`" in code


def test_no_visit_column_disables_the_choice(app):
    app.selectbox(key=Keys.W_EXAMPLE).select("trial_small").run()  # time: continuous
    at = app.switch_page("pages/model.py").run()
    box = at.selectbox(key=W + "visit_structure")
    assert box.disabled and "at most 15" in texts(at.caption)


def test_random_effects_above_the_patient_with_a_structure(trial):
    """The engine fits them together (MMRMRandomResult); the pages never raise."""
    at = trial.switch_page("pages/model.py").run()
    typed = "`Score (points)` ~ `Visite n°` + (1 | `Arm [group]`) + ar1(`Visite n°` | `Patient ID`)"
    at.text_area(key=W + "typed").input(typed)  # in the form: sent with the button
    at.button(key="model_fit").click().run()
    finish_jobs(at)
    assert not at.exception and not at.error, texts(at.error)
    assert len(at.session_state[Keys.FITS]) == 1
    for page in PAGES:
        at = at.switch_page(f"pages/{page}.py").run()
        assert not at.exception, (page, at.exception)
    at = at.switch_page("pages/diagnostics.py").run()  # whitened cluster by cluster
    assert "L_h^-1 r_h" in texts(at.caption) and len(figures_on(at)) == 4
