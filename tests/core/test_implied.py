"""Model-implied covariance between visits (lmm_core.predict.implied).

Oracles: a brute-force dense ``Z G Z' + sigma^2 I`` over the rows of one subject, built from
the fit's own model matrices without any structure; icc_curve for single-factor models; the
empirical correlation of a large simulated dataset within Monte Carlo error.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest

from lmm_core import fit_lmm, icc_curve, simulate_from_formula
from lmm_core.errors import ModelError
from lmm_core.predict.implied import covariance_at_times, implied_covariance
from tests.conftest import load_reference_dataset


@cache
def _fit(formula: str, dataset: str = "sleepstudy", reml: bool = True):
    return fit_lmm(formula, load_reference_dataset(dataset), reml=reml)


def dense_block(result, rows: np.ndarray) -> np.ndarray:
    """``Z G Z' + sigma^2 I`` on ``rows`` with full (levels x S) Z blocks: no shortcuts."""
    v = result.sigma**2 * np.eye(rows.size)
    for term, cov in zip(result.reterms, result.covariance_matrices(), strict=True):
        s = term.n_columns
        z_full = np.zeros((result.nobs, term.n_levels * s))
        for j in range(s):
            z_full[np.arange(result.nobs), term.codes * s + j] = term.z[:, j]
        g_full = np.kron(np.eye(term.n_levels), cov)
        zr = z_full[rows]
        v += zr @ g_full @ zr.T
    return v


def _rows_of(result, group: str, level_index: int) -> np.ndarray:
    term = next(t for t in result.reterms if t.group == group)
    return np.flatnonzero(term.codes == level_index)


@pytest.mark.parametrize(
    "formula",
    [
        "Reaction ~ Days + (1 | Subject)",
        "Reaction ~ Days + (Days || Subject)",
        "Reaction ~ Days + (Days | Subject)",
    ],
)
def test_sleepstudy_matches_dense_and_icc_curve(formula):
    res = _fit(formula)
    days = res.design.X[:, 1]
    for level in (0, 7):
        rows = _rows_of(res, "Subject", level)
        imp = implied_covariance(res, days[rows], time="Days", subject="Subject")
        np.testing.assert_allclose(imp.covariance, dense_block(res, rows), rtol=1e-10)
    imp = implied_covariance(res, np.arange(10.0), subject="Subject")
    curve = icc_curve(res, "Subject", np.arange(10.0))
    np.testing.assert_allclose(imp.variance_table()["icc"], curve["icc"], rtol=1e-12)
    np.testing.assert_allclose(imp.variance, curve["total_variance"], rtol=1e-12)
    assert np.allclose(np.diag(imp.correlation), 1.0)


def test_intercept_only_is_compound_symmetry():
    res = _fit("Reaction ~ Days + (1 | Subject)")
    corr = implied_covariance(res, [0, 3, 9], subject="Subject").correlation
    tau2 = res.covariance_matrices()[0][0, 0]
    expected = tau2 / (tau2 + res.sigma**2)
    np.testing.assert_allclose(corr[np.triu_indices(3, 1)], expected, rtol=1e-12)


def test_cluster_level_is_shared_and_matches_dense():
    res = _fit("y ~ time * arm + (time | patient) + (1 | hospital)", "sim_small")
    times = res.design.X[:, list(res.x_names).index("time")]
    rows = _rows_of(res, "patient", 3)
    imp = implied_covariance(res, times[rows], time="time", subject="patient")
    assert imp.shared == {"patient": True, "hospital": True}
    np.testing.assert_allclose(imp.covariance, dense_block(res, rows), rtol=1e-10)
    table = imp.variance_table()
    share = (table["patient"] + table["hospital"]) / table["total"]
    np.testing.assert_allclose(table["icc"], share, rtol=1e-12)


def _crossed_data(seed: int = 3) -> pd.DataFrame:
    """40 subjects x 4 visits; each visit is rated by a different rater (crossed)."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(40):
        raters = rng.choice(12, size=4, replace=False)
        for j, time in enumerate((0.0, 1.0, 2.0, 3.0)):
            rows.append({"subject": f"s{s:02d}", "rater": f"r{raters[j]:02d}", "time": time})
    frame = pd.DataFrame(rows)
    frame["y"] = simulate_from_formula(
        "y ~ time + (time | subject) + (1 | rater)",
        frame,
        beta=np.array([10.0, 1.0]),
        covariances=[np.array([[4.0, 0.5], [0.5, 1.0]]), np.array([[2.0]])],
        sigma=1.0,
        seed=seed,
    )[0]
    return frame


def test_crossed_factor_adds_variance_only():
    res = fit_lmm("y ~ time + (time | subject) + (1 | rater)", _crossed_data())
    rows = _rows_of(res, "subject", 5)
    imp = implied_covariance(res, res.design.X[rows, 1], time="time", subject="subject")
    assert imp.shared == {"subject": True, "rater": False}
    np.testing.assert_allclose(imp.covariance, dense_block(res, rows), rtol=1e-10)
    all_shared = implied_covariance(res, res.design.X[rows, 1], time="time")
    rater = res.covariance_matrices()[1][0, 0]
    off = ~np.eye(rows.size, dtype=bool)
    np.testing.assert_allclose(all_shared.covariance[off] - imp.covariance[off], rater)


def test_terms_beyond_time_are_evaluated_by_recipe():
    res = _fit("Reaction ~ Days + (Days + I(Days^2) || Subject)")
    rows = _rows_of(res, "Subject", 2)
    imp = implied_covariance(res, res.design.X[rows, 1], time="Days", subject="Subject")
    np.testing.assert_allclose(imp.covariance, dense_block(res, rows), rtol=1e-10)
    with pytest.raises(ModelError, match="name the time"):
        implied_covariance(res, [0, 1], subject="Subject")


def test_errors_in_plain_words():
    res = _fit("distance ~ age + Sex + (age | Subject)", "Orthodont")
    with pytest.raises(ModelError, match="not a grouping factor"):
        implied_covariance(res, [8, 10], subject="Sex")
    slope_on_sex = _fit("distance ~ age + (Sex | Subject)", "Orthodont")
    with pytest.raises(ModelError, match="depends on more than the time"):
        implied_covariance(slope_on_sex, [8, 10], time="age", subject="Subject")
    with pytest.raises(ModelError):
        covariance_at_times([], [], 1.0)


def test_empirical_correlation_of_large_simulation():
    """3,000 patients in 60 hospitals at 5 visits: observed vs implied within 4 MC SEs."""
    n_subj, times = 3000, np.array([0.0, 1.0, 2.5, 4.0, 6.0])
    frame = pd.DataFrame(
        {
            "patient": np.repeat([f"p{i:04d}" for i in range(n_subj)], times.size),
            "hospital": np.repeat([f"h{i % 60:02d}" for i in range(n_subj)], times.size),
            "time": np.tile(times, n_subj),
        }
    )
    g_patient = np.array([[9.0, -1.2], [-1.2, 1.0]])
    g_hosp = np.array([[2.0]])
    formula = "y ~ time + (time | patient) + (1 | hospital)"
    y = simulate_from_formula(
        formula,
        frame,
        beta=np.array([100.0, -2.0]),
        covariances=[g_patient, g_hosp],
        sigma=2.0,
        seed=11,
    )[0]
    resid = (y - (100.0 - 2.0 * frame["time"].to_numpy())).reshape(n_subj, times.size)
    empirical = np.corrcoef(resid, rowvar=False)
    z_patient = np.column_stack([np.ones_like(times), times])
    truth = covariance_at_times([z_patient, np.ones((times.size, 1))], [g_patient, g_hosp], 2.0)
    sd = np.sqrt(np.diag(truth))
    true_corr = truth / np.outer(sd, sd)
    mc_se = (1 - true_corr**2) / np.sqrt(n_subj)
    assert np.all(np.abs(empirical - true_corr) <= 4 * mc_se + 1e-12)
    np.testing.assert_allclose(np.var(resid, axis=0, ddof=1), np.diag(truth), rtol=0.12)
    res = fit_lmm(formula, frame.assign(y=y))
    fitted = implied_covariance(res, times, subject="patient").correlation
    assert np.all(np.abs(fitted - empirical) <= 4 * mc_se + 0.01)
