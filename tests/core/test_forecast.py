"""Prediction intervals and new-subject forecasts: hand computations, limits, coverage."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lmm_core import datasets, fit_lmm
from lmm_core.predict.forecast import new_subject_forecast, prediction_intervals
from lmm_core.simulation.trial import FORMULA as TRIAL
from lmm_core.simulation.trial import simulate_trial

SLEEP = "Reaction ~ Days + (Days | Subject)"


@cache
def _sleep():
    data = datasets.load_example("sleepstudy")[0]
    return data, fit_lmm(SLEEP, data)


def _henderson_inverse(res):
    """sigma^2 times the inverse of the full mixed-model-equations matrix (one term)."""
    term = res.reterms[0]
    n, s = term.z.shape
    Z = np.zeros((n, term.n_levels * s))
    for j in range(s):
        Z[np.arange(n), term.codes * s + j] = term.z[:, j]
    lam = np.kron(np.eye(term.n_levels), res.lambdas[0])
    zl, X = Z @ lam, res.design.X
    M = np.block([[zl.T @ zl + np.eye(Z.shape[1]), zl.T @ X], [X.T @ zl, X.T @ X]])
    return lam, np.linalg.inv(M) * res.sigma**2


def test_population_ci_and_prediction_interval_equal_a_hand_computation():
    data, res = _sleep()
    new = pd.DataFrame({"Days": [0.0, 4.5, 12.0]})
    out = prediction_intervals(res, new, level=0.9)
    X = np.column_stack([np.ones(3), new["Days"]])
    se = np.sqrt([x @ res.vcov_beta @ x for x in X])
    q = stats.norm.ppf(0.95)
    np.testing.assert_allclose(out["fit"], X @ res.beta)
    np.testing.assert_allclose(out["se_fit"], se)
    np.testing.assert_allclose(out["ci_lower"], X @ res.beta - q * se)
    G = res.covariance_matrices()[0]
    se_pred = np.sqrt(se**2 + [x @ G @ x for x in X] + res.sigma**2)  # z = x here
    np.testing.assert_allclose(out["se_pred"], se_pred)
    np.testing.assert_allclose(out["pi_upper"], X @ res.beta + q * se_pred)
    assert (out["n_known"] == 0).all()


def test_known_subject_se_equals_henderson_prediction_error_variance():
    data, res = _sleep()
    rows = data[data["Subject"].astype(str) == "335"].head(4)
    out = prediction_intervals(res, rows)
    np.testing.assert_allclose(out["fit"], res.predict(rows))
    lam, C = _henderson_inverse(res)
    lev = res.reterms[0].levels.index("335")
    for i, days in enumerate(rows["Days"]):
        z = np.zeros(lam.shape[0])
        z[2 * lev : 2 * lev + 2] = [1.0, days]
        v = np.concatenate([lam.T @ z, [1.0, days]])
        assert out["se_fit"].iloc[i] == pytest.approx(np.sqrt(v @ C @ v), rel=1e-8)
    # a new observation of a known subject adds only the residual variance
    np.testing.assert_allclose(out["se_pred"] ** 2, out["se_fit"] ** 2 + res.sigma**2)
    pop = prediction_intervals(res, rows, include_re=False)
    np.testing.assert_allclose(pop["fit"], res.predict(rows, include_re=False))


def test_zero_visits_is_the_population_prediction_with_the_between_subject_band():
    data, res = _sleep()
    future = pd.DataFrame({"Days": np.arange(10.0)})
    fc = new_subject_forecast(res, data.iloc[:0], future)
    pi = prediction_intervals(res, future)
    t = fc.table
    assert fc.n_observed == 0
    np.testing.assert_allclose(t["fit"], pi["fit"])
    np.testing.assert_allclose(t["se_fixed"], pi["se_fit"])
    np.testing.assert_allclose(t["se_total"], pi["se_pred"])
    G = res.covariance_matrices()[0]
    X = np.column_stack([np.ones(10), future["Days"]])
    np.testing.assert_allclose(t["se_mean"] ** 2, pi["se_fit"] ** 2 + [x @ G @ x for x in X])
    np.testing.assert_allclose(fc.learned, 0.0, atol=1e-12)  # roundoff only


def test_bands_narrow_as_visits_are_added():
    data, res = _sleep()
    rows = data[data["Subject"].astype(str) == "308"].sort_values("Days")
    future = pd.DataFrame({"Days": [8.0, 9.0, 12.0]})
    widths = []
    for k in range(0, 7):
        fc = new_subject_forecast(res, rows.head(k), future)
        widths.append(fc.table["upper_mean"] - fc.table["lower_mean"])
        t = fc.table
        assert (t["se_fixed"] <= t["se_mean"]).all() and (t["se_mean"] < t["se_total"]).all()
    widths = np.array(widths)
    assert (np.diff(widths, axis=0) < 0).all()
    assert fc.learned.min() > 0.5


@pytest.mark.parametrize("formula", ["Reaction ~ Days + (1 | Subject)", SLEEP])
def test_conditional_mean_equals_the_blup_of_a_subject_in_the_fit(formula):
    data = datasets.load_example("sleepstudy")[0]  # balanced: 10 days per subject
    res = fit_lmm(formula, data)
    for subject in ["308", "309", "372"]:
        rows = data[data["Subject"].astype(str) == subject]
        fc = new_subject_forecast(res, rows, rows)
        blup = res.ranef["Subject"].loc[subject].to_numpy()
        np.testing.assert_allclose(fc.ranef_mean.to_numpy(), blup, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(fc.table["fit"], res.predict(rows), rtol=1e-8)
        cond_sd = res.ranef_sd["Subject"].loc[subject].to_numpy()
        np.testing.assert_allclose(np.sqrt(np.diag(fc.ranef_cov)), cond_sd, rtol=1e-6)


def test_nested_model_treats_only_the_subject_term_and_plugs_in_the_hospital():
    trial = simulate_trial(n_hospitals=6, patients_per_hospital=10, seed=3)
    res = fit_lmm(TRIAL, trial.data)
    assert res.ngroups["patient"] > res.ngroups["hospital"]
    future = trial.data[trial.data["patient"] == trial.data["patient"].iloc[0]].copy()
    fc = new_subject_forecast(res, future.iloc[:0], future)
    assert fc.group == "patient" and list(fc.ranef_mean.index) == ["(Intercept)", "time"]
    h = res.ranef["hospital"].loc[str(future["hospital"].iloc[0]), "(Intercept)"]
    pop = res.predict(future, include_re=False)
    np.testing.assert_allclose(fc.table["population"], pop + h)
    no_hosp = new_subject_forecast(res, future.iloc[:0], future.drop(columns="hospital"))
    np.testing.assert_allclose(no_hosp.table["population"], pop)


def test_prediction_band_covers_new_patients_later_visits():
    """Fit on 25 patients per hospital; forecast 15 new patients per hospital from their
    first 3 visits. The 95% prediction band (band 3) must cover within Monte Carlo error."""
    trial = simulate_trial(n_hospitals=20, patients_per_hospital=40, seed=11)
    data = trial.data
    new = data["patient_in_hospital"].cat.codes >= 25
    res = fit_lmm(TRIAL, data[~new].reset_index(drop=True))
    hits, per_patient = [], []
    for _, rows in data[new].groupby("patient", observed=True, sort=False):
        rows = rows.sort_values("time")
        if len(rows) < 4:
            continue
        fc = new_subject_forecast(res, rows.iloc[:3], rows.iloc[3:])
        y = rows["y"].iloc[3:].to_numpy()
        inside = (fc.table["lower_total"] <= y) & (y <= fc.table["upper_total"])
        hits.extend(inside)
        per_patient.append(inside.to_numpy())
    hits = np.asarray(hits, dtype=float)
    n = len(hits)
    coverage = hits.mean()
    binom_se = np.sqrt(0.95 * 0.05 / n)
    # visits of one patient share its random effects: use a cluster (per-patient) SE as well
    sums = np.array([p.sum() for p in per_patient])
    sizes = np.array([len(p) for p in per_patient])
    cluster_se = np.sqrt(np.sum((sums - 0.95 * sizes) ** 2)) / sizes.sum()
    se = max(binom_se, cluster_se)
    assert n > 1000
    assert abs(coverage - 0.95) < 3 * se, (coverage, n, binom_se, cluster_se)
