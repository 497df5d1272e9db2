"""Simulation-lab figures: traces, values and colours (dashboard.figures.teach, .teach_repeat)."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest

from dashboard.base.constants import z_value
from dashboard.figures import teach as ft
from dashboard.figures import teach_repeat as fr
from dashboard.figures import teach_style as fs
from lmm_core.simulation.teaching import fit_lab, simulate_lab
from lmm_core.simulation.teaching_repeat import ReplicateSummary, monte_carlo_se
from lmm_core.simulation.teaching_shrinkage import expected_slope_weight, slope_shrinkage
from lmm_core.simulation.teaching_truth import PARAMETERS, LabTruth


def _recovery() -> pd.DataFrame:
    """A recovery table by hand: slope interval misses, sigma has no interval."""
    rows = {
        "intercept": (50.0, 49.0, 47.0, 51.0, "Satterthwaite t"),
        "slope": (2.0, 2.9, 2.3, 3.5, "Satterthwaite t"),
        "sd_intercept": (4.0, 3.6, 2.2, 5.1, "profile likelihood"),
        "sd_slope": (2.0, 1.8, 1.1, 2.6, "profile likelihood"),
        "corr": (-0.4, -0.2, -0.7, 0.4, "profile likelihood"),
        "sigma": (3.0, 3.1, np.nan, np.nan, "none"),
    }
    table = pd.DataFrame.from_dict(
        rows, orient="index", columns=["truth", "estimate", "lower", "upper", "interval"]
    )
    table.insert(0, "parameter", list(PARAMETERS.values()))
    return table


def _summary(n: int = 60, seed: int = 0) -> ReplicateSummary:
    """A replicate run by hand (fast, and with every kind of boundary)."""
    rng = np.random.default_rng(seed)
    truth = LabTruth()
    slope = truth.slope + 0.4 * rng.standard_normal(n)
    half = np.where(np.arange(n) % 3 == 0, 0.9, 0.5)  # naive intervals narrower
    kinds = np.array(["none"] * (n - 6) + ["slope SD = 0"] * 2 + ["correlation = ±1"] * 4)
    table = pd.DataFrame(
        {
            "replicate": np.arange(1, n + 1),
            "slope": slope,
            "se": np.full(n, 0.4),
            "df": np.full(n, 29.0),
            "lower": slope - 0.8,
            "upper": slope + 0.8,
            "slope_ols": slope,
            "se_ols": np.full(n, 0.3),
            "lower_ols": slope - half,
            "upper_ols": slope + half,
            "sd_slope": np.where(kinds == "slope SD = 0", 0.0, 1.5 + rng.random(n)),
            "sigma": np.full(n, 3.0),
            "boundary": kinds,
        }
    )
    table["covered"] = (table["lower"] <= truth.slope) & (truth.slope <= table["upper"])
    table["covered_ols"] = (table["lower_ols"] <= truth.slope) & (truth.slope <= table["upper_ols"])
    table["singular"] = kinds != "none"
    table["slope_sd_zero"] = kinds == "slope SD = 0"
    table["corr_boundary"] = kinds == "correlation = ±1"
    table["intercept_sd_zero"] = False
    return ReplicateSummary(truth, 0.95, "subjects", table, 0, "", 1.0, 0.8)


def test_recovery_figure_truth_estimate_interval_and_misses():
    table = _recovery()
    fig = ft.recovery_figure(table)
    assert len(fig.data) == 2 * 6 + 1
    ests, truths = fig.data[0:12:2], fig.data[1:12:2]
    assert [t.x[0] for t in truths] == list(table["truth"])
    assert [e.x[0] for e in ests] == list(table["estimate"])
    assert truths[0].marker.symbol == "diamond" and truths[0].name == "truth"
    slope = ests[1]  # 2.3 .. 3.5 misses the truth 2.0
    assert slope.marker.color == fs.MISS and ests[0].marker.color == fs.EST
    assert slope.error_x.array[0] == pytest.approx(0.6)
    assert slope.error_x.arrayminus[0] == pytest.approx(0.6)
    assert ests[5].error_x.array is None  # sigma: no interval
    assert "no interval computed" in ests[5].hovertemplate
    titles = [a.text for a in fig.layout.annotations]
    assert titles == list(PARAMETERS.values())
    assert fig.data[-1].name == "interval misses the truth"


@cache
def _shrinkage():
    lab = simulate_lab(LabTruth(n_subjects=15, dropout=0.3), seed=8)
    return slope_shrinkage(fit_lab(lab), lab)


def test_slope_shrinkage_figure():
    table = _shrinkage()
    fig = ft.slope_shrinkage_figure(table)
    arrows, own, mixed, truth, pop = fig.data
    fitted = table[table["own"].notna()].sort_values("truth")
    assert arrows.name == "own → mixed" and int(np.sum(np.asarray(arrows.marker.size) > 0)) == len(
        fitted
    )
    np.testing.assert_allclose(own.x, fitted["own"])
    np.testing.assert_allclose(mixed.x, fitted["mixed"])
    np.testing.assert_allclose(truth.x, fitted["truth"])
    assert list(own.y) == list(fitted.index) and truth.marker.symbol == "x"
    sizes = np.asarray(own.marker.size)
    assert sizes[np.argmax(fitted["n"].to_numpy())] == sizes.max() > sizes.min()
    assert pop.name == "estimated population slope"
    assert fig.layout.shapes[0].x0 == pytest.approx(table["population"].iloc[0])
    big = pd.concat([table.assign(n=k) for k in range(6)]).set_axis(
        [f"S{k:03d}" for k in range(6 * len(table))]
    )
    assert len(ft.slope_shrinkage_figure(big, max_subjects=20).data[1].x) == 20


def test_weight_curve_figure():
    fig = ft.weight_curve_figure(2.0, 3.0, 6, observed=0.7)
    curve, here, observed = fig.data
    np.testing.assert_allclose(curve.y, expected_slope_weight(2.0, 3.0, np.arange(3, 31)))
    assert here.x[0] == 6 and here.y[0] == pytest.approx(4 / (4 + 9 / 17.5))
    assert observed.y[0] == 0.7
    assert len(ft.weight_curve_figure(2.0, 3.0, 40).data) == 2  # no observed value
    assert ft.weight_curve_figure(2.0, 3.0, 40).data[0].x[-1] == 40


def test_slope_histogram_figure():
    s = _summary()
    fig = fr.slope_histogram_figure(s)
    np.testing.assert_allclose(fig.data[0].x, s.table["slope"])
    lines = [shape.x0 for shape in fig.layout.shapes]
    assert lines[0] == s.truth.slope and lines[1] == pytest.approx(s.table["slope"].mean())
    assert fig.data[1].name.startswith("true slope")


def test_slope_sd_histogram_by_kind_of_fit():
    s = _summary()
    fig = fr.slope_sd_histogram_figure(s)
    names = [t.name for t in fig.data]
    assert names[:3] == [
        "regular fit (54 of 60)",
        "singular: slope SD estimated as 0 (2 of 60)",
        "singular: correlation estimated as ±1 (4 of 60)",
    ]
    assert sum(len(t.x) for t in fig.data[:3]) == s.n
    assert fig.layout.barmode == "stack" and fig.layout.shapes[0].x0 == s.truth.sd_slope


def test_coverage_figure():
    s = _summary()
    fig = fr.coverage_figure(s)
    bar = fig.data[0]
    rates = [s.rate("covered"), s.rate("covered_ols")]
    np.testing.assert_allclose(bar.y, rates)
    z = z_value(0.95)  # 1.96
    np.testing.assert_allclose(bar.error_y.array, [z * monte_carlo_se(p, s.n) for p in rates])
    assert fig.layout.shapes[0].y0 == 0.95
    assert rates[1] < rates[0]


def test_interval_ladder_figure():
    s = _summary()
    fig = fr.interval_ladder_figure(s, max_rows=30)
    assert len(fig.data) == 6
    head = s.table.head(30)
    mixed_hit, mixed_miss, naive_hit, naive_miss, *legend = fig.data
    assert [t.name for t in legend] == ["contains the truth", "misses it"]
    assert len(mixed_hit.x) + len(mixed_miss.x) == 3 * 30
    assert len(naive_miss.x) == 3 * int((~head["covered_ols"]).sum()) > 0
    assert naive_miss.line.color == fs.MISS and naive_hit.line.color == fs.EST
    assert [a.text for a in fig.layout.annotations] == ["mixed model", "naive regression"]
