"""A yes/no outcome written as text ("yes"/"no", issue 15): the Data page notes it as a
logistic model's outcome (no error), and the Model page and the pages of the fit take it."""

from __future__ import annotations

import numpy as np

from dashboard.io.roles import Roles
from dashboard.state.session import Keys
from lmm_core import datasets, fit_glmm
from tests.app.conftest import finish_jobs, texts, upload

W = Keys.MODEL_W
NAMES = {"patient": "Patient n°", "infection": "Infection (yes/no)", "week": "Semaine [w]"}


def test_text_yes_no_outcome_is_fitted_as_a_logistic_glmm(app):
    data = datasets.load_example("infections")[0].rename(columns=NAMES)
    data["Infection (yes/no)"] = data["Infection (yes/no)"].map({0: "no", 1: "yes"})
    at = upload(app, "infections_text.csv", data.to_csv(index=False).encode())
    assert not at.exception and not texts(at.error)
    at.session_state[Keys.ROLES] = Roles(
        subject="Patient n°", time="Semaine [w]", outcome="Infection (yes/no)", covariates=("arm",)
    ).to_dict()
    at = at.run()
    shown = texts(at.info).replace("\\", "")
    assert "two categories ('no' and 'yes')" in shown and "contains text" not in texts(at.error)
    at = at.switch_page("pages/model.py").run()
    assert not at.exception
    assert at.selectbox(key=W + "family").value == "binomial"
    assert at.selectbox(key=W + "family").options == ["yes/no: logistic (binomial)"]
    at.button(key="model_fit").click().run()
    finish_jobs(at)
    assert not at.exception and not at.error, texts(at.error)
    (record,) = at.session_state[Keys.FITS]
    assert record.family == "binomial"
    numbers = data.assign(**{"Infection (yes/no)": (data["Infection (yes/no)"] == "yes") * 1})
    again = fit_glmm(record.result.formula, numbers, family="binomial")
    np.testing.assert_allclose(record.result.fixef, again.fixef, rtol=1e-6)  # P(yes) is modelled
    for page in ("trajectories", "shrinkage", "prediction"):
        at = at.switch_page(f"pages/{page}.py").run()
        assert not at.exception, page
        assert "needs a numeric outcome" not in texts(at.info), page
