"""MMRM: a structured covariance of the visits and no random effects (issue 14, first part).

Oracles:
- mmrm 0.3.18 fits of its FEV data (``tests/fixtures/mmrm``): us, ar1, ar1h, cs, csh, toep, ad
  by REML and us by ML. The log-likelihood is never worse than mmrm's and within 1e-6
  relative; estimates 1e-4 relative to their scale (us: against mmrm's polished nlminb fit,
  since mmrm's default stops 2.5e-6 short), SEs and covariance 1e-3, Satterthwaite df 1e-2;
- a dense brute force: the criterion equals ``-2 log`` of the multivariate normal density with
  the structured ``V`` (plus ``log|X'V^-1X| - p log(2 pi)`` for REML), with missing visits,
  for every structure (``sp_exp`` also on irregular times) and for a group-specific
  structure;
- the exact Hessian equals central differences of the analytic gradient.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lmm_core import DataError, FormulaError, ModelError, fit_lmm
from lmm_core.design.build import build_design
from lmm_core.design.residual_structures import STRUCTURES
from lmm_core.model.mmrm import MMRMCriterion

MMRM = Path(__file__).resolve().parents[1] / "fixtures" / "mmrm"
CASES = sorted(p.stem for p in (MMRM / "cases").glob("*.json"))


def fev() -> pd.DataFrame:
    schema = json.loads((MMRM / "data" / "fev_data.schema.json").read_text())
    data = pd.read_csv(MMRM / "data" / "fev_data.csv")
    for col in schema["columns"]:
        if col["type"] == "factor":
            data[col["name"]] = pd.Categorical(
                data[col["name"]].astype(str), categories=col["levels"]
            )
    return data


def _scaled_close(actual, expected, rtol: float) -> None:
    actual, expected = np.asarray(actual, float), np.asarray(expected, float)
    err = np.max(np.abs(actual - expected)) / np.max(np.abs(expected))
    assert err <= rtol, err


@pytest.mark.parametrize("name", CASES)
def test_fit_matches_mmrm(name):
    case = json.loads((MMRM / "cases" / f"{name}.json").read_text())
    ref = case["satterthwaite"]
    res = fit_lmm(case["formula"], fev(), reml=case["REML"])
    assert res.converged
    assert res.loglik >= ref["logLik"] - 1e-9 * abs(ref["logLik"])
    assert abs(res.loglik - ref["logLik"]) <= 1e-6 * abs(ref["logLik"])
    best = case.get("polished_nlminb") if case["cov_type"] == "us" else None
    beta = best["beta"]["values"] if best else ref["coefficients"]["Estimate"]
    se = best["se"] if best else ref["coefficients"]["Std. Error"]
    cov = (best or ref)["covariance"][0]["values"]
    assert list(res.fixef.index) == ref["coefficients"]["names"]
    _scaled_close(res.beta, beta, 1e-4)
    np.testing.assert_allclose(res.std_errors, se, rtol=1e-3)
    _scaled_close(res.residual_covariance().to_numpy(), cov, 1e-3)
    assert list(res.residual_covariance().index) == ["VIS1", "VIS2", "VIS3", "VIS4"]
    table = res.fixef_table("satterthwaite")
    np.testing.assert_allclose(table["df"], ref["coefficients"]["df"], rtol=1e-2)
    p_tol = 1e-3 if case["cov_type"] == "us" else 1e-4  # mmrm's us fit stops early
    np.testing.assert_allclose(table["p_value"], ref["coefficients"]["Pr(>|t|)"], atol=p_tol)
    assert res.aic == pytest.approx(ref["AIC"], abs=1e-5 * abs(ref["AIC"]))
    assert res.bic == pytest.approx(ref["BIC"], abs=1e-5 * abs(ref["BIC"]))
    corr = res.residual_correlation().to_numpy()
    assert np.allclose(np.diag(corr), 1.0)


def _dense_criterion(design, theta: np.ndarray, reml: bool) -> float:
    """-2 log-likelihood from the full n x n covariance (no patterns, no shortcuts)."""
    res = design.residual
    sigmas = res.matrices(theta)
    n, p = design.X.shape
    V = np.zeros((n, n))
    for s in np.unique(res.subject_codes):
        rows = np.flatnonzero(res.subject_codes == s)
        sig = sigmas[res.group_codes[rows[0]]]
        V[np.ix_(rows, rows)] = sig[np.ix_(res.visit_codes[rows], res.visit_codes[rows])]
    Vinv = np.linalg.inv(V)
    xtvx = design.X.T @ Vinv @ design.X
    beta = np.linalg.solve(xtvx, design.X.T @ Vinv @ design.y)
    dens = stats.multivariate_normal(design.X @ beta, V).logpdf(design.y)
    out = -2.0 * dens
    if reml:
        out += np.linalg.slogdet(xtvx)[1] - p * np.log(2 * np.pi)
    return float(out)


def _small_trial(seed: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(18):
        arm = "AB"[i % 2]
        for v in range(4):
            if rng.uniform() < 0.2 and v > 0:
                continue  # a missed visit
            rows.append({"id": f"p{i}", "visit": v + 1, "arm": arm, "y": rng.normal(v, 1 + v)})
    return pd.DataFrame(rows).sample(frac=1.0, random_state=1)  # any row order


@pytest.mark.parametrize("structure", STRUCTURES)
@pytest.mark.parametrize("reml", [True, False])
def test_criterion_equals_dense_normal_density(structure, reml):
    data = _small_trial()
    time = "visit"
    if structure == "sp_exp":  # irregular times: (almost) every subject its own Sigma_i
        shift = np.random.default_rng(3).uniform(-0.4, 0.4, len(data))
        data, time = data.assign(time=data["visit"] + shift), "time"
    for term in (f"{structure}({time} | id)", f"{structure}({time} | arm / id)"):
        design = build_design(f"y ~ arm * factor(visit) + {term}", data)
        crit = MMRMCriterion(design, reml)
        theta = np.random.default_rng(7).normal(scale=0.5, size=design.residual.n_theta)
        assert crit(theta) == pytest.approx(_dense_criterion(design, theta, reml), rel=1e-10)


def test_units_do_not_change_the_fit():
    data = fev()
    formula = "FEV1 ~ ARMCD * AVISIT + ar1h(AVISIT | USUBJID)"
    ref = fit_lmm(formula, data)
    big = fit_lmm(formula, data.assign(FEV1=data["FEV1"] * 1000))
    np.testing.assert_allclose(big.beta, ref.beta * 1000, rtol=1e-5)
    np.testing.assert_allclose(big.fixef_table()["df"], ref.fixef_table()["df"], rtol=1e-4)
    n = ref.nobs
    assert big.loglik == pytest.approx(ref.loglik - (n - ref.design.p) * np.log(1000), abs=1e-5)


def test_group_specific_covariance():
    res = fit_lmm("FEV1 ~ ARMCD * AVISIT + cs(AVISIT | ARMCD / USUBJID)", fev())
    cov = res.residual_covariance()
    assert set(cov) == {"PBO", "TRT"}
    assert not np.allclose(cov["PBO"].to_numpy(), cov["TRT"].to_numpy())
    assert len(res.theta) == 4


@pytest.mark.parametrize(
    ("formula", "error", "words"),
    [
        (
            "FEV1 ~ AVISIT + us(AVISIT | USUBJID) + ar1(AVISIT | USUBJID)",
            FormulaError,
            "at most one",
        ),
        ("FEV1 ~ AVISIT * us(AVISIT | USUBJID)", FormulaError, "term of its own"),
        ("FEV1 ~ AVISIT + us(AVISIT)", FormulaError, "visit and the subject"),
        ("FEV1 ~ AVISIT + sp_exp(AVISIT | USUBJID)", ModelError, "numeric time"),
        ("FEV1 ~ AVISIT + us(AVISIT | RACE / USUBJID)", None, None),
    ],
)
def test_bad_structures_are_explained(formula, error, words):
    if error is None:
        fit_lmm(formula, fev())
        return
    with pytest.raises(error, match=words):
        fit_lmm(formula, fev())


def test_a_visit_twice_is_an_error():
    data = fev()
    twice = pd.concat([data, data.iloc[[1]]])
    with pytest.raises(DataError, match="more than once"):
        fit_lmm("FEV1 ~ AVISIT + us(AVISIT | USUBJID)", twice)


def test_subject_in_two_groups_is_an_error():
    data = fev()
    data.loc[1, "ARMCD"] = "PBO" if data.loc[1, "ARMCD"] == "TRT" else "TRT"
    with pytest.raises(DataError, match="one group"):
        fit_lmm("FEV1 ~ AVISIT + cs(AVISIT | ARMCD / USUBJID)", data)


@pytest.mark.parametrize("structure", STRUCTURES)
@pytest.mark.parametrize("reml", [True, False])
def test_exact_hessian_matches_differences_of_the_gradient(structure, reml):
    design = build_design(
        f"y ~ arm * factor(visit) + {structure}(visit | arm / id)", _small_trial()
    )
    for crossproducts in (True, False):
        crit = MMRMCriterion(design, reml, crossproducts=crossproducts)
        theta = np.random.default_rng(5).normal(scale=0.5, size=design.residual.n_theta)
        hess, p_mats = crit.second_order(theta)
        eye = np.eye(len(theta)) * 1e-6
        numeric = np.array(
            [(crit.gradient(theta + e) - crit.gradient(theta - e)) / 2e-6 for e in eye]
        )
        dxtvx = np.array(
            [(crit.evaluate(theta + e).xtvx - crit.evaluate(theta - e).xtvx) / 2e-6 for e in eye]
        )
        _scaled_close(hess, numeric, 1e-7)
        _scaled_close(-p_mats, dxtvx, 1e-7)
