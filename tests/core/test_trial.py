"""The seeded trial simulator: reproducibility, design, and recovery of the truth."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lmm_core.simulation.trial import TrialParameters, simulate_trial, trial_csv, truth_record

DATA = Path(__file__).resolve().parents[2] / "data"
COLUMNS = ["hospital", "patient", "patient_in_hospital", "arm", "visit", "time", "y"]


@pytest.fixture(scope="module")
def big():
    """20,000 patients in 200 hospitals: enough for tight checks of the truth."""
    return simulate_trial(n_hospitals=200, patients_per_hospital=100, seed=7)


def test_same_seed_same_trial_other_seed_differs():
    a = simulate_trial(n_hospitals=3, patients_per_hospital=6, seed=11)
    b = simulate_trial(n_hospitals=3, patients_per_hospital=6, seed=11)
    c = simulate_trial(n_hospitals=3, patients_per_hospital=6, seed=12)
    pd.testing.assert_frame_equal(a.data, b.data)
    pd.testing.assert_frame_equal(a.random_effects, b.random_effects)
    assert len(a.data) != len(c.data) or not np.array_equal(a.data["y"], c.data["y"])


def test_columns_shapes_and_ids():
    trial = simulate_trial(n_hospitals=4, patients_per_hospital=5, seed=1)
    d = trial.data
    assert list(d.columns) == COLUMNS
    assert d["patient"].nunique() == 20 and d["hospital"].nunique() == 4
    assert len(trial.random_effects) == 20
    assert d["patient"].iloc[0] == "H0001-P001" and d["patient_in_hospital"].iloc[0] == "P001"
    assert list(d["arm"].cat.categories) == ["control", "treatment"]
    assert (d.groupby("patient", observed=True)["hospital"].nunique() == 1).all()


def test_randomisation_is_balanced_within_hospital(big):
    per = big.random_effects.groupby(["hospital", "arm"]).size().unstack()
    assert (per["control"] - per["treatment"]).abs().max() <= 1


def test_visits_dropout_missed_and_jitter(big):
    d, p = big.data, big.params
    first = d.groupby("patient", observed=True).first()
    assert (first["visit"] == 0).all() and (first["time"] == 0).all()  # baseline always seen
    assert d["visit"].between(0, p.scheduled_visits - 1).all()
    offset = d["time"] - d["visit"] * p.visit_interval_months
    assert offset.abs().max() <= p.time_jitter_months + 5e-4  # 3-decimal rounding
    last = d.groupby("patient", observed=True)["visit"].max()
    # last visit observed: completers who did not miss it (20,000 patients: SE 0.0035)
    expected = p.p_complete * (1 - p.p_miss_post_baseline)
    assert abs((last == p.scheduled_visits - 1).mean() - expected) < 0.015
    n_seen = d.groupby("patient", observed=True).size()
    n_missed = (last + 1 - n_seen).sum()
    assert 0.03 < n_missed / (last.sum()) < 0.07  # ~5% of post-baseline visits are missed
    assert (n_seen < last + 1).any()  # some patients have gaps


def test_random_effects_and_residuals_match_truth(big):
    """Empirical SDs/correlation of the drawn effects and residuals are near the truth.

    Tolerances are about 3-4 standard errors: 20,000 patients (SD relative SE ~0.5%),
    200 hospitals (SD relative SE ~5%), ~125,000 residuals (SE ~0.2%).
    """
    p, re, d = big.params, big.random_effects, big.data
    assert re["u_intercept"].std() == pytest.approx(p.sd_patient_intercept, rel=0.02)
    assert re["u_slope"].std() == pytest.approx(p.sd_patient_slope, rel=0.02)
    corr = np.corrcoef(re["u_intercept"], re["u_slope"])[0, 1]
    assert corr == pytest.approx(p.corr_patient_intercept_slope, abs=0.025)
    hospital_sd = re.drop_duplicates("hospital")["hospital_intercept"].std()
    assert hospital_sd == pytest.approx(p.sd_hospital, rel=0.18)

    merged = d.merge(re.drop(columns=["hospital", "arm"]), on="patient")
    arm = (merged["arm"] == "treatment").to_numpy(float)
    t = merged["time"].to_numpy()
    b0, b1, b2, b3 = p.beta
    fitted = (
        b0 + b1 * t + b2 * arm + b3 * t * arm
        + merged["u_intercept"] + merged["u_slope"] * t + merged["hospital_intercept"]
    )  # fmt: skip
    resid = merged["y"] - fitted
    assert resid.std() == pytest.approx(p.sigma, rel=0.01)
    assert abs(resid.mean()) < 0.05


def test_million_rows_are_fast():
    start = time.perf_counter()
    trial = simulate_trial(n_hospitals=400, patients_per_hospital=400, seed=3)
    elapsed = time.perf_counter() - start
    assert len(trial.data) > 1_000_000
    assert elapsed < 3.0, f"{elapsed:.2f} s for {len(trial.data):,} rows"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sd_hospital": -1.0},
        {"corr_patient_intercept_slope": 1.5},
        {"p_complete": 2.0},
        {"scheduled_visits": 2},
        {"time_jitter_months": 0.6},
        {"beta": (1.0, 2.0)},
    ],
)
def test_invalid_parameters_are_refused(kwargs):
    with pytest.raises(ValueError):
        TrialParameters(**kwargs)


def test_perfect_correlation_and_zero_slope_sd_work():
    for params in (
        TrialParameters(corr_patient_intercept_slope=1.0),
        TrialParameters(sd_patient_slope=0.0),
    ):
        re = simulate_trial(params, n_hospitals=2, patients_per_hospital=50, seed=2).random_effects
        assert np.isfinite(re[["u_intercept", "u_slope"]].to_numpy()).all()


def test_truth_record_uses_reference_names():
    trial = simulate_trial(n_hospitals=2, patients_per_hospital=4, seed=5)
    rec = truth_record(trial)
    assert list(rec["true_parameters"]["beta"]) == [
        "(Intercept)", "time", "armtreatment", "time:armtreatment",
    ]  # fmt: skip
    assert set(rec["true_parameters"]) == {
        "beta", "sd_hospital", "sd_patient_intercept", "sd_patient_slope",
        "corr_patient_intercept_slope", "sigma",
    }  # fmt: skip
    assert rec["realised"]["n_rows"] == len(trial.data)
    json.dumps(rec)


def _make_trials_module():
    spec = importlib.util.spec_from_file_location("make_trials", DATA / "make_trials.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["trial_small", "trial_large"])
def test_shipped_trial_files_equal_the_simulator_output(name):
    n_hospitals, per_hospital, seed = _make_trials_module().TRIALS[name]
    truth = json.loads((DATA / f"{name}_truth.json").read_text())
    assert truth["seed"] == seed and truth["design"]["n_hospitals"] == n_hospitals
    trial = simulate_trial(n_hospitals=n_hospitals, patients_per_hospital=per_hospital, seed=seed)
    text = trial_csv(trial.data).encode()
    shipped = (DATA / f"{name}.csv").read_bytes()
    assert text[:2000] == shipped[:2000]
    digest = hashlib.sha256(shipped).hexdigest()
    assert hashlib.sha256(text).hexdigest() == digest == truth["files"][f"{name}.csv"]
