"""Diagnostics page in AppTest: figures from the active fit, model and group choice, guard."""

from __future__ import annotations

from functools import cache

import numpy as np

from dashboard.analysis.records import FitRecord
from dashboard.state.session import Keys
from lmm_core import datasets, fit_lmm
from lmm_core.predict.implied import implied_covariance
from tests.app.conftest import figures_on, texts

INTERCEPT = "Reaction ~ Days + (1 | Subject)"
SLOPE = "Reaction ~ Days + (Days | Subject)"


@cache
def fit(name: str, formula: str):
    data, _ = datasets.load_example(name)
    return fit_lmm(formula, data)


def record(name: str, formula: str, dataset: str = "sleepstudy") -> FitRecord:
    return FitRecord(
        name=name,
        formula=formula,
        reml=True,
        data_key=f"example:{dataset}",
        data_name=dataset,
        result=fit(dataset, formula),
        seconds=0.0,
    )


def diagnostics(app, records, active=None):
    app.session_state[Keys.FITS] = records
    app.session_state[Keys.ACTIVE_FIT] = active or (records[-1].name if records else None)
    app.switch_page("pages/diagnostics.py").run()
    assert not app.exception
    return app


def test_figures_of_the_active_fit(app):
    records = [record("M1: random intercept", INTERCEPT), record("M2: random slope", SLOPE)]
    at = diagnostics(app, records, active="M2: random slope")
    res = records[1].result
    assert at.selectbox(key=Keys.W_DIAG_MODEL).value == "M2: random slope"
    resid_fitted, qq_resid, qq_ranef, by_group, obs_fitted, heat, icc = figures_on(at)
    shown = np.concatenate([resid_fitted["data"][0]["y"], resid_fitted["data"][1]["y"]])
    np.testing.assert_allclose(np.sort(shown), np.sort(res.residuals))
    np.testing.assert_allclose(qq_resid["data"][0]["y"], np.sort(res.residuals / res.sigma))
    assert len(qq_ranef["data"]) == 4  # intercept and slope: points + line each
    np.testing.assert_allclose(qq_ranef["data"][2]["y"], np.sort(res.ranef["Subject"]["Days"]))
    assert len(set(by_group["data"][0]["x"])) == 18
    assert obs_fitted["data"][1]["name"].startswith("identity")
    assert f"residual SD {res.sigma:.4g}" in texts(at.markdown)
    outliers = at.dataframe[0].value
    assert "why" in outliers.columns and len(outliers) >= 1
    assert outliers["max_abs_std_resid"].max() == np.abs(res.residuals / res.sigma).max()
    assert "By chance alone" in texts(at.caption)


def test_choosing_another_model_makes_it_active(app):
    records = [record("M1: random intercept", INTERCEPT), record("M2: random slope", SLOPE)]
    at = diagnostics(app, records)
    at.selectbox(key=Keys.W_DIAG_MODEL).select("M1: random intercept").run()
    assert not at.exception
    assert at.session_state[Keys.ACTIVE_FIT] == "M1: random intercept"
    qq_ranef = figures_on(at)[2]
    assert len(qq_ranef["data"]) == 2  # random intercept only


def test_two_grouping_factors_and_sampling(app):
    app.selectbox(key=Keys.W_EXAMPLE).select("trial_small").run()
    formula = "y ~ time * arm + (time | patient) + (1 | hospital)"
    at = diagnostics(app, [record("M1: two levels", formula, "trial_small")])
    assert at.selectbox(key=Keys.W_DIAG_GROUP).value == "patient"  # the subject role
    assert "30 of 500 levels of patient" in texts(at.caption)
    at.selectbox(key=Keys.W_DIAG_GROUP).select("hospital").run()
    assert not at.exception
    assert at.session_state[Keys.DIAG_GROUP] == "hospital"
    by_group = figures_on(at)[3]
    assert len(set(by_group["data"][0]["x"])) == 20


def test_guard_without_fits(app):
    at = diagnostics(app, [])
    assert "Fit one on the Model page" in texts(at.info)
    assert not figures_on(at)


# --------------------------------------------------------------------------- correlation
def test_implied_vs_observed_correlation_sleepstudy(app):
    at = diagnostics(app, [record("M2: random slope", SLOPE)])
    heat, icc = figures_on(at)[5:]
    res = fit("sleepstudy", SLOPE)
    implied = implied_covariance(res, np.arange(10.0), subject="Subject").correlation
    np.testing.assert_allclose(heat["data"][0]["z"], implied, rtol=1e-12)
    assert heat["data"][0]["x"] == [str(d) for d in range(10)]
    assert heat["layout"]["annotations"][1]["text"] == "Observed (residuals from the fixed effects)"
    assert [t["name"] for t in icc["data"]][-1] == "ICC"
    captions = texts(at.caption)
    assert "Each of the 10 distinct visit times" in captions
    assert "residuals from the fixed effects" in captions
    assert Keys.W_DIAG_CORR_BINS not in [s.key for s in at.slider]  # regular times
    labels = [m.label for m in at.metric]
    assert labels[:2] == ["ICC at Days 0", "ICC at Days 9"] and all(m.help for m in at.metric)
    at.radio(key=Keys.W_DIAG_CORR_SOURCE).set_value("outcome").run()
    assert not at.exception
    assert at.session_state[Keys.DIAG_CORR]["source"] == "outcome"
    heat = figures_on(at)[5]
    assert heat["layout"]["annotations"][1]["text"] == "Observed (outcome)"


def test_correlation_with_clusters_and_binned_times(app):
    app.selectbox(key=Keys.W_EXAMPLE).select("trial_small").run()
    formula = "y ~ time * arm + (time | patient) + (1 | hospital)"
    at = diagnostics(app, [record("M1: two levels", formula, "trial_small")])
    heat = figures_on(at)[5]
    assert heat["data"][0]["x"][:2] == ["~0", "~1"] and len(heat["data"][0]["x"]) == 8
    captions = texts(at.caption)
    assert "including the shared hospital level" in captions and "k-means" in captions
    at.slider(key=Keys.W_DIAG_CORR_BINS).set_value(4).run()
    assert not at.exception
    assert len(figures_on(at)[5]["data"][0]["x"]) == 4
    assert at.session_state[Keys.DIAG_CORR]["bins"] == 4


def test_correlation_of_a_model_without_subject_effects(app):
    app.selectbox(key=Keys.W_EXAMPLE).select("orthodont").run()
    at = diagnostics(app, [record("M1: by sex", "distance ~ age + (1 | Sex)", "orthodont")])
    assert "no random effects for Subject" in texts(at.info)
    assert len(figures_on(at)) == 5
