"""Shrinkage figures: arrows, marker sizes, ellipses, caterpillar, summary by n."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest

from dashboard.base.constants import z_value
from dashboard.figures import shrinkage as fs
from dashboard.figures import shrinkage_curves as fsc
from lmm_core import datasets, fit_lmm
from lmm_core.predict.per_group import shrinkage_estimates

SLEEP = "Reaction ~ Days + (Days | Subject)"
TRIAL = "y ~ time * arm + (time | patient) + (1 | hospital)"


@cache
def _est(name: str, formula: str, group: str):
    data = datasets.load_example(name)[0]
    res = fit_lmm(formula, data)
    return res, shrinkage_estimates(res, group)


def _arrowheads(trace) -> int:
    return int(np.sum(np.asarray(trace.marker.size) > 0))


def test_1d_arrows_sizes_and_hover():
    _, est = _est("sleepstudy", SLEEP, "Subject")
    fig = fs.shrinkage_1d_figure(est, ["Days"], subject_label="Subject")
    arrows, own, mixed, pop = fig.data
    assert arrows.name == "own → mixed" and _arrowheads(arrows) == 18
    both = fs.shrinkage_1d_figure(est)  # every column: one panel each
    assert [t.name for t in both.data].count("own → mixed") == 2
    assert [a.text for a in both.layout.annotations][1].startswith("Days: own")
    assert arrows.marker.symbol == "arrow" and arrows.marker.angleref == "previous"
    np.testing.assert_allclose(own.x, est.table["own:Days"])
    np.testing.assert_allclose(mixed.x, est.table["mixed:Days"])
    assert set(own.y) == {1} and set(mixed.y) == {0}
    assert "Subject <b>%{customdata[0]}</b>" in own.hovertemplate
    assert "factor" in own.hovertemplate and "population" in own.hovertemplate
    assert {row[0] for row in own.customdata} == set(est.table.index)
    assert len(fig.layout.shapes) == 1  # one population value
    # the mean of the subjects' population values (equal up to rounding)
    assert fig.layout.shapes[0].x0 == pytest.approx(est.table["population:Days"].iloc[0], rel=1e-12)


def test_marker_size_grows_with_observations():
    res, _ = _est("sleepstudy", SLEEP, "Subject")
    data = datasets.load_example("sleepstudy")[0]
    data = data[~((data["Subject"].astype(str) == "308") & (data["Days"] > 3))]
    est = shrinkage_estimates(fit_lmm(SLEEP, data), "Subject")
    own = fs.shrinkage_1d_figure(est, ["Days"]).data[1]
    sizes = dict(zip([r[0] for r in own.customdata], own.marker.size, strict=True))
    assert sizes["308"] < sizes["309"]


def test_2d_has_ellipse_per_population_value_and_arrows():
    _, est = _est("trial_small", TRIAL, "patient")
    fig = fs.shrinkage_2d_figure(est, "(Intercept)", "time", subject_label="patient")
    names = [t.name for t in fig.data]
    assert names.count("95% of the population (model)") == 2  # one per arm
    assert int(est.table["fitted_own"].sum()) > fs.MAX_ARROWS
    assert _arrowheads(fig.data[0]) == fs.MAX_ARROWS  # a sample
    (pop,) = [t for t in fig.data if t.name == "population value"]
    assert sorted(np.round(pop.y, 6)) == sorted(
        set(np.round(est.table["population:time"].dropna(), 6))
    )
    assert "patient <b>" in fig.data[1].hovertemplate


def test_sampling_limits_arrows():
    _, est = _est("trial_small", TRIAL, "patient")
    levels = fs.sample_levels(est, max_levels=50, seed=2)
    assert len(levels) == 50 and levels == fs.sample_levels(est, max_levels=50, seed=2)
    assert est.table.loc[levels, "fitted_own"].all()
    fig = fs.shrinkage_1d_figure(est, ["time"], levels=levels)
    assert _arrowheads(fig.data[0]) == 50


def test_caterpillar_sorted_with_intervals():
    _, est = _est("sleepstudy", SLEEP, "Subject")
    fig = fs.caterpillar_figure(est, ["(Intercept)"], subject_label="Subject")
    assert [t.name for t in fig.data] == ["interval includes 0", "interval excludes 0"]
    xs = np.concatenate([t.x for t in fig.data])
    ys = np.concatenate([t.y for t in fig.data])
    order = np.argsort(ys)
    assert np.all(np.diff(xs[order]) >= 0) and len(xs) == 18
    t = fig.data[1]
    b = est.table["blup:(Intercept)"]
    sd = est.table["blup_sd:(Intercept)"]
    assert np.all(np.abs(t.x) > np.asarray(t.error_x.array))
    z = z_value(0.95)  # 1.96
    np.testing.assert_allclose(sorted(t.error_x.array), sorted(z * sd[np.abs(b) > z * sd]))
    assert len(fig.layout.yaxis.ticktext) == 18
    assert len(fs.caterpillar_figure(est).data) == 4  # two panels


def test_caterpillar_thins_many_levels_by_rank():
    _, est = _est("trial_small", TRIAL, "patient")
    ranks = fs.caterpillar_rows(500, max_rows=100)
    assert len(ranks) == 100 and ranks[0] == 0 and ranks[-1] == 499
    fig = fs.caterpillar_figure(est, ["time"], max_rows=100)
    xs = np.concatenate([t.x for t in fig.data])
    assert len(xs) == 100
    blups = est.table["blup:time"]
    assert xs.min() == blups.min() and xs.max() == blups.max()
    assert not fig.layout.yaxis.showticklabels
    assert "500 subjects, sorted" in fig.layout.yaxis.title.text


def test_shrinkage_by_n_moves_most_with_few_observations():
    _, est = _est("trial_small", TRIAL, "patient")
    table = fs.shrinkage_by_n(est)
    assert table["subjects"].sum() == est.table["fitted_own"].sum()
    for c in ("(Intercept)", "time"):
        assert table[f"moved: {c}"].iloc[0] > table[f"moved: {c}"].iloc[-1]
    # the slope's own estimate from 2 visits is poor: the model keeps least of it
    assert table["kept: time"].iloc[0] < table["kept: time"].iloc[-1]


CHICK = "weight ~ ns(Time, 3) * Diet + (ns(Time, 2) | Chick)"
POLY = "Reaction ~ poly(Days, 2) + (poly(Days, 2) | Subject)"


def test_main_centres_keep_the_values_shared_by_most_subjects():
    res, est = _est("chickweight", CHICK, "Chick")
    cols = ["(Intercept)", "ns(Time, 2)1"]
    every = fs.population_centres(est, cols)
    assert len(every) > fs.MAX_ELLIPSES  # chicks with missed visits have their own value
    main = fs.main_centres(est, cols)
    assert len(main) == fs.MAX_ELLIPSES
    assert sorted(main["subjects"]) == sorted(every["subjects"])[-fs.MAX_ELLIPSES :]
    assert main["population:(Intercept)"].is_monotonic_increasing
    fig = fs.shrinkage_2d_figure(est, *cols)
    ellipses = [t for t in fig.data if t.name == "95% of the population (model)"]
    assert len(ellipses) == fs.MAX_ELLIPSES
    centre = next(t for t in fig.data if t.name == "population value")
    assert sum(centre.customdata) == main["subjects"].sum()


def test_basis_effects_and_curve_levels():
    res, est = _est("chickweight", CHICK, "Chick")
    assert fsc.basis_effects(res, est.columns) == ["ns(Time, 2)1", "ns(Time, 2)2"]
    sres, sest = _est("sleepstudy", SLEEP, "Subject")
    assert fsc.basis_effects(sres, sest.columns) == []
    pres, pest = _est("sleepstudy", POLY, "Subject")
    assert fsc.basis_effects(pres, pest.columns) == ["poly(Days, 2)1", "poly(Days, 2)2"]
    levels = fsc.curve_levels(est, k=4)
    n = est.table.loc[levels, "n"]
    assert list(n) == sorted(n) and n.iloc[0] == est.table.loc[est.table["fitted_own"], "n"].min()
    assert all(est.table.loc[levels, "fitted_own"])


def test_curves_equal_own_fit_mixed_model_and_population():
    res, est = _est("chickweight", CHICK, "Chick")
    data = datasets.load_example("chickweight")[0]
    levels = ["1", "21"]
    curves, points = fsc.prepare_curves(res, data, est, "Time", levels, n_points=30)
    assert list(pd.unique(curves["level"])) == levels and len(curves) >= 60
    for v in levels:
        c = curves[curves["level"] == v]
        rows = data[data["Chick"] == v].sort_values("Time")
        grid = rows.iloc[[0] * len(c)].assign(Time=c["x"].to_numpy())
        np.testing.assert_allclose(c["mixed"], res.predict(grid), rtol=1e-12)
        np.testing.assert_allclose(c["population"], res.predict(grid, include_re=False))
        # own: least squares of the chick's weights on its own basis, evaluated on the grid
        basis = res.design.bases["ns(Time, 2)"]
        z = np.column_stack([np.ones(len(rows)), basis.evaluate(rows["Time"].to_numpy(float))])
        coef = np.linalg.lstsq(z, rows["weight"].to_numpy(float), rcond=None)[0]
        zg = np.column_stack([np.ones(len(c)), basis.evaluate(c["x"].to_numpy())])
        np.testing.assert_allclose(c["own"], zg @ coef, rtol=1e-9)
        p = points[points["level"] == v]
        np.testing.assert_allclose(p["y"], rows["weight"])
    fig = fsc.shrinkage_curves_figure(
        curves, points, est.table["n"], subject_label="Chick", x_label="Time", y_label="weight"
    )
    assert [a.text for a in fig.layout.annotations[:2]] == ["Chick 1 (n = 12)", "Chick 21 (n = 12)"]
    names = [t.name for t in fig.data]
    assert names == ["observed", "population", "mixed model", "own data only"] * 2
    assert [t.showlegend for t in fig.data].count(True) == 4


def test_curve_panels_share_one_vertical_scale():
    res, est = _est("sleepstudy", POLY, "Subject")
    data = datasets.load_example("sleepstudy")[0]
    levels = fsc.curve_levels(est)
    assert len(levels) == fsc.CURVE_PANELS
    curves, points = fsc.prepare_curves(res, data, est, "Days", levels)
    fig = fsc.shrinkage_curves_figure(curves, points, est.table["n"])
    axes = [fig.layout[f"yaxis{i if i > 1 else ''}"] for i in range(1, 7)]
    assert len({a.matches or f"y{i + 1}" for i, a in enumerate(axes)}) == 1  # one scale
    moved = [float(est.table.loc[v, "n"]) for v in levels]
    assert moved == [10.0] * 6  # balanced: chosen by how far they moved
