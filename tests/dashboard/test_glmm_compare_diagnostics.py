"""Compare and Diagnostics numbers for GLMMs (issue 15) and for random effects with a
covariance of the visits (issue 14), checked against computations made here."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.linalg import block_diag, cholesky, solve_triangular

from dashboard.analysis import compare_glmm as cg
from dashboard.analysis import compare_mmrm as cm
from dashboard.analysis import glmm_diagnostics as gd
from dashboard.analysis import mmrm_diagnostics as md
from dashboard.analysis.records import FitRecord
from lmm_core import datasets, fit_glmm, fit_lmm
from lmm_core.predict.glmm_residuals import Overdispersion

RI = "infection ~ week * arm + (1 | patient)"
UNC = "infection ~ week * arm + (week || patient)"
COMBINED = "y ~ time * arm + (1 | hospital) + ar1(visit | patient)"


@cache
def data(name: str) -> pd.DataFrame:
    return datasets.load_example(name)[0]


@cache
def glmm(formula: str, name: str = "infections", rows: int | None = None):
    frame = data(name) if rows is None else data(name).iloc[:rows]
    family = "binomial" if name == "infections" else "poisson"
    return fit_glmm(formula, frame, family=family)


@cache
def combined(reml: bool = True):
    return fit_lmm(COMBINED, data("trial_small"), reml=reml)


def rec(name, result, reml=False) -> FitRecord:
    return FitRecord(name, result.formula, reml, "k", "d", result, 0.0)


# --------------------------------------------------------------------------- Compare
def test_glmm_comparison_matches_the_likelihoods():
    a, b = glmm(RI), glmm(UNC)
    comp = cg.compare_glmms([rec("M2: slope", b), rec("M1: intercept", a)])
    assert comp.comparable and list(comp.criteria.index) == ["M1: intercept", "M2: slope"]
    crit = comp.criteria
    assert list(crit["npar"]) == [5, 6]
    assert crit.loc["M2: slope", "AIC"] == pytest.approx(-2 * b.loglik + 12, rel=1e-12)
    assert crit["delta_AIC"].min() == 0 and crit["delta_BIC"].min() == 0
    chisq = 2 * (b.loglik - a.loglik)
    test = comp.tests.iloc[0]
    assert test["Chisq"] == pytest.approx(chisq, rel=1e-10)
    assert test["p (chi-square)"] == pytest.approx(stats.chi2.sf(chisq, 1), rel=1e-10)
    assert test["p (chi-bar-square)"] == pytest.approx(0.5 * stats.chi2.sf(chisq, 1), rel=1e-10)
    assert test["nested"] == "yes" and test["test"] == "M1 vs M2"
    assert comp.boundary and "boundary" in comp.boundary[0]


def test_glmms_of_other_rows_are_not_compared():
    comp = cg.compare_glmms([rec("M1", glmm(RI)), rec("M2", glmm(RI, rows=1200))])
    assert not comp.comparable and "rows" in comp.problem
    assert comp.criteria["delta_AIC"].isna().all() and comp.tests.empty


def test_split_and_family_groups_keep_kinds_apart():
    lin = fit_lmm(RI, data("infections"))
    pois = glmm("seizures ~ period + (1 | patient)", "seizures")
    records = [rec("A", glmm(RI)), rec("B", lin, True), rec("C", pois), rec("D", glmm(UNC))]
    glmms, others = cg.split_records(records)
    assert [r.name for r in glmms] == ["A", "C", "D"] and [r.name for r in others] == ["B"]
    assert [[r.name for r in g] for g in cg.family_groups(glmms)] == [["A", "D"], ["C"]]
    assert cg.family_label(pois) == "Poisson (log link)"
    assert cg.fit_method(glmm(RI)) == "Laplace"
    with pytest.raises(ValueError):
        cg.compare_glmms(records)


def test_combined_model_counts_fixed_effects_and_all_covariance_parameters():
    res = combined()
    mmrm = fit_lmm("y ~ time * arm + us(visit | patient)", data("trial_small"))
    records = [rec("M1: combined", res, True), rec("M2: us", mmrm, True)]
    table = cm.criteria_table(records)
    assert table.loc["M1: combined", "kind"] == "random effects + AR(1)"
    # 4 fixed effects, the AR(1) SD and correlation, the hospital SD (engine: mmrm's 3)
    assert res.npar == 3 and table.loc["M1: combined", "npar"] == 7
    assert table.loc["M1: combined", "AIC"] == pytest.approx(-2 * res.loglik + 14, rel=1e-12)
    n = res.nobs
    assert table.loc["M1: combined", "BIC"] == pytest.approx(-2 * res.loglik + 7 * np.log(n))
    assert table.loc["M2: us", "npar"] == 4 + 36
    assert cm.structure_tests(records).empty  # AR(1) in us, but other random effects


# --------------------------------------------------------------------------- GLMM diagnostics
def test_binned_table_and_sentence():
    res = glmm(UNC)
    out = gd.glmm_outcome(res)
    assert out.binary and out.trials is not None
    table = gd.binned_table(out, n_bins=8)
    y, mu = np.asarray(res.y, float), np.asarray(res.fitted, float)
    idx = np.array_split(np.argsort(mu, kind="stable"), 8)[3]
    assert table["residual"].iloc[3] == pytest.approx((y[idx] - mu[idx]).mean(), abs=1e-14)
    se = np.sqrt(np.sum(mu[idx] * (1 - mu[idx]))) / len(idx)
    assert table["se"].iloc[3] == pytest.approx(se, rel=1e-12)
    k = int(table["outside"].sum())
    assert gd.binned_sentence(table).startswith(f"{k} of 8 bins")
    many = table.assign(outside=[True] * 4 + [False] * 4)
    assert "misses something" in gd.binned_sentence(many)


def test_quantile_residuals_depend_on_the_seed_only():
    out = gd.glmm_outcome(glmm(RI))
    a, b = gd.quantile_table(out, 3), gd.quantile_table(out, 3)
    np.testing.assert_array_equal(a["residual"], b["residual"])
    assert not np.allclose(a["residual"], gd.quantile_table(out, 4)["residual"])
    assert stats.kstest(a["residual"], "norm").pvalue > 0.001


def test_dispersion_of_counts_and_none_for_binary():
    res = glmm("seizures ~ period * arm + offset(log(exposure)) + (1 | patient)", "seizures")
    out = gd.glmm_outcome(res)
    check = gd.dispersion(res, out)
    y, mu = np.asarray(res.y, float), np.asarray(res.fitted, float)
    assert check.chi2 == pytest.approx(np.sum((y - mu) ** 2 / mu), rel=1e-12)
    assert check.df == len(y) - 5
    assert gd.dispersion(glmm(RI), gd.glmm_outcome(glmm(RI))) is None
    assert "Overdispersion:" in gd.dispersion_verdict(Overdispersion(600.0, 400, 1.5, 1e-9))
    assert "No overdispersion" in gd.dispersion_verdict(Overdispersion(400.0, 400, 1.0, 0.5))
    assert "vary less" in gd.dispersion_verdict(Overdispersion(300.0, 400, 0.75, 1.0))


# --------------------------------------------------------------------------- combined model
def _dense_v(res) -> tuple[np.ndarray, pd.DataFrame]:
    """V = s_h^2 [same hospital] + blockdiag Sigma[visits, visits], built from the data."""
    frame = data("trial_small").iloc[res.design.rows].reset_index(drop=True)
    vc = res.varcorr_table()
    s_h2 = float(vc.loc[vc["group"] == "hospital", "vcov"].iloc[0])
    sigma = res.residual_covariance()
    hosp = frame["hospital"].to_numpy()
    V = s_h2 * (hosp[:, None] == hosp[None, :])
    pat, vis = frame["patient"].to_numpy(), frame["visit"].to_numpy()
    same = pat[:, None] == pat[None, :]
    at = pd.Index([str(v) for v in sigma.index]).get_indexer([str(v) for v in vis])
    assert (at >= 0).all()
    cov = sigma.to_numpy(float)[np.ix_(at, at)]
    return V + np.where(same, cov, 0.0), frame


def test_normalized_residuals_of_a_combined_model_whiten_v():
    res = combined()
    frame = md.mmrm_residuals(res, data("trial_small"))
    V, rows = _dense_v(res)
    r = res.design.y - res.design.X @ res.beta
    np.testing.assert_allclose(frame["residual"], r)
    quad = float(r @ np.linalg.solve(V, r))
    assert float(np.sum(frame["normalized"] ** 2)) == pytest.approx(quad, rel=1e-9)
    np.testing.assert_allclose(frame["standardized"], r / np.sqrt(np.diag(V)), rtol=1e-10)
    # one hospital by hand: rows by patient then visit, L^-1 r
    first = rows["hospital"] == rows["hospital"].iloc[0]
    idx = np.flatnonzero(first)
    idx = idx[np.lexsort((rows["visit"].to_numpy()[idx], rows["patient"].to_numpy()[idx]))]
    L = cholesky(V[np.ix_(idx, idx)], lower=True)
    np.testing.assert_allclose(
        frame["normalized"].to_numpy()[idx], solve_triangular(L, r[idx], lower=True), rtol=1e-9
    )
    assert md.cluster_codes(res)[0] == "hospital"


def test_combined_model_correlation_between_visits():
    res = combined(reml=False)
    corr = md.visit_correlations(res)
    vc = res.varcorr_table()
    s_h2 = float(vc.loc[vc["group"] == "hospital", "vcov"].iloc[0])
    sigma = res.residual_covariance().to_numpy(float)
    expect = (s_h2 + sigma) / (s_h2 + sigma[0, 0])
    np.testing.assert_allclose(corr.model.to_numpy(float), expect, rtol=1e-10)
    assert corr.observed.shape == (8, 8) and np.isfinite(corr.largest_gap())


def test_crossed_factors_whiten_the_whole_data_as_one_cluster():
    frame = data("trial_small")
    small = frame[frame["hospital"].isin(sorted(frame["hospital"].unique())[:4])]
    res = fit_lmm("y ~ time + (1 | hospital) + (1 | arm) + ar1(visit | patient)", small)
    name, codes = md.cluster_codes(res)
    assert name is None and not codes.any()
    out = md.mmrm_residuals(res)
    r = out["residual"].to_numpy()
    Z = np.hstack([t.z * (t.codes[:, None] == np.arange(t.n_levels)) for t in res.reterms])
    G = block_diag(*[np.kron(np.eye(t.n_levels), c) for t, c in
                     zip(res.reterms, res.covariance_matrices(), strict=True)])  # fmt: skip
    V = Z @ G @ Z.T
    sub = small.iloc[res.design.rows]
    pat, vis = sub["patient"].to_numpy(), sub["visit"].to_numpy()
    sigma = res.residual_covariance().to_numpy(float)
    V = V + np.where(pat[:, None] == pat[None, :], sigma[np.ix_(vis, vis)], 0.0)
    assert float(np.sum(out["normalized"] ** 2)) == pytest.approx(r @ np.linalg.solve(V, r))
