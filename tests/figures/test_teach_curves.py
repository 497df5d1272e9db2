"""Section 2 of the Teach page: true and fitted curves on a fine grid of time
(dashboard.analysis.teach_curves.study_curves, dashboard.figures.teach_curves), and the
curved lab's words in the other figures."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest

from dashboard.analysis.teach_curves import (
    N_GRID,
    curve_note,
    shown_subjects,
    slope_note,
    study_curves,
)
from dashboard.figures import teach as ft
from dashboard.figures import teach_curves as fc
from dashboard.figures import teach_repeat as fr
from dashboard.figures import teach_style as fs
from dashboard.figures.teach_style import slope_word
from lmm_core.simulation.teaching import fit_lab, simulate_lab
from lmm_core.simulation.teaching_curves import population_mean
from lmm_core.simulation.teaching_repeat import run_replicates
from lmm_core.simulation.teaching_truth import LabTruth


@cache
def _curves(time_df: int, curvature: float = 6.0):
    truth = LabTruth(curvature=curvature, time_df=time_df, n_subjects=30)
    lab = simulate_lab(truth, seed=2)
    res = fit_lab(lab)
    return lab, res, study_curves(lab, res)


def _bend_of(y: np.ndarray) -> float:
    """Largest distance of a curve from the straight line through its two ends."""
    y = np.asarray(y, float)
    chord = np.linspace(y[0], y[-1], len(y))
    return float(np.abs(y - chord).max())


@pytest.mark.parametrize("time_df", [1, 2, 3])
def test_curves_are_on_a_fine_grid_not_only_at_the_visits(time_df):
    lab, res, curves = _curves(time_df)
    g = curves.grid
    assert len(g) == N_GRID == 60
    np.testing.assert_allclose(g["time"], np.linspace(0, 5, 60))
    assert not set(np.round(g["time"], 9)) <= set(lab.data["time"])  # between the visits too
    np.testing.assert_allclose(g["truth"], population_mean(lab.truth, g["time"]))
    np.testing.assert_allclose(
        g["fitted"], res.predict(pd.DataFrame({"time": g["time"]}), include_re=False)
    )
    # each shown subject: 60 grid points of its fitted curve (with its BLUPs) and true curve
    assert curves.subjects.groupby("subject").size().tolist() == [60, 60, 60]
    one = curves.subjects[curves.subjects["subject"] == curves.subjects["subject"].iloc[0]]
    subject = one["subject"].iloc[0]
    b0, b1 = res.ranef["subject"].loc[subject]
    np.testing.assert_allclose(one["fitted"] - g["fitted"].to_numpy(), b0 + b1 * one["time"])
    u = lab.subjects.loc[subject]
    np.testing.assert_allclose(
        one["truth"] - g["truth"].to_numpy(),
        (u["intercept"] - lab.truth.intercept) + (u["slope"] - lab.truth.slope) * one["time"],
    )
    assert set(curves.points["subject"]) == set(curves.subjects["subject"])


def test_a_spline_follows_the_bend_and_a_line_cannot():
    _, _, line = _curves(1)
    _, _, spline = _curves(3)
    assert _bend_of(line.grid["fitted"]) < 1e-9  # straight
    assert _bend_of(line.grid["truth"]) == pytest.approx(6.0, rel=1e-3)
    assert _bend_of(spline.grid["fitted"]) > 4.0  # the spline bends with the truth
    gap = np.abs(spline.grid["fitted"] - spline.grid["truth"]).max()
    assert gap < np.abs(line.grid["fitted"] - line.grid["truth"]).max() / 2
    assert spline.knots == (1.0, 3.0) and line.knots == () and spline.shape == "natural spline"


def test_study_curves_figure_traces():
    _, _, curves = _curves(3)
    fig = fc.study_curves_figure(curves)
    names = [t.name for t in fig.data]
    means, *subjects = fig.data[:10]
    assert means.name == "observed mean at each visit" and len(means.x) == 6
    truth, fitted = fig.data[10], fig.data[11]
    assert truth.name == "true population curve" and truth.line.color == fs.TRUTH
    assert fitted.name == "fitted population curve (natural spline)" and fitted.line.color == fs.EST
    assert len(truth.x) == len(fitted.x) == 60
    np.testing.assert_allclose(fitted.y, curves.grid["fitted"])
    lines = [t for t in subjects if t.mode == "lines"]
    assert len(lines) == 6 and all(len(t.x) == 60 for t in lines)
    assert [t.line.dash for t in lines] == ["solid", "dot"] * 3
    assert names[-2:] == ["a subject's true curve", "spline knot"]
    assert sorted(s.x0 for s in fig.layout.shapes) == [1.0, 3.0]  # the knots
    ranks = {t.name: t.legendrank for t in fig.data if t.showlegend is not False}
    assert ranks["true population curve"] < ranks["observed mean at each visit"]
    straight = fc.study_curves_figure(_curves(1)[2])
    assert not straight.layout.shapes and "spline knot" not in [t.name for t in straight.data]


def test_shown_subjects_are_spread_and_few():
    data = simulate_lab(LabTruth(n_subjects=30), seed=2).data
    chosen = shown_subjects(data, 3)
    level = data.groupby("subject", observed=True)["y"].mean().sort_values()
    assert chosen == [str(level.index[i]) for i in (5, 15, 25)]
    small = simulate_lab(LabTruth(n_subjects=3), seed=2).data
    assert sorted(shown_subjects(small, 4)) == ["S001", "S002", "S003"]


def test_what_the_texts_say_for_each_combination():
    assert "Set a **curvature κ**" in curve_note(LabTruth())
    assert "cannot" in curve_note(LabTruth(curvature=5.0))
    assert "bend that is not there" in curve_note(LabTruth(time_df=3))
    assert "follows the black one" in curve_note(LabTruth(curvature=5.0, time_df=2))
    assert slope_word(LabTruth()) == "slope"
    assert slope_word(LabTruth(time_df=2)) == slope_word(LabTruth(curvature=1.0))
    assert slope_word(LabTruth(curvature=1.0)) == "average slope"
    assert "T = 7" in slope_note(LabTruth(n_visits=8, time_df=3))


def test_recovery_legend_shows_the_estimate_in_its_own_colour():
    """The legend's estimate entry used to take the first panel's colour: red when the
    intercept's interval missed."""
    table = pd.DataFrame(
        {
            "parameter": ["a", "b", "c"],
            "truth": [0.0, 0.0, 0.0],
            "estimate": [2.0, 0.1, 0.2],
            "lower": [1.0, -1.0, -1.0],
            "upper": [3.0, 1.0, 1.0],
            "interval": "t",
        }
    )
    fig = ft.recovery_figure(table)
    shown = [t for t in fig.data if t.showlegend is not False and t.name != "truth"]
    est = [t for t in shown if t.name.startswith("estimate")]
    assert len(est) == 1 and est[0].marker.color == fs.EST
    assert fig.data[0].marker.color == fs.MISS and fig.data[0].showlegend is False
    names = sorted((t.legendrank, t.name) for t in fig.data if t.showlegend is not False)
    assert [n for _, n in names] == [
        "estimate with 95% interval",
        "truth",
        "interval misses the truth",
    ]


def test_repeat_figures_speak_of_the_average_slope_when_curved():
    s = run_replicates(LabTruth(curvature=4.0, time_df=3, n_subjects=12), 3, seed=1)
    assert fr.slope_histogram_figure(s).data[1].name == "true average slope 2"
    assert fr.slope_histogram_figure(s).layout.xaxis.title.text.endswith("average slope β̂₁")
    assert fr.interval_ladder_figure(s).layout.xaxis.title.text == "average slope"
