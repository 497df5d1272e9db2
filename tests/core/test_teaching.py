"""Simulation lab (lmm_core.simulation.teaching, .teaching_repeat): data, recovery, replicates."""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import pytest

from lmm_core import LMMError
from lmm_core.simulation import teaching_repeat as tr
from lmm_core.simulation.teaching import (
    PARAMETERS,
    LabTruth,
    expected_slope_weight,
    fit_lab,
    recovery_table,
    shrinkage_summary,
    simulate_lab,
    slope_shrinkage,
)


def test_shape_without_dropout():
    truth = LabTruth(n_subjects=7, n_visits=5, dropout=0.0)
    lab = simulate_lab(truth, seed=3)
    assert len(lab.data) == 35 and list(lab.data.columns) == ["subject", "visit", "time", "y"]
    assert list(lab.data["subject"].cat.categories) == [f"S00{k}" for k in range(1, 8)]
    for _, rows in lab.data.groupby("subject", observed=True):
        assert list(rows["time"]) == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert list(lab.subjects["n"]) == [5] * 7
    assert lab.data["y"].notna().all()


def test_seeded():
    truth = LabTruth()
    a, b, c = simulate_lab(truth, 5), simulate_lab(truth, 5), simulate_lab(truth, 6)
    assert a.data.equals(b.data) and a.subjects.equals(b.subjects)
    assert not a.data["y"].equals(c.data["y"])


def test_dropout_is_monotone_and_at_the_requested_rate():
    truth = LabTruth(n_subjects=4000, n_visits=6, dropout=0.2)
    lab = simulate_lab(truth, seed=1)
    seen = lab.data.groupby("subject", observed=True)["visit"].agg(["min", "max", "count"])
    assert (seen["min"] == 0).all()  # baseline always seen
    assert (seen["max"] == seen["count"] - 1).all()  # no gaps: once gone, never back
    assert (seen["count"].to_numpy() == lab.subjects["n"].to_numpy()).all()
    # P(k visits) = 0.8^(k-1) 0.2 for k < 6, 0.8^5 for all six
    expected = [0.8 ** (k - 1) * 0.2 for k in range(1, 6)] + [0.8**5]
    observed = np.bincount(seen["count"], minlength=7)[1:] / 4000
    np.testing.assert_allclose(observed, expected, atol=4 * math.sqrt(0.25 / 4000))
    assert abs(seen["count"].mean() - truth.expected_visits()) < 0.06


def test_random_effects_have_the_requested_covariance():
    truth = LabTruth(n_subjects=5000, sd_intercept=4.0, sd_slope=1.5, corr=-0.6)
    subj = simulate_lab(truth, seed=2).subjects
    u0, u1 = subj["intercept"] - truth.intercept, subj["slope"] - truth.slope
    assert abs(u0.std() - 4.0) < 0.15 and abs(u1.std() - 1.5) < 0.06
    assert abs(np.corrcoef(u0, u1)[0, 1] + 0.6) < 0.04
    edge = simulate_lab(LabTruth(sd_slope=0.0, corr=1.0), seed=2).subjects  # zero SD, |rho| = 1
    assert np.isfinite(edge.to_numpy(float)).all()
    assert np.allclose(edge["slope"], LabTruth().slope)
    perfect = simulate_lab(LabTruth(corr=-1.0, n_subjects=50), seed=2).subjects
    assert np.corrcoef(perfect["intercept"], perfect["slope"])[0, 1] == pytest.approx(-1.0)


@pytest.mark.parametrize(
    "bad",
    [
        {"sigma": 0.0},
        {"sd_slope": -1.0},
        {"corr": 1.5},
        {"n_subjects": 2},
        {"n_visits": 2},
        {"dropout": 1.0},
        {"slope": float("nan")},
    ],
)
def test_bad_truth_is_a_plain_error(bad):
    with pytest.raises(LMMError):
        LabTruth(**bad)


@cache
def _big():
    truth = LabTruth(sd_intercept=4.0, sigma=3.0, n_subjects=600, n_visits=8, dropout=0.0)
    lab = simulate_lab(truth, seed=20)
    return truth, lab, fit_lab(lab)


def test_big_sample_recovers_the_truth():
    truth, _, res = _big()
    table = recovery_table(res, truth, profile=False)
    assert list(table.index) == list(PARAMETERS)
    est, true = table["estimate"], table["truth"]
    # fixed effects within 4 standard errors; SDs within 10%, sigma 3%, rho within 0.12
    se = res.std_errors
    assert abs(est["intercept"] - true["intercept"]) < 4 * se[0]
    assert abs(est["slope"] - true["slope"]) < 4 * se[1]
    assert est["sd_intercept"] == pytest.approx(true["sd_intercept"], rel=0.10)
    assert est["sd_slope"] == pytest.approx(true["sd_slope"], rel=0.10)
    assert est["sigma"] == pytest.approx(true["sigma"], rel=0.03)
    assert abs(est["corr"] - true["corr"]) < 0.12
    assert table.loc["slope", "interval"] == "Satterthwaite t"
    assert table.loc["sigma", "interval"] == "none" and math.isnan(table.loc["sigma", "covered"])
    assert table.loc[["intercept", "slope"], "covered"].notna().all()


def test_profile_intervals_for_variance_parameters():
    truth = LabTruth(n_subjects=25)
    res = fit_lab(simulate_lab(truth, seed=4))
    table = recovery_table(res, truth)
    assert (table["interval"] != "none").all()
    assert set(table.loc[["sd_intercept", "sd_slope", "corr", "sigma"], "interval"]) == {
        "profile likelihood"
    }
    assert (table["lower"] <= table["upper"]).all()
    assert (table["lower"] <= table["estimate"] * 1.05 + 1e-9).all()
    inside = (table["lower"] <= table["truth"]) & (table["truth"] <= table["upper"])
    assert (table["covered"] == inside.astype(float)).all()


def test_slope_shrinkage_matches_own_fits_blups_and_truth():
    truth = LabTruth(n_subjects=20, dropout=0.3)
    lab = simulate_lab(truth, seed=8)
    res = fit_lab(lab)
    table = slope_shrinkage(res, lab)
    assert len(table) == 20
    for subject, rows in lab.data.groupby("subject", observed=True):
        if len(rows) < 2:
            assert math.isnan(table.loc[subject, "own"])
            continue
        own = np.polyfit(rows["time"], rows["y"], 1)[0]
        assert table.loc[subject, "own"] == pytest.approx(own, rel=1e-9, abs=1e-9)
    mixed = res.fixef["time"] + res.ranef["subject"]["time"]
    np.testing.assert_allclose(table["mixed"], mixed.loc[table.index], rtol=1e-10)
    np.testing.assert_allclose(table["truth"], lab.subjects["slope"].loc[table.index])
    pop = table["population"]
    ratio = (table["mixed"] - pop) / (table["own"] - pop)
    np.testing.assert_allclose(table["factor"], ratio)  # NaN where there is no own slope
    assert table["own"].isna().any() and table["factor"].isna().equals(table["own"].isna())
    summ = shrinkage_summary(table)
    assert summ["subjects"] == int(table["own"].notna().sum())
    assert summ["rmse_mixed"] < summ["rmse_own"]  # borrowing strength pays on average


def test_expected_slope_weight():
    assert expected_slope_weight(2.0, 3.0, 6) == pytest.approx(4 / (4 + 9 / 17.5))
    w = expected_slope_weight(1.0, 3.0, np.arange(3, 20))
    assert (np.diff(w) > 0).all() and 0 < w[0] < w[-1] < 1
    assert expected_slope_weight(0.0, 3.0, 6) == 0.0
    assert expected_slope_weight(1.0, 6.0, 6) < expected_slope_weight(1.0, 3.0, 6)


@pytest.mark.slow
def test_coverage_mixed_near_nominal_naive_clearly_below():
    # Subjects differ much in slope, little at baseline: naive SE about 0.67 of the truth.
    truth = LabTruth(sd_intercept=2.0, sd_slope=2.0, corr=0.0, sigma=2.0, n_subjects=20,
                     n_visits=8, dropout=0.0)  # fmt: skip
    run = tr.run_replicates(truth, 200, seed=2024)
    assert run.n == 200 and run.failures == 0
    mc = tr.monte_carlo_se(0.95, 200)  # 0.0154
    assert abs(run.rate("covered") - 0.95) < 3 * mc
    assert run.rate("covered_ols") < 0.95 - 5 * mc  # about 0.81 expected
    assert abs(run.table["slope"].mean() - truth.slope) < 4 * run.empirical_sd() / math.sqrt(200)
    assert run.table["se"].mean() == pytest.approx(run.empirical_sd(), rel=0.15)
    assert run.table["se_ols"].mean() < 0.8 * run.empirical_sd()


def test_replicates_are_seeded_prefixes_and_report_progress():
    truth = LabTruth(n_subjects=12)
    calls = []
    five = tr.run_replicates(truth, 5, seed=9, progress=lambda d, t: calls.append((d, t)))
    three = tr.run_replicates(truth, 3, seed=9)
    assert calls == [(k, 5) for k in range(1, 6)]
    cols = ["slope", "se", "slope_ols", "sd_slope"]
    np.testing.assert_allclose(five.table[cols].head(3), three.table[cols])
    assert five.seconds >= five.fit_seconds > 0
    row = five.table.iloc[0]
    assert row["lower"] < row["slope"] < row["upper"] and row["df"] == 11
    satt = tr.run_replicates(truth, 2, seed=9, df="satterthwaite")
    assert satt.table["slope"].iloc[0] == pytest.approx(five.table["slope"].iloc[0])
    assert 5 < satt.table["df"].iloc[0] < 40


def test_zero_slope_variance_gives_singular_fits():
    truth = LabTruth(sd_slope=0.0, corr=0.0, n_subjects=15, n_visits=4)
    run = tr.run_replicates(truth, 30, seed=5)
    # about half the fits sit on the boundary, mostly at correlation +/-1
    assert run.rate("singular") > 0.3
    t = run.table
    assert (t["singular"] == (t["boundary"] != "none")).all()
    assert (t.loc[t["corr_boundary"], "corr"].abs() > 0.999).all()
    regular = tr.run_replicates(LabTruth(n_subjects=15), 10, seed=5)
    assert regular.rate("singular") == 0 and set(regular.table["boundary"]) == {"none"}


@pytest.mark.parametrize(
    ("theta", "expected"),
    [
        ([1.0, 0.0, 0.0], (True, False, False)),
        ([1.0, 0.5, 0.0], (False, False, True)),
        ([0.0, 0.0, 0.8], (False, True, False)),
        ([1.0, -0.3, 0.4], (False, False, False)),
    ],
)
def test_boundaries(theta, expected):
    assert tr._boundaries(np.array(theta)) == expected


def test_failed_fits_are_counted(monkeypatch):
    real = tr.fit_lab
    calls = {"n": 0}

    def flaky(lab, options=None):
        calls["n"] += 1
        if calls["n"] % 2:
            raise LMMError("too few rows")
        return real(lab, options)

    monkeypatch.setattr(tr, "fit_lab", flaky)
    run = tr.run_replicates(LabTruth(n_subjects=10), 4, seed=1)
    assert run.failures == 2 and run.n == 2 and run.failure_message == "too few rows"


@pytest.mark.parametrize("kw", [{"n_replicates": 0}, {"level": 1.0}, {"df": "kr"}])
def test_bad_replicate_arguments(kw):
    with pytest.raises(LMMError):
        tr.run_replicates(LabTruth(), **{"n_replicates": 3, **kw})
