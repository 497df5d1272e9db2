"""Shrinkage figures: arrows, marker sizes, ellipses, caterpillar, summary by n."""

from __future__ import annotations

from functools import cache

import numpy as np

from dashboard.base.constants import z_value
from dashboard.figures import shrinkage as fs
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
    assert fig.layout.shapes[0].x0 == est.table["population:Days"].iloc[0]


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
