"""Random effects above the subject together with a covariance of the visits (issue 14).

Oracles:
- nlme 3.1-162 ``lme(..., random =, correlation =)`` fits of a simulated trial (30 hospitals,
  8-12 patients each, 5 visits, missed visits and drop-out; ``tests/fixtures/mmrm_random``,
  made by its ``make_references.R``): AR(1), compound symmetry, unstructured (``corSymm`` +
  ``varIdent``) with ``(1 | hospital)``, and AR(1) with ``(time | hospital)``, REML and ML.
  The log-likelihood is never worse than nlme's and within 1e-6 relative, estimates 1e-4,
  model-based SEs 1e-3 (nlme's ``varFix``: its ML summary multiplies SEs by sqrt(N/(N-p))),
  covariance matrices 1e-3;
- a dense brute force: the criterion equals ``-2 log`` of the multivariate normal density with
  ``V = Z G Z' + blockdiag Sigma_i`` (REML adding ``log|X'V^-1X| - p log 2 pi``), with missing
  visits, a random slope, two grouping factors and group-specific structures;
- finite differences of the criterion for its analytic gradient.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import linalg, stats

from lmm_core import DataError, fit_lmm
from lmm_core.design.build import build_design
from lmm_core.model.mmrm_random import RandomMMRMCriterion
from lmm_core.model.mmrm_random_results import MMRMRandomResult

HERE = Path(__file__).resolve().parents[1] / "fixtures" / "mmrm_random"
CASES = sorted(p.stem for p in HERE.glob("*.json"))


def trial() -> pd.DataFrame:
    data = pd.read_csv(HERE / "trial_small.csv")
    data["avisit"] = pd.Categorical(data["avisit"], categories=[f"V{k}" for k in range(1, 6)])
    data["arm"] = pd.Categorical(data["arm"], categories=["ctl", "trt"])
    return data


def small(n_hospitals: int = 6) -> pd.DataFrame:
    data = trial()
    keep = sorted(data["hospital"].unique())[:n_hospitals]
    out = data[data["hospital"].isin(keep)].copy()
    rng = np.random.default_rng(3)
    patients = out["patient"].unique()
    cohort = dict(zip(patients, rng.integers(0, 3, len(patients)), strict=True))
    out["cohort"] = out["patient"].map(cohort).map("C{}".format)
    return out


def _close(actual, expected, rtol: float) -> None:
    actual, expected = np.asarray(actual, float), np.asarray(expected, float)
    err = np.max(np.abs(actual - expected)) / np.max(np.abs(expected))
    assert err <= rtol, err


@pytest.fixture(scope="module")
def fits() -> dict[str, MMRMRandomResult]:
    data = trial()
    out = {}
    for name in CASES:
        case = json.loads((HERE / f"{name}.json").read_text())
        out[name] = fit_lmm(case["formula"], data, reml=case["REML"])
    return out


@pytest.mark.parametrize("name", CASES)
def test_fit_matches_nlme(fits, name):
    ref = json.loads((HERE / f"{name}.json").read_text())
    res = fits[name]
    assert isinstance(res, MMRMRandomResult)
    assert res.converged and not res.is_singular
    assert res.loglik >= ref["logLik"] - 1e-9 * abs(ref["logLik"])
    assert abs(res.loglik - ref["logLik"]) <= 1e-6 * abs(ref["logLik"])
    assert list(res.fixef.index) == ref["beta"]["names"]
    _close(res.beta, ref["beta"]["values"], 1e-4)
    np.testing.assert_allclose(res.std_errors, ref["se_varFix"], rtol=1e-3)
    _close(res.covariance_matrices()[0], ref["G"]["values"], 1e-3)
    _close(res.residual_covariance().to_numpy(), ref["visit_covariance"], 1e-3)
    # nlme counts beta, theta and sigma; we count the covariance parameters (as mmrm)
    assert res.npar == ref["nlme_df"] - len(ref["beta"]["values"])


def dense_objective(crit: RandomMMRMCriterion, psi: np.ndarray) -> float:
    """``-2 log`` of the density of ``y`` with the full dense ``V`` at GLS ``beta``."""
    design, res = crit.design, crit.residual
    sigmas = res.matrices(psi[: crit.n_r])
    same = res.subject_codes[:, None] == res.subject_codes[None, :]
    sig = np.array(sigmas)[res.group_codes[:, None], res.visit_codes[:, None], res.visit_codes]
    V = np.where(same, sig, 0.0)
    for term, G in zip(crit.terms, crit.covariances(psi), strict=True):
        Z = np.zeros((design.n, term.n_levels * term.n_columns))
        for j in range(term.n_columns):
            Z[np.arange(design.n), term.codes * term.n_columns + j] = term.z[:, j]
        V = V + Z @ np.kron(np.eye(term.n_levels), G) @ Z.T
    X, y = design.X, design.y
    vinv_x = np.linalg.solve(V, X)
    xtvx = X.T @ vinv_x
    beta = np.linalg.solve(xtvx, vinv_x.T @ y)
    out = -2.0 * stats.multivariate_normal(X @ beta, V).logpdf(y)
    if crit.reml:
        out += np.linalg.slogdet(xtvx)[1] - X.shape[1] * np.log(2 * np.pi)
    return float(out)


BRUTE = [
    "y ~ avisit * arm + (1 | hospital) + ar1(visit | patient)",
    "y ~ avisit + arm + (1 | hospital) + us(visit | patient)",
    "y ~ avisit + arm + (1 | hospital) + cs(visit | patient)",
    "y ~ time * arm + (time | hospital) + ar1(visit | patient)",
    "y ~ time + (1 | hospital) + (1 | cohort) + ar1h(visit | patient)",
    "y ~ time * arm + (1 | hospital) + (0 + time | hospital) + toep(visit | patient)",
    "y ~ time + arm + (1 | hospital) + csh(visit | arm / patient)",
]


@pytest.mark.parametrize("formula", BRUTE)
@pytest.mark.parametrize("reml", [True, False])
def test_criterion_is_the_dense_density(formula, reml):
    crit = RandomMMRMCriterion(build_design(formula, small()), reml)
    rng = np.random.default_rng(7)
    psi = rng.uniform(0.1, 0.7, crit.n_theta)
    assert crit.evaluate(psi).objective == pytest.approx(dense_objective(crit, psi), rel=1e-10)


@pytest.mark.parametrize("formula", BRUTE)
def test_gradient_and_storage(formula):
    design = build_design(formula, small(10))
    crit = RandomMMRMCriterion(design, True)
    psi = np.random.default_rng(11).uniform(0.1, 0.7, crit.n_theta)
    value, grad = crit.value_and_gradient(psi)
    step = 1e-6
    numeric = [(crit(psi + step * e) - crit(psi - step * e)) / (2 * step) for e in np.eye(len(psi))]
    _close(grad, numeric, 1e-6)
    for crossproducts in (True, False):  # outer products or whitened rows: the same numbers
        other = RandomMMRMCriterion(design, True, crossproducts=crossproducts)
        v2, g2 = other.value_and_gradient(psi)
        assert v2 == pytest.approx(value, rel=1e-12)
        _close(g2, grad, 1e-9)


def test_results_surface(fits):
    res = fits["slope_ar1_reml"]
    data = trial()
    assert res.npar == len(res.theta) == 5
    assert res.aic == pytest.approx(res.objective + 2 * res.npar)
    assert res.bic == pytest.approx(res.objective + res.npar * np.log(data["patient"].nunique()))
    ranef = res.ranef["hospital"]
    assert list(ranef.columns) == ["(Intercept)", "time"]
    assert list(ranef.index) == sorted(data["hospital"].unique())
    vc = res.varcorr_table()
    G = res.covariance_matrices()[0]
    assert list(vc["group"]) == ["hospital"] * 3 + ["Residual"]
    assert vc["vcov"].iloc[2] == pytest.approx(G[1, 0])
    assert vc["vcov"].iloc[3] == pytest.approx(res.residual_covariance().iloc[0, 0])
    fitted = res.predict()
    assert np.allclose(res.predict(data), fitted)
    assert np.allclose(res.predict(include_re=False), res.design.X @ res.beta)
    z = np.column_stack([np.ones(len(data)), data["time"]])
    assert np.allclose(fitted - res.design.X @ res.beta,
                       np.sum(z * ranef.loc[data["hospital"]].to_numpy(), axis=1))  # fmt: skip
    new = data.iloc[:3].assign(hospital="elsewhere")
    assert np.allclose(res.predict(new), res.predict(new, include_re=False))
    corr = res.residual_correlation().to_numpy()
    assert np.allclose(np.diag(corr), 1.0) and corr[0, 1] == pytest.approx(corr[1, 2])


def test_fixef_table_satterthwaite(fits):
    res = fits["ar1_reml"]
    table = res.fixef_table()
    assert np.allclose(table["std_error"], res.std_errors)
    df = table["df"].to_numpy()
    assert np.all((df > 1) & (df < res.nobs))
    # the arm effect is between hospitals' patients: far fewer df than the visit contrasts
    assert df[list(res.x_names).index("armtrt")] < df[list(res.x_names).index("avisitV2")]
    wald = res.fixef_table("wald")
    assert np.all(np.isinf(wald["df"]))
    assert np.all(res.fixef_table("residual")["df"] == res.nobs - res.design.p)


def test_type3_tests_work_on_the_combined_model(fits):
    from lmm_core import type3_tests

    table = type3_tests(fits["ar1_reml"])
    assert list(table.index) == ["avisit", "arm", "avisit:arm"]
    assert list(table["num_df"]) == [4, 1, 4]
    assert np.all((table["den_df"] > 1) & (table["den_df"] < fits["ar1_reml"].nobs))


def test_results_do_not_depend_on_units(fits):
    ref = fits["slope_ar1_ml"]
    data = trial()
    data["y"] = data["y"] * 1000.0
    data["time"] = data["time"] / 7.0
    res = fit_lmm(ref.formula, data, reml=False)
    scale = np.array([1000.0, 7000.0, 1000.0, 7000.0])  # intercept, time, arm, time:arm
    assert res.converged
    assert res.loglik == pytest.approx(ref.loglik - res.nobs * np.log(1000.0), rel=1e-9)
    _close(res.beta / scale, ref.beta, 1e-6)
    _close(res.std_errors / scale, ref.std_errors, 1e-5)
    units = np.array([1000.0, 7000.0])
    _close(res.covariance_matrices()[0] / np.outer(units, units), ref.covariance_matrices()[0],
           1e-5)  # fmt: skip
    _close(res.residual_covariance().to_numpy() / 1e6, ref.residual_covariance().to_numpy(), 1e-6)
    _close(res.fixef_table()["df"], ref.fixef_table()["df"], 1e-3)


def test_zero_hospital_variance_is_a_singular_fit():
    data = trial()
    # no hospital differences left: each hospital's mean outcome per visit is the overall one
    data["y"] = data["y"] - data.groupby(["hospital", "avisit"], observed=True)["y"].transform(
        "mean"
    )
    res = fit_lmm("y ~ avisit + (1 | hospital) + ar1(visit | patient)", data)
    assert res.converged
    assert res.is_singular
    assert res.covariance_matrices()[0][0, 0] < 1e-6 * res.residual_covariance().iloc[0, 0]
    assert any("Singular fit" in m for m in res.messages)
    df = res.fixef_table()["df"].to_numpy()
    assert np.all(np.isfinite(df) & (df > 1))


def test_a_subject_in_two_hospitals_is_an_error():
    data = trial()
    first = data["patient"] == data["patient"].iloc[0]
    data.loc[first.to_numpy().nonzero()[0][-1], "hospital"] = "H30"
    with pytest.raises(DataError, match="two levels of `hospital`"):
        fit_lmm("y ~ avisit + (1 | hospital) + ar1(visit | patient)", data)


def test_lsmeans_work_on_the_combined_model(fits):
    from lmm_core import lsmeans

    res = fits["ar1_reml"]
    table = lsmeans(res, "arm", by="avisit")
    assert len(table) == 10
    x = res.design.X
    assert table["estimate"].iloc[0] == pytest.approx(res.beta[0])
    assert np.all(table["std_error"] > 0) and x.shape[1] == 10
    cov = linalg.inv(res.criterion.evaluate(res.theta).xtvx)
    assert table["std_error"].iloc[0] == pytest.approx(np.sqrt(cov[0, 0]))
