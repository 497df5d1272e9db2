"""Simulation lab (lmm_core.simulation.teaching*, .teaching_repeat): data, recovery, replicates."""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import pandas as pd
import pytest

from lmm_core import LMMError
from lmm_core.model.ols import ols_fit
from lmm_core.simulation import teaching_repeat as tr
from lmm_core.simulation.teaching import estimates, fit_lab, recovery_table, simulate_lab
from lmm_core.simulation.teaching_curves import (
    bend,
    curve_inference,
    curve_rows,
    is_curved,
    lab_formula,
    population_mean,
)
from lmm_core.simulation.teaching_shrinkage import (
    expected_slope_weight,
    shrinkage_summary,
    slope_shrinkage,
)
from lmm_core.simulation.teaching_truth import CURVATURE_LABEL, PARAMETERS, LabTruth


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
        {"curvature": float("inf")},
        {"time_df": 4},
        {"time_df": 0},
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
    monkeypatch.setattr(tr._Studies, "_design", lambda self, draw: None)  # every fit by fit_lab
    run = tr.run_replicates(LabTruth(n_subjects=10), 4, seed=1)
    assert run.failures == 2 and run.n == 2 and run.failure_message == "too few rows"


@pytest.mark.parametrize("kw", [{"n_replicates": 0}, {"level": 1.0}, {"df": "kr"}])
def test_bad_replicate_arguments(kw):
    with pytest.raises(LMMError):
        tr.run_replicates(LabTruth(), **{"n_replicates": 3, **kw})


# ---------------------------------------------------------------- curved time (issue 13)
def test_curvature_zero_gives_the_straight_line_lab_draw_for_draw():
    """The data of the lab before curvature existed (values written down from that version,
    seed 11), and a curvature adds exactly its bend to the same draws."""
    truth = LabTruth(n_subjects=4, n_visits=4, dropout=0.2)
    lab = simulate_lab(truth, seed=11)
    before = [46.621215734, 48.5101484848, 60.6127141488, 60.815627601, 45.9928008753,
              50.5027633943, 51.9734026288, 49.155797769, 43.1362359304, 51.8557303805,
              56.7396271993, 53.6595529602, 53.0591482536]  # fmt: skip
    np.testing.assert_allclose(lab.data["y"], before, rtol=0, atol=1e-9)
    assert list(lab.data["visit"]) == [0, 1, 2, 3, 0, 1, 2, 3, 0, 0, 1, 2, 3]
    bent = simulate_lab(LabTruth(n_subjects=4, n_visits=4, dropout=0.2, curvature=-3.5), 11)
    t = lab.data["time"].to_numpy()
    np.testing.assert_allclose(bent.data["y"] - lab.data["y"], -3.5 * 4 * t * (3 - t) / 9)
    assert bent.subjects.equals(lab.subjects)  # the subjects' lines are the same draws


def test_the_bend_is_zero_at_both_ends_and_kappa_at_mid_study():
    truth = LabTruth(intercept=10.0, slope=3.0, curvature=4.0, n_visits=7)
    assert truth.span == 6.0
    np.testing.assert_allclose(bend(truth, [0.0, 3.0, 6.0]), [0.0, 4.0, 0.0])
    f = population_mean(truth, [0.0, 3.0, 6.0])
    assert f[0] == 10.0 and (f[2] - f[0]) / 6 == pytest.approx(3.0)  # beta_1: average slope
    assert f[1] - (f[0] + f[2]) / 2 == pytest.approx(4.0)
    assert not is_curved(LabTruth()) and is_curved(truth) and is_curved(LabTruth(time_df=3))


def test_the_simulated_population_mean_follows_the_true_curve():
    truth = LabTruth(curvature=-8.0, n_subjects=4000, n_visits=7, dropout=0.0, corr=0.0)
    data = simulate_lab(truth, seed=5).data
    means = data.groupby("time")["y"].mean()
    t = means.index.to_numpy()
    sd = np.sqrt(truth.sd_intercept**2 + (truth.sd_slope * t) ** 2 + truth.sigma**2)
    z = (means.to_numpy() - population_mean(truth, t)) / (sd / np.sqrt(4000))
    assert np.abs(z).max() < 4
    # mid-study lies kappa below the chord from the first to the last visit (SE about 0.17)
    assert means[3.0] - (means[0.0] + means[6.0]) / 2 == pytest.approx(-8.0, abs=0.7)


def test_formulas_and_curve_rows_of_each_shape():
    assert lab_formula() == "y ~ time + (time | subject)"
    assert lab_formula(2) == "y ~ poly(time, 2) + (time | subject)"
    assert lab_formula(3) == "y ~ ns(time, 3) + (time | subject)"
    lab = simulate_lab(LabTruth(n_subjects=20, curvature=5.0), seed=3)
    line = fit_lab(lab)
    rows = curve_rows(line, 5.0)
    assert list(line.x_names) == ["(Intercept)", "time"]
    assert [list(r) for r in rows.values()] == [[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]
    assert estimates(line) == estimates(line, 5.0)  # a line needs no span
    for time_df in (2, 3):
        res = fit_lab(lab, time_df=time_df)
        x = res.design.fixed_matrix(pd.DataFrame({"time": [0.0, 2.5, 5.0]}))
        f = x @ res.beta  # the fitted population curve at 0, T/2 and T
        est = estimates(res, 5.0)
        assert est["intercept"] == pytest.approx(f[0])
        assert est["slope"] == pytest.approx((f[2] - f[0]) / 5)
        assert est["curvature"] == pytest.approx(f[1] - (f[0] + f[2]) / 2)
        with pytest.raises(LMMError, match="time span"):
            estimates(res)


def test_curve_inference_of_a_line_is_the_fixed_effects_table():
    res = fit_lab(simulate_lab(LabTruth(n_subjects=15), seed=4))
    table = res.fixef_table("satterthwaite", level=0.9)
    inf = curve_inference(res, 5.0, level=0.9)
    for key, term in (("intercept", "(Intercept)"), ("slope", "time")):
        got = inf.loc[key, ["estimate", "std_error", "df", "lower", "upper"]].to_numpy(float)
        want = table.loc[term, ["estimate", "std_error", "df", "ci_lower", "ci_upper"]]
        np.testing.assert_allclose(got, want.to_numpy(float), rtol=1e-12)
    assert inf.loc["curvature", "estimate"] == 0 and np.isnan(inf.loc["curvature", "lower"])
    sub = curve_inference(res, 5.0, df="subjects").loc["slope"]
    assert sub["df"] == 14 and sub["std_error"] == pytest.approx(res.std_errors[1])
    with pytest.raises(LMMError, match="df must be"):
        curve_inference(res, 5.0, df="kenward-roger")


@cache
def _curved_big(time_df: int):
    truth = LabTruth(curvature=8.0, sigma=3.0, n_subjects=600, n_visits=6, dropout=0.0,
                     time_df=time_df)  # fmt: skip
    return truth, recovery_table(fit_lab(simulate_lab(truth, seed=21)), truth, profile=False)


@pytest.mark.parametrize("time_df", [2, 3])
def test_curved_fits_recover_the_bend(time_df):
    truth, table = _curved_big(time_df)
    assert list(table.index) == [*PARAMETERS, "curvature"]
    assert table.loc["curvature", "parameter"] == CURVATURE_LABEL
    assert table.loc["slope", "parameter"] == "Average slope β₁ (time 0 to 5)"
    se = (table["upper"] - table["lower"]) / (2 * 1.96)
    for key in ("intercept", "slope", "curvature"):
        assert abs(table.loc[key, "estimate"] - table.loc[key, "truth"]) < 4 * se[key], key
        assert table.loc[key, "interval"] == "Satterthwaite t"
    assert table.loc["sigma", "estimate"] == pytest.approx(3.0, rel=0.04)


def test_a_straight_line_misses_a_bent_truth():
    truth, table = _curved_big(1)
    assert table.loc["curvature", "estimate"] == 0.0
    assert table.loc["curvature", "interval"] == "none: a straight line has no bend"
    assert np.isnan(table.loc["curvature", "covered"])
    # the line sits 2/3 of the mean bend too high at time 0 and counts the bend as noise...
    assert table.loc["intercept", "estimate"] > 53.5 and table.loc["intercept", "covered"] == 0
    assert table.loc["sigma", "estimate"] > 1.25 * truth.sigma
    # ...but with every visit seen its slope is still the average slope (a symmetric bend)
    assert table.loc["slope", "covered"] == 1


def test_a_spline_needs_four_visit_times():
    lab = simulate_lab(LabTruth(n_visits=3, time_df=3), seed=1)
    with pytest.raises(LMMError, match="needs at least 4 distinct visit times; this study has 3"):
        fit_lab(lab)
    assert fit_lab(lab, time_df=2).x_names[2] == "poly(time, 2)2"  # a quadratic fits 3 times


def test_slope_shrinkage_of_a_curved_fit_uses_the_average_slope():
    truth = LabTruth(n_subjects=20, dropout=0.3, curvature=6.0, time_df=3)
    lab = simulate_lab(truth, seed=8)
    res = fit_lab(lab)
    table = slope_shrinkage(res, lab)
    pop = estimates(res, truth.span)["slope"]
    assert (table["population"] == pop).all()
    np.testing.assert_allclose(table["mixed"], pop + res.ranef["subject"]["time"].loc[table.index])
    np.testing.assert_allclose(table["truth"], lab.subjects["slope"].loc[table.index])


@pytest.mark.parametrize("time_df", [1, 2, 3])
def test_replicates_run_with_every_shape(time_df):
    truth = LabTruth(n_subjects=12, curvature=5.0, time_df=time_df)
    run = tr.run_replicates(truth, 4, seed=3)
    assert run.failures == 0 and run.n == 4
    t = run.table
    assert np.isfinite(t[["slope", "se", "lower", "upper", "slope_ols", "se_ols"]]).all().all()
    assert (t["lower"] < t["slope"]).all() and (t["slope"] < t["upper"]).all()
    lab = simulate_lab(truth, np.random.SeedSequence(3).spawn(4)[0])
    res = fit_lab(lab)
    assert t["slope"].iloc[0] == pytest.approx(estimates(res, truth.span)["slope"])
    naive = tr.naive_interval(res, truth.span, 0.95)  # against least squares by numpy
    X, y = res.design.X, res.y
    beta, rss, *_ = np.linalg.lstsq(X, y, rcond=None)
    cov = float(rss[0]) / (len(y) - X.shape[1]) * np.linalg.inv(X.T @ X)
    row = curve_rows(res, truth.span)["slope"]
    assert naive["estimate"] == pytest.approx(row @ beta)
    assert naive["std_error"] == pytest.approx(np.sqrt(row @ cov @ row))
    if time_df == 1:  # the straight line's naive slope is ols_fit's
        ols = ols_fit(X, y, res.x_names).loc["time"]
        assert naive["std_error"] == pytest.approx(ols["std_error"], rel=1e-12)
    satt = tr.run_replicates(truth, 1, seed=3, df="satterthwaite").table.iloc[0]
    assert satt["slope"] == pytest.approx(t["slope"].iloc[0]) and 5 < satt["df"] < 40


def test_too_few_visit_times_for_a_spline_are_failures_with_a_message():
    run = tr.run_replicates(LabTruth(n_visits=3, time_df=3, n_subjects=5), 2, seed=1)
    assert run.failures == 2 and "distinct visit times" in run.failure_message
