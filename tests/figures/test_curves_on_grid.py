"""Trajectory curves on a fine grid: spline and polynomial models, knots, highlight, clusters."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.figures import trajectories as ft
from dashboard.figures.knots import axis_knots
from lmm_core import datasets, fit_lmm

CHICK = "weight ~ ns(Time, 3) * Diet + (ns(Time, 2) | Chick)"
TRIAL = "y ~ time * arm + (time | patient) + (1 | hospital)"


@cache
def _fit(name: str, formula: str):
    data = datasets.load_example(name)[0]
    return data, fit_lmm(formula, data)


def test_chick_curves_pass_through_the_fitted_visits_and_bend_between_them():
    data, res = _fit("chickweight", CHICK)
    chicks = ["1", "18", "21", "35"]
    prep = ft.prepare_trajectories(res, data, "Chick", "Time", chicks, by="Diet")
    obs, curves = prep.observed, prep.curves
    assert int(curves["visit"].sum()) == len(obs)
    for sid in chicks:
        c = curves[curves["subject"] == sid]
        o = obs[obs["subject"] == sid]
        assert c["x"].is_monotonic_increasing and len(c) >= ft.GRID_POINTS
        assert c["x"].iloc[0] == o["x"].min() and c["x"].iloc[-1] == o["x"].max()
        np.testing.assert_allclose(c.loc[c["visit"], "fitted"], o["fitted"], rtol=1e-12)
        assert set(c["group"]) == set(o["group"])
    # chick 1 between its visits: the spline, not the straight segments
    c1 = curves[curves["subject"] == "1"]
    o1 = obs[obs["subject"] == "1"]
    straight = np.interp(c1["x"], o1["x"], o1["fitted"])
    assert np.max(np.abs(c1["fitted"] - straight)) > 0.5
    grid = data[data["Chick"] == "1"].iloc[[0] * len(c1)].assign(Time=c1["x"].to_numpy())
    np.testing.assert_allclose(c1["fitted"], res.predict(grid), rtol=1e-12)
    assert prep.knots == ((6.0, "ns(Time, 3)"), (10.0, "ns(Time, 2)"), (14.0, "ns(Time, 3)"))
    assert prep.varying == ()


def test_knots_of_the_axis_column_only_and_shared_knots():
    data, res = _fit("chickweight", CHICK)
    assert axis_knots(res, "weight") == ()
    _, poly = _fit("sleepstudy", "Reaction ~ poly(Days, 2) + (poly(Days, 2) | Subject)")
    assert axis_knots(poly, "Days") == ()
    both = fit_lmm("weight ~ bs(Time, knots = c(10)) + (ns(Time, knots = c(10)) | Chick)", data)
    (knot,) = axis_knots(both, "Time")
    assert knot[0] == 10.0 and set(knot[1].split(" and ")) == set(both.design.bases)
    scaled = fit_lmm("weight ~ ns(Time / 7, 3) + (1 | Chick)", data)
    assert axis_knots(scaled, "Time") == ()


def test_knot_lines_span_the_drawn_values_in_every_panel():
    data, res = _fit("chickweight", CHICK)
    prep = ft.prepare_trajectories(res, data, "Chick", "Time", ["1", "21", "35", "45"], by="Diet")
    fig = ft.trajectories_figure(prep, subject_label="Chick", x_label="Time", by_label="Diet")
    knots = [t for t in fig.data if t.name == "spline knots"]
    assert len(knots) == 1 and fig.data[0] is knots[0]  # drawn first, under everything
    xs, ys = np.asarray(knots[0].x, float), np.asarray(knots[0].y, float)
    assert set(xs[np.isfinite(xs)]) == {6.0, 10.0, 14.0}
    drawn = [prep.population["lower"], prep.population["upper"], prep.observed["y"]]
    drawn = np.concatenate([*drawn, prep.curves["fitted"]])
    assert np.nanmin(ys) == drawn.min() and np.nanmax(ys) == drawn.max()
    assert list(knots[0].customdata[:1]) == ["ns(Time, 3)"]
    facets = ft.trajectories_figure(prep, by_label="Diet", facet=True)
    panels = [t for t in facets.data if t.name == "spline knots"]
    assert [t.xaxis for t in panels] == ["x", "x2", "x3", "x4"]
    assert [t.showlegend for t in panels] == [True, False, False, False]


def test_highlight_runs_on_the_grid_with_dots_at_the_visits():
    data, res = _fit("chickweight", CHICK)
    prep = ft.prepare_trajectories(res, data, "Chick", "Time", ["1", "21"])
    fig = ft.trajectories_figure(prep, subject_label="Chick", highlight=["21"])
    trace = fig.data[-1]
    assert trace.name == "Chick 21"
    c = prep.curves[prep.curves["subject"] == "21"]
    np.testing.assert_allclose(trace.x, c["x"])
    sizes = np.asarray(trace.marker.size)
    assert (sizes > 0).sum() == (prep.observed["subject"] == "21").sum()
    np.testing.assert_allclose(np.asarray(trace.x)[sizes > 0], c.loc[c["visit"], "x"])


def test_cluster_curves_on_the_grid_equal_population_plus_hospital_effect():
    data, res = _fit("trial_small", TRIAL)
    subjects = ["H0001-P001", "H0002-P003"]
    prep = ft.prepare_trajectories(
        res, data, "patient", "time", subjects, cluster="hospital", cluster_group="hospital"
    )
    curves = prep.curves
    assert len(curves) > 4 * len(prep.observed)
    first = data.drop_duplicates("patient").set_index("patient")
    rows = first.loc[curves["subject"]].reset_index()
    rows["time"] = curves["x"].to_numpy()
    b_h = res.ranef["hospital"]["(Intercept)"].reindex(curves["cluster"]).to_numpy()
    np.testing.assert_allclose(
        curves["cluster_fit"], res.predict(rows, include_re=False) + b_h, rtol=1e-12
    )
    # a straight-line model: the grid curve lies on the segments between fitted visits
    for sid in subjects:
        c, o = curves[curves["subject"] == sid], prep.observed[prep.observed["subject"] == sid]
        np.testing.assert_allclose(c["fitted"], np.interp(c["x"], o["x"], o["fitted"]))


def test_a_covariate_that_changes_between_visits_is_reported():
    data = datasets.load_example("sleepstudy")[0].copy()
    data["dose"] = data["Days"] * 10.0 + (data["Subject"] == "308") * 1.0
    data["Age"] = data["Subject"].map({s: 20 + i for i, s in enumerate(data["Subject"].unique())})
    res = fit_lmm("Reaction ~ Days + dose + Age + (1 | Subject)", data)
    prep = ft.prepare_trajectories(res, data, "Subject", "Days", ["308", "309"])
    assert prep.varying == ("dose",)


def test_webgl_counts_the_grid_points():
    data, res = _fit("chickweight", CHICK)
    chicks = list(pd.unique(data["Chick"]))[:20]  # 230 visits, about 1,100 grid points
    prep = ft.prepare_trajectories(res, data, "Chick", "Time", chicks)
    assert len(prep.observed) < 1000 < len(prep.curves) + len(prep.observed)
    fig = ft.trajectories_figure(prep)
    assert isinstance([t for t in fig.data if t.name == "subject curves"][0], go.Scattergl)
