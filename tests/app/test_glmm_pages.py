"""GLMMs from the Model page (AppTest, issue 15): a logistic GLMM on infections, a Poisson
GLMM with exposure on seizures (messy column names), and every page with a GLMM active."""

from __future__ import annotations

import numpy as np

from dashboard.io.roles import Roles
from dashboard.state.session import Keys
from lmm_core import datasets
from tests.app.conftest import figures_on, finish_jobs, texts, upload

W = Keys.MODEL_W
PAGES = (
    "trajectories", "shrinkage", "prediction", "diagnostics", "compare", "export", "data",
    "explore", "glossary", "model",
)  # fmt: skip


def _fit(at):
    at.button(key="model_fit").click().run()
    finish_jobs(at)
    assert not at.exception and not at.error, texts(at.error)
    return at


def test_logistic_glmm_on_infections_and_every_page(app):
    at = app
    at.selectbox(key=Keys.W_EXAMPLE).select("infections").run()
    at = at.switch_page("pages/model.py").run()
    assert at.selectbox(key=W + "family").value == "binomial"  # what the outcome looks like
    assert "only two values" not in texts(at.warning)  # the linear-model note is not shown
    at = _fit(at)
    record = at.session_state[Keys.FITS][-1]
    assert record.family == "binomial" and record.link == "logit" and not record.reml
    assert record.name.startswith("M1: logistic")
    shown = texts(at.markdown).replace("\\", "")  # Markdown escapes of ( and )
    assert "logistic (binomial) mixed model" in shown and "median odds ratio" in shown
    at = at.switch_page("pages/trajectories.py").run()
    assert not at.exception
    (fig,) = figures_on(at)
    names = [t.get("name", "") for t in fig["data"]]
    assert any(n.startswith("typical patient") for n in names)
    assert any(n.startswith("population average") for n in names)
    ys = np.concatenate([np.asarray(t["y"], float) for t in fig["data"]])
    assert np.nanmin(ys) >= 0 and np.nanmax(ys) <= 1  # probabilities
    assert "flatter than the curve of the average" in texts(at.info)
    for page in PAGES:
        at = at.switch_page(f"pages/{page}.py").run()
        assert not at.exception, (page, at.exception)
    at = at.switch_page("pages/shrinkage.py").run()
    assert "logit (log-odds) scale" in texts(at.info).replace("\\", "")
    at = at.switch_page("pages/prediction.py").run()
    assert "New patient" in texts(at.markdown)


NAMES = {"patient": "Patient n°", "seizures": "Crises (n)", "exposure": "Durée [jours]"}


def test_poisson_glmm_with_exposure_and_messy_names(app):
    data = datasets.load_example("seizures")[0].rename(columns=NAMES)
    data["autre durée"] = data["Durée [jours]"]
    data.loc[0, "autre durée"] = 0
    at = upload(app, "crises é.csv", data.to_csv(index=False).encode())
    at.session_state[Keys.ROLES] = Roles(
        subject="Patient n°", time="period", outcome="Crises (n)", covariates=("arm",)
    ).to_dict()
    at = at.switch_page("pages/model.py").run()
    assert at.selectbox(key=W + "family").value == "poisson"
    at.selectbox(key=W + "exposure").select("autre durée").run()
    assert "zero or negative in 1 row(s)" in texts(at.error).replace("\\", "")  # refused
    assert "offset" not in at.code[0].value
    at.selectbox(key=W + "exposure").select("Durée [jours]").run()
    assert at.code[0].value == (
        "`Crises (n)` ~ period + arm + offset(log(`Durée [jours]`)) + (1 | `Patient n°`)"
    )
    at = _fit(at)
    record = at.session_state[Keys.FITS][-1]
    assert record.family == "poisson"
    assert "Rate ratio" in str(at.dataframe[0].value.columns.tolist())
    at = at.switch_page("pages/trajectories.py").run()
    assert not at.exception
    (fig,) = figures_on(at)
    assert "rate per unit of Durée [jours]" in fig["layout"]["yaxis"]["title"]["text"]
    for page in PAGES:
        at = at.switch_page(f"pages/{page}.py").run()
        assert not at.exception, (page, at.exception)
