"""GLMM inference (issue 15): simulate, likelihood-ratio tests, parametric bootstrap, profiles.

Oracles:
- simulate: moments of many seeded draws against the model's own (quadrature over the random
  intercept), the conditional means with ``use_u``, the offset (exposure) in Poisson means;
- refits to a simulated response equal a fresh ``fit_glmm`` of the same data;
- LRT: lme4's ``anova(glmer0, glmer1)`` (``tests/fixtures/glmm/inference/glmm_anova.json``,
  made by ``make_glmm_inference.R``, lme4 1.1-31 with ``tolPwrss = 1e-12``);
- bootstrap: seeded reproducibility, and under a true null the bootstrap statistics follow
  their chi-square reference (Kolmogorov-Smirnov);
- profile intervals: lme4's ``confint(method = "profile")`` (``glmm_profile.json``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.polynomial.hermite_e import hermegauss
from scipy import stats
from scipy.special import expit

from lmm_core import (
    ComparisonError,
    DataError,
    fit_glmm,
    fit_lmm,
    glmm_profile_confint,
    lrt,
    parametric_bootstrap,
    pb_lrt,
    simulate_glmm,
)
from lmm_core.glmm.refit import refit_glmm

GLMM = Path(__file__).resolve().parents[1] / "fixtures" / "glmm"
INFERENCE = GLMM / "inference"
CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
CBPP0 = "cbind(incidence, size - incidence) ~ 1 + (1 | herd)"
COUNTS = "count ~ time * arm + offset(log(exposure)) + (1 | patient)"


def dataset(file: str) -> pd.DataFrame:
    schema = json.loads((GLMM / "data" / file.replace(".csv", ".schema.json")).read_text())
    data = pd.read_csv(GLMM / "data" / file)
    for col in schema["columns"]:
        if col["type"] == "factor":
            data[col["name"]] = pd.Categorical(
                data[col["name"]].astype(str), categories=col["levels"]
            )
    return data


_FITS: dict = {}


def fitted(formula: str, file: str, family: str = "binomial"):
    key = (formula, file, family)
    if key not in _FITS:
        _FITS[key] = fit_glmm(formula, dataset(file), family)
    return _FITS[key]


# --------------------------------------------------------------------------- simulate
def test_simulated_moments_match_the_model():
    """Mean successes per row and the covariance of two rows of one herd, over 4000 draws,
    against ``E[w g^-1(eta + b)]`` and ``Cov`` by 40-point quadrature over ``b ~ N(0, sd^2)``."""
    m = fitted(CBPP, "cbpp.csv")
    sims = simulate_glmm(m, 4000, seed=11) * m.data.weights
    sd = m.theta[0]
    nodes, weights = hermegauss(40)
    weights = weights / weights.sum()
    fixed = m.data.design.X @ m.beta
    p = expit(fixed[:, None] + sd * nodes[None, :])  # (rows, nodes)
    w = m.data.weights
    mean = w * (p @ weights)
    var = w * ((p * (1 - p)) @ weights) + w**2 * ((p**2) @ weights - (p @ weights) ** 2)
    z = (sims.mean(axis=0) - mean) / np.sqrt(var / sims.shape[0])
    assert np.max(np.abs(z)) < 4.5
    emp_var = sims.var(axis=0, ddof=1)
    assert np.allclose(emp_var, var, rtol=0.15)
    # rows 0 and 1 belong to herd 1: their covariance comes from the shared intercept only
    cov = w[0] * w[1] * ((p[0] * p[1]) @ weights - (p[0] @ weights) * (p[1] @ weights))
    emp = np.cov(sims[:, 0], sims[:, 1])[0, 1]
    assert emp == pytest.approx(cov, rel=0.2)
    assert np.all((sims >= 0) & (sims <= w + 1e-9) & (np.abs(sims - np.round(sims)) < 1e-9))


def test_simulate_is_seeded_and_use_u_keeps_the_modes():
    m = fitted(CBPP, "cbpp.csv")
    a = m.simulate(3, seed=5)
    assert np.array_equal(a, simulate_glmm(m, 3, seed=5))
    assert not np.array_equal(a, m.simulate(3, seed=6))
    cond = m.simulate(3000, seed=1, use_u=True).mean(axis=0)
    se = np.sqrt(m.fitted * (1 - m.fitted) / m.data.weights / 3000)
    assert np.max(np.abs(cond - m.fitted) / se) < 4.5


def test_simulated_counts_respect_the_offset():
    """Conditional means with ``use_u`` are ``exposure * exp(x'beta + z'b)``; with the same
    parameters and new random effects, doubling every exposure doubles the mean count."""
    m = fitted(COUNTS, "sim_counts.csv", "poisson")
    sims = m.simulate(2000, seed=3, use_u=True)
    z = (sims.mean(axis=0) - m.fitted) / np.sqrt(m.fitted / 2000)
    assert np.max(np.abs(z)) < 4.5
    exposure = dataset("sim_counts.csv")["exposure"].to_numpy()[m.data.rows]
    no_offset = np.exp(m.eta - m.data.offset)
    assert np.allclose(m.fitted, exposure * no_offset, rtol=1e-12)
    data = dataset("sim_counts.csv").assign(exposure=lambda d: 2 * d["exposure"])
    m2 = fit_glmm(COUNTS, data, "poisson")
    once = simulate_glmm(m, 500, seed=3)
    twice = simulate_glmm(m2, 500, seed=3, beta=m.beta, theta=m.theta)
    assert twice.mean() / once.mean() == pytest.approx(2.0, rel=0.02)


def test_simulate_rejects_bad_arguments():
    m = fitted(CBPP, "cbpp.csv")
    with pytest.raises(Exception, match="n_sim"):
        m.simulate(0)
    with pytest.raises(Exception, match="beta needs"):
        simulate_glmm(m, 1, beta=np.zeros(2))


def test_refit_to_a_simulated_response_equals_a_fresh_fit():
    m = fitted(CBPP, "cbpp.csv")
    y = m.simulate(1, seed=21)[0]
    refit = refit_glmm(m, y)
    data = dataset("cbpp.csv")
    data["incidence"] = np.round(y * m.data.weights).astype(int)
    fresh = fit_glmm(CBPP, data)
    assert refit.loglik == pytest.approx(fresh.loglik, rel=1e-7)
    assert np.allclose(refit.beta, fresh.beta, rtol=1e-3, atol=1e-3 * fresh.std_errors)
    assert refit.theta[0] == pytest.approx(fresh.theta[0], rel=1e-3, abs=1e-3)


# --------------------------------------------------------------------------- LRT
ANOVA = json.loads((INFERENCE / "glmm_anova.json").read_text())


@pytest.mark.parametrize("ref", ANOVA, ids=[c["case_id"] for c in ANOVA])
def test_lrt_matches_lme4_anova(ref):
    data = dataset(ref["dataset"])
    fits = [fit_glmm(f, data, ref["family"], ref["link"]) for f in reversed(ref["formulas"])]
    table = lrt(*fits, names=["large", "small"])
    a = ref["anova"]
    assert list(table.index) == ["small", "large"]
    assert table["npar"].tolist() == a["npar"]
    assert np.allclose(table["logLik"], a["logLik"], rtol=1e-5)
    assert np.allclose(table["AIC"], a["AIC"], rtol=1e-5)
    assert np.allclose(table["BIC"], a["BIC"], rtol=1e-5)
    assert table["Df"].iloc[1] == a["Df"]
    assert table["Chisq"].iloc[1] == pytest.approx(a["Chisq"], rel=1e-3)
    assert table["Pr(>Chisq)"].iloc[1] == pytest.approx(a["p"], rel=1e-2)
    assert table.attrs["fits"][0] is fits[1]


def test_lrt_adds_the_boundary_mixture_for_a_new_variance():
    ref = next(c for c in ANOVA if c["case_id"] == "simbin_slope_re")
    data = dataset(ref["dataset"])
    small, large = (fit_glmm(f, data, "binomial") for f in ref["formulas"])
    table = lrt(small, large)
    chisq = table["Chisq"].iloc[1]
    expected = 0.5 * stats.chi2.sf(chisq, 1) + 0.5 * stats.chi2.sf(chisq, 2)
    assert table.attrs["p_chibar"][1] == pytest.approx(expected, rel=1e-12)
    assert "boundary" in table.attrs["messages"][0]
    cbpp = lrt(fitted(CBPP0, "cbpp.csv"), fitted(CBPP, "cbpp.csv"))
    assert np.isnan(cbpp.attrs["p_chibar"][1]) and not cbpp.attrs["messages"]


def test_lrt_refuses_incomparable_fits():
    m = fitted(CBPP, "cbpp.csv")
    probit = fit_glmm(CBPP, dataset("cbpp.csv"), "binomial", "probit")
    with pytest.raises(ComparisonError, match="link"):
        lrt(m, probit)
    fewer = dataset("cbpp.csv").iloc[4:]
    with pytest.raises(ComparisonError, match="rows"):
        lrt(m, fit_glmm(CBPP0, fewer))
    counts = dataset("sim_counts.csv")
    lmm = fit_lmm("count ~ time + (1 | patient)", counts, reml=False)
    with pytest.raises(ComparisonError, match="same kind"):
        lrt(lmm, fitted(COUNTS, "sim_counts.csv", "poisson"))


# --------------------------------------------------------------------------- bootstrap
def test_parametric_bootstrap_of_a_glmm_is_seeded():
    m = fitted(CBPP, "cbpp.csv")
    a = parametric_bootstrap(m, 6, 4)
    b = parametric_bootstrap(m, 4, 4)
    assert list(a.estimates.index) == ["sd_(Intercept)|herd", *m.x_names]
    assert np.allclose(a.samples.iloc[:4].to_numpy(), b.samples.to_numpy(), rtol=1e-12)
    assert a.n_failed == 0
    ci = a.confint(level=0.8)
    assert np.all(ci["lower"] <= ci["upper"])
    assert a.estimates.iloc[1:].tolist() == m.beta.tolist()


def test_bootstrap_lrt_under_a_true_null():
    """Responses drawn from the null model: the bootstrap statistics follow chi-square(3)
    (a fixed-effects test away from the boundary), the observed strong period effect gets the
    smallest attainable p-value, and a seed reproduces the run."""
    small, large = fitted(CBPP0, "cbpp.csv"), fitted(CBPP, "cbpp.csv")
    table = pb_lrt(large, small, n_boot=40, seed=2)
    t_star = table.attrs["samples"]
    assert table.attrs["n_used"] == 40 and np.all(np.isfinite(t_star))
    assert stats.kstest(t_star, stats.chi2(3).cdf).pvalue > 0.01
    assert table.loc["PBtest", "p_value"] == pytest.approx(1 / 41)
    assert table.loc["LRT", "df"] == 3
    again = pb_lrt(small, large, n_boot=3, seed=2)
    assert np.allclose(again.attrs["samples"], t_star[:3], rtol=1e-10)


# --------------------------------------------------------------------------- profile
PROFILES = json.loads((INFERENCE / "glmm_profile.json").read_text())


def test_profile_intervals_match_lme4_on_cbpp():
    ref = PROFILES[0]
    m = fitted(CBPP, "cbpp.csv")
    ci = glmm_profile_confint(m)
    assert list(ci.index) == ["sd_(Intercept)|herd", *m.x_names]
    assert np.allclose(ci["lower"], ref["lower95"], rtol=1e-3)
    assert np.allclose(ci["upper"], ref["upper95"], rtol=1e-3)
    assert not ci.attrs["messages"]
    table = m.fixef_table(ci="profile")  # the same bounds in the fixed-effects table
    np.testing.assert_allclose(table["ci_lower"], ci.loc[m.x_names, "lower"], rtol=1e-6)
    np.testing.assert_allclose(table["ci_upper"], ci.loc[m.x_names, "upper"], rtol=1e-6)
    np.testing.assert_allclose(table["std_error"], m.fixef_table()["std_error"])
    with pytest.raises(DataError, match="ci must be"):
        m.fixef_table(ci="bootstrap")


def test_profile_intervals_of_a_count_model_with_an_offset():
    """lme4 interpolates a spline through its profile: bounds agree to 2e-3 of the
    interval's half-width (a bound near 0 makes a relative comparison meaningless)."""
    ref = PROFILES[1]
    m = fitted(COUNTS, "sim_counts.csv", "poisson")
    ci = glmm_profile_confint(m, level=0.90, which=["sd_(Intercept)|patient", "armactive"])
    lo, up = np.array(ref["lower90"])[[0, 3]], np.array(ref["upper90"])[[0, 3]]
    half = (up - lo) / 2
    assert np.all(np.abs(ci["lower"].to_numpy() - lo) < 2e-3 * half)
    assert np.all(np.abs(ci["upper"].to_numpy() - up) < 2e-3 * half)
