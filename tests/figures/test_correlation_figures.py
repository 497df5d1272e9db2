"""Implied vs observed correlation figures (dashboard.figures.correlation): data and layout."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest

from dashboard.figures import correlation as fc
from lmm_core import ModelError, datasets, fit_lmm
from lmm_core.predict.implied import implied_covariance


@cache
def _fit(name: str, formula: str):
    data, _ = datasets.load_example(name)
    return data, fit_lmm(formula, data)


def test_bins_exact_times_when_few():
    bins = fc.bin_times(np.array([0, 1, 2, 2, 9, np.nan]))
    assert not bins.binned
    np.testing.assert_array_equal(bins.centers, [0, 1, 2, 9])
    np.testing.assert_array_equal(bins.assign(np.array([0, 1.4, 1.6, 9])), [0, 1, 2, 3])
    assert bins.labels() == ["0", "1", "2", "9"]
    assert "distinct visit times" in bins.describe()


def test_bins_find_jittered_visits():
    data, _ = _fit("trial_small", "y ~ time + (1 | patient)")
    bins = fc.bin_times(data["time"].to_numpy())
    assert bins.binned and bins.centers.size == 8
    by_visit = data.groupby("visit")["time"].mean().to_numpy()
    np.testing.assert_allclose(bins.centers, by_visit, atol=1e-9)  # one bin per visit
    assert bins.labels()[1] == "~1"
    assert "k-means" in bins.describe()


def test_bins_of_uniform_times_are_spread():
    times = np.random.default_rng(1).uniform(0, 10, 2000)
    bins = fc.bin_times(times, max_bins=5)
    assert bins.centers.size == 5
    counts = np.bincount(bins.assign(times))
    assert counts.min() > 0.6 * counts.max()


def test_observed_correlation_pairwise_and_nearest_in_bin():
    bins = fc.TimeBins(np.array([0.0, 1.0]), np.array([-np.inf, 0.5, np.inf]), True)
    first = np.array([1.0, 2.0, 4.0, 3.0, 7.0, 5.0])
    second = np.array([2.0, 2.5, 5.0, 2.0, 9.0, 6.0])
    ids = [f"s{i}" for i in range(6)]
    frame = pd.DataFrame({"id": ids * 2, "time": [0.0] * 6 + [1.0] * 6})
    frame["value"] = np.r_[first, second]
    extra = pd.DataFrame(  # s0 again in bin 1 but further from its centre; s6 at time 0 only
        {"id": ["s0", "s6"], "time": [1.3, 0.1], "value": [100.0, 3.0]}
    )
    frame = pd.concat([frame, extra], ignore_index=True)
    obs = fc.observed_correlation(
        frame["id"].to_numpy(), frame["time"].to_numpy(), frame["value"].to_numpy(), bins, "outcome"
    )
    assert obs.n_duplicates == 1
    np.testing.assert_array_equal(obs.n_pairs, [[7, 6], [6, 6]])
    assert obs.correlation[0, 1] == pytest.approx(np.corrcoef(first, second)[0, 1], rel=1e-12)
    few = fc.observed_correlation(np.array(["a", "a"]), np.array([0.0, 1.0]), [1.0, 2.0], bins, "")
    assert np.isnan(few.correlation).all()  # fewer than MIN_PAIRS subjects


def test_prepare_sleepstudy_matches_pandas_and_core():
    data, res = _fit("sleepstudy", "Reaction ~ Days + (Days | Subject)")
    view = fc.prepare_correlation(data, res, subject="Subject", time="Days")
    resid = data["Reaction"] - (res.beta[0] + res.beta[1] * data["Days"])
    wide = data.assign(r=resid).pivot(index="Subject", columns="Days", values="r")
    np.testing.assert_allclose(view.observed.correlation, wide.corr().to_numpy(), rtol=1e-10)
    expected = implied_covariance(res, np.arange(10.0), time="Days", subject="Subject")
    np.testing.assert_allclose(view.implied.correlation, expected.correlation, rtol=1e-12)
    assert view.curve["time"].iloc[[0, -1]].tolist() == [0.0, 9.0]
    outcome = fc.prepare_correlation(data, res, subject="Subject", time="Days", source="outcome")
    wide_y = data.pivot(index="Subject", columns="Days", values="Reaction")
    np.testing.assert_allclose(outcome.observed.correlation, wide_y.corr().to_numpy(), rtol=1e-10)
    assert 0 < view.largest_gap() < 1


def test_prepare_errors_in_plain_words():
    data, res = _fit("orthodont", "distance ~ age + (1 | Sex)")
    with pytest.raises(ModelError, match="no random effects for Subject"):
        fc.prepare_correlation(data, res, subject="Subject", time="age")


def test_heatmaps_share_one_scale_and_annotate():
    data, res = _fit("trial_small", "y ~ time * arm + (time | patient) + (1 | hospital)")
    view = fc.prepare_correlation(
        data, res, subject="patient", time="time", cluster="hospital", max_bins=6
    )
    assert view.implied.shared == {"patient": True, "hospital": True}
    fig = fc.correlation_heatmaps(view.implied, view.observed, view.bins, "time")
    left, right = fig.data
    assert left.zmin == right.zmin and left.zmax == right.zmax == 1.0
    assert np.asarray(left.z).shape == (6, 6) and list(left.x) == view.bins.labels()
    assert left.texttemplate == "%{text}" and not left.showscale and right.showscale
    titles = [a.text for a in fig.layout.annotations]
    assert titles == ["Implied by the model", "Observed (residuals from the fixed effects)"]
    assert "subjects measured at both" in np.asarray(right.customdata)[0, 1]


def test_negative_correlations_switch_to_a_diverging_scale():
    times = np.array([0.0, 1.0])
    bins = fc.TimeBins(times, np.array([-np.inf, 0.5, np.inf]), False)
    data, res = _fit("sleepstudy", "Reaction ~ Days + (1 | Subject)")
    implied = implied_covariance(res, times, subject="Subject")
    obs = fc.ObservedCorrelation(np.array([[1, -0.4], [-0.4, 1]]), np.full((2, 2), 9), "outcome", 0)
    fig = fc.correlation_heatmaps(implied, obs, bins, "Days")
    assert fig.data[0].zmin == -1.0 and fig.layout.annotations[1].text == "Observed (outcome)"


def test_variance_icc_figure():
    data, res = _fit("trial_small", "y ~ time * arm + (time | patient) + (1 | hospital)")
    table = implied_covariance(res, np.linspace(0, 7, 15), subject="patient").variance_table()
    fig = fc.variance_icc_figure(table, "time")
    names = [t.name for t in fig.data]
    assert names == [
        "total",
        "patient (random effects)",
        "hospital (random effects)",
        "residual (within subject)",
        "ICC",
    ]
    np.testing.assert_allclose(fig.data[-1].y, table["icc"])
    assert fig.layout.yaxis2.range == (0, 1)
    assert isinstance(table, pd.DataFrame)
