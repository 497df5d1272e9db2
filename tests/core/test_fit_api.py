"""The public API around a fit: prediction, comparison, simulation, the optimizer record."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lmm_core import (
    ComparisonError,
    LMMError,
    chibar_pvalue,
    fit_lmm,
    lrt,
    simulate,
    simulate_from_formula,
    theta_from_covariances,
)
from lmm_core.model.deviance import ProfiledDeviance
from lmm_core.model.optimize import _CountingObjective
from tests.core.test_reference_lme4 import read_dataset

FORMULA = "Reaction ~ Days + (Days | Subject)"


@pytest.fixture(scope="module")
def sleep():
    return read_dataset("sleepstudy.csv")


@pytest.fixture(scope="module")
def fit(sleep):
    return fit_lmm(FORMULA, sleep)


def test_predict_reproduces_fitted_and_population_for_new_subjects(fit, sleep):
    assert np.allclose(fit.predict(sleep), fit.fitted)
    assert np.allclose(fit.predict(sleep, include_re=False), fit.design.X @ fit.beta)
    new = pd.DataFrame({"Subject": ["new-1", "new-1"], "Days": [0.0, 5.0], "Reaction": 0.0})
    pred = fit.predict(new)
    assert np.allclose(pred, fit.fixef["(Intercept)"] + fit.fixef["Days"] * np.array([0, 5]))
    known = pd.DataFrame({"Subject": ["308"], "Days": [2.0], "Reaction": 0.0})
    b = fit.ranef["Subject"].loc["308"]
    expected = fit.fixef.iloc[0] + b.iloc[0] + 2 * (fit.fixef.iloc[1] + b.iloc[1])
    assert np.isclose(fit.predict(known)[0], expected)


def test_optimizer_record(fit):
    opt = fit.opt
    assert opt.converged and opt.n_evals > 10 and opt.seconds > 0
    assert opt.fmin == pytest.approx(fit.objective, abs=1e-9)
    # lme4's start (identity) for the unit-free factor: theta = 1 / RMS of the z column
    days_rms = np.sqrt(np.mean(fit.design.X[:, 1] ** 2))
    assert np.allclose(opt.initial, [1.0, 0.0, 1.0 / days_rms])
    assert opt.finitial > opt.fmin
    assert "BOBYQA" in opt.method


def test_summary_text_names_the_parts(fit):
    text = fit.summary_text()
    for piece in (
        "REML criterion at convergence",
        "Random effects:",
        "Subject",
        "Residual",
        "Fixed effects:",
        "Number of obs: 180",
    ):
        assert piece in text


def test_failed_factorization_gives_a_finite_value(sleep):
    fit = fit_lmm("Reaction ~ Days + (1 | Subject)", sleep)
    dev = ProfiledDeviance(fit.design.X, fit.design.y, fit.design.reterms, True)
    counter = _CountingObjective(dev, dev.theta_scale, keep_log=False)
    first = counter.safe(np.array([1.0]))

    def broken(theta):
        raise np.linalg.LinAlgError("not positive definite")

    counter.fun = broken
    assert counter.safe(np.array([1.0])) == first


def test_lrt_refuses_different_rows(sleep):
    a = fit_lmm("Reaction ~ Days + (1 | Subject)", sleep)
    b = fit_lmm("Reaction ~ Days + (1 | Subject)", sleep.iloc[:150])
    with pytest.raises(ComparisonError, match="rows"):
        lrt(a, b)
    with pytest.raises(ComparisonError, match="at least two"):
        lrt(a)
    assert issubclass(ComparisonError, LMMError)


def test_lrt_without_refit_needs_equal_fixed_effects(sleep):
    a = fit_lmm("Reaction ~ Days + (1 | Subject)", sleep)
    b = fit_lmm("Reaction ~ 1 + (1 | Subject)", sleep)
    with pytest.raises(ComparisonError, match="fixed effects"):
        lrt(a, b, refit=False)
    c = fit_lmm(FORMULA, sleep)
    table = lrt(a, c, refit=False)
    assert table.attrs["messages"] == []
    assert table["Chisq"].iloc[1] == pytest.approx(2 * (c.loglik - a.loglik))


def test_chibar_is_half_the_naive_pvalue_for_one_variance():
    assert chibar_pvalue(3.84, 1) == pytest.approx(0.5 * 0.05004352, rel=1e-5)
    assert chibar_pvalue(0.0, 1) == 1.0
    assert chibar_pvalue(5.0, 2) > chibar_pvalue(5.0, 1)


def test_simulate_is_seeded_and_recovers_the_truth():
    n_sub, n_vis = 400, 6
    data = pd.DataFrame(
        {
            "id": np.repeat([f"s{i}" for i in range(n_sub)], n_vis),
            "t": np.tile(np.arange(n_vis, dtype=float), n_sub),
        }
    )
    cov = np.array([[4.0, 0.3], [0.3, 0.25]])
    kwargs = dict(beta=[10.0, -0.5], covariances=[cov], sigma=1.0)
    y1 = simulate_from_formula("y ~ t + (t | id)", data, seed=11, **kwargs)
    y2 = simulate_from_formula("y ~ t + (t | id)", data, seed=11, **kwargs)
    assert np.array_equal(y1, y2)
    res = fit_lmm("y ~ t + (t | id)", data.assign(y=y1[0]))
    est = res.covariance_matrices()[0]
    # 400 subjects: sampling SD of the intercept variance is about 0.3, of the slope's 0.02.
    assert abs(est[0, 0] - 4.0) < 1.2 and abs(est[1, 1] - 0.25) < 0.08
    assert res.sigma == pytest.approx(1.0, abs=0.06)
    assert np.allclose(res.fixef, [10.0, -0.5], atol=0.3)
    draws = simulate(res, 3, seed=5)
    assert draws.shape == (3, len(data))


def test_theta_from_covariances_roundtrip():
    cov = np.array([[4.0, 0.3], [0.3, 0.25]])
    theta = theta_from_covariances([cov, np.array([[2.0]])], sigma=2.0)
    lam = np.array([[theta[0], 0], [theta[1], theta[2]]])
    assert np.allclose(4.0 * lam @ lam.T, cov)
    assert theta[3] == pytest.approx(np.sqrt(0.5))
    assert np.allclose(theta_from_covariances([np.zeros((1, 1))], 1.0), [0.0])
