"""dashboard.figures.diagnostics: prepared data and the traces of each diagnostic figure."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from dashboard.figures import diagnostics as fd
from lmm_core import fit_lmm
from tests.conftest import load_reference_dataset

SLOPE = "Reaction ~ Days + (Days | Subject)"


@cache
def sleep_fit(formula: str = SLOPE):
    return fit_lmm(formula, load_reference_dataset("sleepstudy"))


@cache
def big_fit():
    data = load_reference_dataset("sim_small")
    return fit_lmm("y ~ time * arm + (time | patient) + (1 | hospital)", data)


def test_prepare_residuals_matches_the_fit():
    res = sleep_fit()
    prep = fd.prepare_residuals(res)
    assert prep.group == "Subject"
    np.testing.assert_allclose(prep.frame["residual"], res.residuals)
    np.testing.assert_allclose(prep.frame["observed"] - prep.frame["fitted"], res.residuals)
    np.testing.assert_allclose(prep.frame["std_resid"], res.residuals / res.sigma)
    data = load_reference_dataset("sleepstudy")
    assert list(prep.frame["group"]) == list(data["Subject"].astype(str))


@pytest.mark.parametrize("n", [7, 180, 50_000])
def test_qq_points_sorted_and_on_normal_quantiles(n):
    values = np.random.default_rng(n).standard_t(5, size=n)
    qq = fd.qq_points(values)
    assert qq.n == n
    assert np.all(np.diff(qq.sample) >= 0)
    assert len(qq.sample) == min(n, fd.MAX_QQ_POINTS)
    a = 3 / 8 if n <= 10 else 0.5
    full = stats.norm.ppf((np.arange(1, n + 1) - a) / (n + 1 - 2 * a))
    sorted_values = np.sort(values)
    positions = np.searchsorted(full, qq.theoretical)
    np.testing.assert_allclose(full[positions], qq.theoretical)
    np.testing.assert_array_equal(sorted_values[positions], qq.sample)
    if n <= 180:  # small samples: every value (scipy's probplot uses other positions)
        np.testing.assert_array_equal(qq.sample, sorted_values)
    assert qq.sample[0] == sorted_values[0] and qq.sample[-1] == sorted_values[-1]
    q1, q3 = np.quantile(values, [0.25, 0.75])
    z1, z3 = stats.norm.ppf([0.25, 0.75])
    assert qq.intercept + qq.slope * z1 == pytest.approx(q1)
    assert qq.intercept + qq.slope * z3 == pytest.approx(q3)


def test_binned_means_of_a_line_lie_on_the_line():
    x = np.linspace(0, 10, 1001)
    smooth = fd.binned_means(x, 2 * x + 1, bins=10)
    assert len(smooth) == 10 and smooth["n"].sum() == 1001
    np.testing.assert_allclose(smooth["y"], 2 * smooth["x"] + 1)


def test_residuals_fitted_figure_traces():
    prep = fd.prepare_residuals(sleep_fit())
    points, note = fd.sample_points(prep.frame)
    assert note == "" and len(points) == 180
    fig = fd.residuals_fitted_figure(prep, points)
    assert [t.name for t in fig.data] == ["observation", "|r| > 3", "binned mean"]
    flagged = np.abs(prep.frame["std_resid"]) > 3
    assert len(fig.data[1].x) == flagged.sum() >= 1
    assert len(fig.data[0].x) + len(fig.data[1].x) == 180
    assert fig.layout.shapes[0].y0 == 0  # zero line
    assert fig.data[0].type == "scatter"


def test_large_data_is_sampled_with_webgl_keeping_flagged_points():
    frame = pd.DataFrame(
        {
            "observed": np.zeros(20_000),
            "fitted": np.zeros(20_000),
            "residual": np.linspace(-4, 4, 20_000),
            "std_resid": np.linspace(-4, 4, 20_000),
            "group": "g",
        }
    )
    prep = fd.ResidualData(frame, "g", 1.0)
    points, note = fd.sample_points(frame, max_points=1000)
    flagged = np.abs(frame["std_resid"]) > 3
    assert flagged[points.index].sum() == flagged.sum()
    assert "1,000 of 20,000" in note
    fig = fd.residuals_fitted_figure(prep, points)
    assert fig.data[0].type == "scattergl"
    assert fig.data[2].type == "scattergl"  # the smoother on the same (top) layer
    assert fig.data[2].customdata.sum() == 20_000  # the smoother uses every row


def test_observed_fitted_has_identity_line():
    prep = fd.prepare_residuals(sleep_fit())
    fig = fd.observed_fitted_figure(prep, prep.frame)
    assert len(fig.data) == 2
    line = fig.data[1]
    assert line.mode == "lines" and "identity" in line.name
    assert list(line.x) == list(line.y)
    assert line.x[0] <= prep.frame[["fitted", "observed"]].min().min()


def test_qq_figure_has_points_and_reference_line():
    qq = fd.qq_points(sleep_fit().residuals)
    fig = fd.qq_figure(qq, title="t", y_label="r")
    assert [t.mode for t in fig.data] == ["markers", "lines"]
    np.testing.assert_allclose(fig.data[1].y, qq.intercept + qq.slope * np.asarray(fig.data[1].x))


def test_ranef_qq_one_panel_per_effect():
    panels = fd.ranef_qq_panels(big_fit())
    assert [(g, t) for g, t, _ in panels] == [
        ("patient", "(Intercept)"),
        ("patient", "time"),
        ("hospital", "(Intercept)"),
    ]
    res = big_fit()
    np.testing.assert_array_equal(
        panels[1][2].sample[:5], np.sort(res.ranef["patient"]["time"])[:5]
    )
    fig = fd.ranef_qq_figure(panels)
    assert len(fig.data) == 6  # points + line per panel
    assert "hospital: (Intercept)" in fig.layout.annotations[2].text


def test_group_boxes_all_levels_or_a_sample():
    prep = fd.prepare_residuals(sleep_fit())
    fig, note = fd.group_residuals_figure(prep)
    assert note == "" and len(set(fig.data[0].x)) == 18
    order = list(fig.layout.xaxis.categoryarray)
    means = prep.frame.groupby("group")["residual"].mean()
    assert list(means.loc[order]) == sorted(means)
    prep = fd.prepare_residuals(big_fit(), "patient")
    fig, note = fd.group_residuals_figure(prep, max_groups=20)
    assert len(set(fig.data[0].x)) == 20 and "20 of" in note


def test_outlying_groups_flags_with_reasons():
    res = sleep_fit()
    prep = fd.prepare_residuals(res)
    table = fd.outlying_groups(res, prep)
    big = prep.frame.loc[np.abs(prep.frame["std_resid"]) > 3, "group"]
    assert set(table.index) == set(big)
    assert list(table.columns[-3:]) == ["z: (Intercept)", "z: Days", "why"]
    assert all("standardized residual" in w for w in table["why"])
    assert table["max_abs_std_resid"].is_monotonic_decreasing
    sd_days = np.sqrt(res.covariance_matrices()[0][1, 1])
    subject = table.index[0]
    expected = res.ranef["Subject"].loc[subject, "Days"] / sd_days
    assert table.loc[subject, "z: Days"] == pytest.approx(expected)
    strict = fd.outlying_groups(res, prep, limit=1.5)  # random-effect z flags too
    assert any("SD above" in w or "SD below" in w for w in strict["why"])
