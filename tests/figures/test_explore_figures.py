"""Figure builders: asserted on fig.data / fig.layout, never on pixels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from dashboard.figures import explore as figures
from dashboard.figures.style import PALETTE
from lmm_core.datasets import load_example


@pytest.fixture(scope="module")
def sleep():
    return load_example("sleepstudy")[0]


@pytest.fixture(scope="module")
def large():
    return load_example("trial_large")[0]


def test_spaghetti_one_line_per_subject_with_hover_names(sleep):
    prep = figures.prepare_spaghetti(sleep, "Subject", "Days", "Reaction")
    assert (prep.n_subjects, prep.n_shown, prep.note) == (18, 18, "")
    fig = figures.spaghetti_figure(prep, subject_label="Subject", time_label="Days")
    assert len(fig.data) == 1 and isinstance(fig.data[0], go.Scatter)
    trace = fig.data[0]
    gaps = np.isnan(np.asarray(trace.x, dtype=float))
    assert gaps.sum() == 17  # a gap between consecutive subjects: 18 separate lines
    names = [n for n in trace.customdata if n]
    assert sorted(set(names)) == sorted(sleep["Subject"].unique())
    assert "Subject <b>%{customdata}</b>" in trace.hovertemplate
    assert fig.layout.xaxis.title.text == "Days"
    assert fig.layout.template.layout.colorway == PALETTE


def test_spaghetti_colour_groups_make_one_trace_each():
    data = load_example("orthodont")[0]
    prep = figures.prepare_spaghetti(data, "Subject", "age", "distance", "Sex")
    fig = figures.spaghetti_figure(prep, color_label="Sex")
    assert [t.name for t in fig.data] == ["Female", "Male"]
    assert fig.layout.legend.title.text == "Sex"
    assert fig.data[0].line.color != fig.data[1].line.color
    assert all(t.showlegend for t in fig.data)


def test_thousands_of_subjects_are_sampled_and_drawn_with_webgl(large):
    prep = figures.prepare_spaghetti(large, "patient", "time", "y", "hospital", max_subjects=300)
    assert prep.n_subjects == 12_500 and prep.n_shown == 300
    assert "300 of 12,500" in prep.note
    again = figures.prepare_spaghetti(large, "patient", "time", "y", "hospital", max_subjects=300)
    pd.testing.assert_frame_equal(prep.frame, again.frame)  # seeded sample
    fig = figures.spaghetti_figure(prep, color_label="hospital")
    assert all(isinstance(t, go.Scattergl) for t in fig.data)
    assert not any(t.showlegend for t in fig.data)  # 100 hospitals: no legend
    assert "(300 of 12,500)" in fig.layout.title.text


def test_numeric_colour_is_split_into_quartiles():
    values = pd.Series(np.arange(100.0))
    groups = figures.color_groups(values)
    assert groups.nunique() == 4


def test_time_bins_follow_visit_clusters(large):
    bins = figures.time_bins(large["time"])
    assert bins.nunique() == 8
    assert np.allclose(np.sort(bins.unique()), np.arange(8), atol=0.05)


def test_time_bins_fall_back_to_quantiles_for_continuous_times():
    times = pd.Series(np.random.default_rng(2).uniform(0, 10, 1000))
    assert figures.time_bins(times, max_points=10).nunique() == 10


def test_mean_trajectory_summary_and_band(sleep):
    summary = figures.prepare_mean_trajectory(sleep, "Days", "Reaction")
    assert len(summary) == 10 and (summary["n"] == 18).all()
    day0 = sleep.loc[sleep["Days"] == 0, "Reaction"]
    row = summary.iloc[0]
    assert row["mean"] == pytest.approx(day0.mean())
    half = 2.109816 * day0.std() / np.sqrt(18)  # t(0.975, 17)
    assert row["upper"] - row["mean"] == pytest.approx(half, rel=1e-5)
    fig = figures.mean_trajectory_figure(summary, time_label="Days", outcome_label="Reaction")
    assert [t.fill for t in fig.data] == ["toself", None]
    assert len(fig.data[0].x) == 20  # band polygon: there and back
    assert "95%" in fig.layout.title.text


def test_mean_trajectory_by_group_and_single_observation_bins():
    data = pd.DataFrame({"t": [0, 0, 1, 1, 2], "y": [1.0, 3.0, 2.0, 4.0, 5.0], "g": list("ababa")})
    summary = figures.prepare_mean_trajectory(data, "t", "y", "g")
    assert summary["n"].tolist() == [1, 1, 1, 1, 1] and summary["lower"].isna().all()
    fig = figures.mean_trajectory_figure(summary, group_label="g")
    assert [t.name for t in fig.data] == ["a", "b"]  # no band trace without a band
    assert fig.layout.legend.title.text == "g"


def test_visits_histogram(large):
    counts = figures.prepare_visit_counts(large, "patient")
    assert counts["subjects"].sum() == 12_500 and counts["visits"].max() == 8
    fig = figures.visits_histogram(counts, subject_label="patient")
    assert isinstance(fig.data[0], go.Bar)
    assert list(fig.data[0].x) == counts["visits"].tolist()
    assert fig.layout.xaxis.title.text == "number of visits"
    assert fig.layout.yaxis.title.text == "number of patients"
