"""Trajectory figures: subject choice, prepared numbers equal lmm_core's, traces and hover."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from dashboard.figures import trajectories as ft
from lmm_core import datasets, fit_lmm

SLEEP = "Reaction ~ Days + (Days | Subject)"
TRIAL = "y ~ time * arm + (time | patient) + (1 | hospital)"


@cache
def _fit(name: str, formula: str):
    data = datasets.load_example(name)[0]
    return data, fit_lmm(formula, data)


def test_choose_subjects_modes():
    visits = pd.Series([3, 8, 1, 8, 5], index=["a", "b", "c", "d", "e"])
    assert ft.choose_subjects(visits, "most", 2) == ["b", "d"]
    assert ft.choose_subjects(visits, "fewest", 2) == ["c", "a"]
    dev = pd.Series([0.1, 5.0, 2.0], index=["a", "e", "c"])
    assert ft.choose_subjects(visits, "deviation", 2, deviation=dev) == ["e", "c"]
    assert ft.choose_subjects(visits, "pick", 9, picked=["d", "zz", "a"]) == ["d", "a"]
    one = ft.choose_subjects(visits, "random", 3, seed=1)
    assert one == ft.choose_subjects(visits, "random", 3, seed=1) and len(set(one)) == 3
    assert any(ft.choose_subjects(visits, "random", 3, seed=s) != one for s in range(2, 8))
    assert len(ft.choose_subjects(visits, "most", 99)) == 5
    with pytest.raises(ValueError, match="deviation"):
        ft.choose_subjects(visits, "deviation", 2)


def test_prepared_values_equal_the_model():
    data, res = _fit("sleepstudy", SLEEP)
    prep = ft.prepare_trajectories(res, data, "Subject", "Days", ["308", "335"])
    assert set(prep.observed["subject"]) == {"308", "335"} and len(prep.observed) == 20
    rows = data[data["Subject"].astype(str) == "335"].sort_values("Days")
    obs = prep.observed[prep.observed["subject"] == "335"]
    np.testing.assert_allclose(obs["fitted"], res.predict(rows))
    np.testing.assert_allclose(obs["y"], rows["Reaction"])
    pop = prep.population
    fe = res.fixef
    np.testing.assert_allclose(pop["fit"], fe["(Intercept)"] + fe["Days"] * pop["x"])
    assert (pop["lower"] < pop["fit"]).all() and (pop["upper"] > pop["fit"]).all()
    assert obs["cluster_fit"].isna().all() and prep.held == {}


def test_sleepstudy_figure_traces_and_hover():
    data, res = _fit("sleepstudy", SLEEP)
    prep = ft.prepare_trajectories(res, data, "Subject", "Days", ["308", "335", "372"])
    fig = ft.trajectories_figure(prep, subject_label="Subject", x_label="Days")
    names = [t.name for t in fig.data]
    assert names == ["95% confidence band", "population average", "observed", "Subject curves"]
    band, curve, points, lines = fig.data
    assert band.fill == "toself" and len(band.x) == 2 * len(curve.x)
    assert isinstance(points, go.Scatter)  # few points: SVG, not WebGL
    assert {c[0] for c in lines.customdata if c[0]} == {"308", "335", "372"}
    assert "Subject <b>%{customdata[0]}</b>" in lines.hovertemplate
    assert np.isnan(np.asarray(lines.x, dtype=float)).sum() == 2  # breaks between subjects


def test_trial_by_arm_facets_clusters_and_highlight():
    data, res = _fit("trial_small", TRIAL)
    subjects = ["H0001-P001", "H0001-P002", "H0002-P003"]
    prep = ft.prepare_trajectories(
        res, data, "patient", "time", subjects, by="arm", cluster="hospital",
        cluster_group="hospital",
    )  # fmt: skip
    assert list(pd.unique(prep.population["group"])) == ["control", "treatment"]
    obs = prep.observed
    b_h = res.ranef["hospital"]["(Intercept)"].reindex(obs["cluster"]).to_numpy()
    rows = data[data["patient"].isin(subjects)].sort_values(["arm", "patient", "time"])
    assert list(rows["patient"]) == list(obs["subject"])
    xb = res.predict(rows, include_re=False)
    np.testing.assert_allclose(obs["cluster_fit"], xb + b_h, rtol=1e-12)
    fig = ft.trajectories_figure(
        prep, subject_label="patient", by_label="arm", cluster_label="hospital", facet=True,
        highlight=["H0001-P002"],
    )  # fmt: skip
    names = [t.name for t in fig.data]
    assert names.count("hospital curves") == 2  # one trace per arm
    assert names[-1] == "patient H0001-P002"
    assert fig.data[-1].line.width > 3
    assert [a.text for a in fig.layout.annotations] == ["arm = control", "arm = treatment"]
    assert fig.data[-1].xaxis in ("x", "x2")
    no_cluster = ft.trajectories_figure(prep, by_label="arm", show_clusters=False)
    assert not any("cluster" in t.name for t in no_cluster.data)


def test_many_points_use_webgl():
    data, res = _fit("trial_small", TRIAL)
    subjects = list(pd.unique(data["patient"]))[:250]
    prep = ft.prepare_trajectories(res, data, "patient", "time", subjects)
    assert len(prep.observed) > 1000
    fig = ft.trajectories_figure(prep)
    assert {type(t) for t in fig.data[2:]} == {go.Scattergl}
    assert "250 subject(s)" in fig.layout.title.text
