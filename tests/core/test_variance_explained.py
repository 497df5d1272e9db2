"""ICC, ICC over time and Nakagawa-Schielzeth R2 (lmm_core.inference.variance_explained).

References: hand computations from the fitted variance components; R's performance 0.10.2
(``icc``, ``icc(by_group = TRUE)``, ``r2_nakagawa``) on lme4 1.1-31 fits, stored in
tests/fixtures/inference_reference.json (2e-4 relative: the fits agree to about 1e-5);
statsmodels' MixedLM estimates put through the same formula; a simulated truth.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lmm_core import fit_lmm
from lmm_core.errors import ModelError
from lmm_core.inference.variance_explained import icc, icc_curve, r2_nakagawa, variance_partition
from tests.conftest import load_reference_dataset

REF = json.loads(
    (Path(__file__).resolve().parents[1] / "fixtures" / "inference_reference.json").read_text()
)["cases"]


@cache
def _fit(case: str):
    c = REF[case]
    return fit_lmm(c["formula"], load_reference_dataset(c["dataset"]), reml=c["REML"])


def test_icc_random_intercept_by_hand():
    res = _fit("sleepstudy_intercept_ml")
    vc = res.varcorr_table()
    tau2, s2 = vc["vcov"].iloc[0], vc["vcov"].iloc[-1]
    out = icc(res)
    assert out.loc["Subject", "icc"] == pytest.approx(tau2 / (tau2 + s2), rel=1e-12)
    assert out.loc["Subject", "correlation"] == pytest.approx(tau2 / (tau2 + s2), rel=1e-12)
    assert out.attrs["adjusted"] == pytest.approx(tau2 / (tau2 + s2), rel=1e-12)


@pytest.mark.parametrize(
    "case",
    ["sleepstudy_intercept_ml", "dyestuff_reml", "penicillin_crossed_reml", "pastes_nested_reml"],
)
def test_icc_matches_performance(case):
    out, ref = icc(_fit(case)), REF[case]
    groups = np.atleast_1d(ref["icc_by_group"]["group"])
    values = np.atleast_1d(ref["icc_by_group"]["icc"])
    for g, v in zip(groups, values, strict=True):
        assert out.loc[g, "icc"] == pytest.approx(v, rel=2e-4)
    assert out.attrs["adjusted"] == pytest.approx(ref["icc"]["adjusted"], rel=2e-4)


def test_icc_nested_and_crossed_correlation():
    nested = icc(_fit("pastes_nested_reml"))  # cask within batch
    tau = nested["variance"]
    total = tau.sum() + nested.attrs["residual_variance"]
    assert nested.loc["cask:batch", "correlation"] == pytest.approx(tau.sum() / total)
    assert nested.loc["batch", "correlation"] == pytest.approx(tau["batch"] / total)
    crossed = icc(_fit("penicillin_crossed_reml"))
    np.testing.assert_allclose(crossed["correlation"], crossed["icc"])


def test_icc_refuses_random_slopes():
    with pytest.raises(ModelError, match="icc_curve"):
        icc(_fit("sleepstudy_slope_corr_reml"))


def test_icc_curve_by_hand_and_at_zero():
    res = _fit("sleepstudy_slope_corr_reml")
    cov, s2 = res.covariance_matrices()[0], res.sigma**2
    curve = icc_curve(res, "Subject", [0.0, 5.0, 9.0])
    assert curve["icc"].iloc[0] == pytest.approx(cov[0, 0] / (cov[0, 0] + s2), rel=1e-12)
    between = cov[0, 0] + 2 * 5.0 * cov[0, 1] + 25.0 * cov[1, 1]
    assert curve["between_variance"].iloc[1] == pytest.approx(between, rel=1e-12)
    assert curve["icc"].iloc[1] == pytest.approx(between / (between + s2), rel=1e-12)
    assert list(curve.columns) == ["time", "between_variance", "total_variance", "icc"]


def test_icc_curve_uncorrelated_terms_and_intercept_model():
    res = _fit("sleepstudy_slope_uncorr_reml")
    (c0,), (c1,) = (c.ravel() for c in res.covariance_matrices())
    curve = icc_curve(res, "Subject", [0.0, 4.0])
    b = c0 + 16.0 * c1
    assert curve["icc"].iloc[1] == pytest.approx(b / (b + res.sigma**2), rel=1e-12)
    flat = icc_curve(_fit("sleepstudy_intercept_ml"), "Subject", [0.0, 3.0, 8.0])
    np.testing.assert_allclose(flat["icc"], icc(_fit("sleepstudy_intercept_ml"))["icc"].iloc[0])
    with pytest.raises(ModelError, match="not a grouping factor"):
        icc_curve(res, "Patient", [0.0])


@pytest.mark.parametrize(
    "case",
    [
        "sleepstudy_slope_corr_reml",
        "sleepstudy_intercept_ml",
        "orthodont_add_slope_reml",
        "dyestuff_reml",
        "penicillin_crossed_reml",
        "pastes_nested_reml",
    ],
)
def test_r2_matches_performance(case):
    marginal, conditional = r2_nakagawa(_fit(case))
    ref = REF[case]["r2_nakagawa"]
    assert marginal == pytest.approx(ref["marginal"], rel=2e-4, abs=1e-12)
    assert conditional == pytest.approx(ref["conditional"], rel=2e-4)


def test_r2_by_hand_random_slopes():
    """Johnson's random-slope variance: mean over rows of z' Sigma z. For the ``||`` model
    performance 0.10.2 counts only the intercept term (0.415, 0.702); the formula, as for
    the correlated model that performance does match, gives the numbers below."""
    res = _fit("sleepstudy_slope_uncorr_reml")
    (c0,), (c1,) = (c.ravel() for c in res.covariance_matrices())
    days = res.design.X[:, 1]
    vf = np.var(res.design.X @ res.beta, ddof=1)
    vr = c0 + c1 * np.mean(days**2)
    total = vf + vr + res.sigma**2
    r2 = r2_nakagawa(res)
    assert r2.marginal == pytest.approx(vf / total, rel=1e-12)
    assert r2.conditional == pytest.approx((vf + vr) / total, rel=1e-12)
    parts = variance_partition(res)
    assert parts["random"] == pytest.approx(vr, rel=1e-12)


def _simulated(seed: int = 4, n_groups: int = 400):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), 6)
    x = np.tile(np.linspace(0.0, 2.5, 6), n_groups)
    cov = np.array([[4.0, 0.6], [0.6, 1.0]])
    b = rng.multivariate_normal([0, 0], cov, n_groups)
    y = 1.0 + 2.0 * x + b[g, 0] + b[g, 1] * x + rng.normal(0.0, 1.5, g.size)
    data = pd.DataFrame({"y": y, "x": x, "g": g.astype(str)})
    vf = np.var(2.0 * x, ddof=1)
    vr = np.mean(cov[0, 0] + 2 * x * cov[0, 1] + x**2 * cov[1, 1])
    total = vf + vr + 1.5**2
    return data, (vf / total, (vf + vr) / total)


def test_r2_recovers_simulated_truth():
    data, truth = _simulated()
    r2 = r2_nakagawa(fit_lmm("y ~ x + (x | g)", data))
    np.testing.assert_allclose(tuple(r2), truth, rtol=0.05)


def test_r2_agrees_with_statsmodels_estimates():
    sm = pytest.importorskip("statsmodels.formula.api")
    data, _ = _simulated(seed=5, n_groups=150)
    res = fit_lmm("y ~ x + (x | g)", data)
    fit = sm.mixedlm("y ~ x", data, groups=data["g"], re_formula="~x").fit(reml=True)
    X = res.design.X
    vf = np.var(X @ fit.fe_params.to_numpy(), ddof=1)
    cov = fit.cov_re.to_numpy()
    z = np.column_stack([np.ones(len(data)), data["x"]])
    vr = np.mean(np.einsum("ri,ij,rj->r", z, cov, z))
    total = vf + vr + fit.scale
    np.testing.assert_allclose(tuple(r2_nakagawa(res)), (vf / total, (vf + vr) / total), rtol=2e-3)
