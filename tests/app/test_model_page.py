"""Model page in AppTest: build and fit through the widgets; the numbers shown are the engine's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashboard.state.session import Keys
from lmm_core import datasets, fit_lmm
from tests.app.conftest import texts

W = Keys.MODEL_W


def _model(app):
    app.switch_page("pages/model.py").run()
    assert not app.exception
    return app


def _fit(at):
    at.button(key="model_fit").click().run()
    assert not at.exception
    return at


def _metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


FRAME_COLUMN = {  # a column that identifies each table of the page
    "fixef": "t value",
    "varcomp": "Random effect",
    "corr": "Correlation",
    "ols": "Design effect",
}


def _frame(at, name: str) -> pd.DataFrame:
    (frame,) = [d.value for d in at.dataframe if FRAME_COLUMN[name] in d.value.columns]
    return frame


def _names(at) -> list[str]:
    return [r.name for r in at.session_state[Keys.FITS]]


def _check_numbers(at, formula: str, reml: bool = True) -> None:
    data, _ = datasets.load_example("sleepstudy")
    ref = fit_lmm(formula, data, reml=reml)
    fixed = _frame(at, "fixef")
    np.testing.assert_allclose(fixed["Estimate"], ref.fixef, rtol=1e-8)
    np.testing.assert_allclose(fixed["Std. error"], np.sqrt(np.diag(ref.vcov)), rtol=1e-6)
    varcomp = _frame(at, "varcomp")
    vc = ref.varcorr_table()
    np.testing.assert_allclose(varcomp["SD"], vc.loc[vc["var2"].isna(), "sdcor"], rtol=1e-6)
    metrics = _metrics(at)
    assert metrics["AIC"] == f"{ref.aic:,.2f}"
    assert metrics["BIC"] == f"{ref.bic:,.2f}"
    assert metrics["logLik"] == f"{ref.loglik:,.2f}"
    assert metrics["Observations"] == "180"


def test_random_intercept_then_random_slope_through_the_builder(app):
    at = _model(app)
    assert at.title[0].value == "Model"
    assert at.code[0].value == "Reaction ~ Days + (1 | Subject)"
    assert "No model fitted" in texts(at.info)
    _fit(at)
    assert _names(at) == ["M1: random intercept"]
    assert "Fitted **M1: random intercept**" in texts(at.success)
    assert at.subheader[-1].value == "3. Summary of M1: random intercept"
    _check_numbers(at, "Reaction ~ Days + (1 | Subject)")
    assert "ICC = 0.59" in texts(at.markdown)

    at.multiselect(key=W + "subject_slopes").select("Days").run()
    assert at.code[0].value == "Reaction ~ Days + (Days | Subject)"
    assert _names(at) == ["M1: random intercept"]  # changing the builder does not fit
    _fit(at)
    assert _names(at) == ["M1: random intercept", "M2: random slope"]
    assert at.session_state[Keys.ACTIVE_FIT] == "M2: random slope"
    _check_numbers(at, "Reaction ~ Days + (Days | Subject)")
    assert "not one number" in texts(at.markdown)
    corr = _frame(at, "corr")
    assert corr["Correlation"].iloc[0] == pytest.approx(0.0656, abs=1e-3)
    ols = _frame(at, "ols")
    assert list(ols.columns)[-1] == "Design effect"

    at.checkbox(key=W + "subject_correlated").uncheck().run()
    assert at.code[0].value == "Reaction ~ Days + (Days || Subject)"


def test_builder_choices_survive_a_page_switch(app):
    at = _model(app)
    at.multiselect(key=W + "subject_slopes").select("Days").run()
    at.switch_page("pages/explore.py").run()
    at = _model(at)
    assert at.code[0].value == "Reaction ~ Days + (Days | Subject)"


def test_typed_formula_wins_and_ml_switch(app):
    at = _model(app)
    at.text_area(key=W + "typed").input("Reaction ~ Days + (Days || Subject)")
    at.radio(key=W + "method").set_value("ML")
    _fit(at)
    (record,) = at.session_state[Keys.FITS]
    assert record.formula == "Reaction ~ Days + (Days || Subject)"
    assert record.name == "M1: uncorrelated random slope (ML)"  # ML is named
    assert record.reml is False
    data, _ = datasets.load_example("sleepstudy")
    ref = fit_lmm("Reaction ~ Days + (Days || Subject)", data, reml=False)
    assert _metrics(at)["Deviance (-2 logLik)"] == f"{ref.objective:,.2f}"
    assert "REML criterion" not in _metrics(at)
    _check_numbers(at, "Reaction ~ Days + (Days || Subject)", reml=False)
    assert at.radio(key=W + "method").value == "ML"  # kept after the rerun


def test_bad_formula_and_failed_fit_keep_earlier_fits(app):
    at = _fit(_model(app))
    at.text_area(key=W + "typed").input("Reaction ~ Days + (1 | )")
    _fit(at)
    assert "could not be read" in texts(at.error)
    assert "position 23" in texts(at.error)
    assert any(c.value.endswith("\n" + " " * 23 + "^") for c in at.code)
    assert _names(at) == ["M1: random intercept"]
    at.text_area(key=W + "typed").input("Reaction ~ Dayz + (1 | Subject)")
    _fit(at)
    assert "could not be fitted" in texts(at.error) and "Dayz" in texts(at.error)
    assert _names(at) == ["M1: random intercept"]
    assert at.subheader[-1].value == "3. Summary of M1: random intercept"


def test_delete_a_fit(app):
    at = _fit(_model(app))
    at.multiselect(key=W + "subject_slopes").select("Days").run()
    _fit(at)
    at.button(key="model_delete_M1: random intercept").click().run()
    assert not at.exception
    assert _names(at) == ["M2: random slope"]
    at.button(key="model_delete_M2: random slope").click().run()
    assert _names(at) == [] and at.session_state[Keys.ACTIVE_FIT] is None
    assert "No model fitted" in texts(at.info)
    _fit(at)
    assert _names(at) == ["M1: random slope"]


def test_singular_fit_offers_the_simpler_model(app):
    at = _model(app)
    at.text_area(key=W + "typed").input("Reaction ~ Days + (1 | Subject) + (1 | Days)")
    _fit(at)
    assert at.session_state[Keys.FITS][0].result.is_singular
    warnings = texts(at.warning)
    assert "random intercept of Days is estimated as zero" in warnings
    assert "singular fit" in warnings
    at.button(key="model_fit_simpler").click().run()
    assert not at.exception
    assert _names(at)[-1] == "M2: random intercept"
    assert at.session_state[Keys.FITS][-1].formula == "Reaction ~ Days + (1 | Subject)"
    assert not at.warning
    assert not [b for b in at.button if b.key == "model_fit_simpler"]


def test_trial_example_with_hospital_level(app):
    app.selectbox(key=Keys.W_EXAMPLE).select("trial_small").run()
    at = _model(app)
    # main effects first (issue 11): no interaction the user did not ask for
    assert at.code[0].value == "y ~ time + arm + (1 | patient) + (1 | hospital)"
    at.multiselect(key=W + "subject_slopes").select("time").run()
    at.multiselect(key=W + "interactions").select("time x arm").run()
    assert at.code[0].value == (
        "y ~ time + arm + time:arm + (time | patient) + (1 | hospital)"
    )  # one notation: main effects, then a:b
    _fit(at)
    assert _names(at) == ["M1: random slope + hospital intercept + arm + time x arm"]
    levels = list(_frame(at, "varcomp")["Level"])
    assert levels == ["patient", "patient", "hospital", "Residual"]
    assert "3,118 observations (patient: 500 groups, hospital: 20 groups)" in texts(at.caption)


def test_typed_formula_belongs_to_its_dataset(app):
    at = _model(app)
    at.text_area(key=W + "typed").input("Reaction ~ Days + (Days || Subject)")
    _fit(at)
    assert "uses the typed formula" in texts(at.caption)
    at.switch_page("pages/data.py").run()
    at.selectbox(key=Keys.W_EXAMPLE).select("trial_small").run()
    at = _model(at)
    assert at.text_area(key=W + "typed").value == ""
    assert "uses the typed formula" not in texts(at.caption)
    _fit(at)
    assert not at.error
    assert at.session_state[Keys.FITS][-1].formula.startswith("y ~ time + arm")


def test_the_same_model_twice_is_fitted_once_and_selected(app):
    """Issue 11: Enter in the formula box fitted, then 'Fit model' fitted the same model
    again under the same name. One fit per model and method; the second request selects it."""
    at = _model(app)
    _fit(at)
    assert _names(at) == ["M1: random intercept"]
    at.multiselect(key=W + "subject_slopes").select("Days").run()
    _fit(at)
    assert _names(at) == ["M1: random intercept", "M2: random slope"]
    at.multiselect(key=W + "subject_slopes").set_value([]).run()
    _fit(at)  # the builder's random intercept again
    assert _names(at) == ["M1: random intercept", "M2: random slope"]
    assert at.session_state[Keys.ACTIVE_FIT] == "M1: random intercept"
    assert "already fitted by REML as **M1: random intercept**" in texts(at.info)
    assert at.subheader[-1].value == "3. Summary of M1: random intercept"
    # spelled differently, same model: still selected, not refitted
    at.text_area(key=W + "typed").input("Reaction~1+Days+(1+Days|Subject)")
    _fit(at)
    assert len(_names(at)) == 2 and at.session_state[Keys.ACTIVE_FIT] == "M2: random slope"
    # other settings (ML) or other terms: a new fit whose name says what differs
    at.radio(key=W + "method").set_value("ML")
    _fit(at)
    assert _names(at)[-1] == "M3: random slope (ML)"
    at.text_area(key=W + "typed").input("Reaction ~ 1 + (Days | Subject)")
    at.radio(key=W + "method").set_value("REML")
    _fit(at)
    assert _names(at)[-1] == "M4: random slope without Days"
    assert len(set(_names(at))) == len(_names(at))


def test_time_rescaled_in_the_builder(app):
    """Item 4: time in days can enter the model per week (I(Days/7)), and says why."""
    at = _model(app)
    assert "0.008 a day" in texts(at.caption)  # time in days: the reason is shown
    (scale,) = [s for s in at.selectbox if s.key == W + "time_scale"]
    assert "per week (Days / 7)" in scale.options
    scale.select("per week (Days / 7)").run()
    at.multiselect(key=W + "subject_slopes").select("Days").run()
    assert at.code[0].value == "Reaction ~ I(Days/7) + (I(Days/7) | Subject)"
    _fit(at)
    assert _names(at) == ["M1: random slope (Days/7)"]
    result = at.session_state[Keys.FITS][0].result
    ref = fit_lmm("Reaction ~ Days + (Days | Subject)", datasets.load_example("sleepstudy")[0])
    np.testing.assert_allclose(result.fixef.iloc[1], 7 * ref.fixef["Days"], rtol=1e-5)
    np.testing.assert_allclose(result.sigma, ref.sigma, rtol=1e-5)  # the same fit
