"""Figures on small screens and projectors (issue 11 item 10).

- With 60 patients the caterpillar labels overlapped (760 px for 60 names at 13 px): the
  height now grows with the number of levels and the names are thinned so that every
  labelled row has at least ``CATERPILLAR_ROW_PX`` pixels.
- Plotly's toolbar covered the titles: :func:`dashboard.views.layout.reserve_modebar` keeps the
  top strip free and pins the title below it, on every figure the pages show.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import plotly.graph_objects as go
import pytest

from dashboard.analysis import compare as compare_view
from dashboard.analysis.records import FitRecord
from dashboard.figures import shrinkage as fs
from dashboard.figures import teach as ft
from dashboard.figures.explore import prepare_spaghetti, spaghetti_figure
from dashboard.figures.style import MODEBAR_PX, TEMPLATE, reserve_modebar
from dashboard.views.layout import short_text
from lmm_core import datasets, fit_lmm
from lmm_core.predict.per_group import shrinkage_estimates
from lmm_core.simulation.teaching import fit_lab, simulate_lab
from lmm_core.simulation.teaching_truth import LabTruth


@cache
def _patients(n: int):
    lab = simulate_lab(LabTruth(n_subjects=n, n_visits=5), seed=3)
    return shrinkage_estimates(fit_lab(lab), "subject")


def _label_spacing(fig: go.Figure, axis: str = "yaxis") -> float:
    """Pixels between two neighbouring tick labels of a caterpillar panel, as drawn."""
    shown = reserve_modebar(fig)  # as the page shows it
    m = shown.layout.margin
    plot_px = shown.layout.height - m.t - m.b
    ax = shown.layout[axis]
    n_rows = len(shown.data[0].y) + len(shown.data[1].y)
    ticks = np.asarray(ax.tickvals)
    rows_between = float(np.min(np.diff(ticks))) if len(ticks) > 1 else n_rows
    return plot_px * rows_between / n_rows


def test_caterpillar_of_60_patients_labels_every_row_without_overlap():
    est = _patients(60)
    fig = fs.caterpillar_figure(est, ["time"], subject_label="patient")
    assert len(fig.layout.yaxis.ticktext) == 60  # every patient named
    assert _label_spacing(fig) >= fs.CATERPILLAR_ROW_PX
    assert fig.layout.height > fs.caterpillar_figure(_patients(20), ["time"]).layout.height
    assert fig.layout.height >= 60 * fs.CATERPILLAR_ROW_PX


def test_caterpillar_of_many_patients_thins_the_names():
    est = _patients(200)
    fig = fs.caterpillar_figure(est, ["(Intercept)", "time"], subject_label="patient")
    assert fig.layout.height == fs.CATERPILLAR_MAX_HEIGHT
    names = list(fig.layout.yaxis.ticktext)
    assert 20 < len(names) < 200  # thinned, not dropped
    assert set(names) <= set(est.table.index.astype(str))
    assert _label_spacing(fig) >= fs.CATERPILLAR_ROW_PX
    assert _label_spacing(fig, "yaxis2") >= fs.CATERPILLAR_ROW_PX or not fig.layout.yaxis2.tickvals


@pytest.mark.parametrize("n_rows", [1, 5, 18, 30, 60, 61, 100, 250, 600])
def test_caterpillar_layout_spacing(n_rows):
    height, step = fs.caterpillar_layout(n_rows)
    m = fs.CATERPILLAR_MARGIN
    plot_px = height - m["t"] - m["b"] - MODEBAR_PX
    assert plot_px * step / n_rows >= fs.CATERPILLAR_ROW_PX or n_rows == 1
    assert 380 <= height <= fs.CATERPILLAR_MAX_HEIGHT
    assert step == 1 or plot_px * (step - 1) / n_rows < fs.CATERPILLAR_ROW_PX  # no over-thin


def _figures() -> dict[str, go.Figure]:
    data, info = datasets.load_example("sleepstudy")
    res = fit_lmm("Reaction ~ Days + (Days | Subject)", data)
    est = shrinkage_estimates(res, "Subject")
    prep = prepare_spaghetti(data, "Subject", "Days", "Reaction")
    intercept = "Reaction ~ Days + (1 | Subject)"
    criteria = compare_view.build_comparison(
        [
            FitRecord("M1", res.formula, True, "k", "sleepstudy", res, 0.0),
            FitRecord("M2", intercept, True, "k", "sleepstudy", fit_lmm(intercept, data), 0.0),
        ]
    ).criteria
    return {
        "spaghetti": spaghetti_figure(prep, time_label="Days", outcome_label="Reaction"),
        "shrinkage 1d": fs.shrinkage_1d_figure(est, ["Days"]),
        "caterpillar": fs.caterpillar_figure(est),
        "criteria": compare_view.criteria_figure(criteria),
        "weight curve": ft.weight_curve_figure(2.0, 4.0, 6, 0.7),
        "bare": go.Figure(layout={"title": {"text": "no template"}}),
    }


def test_every_title_sits_below_the_toolbar_strip():
    for name, fig in _figures().items():
        top_before = fig.layout.margin.t
        if top_before is None:
            template = fig.layout.template
            top_before = (
                template.layout.margin.t
                if template is not None and template.layout.margin.t is not None
                else 100
            )
        shown = reserve_modebar(fig)
        assert shown.layout.margin.t == top_before + MODEBAR_PX, name
        if shown.layout.title.text:
            title = shown.layout.title
            assert (title.yref, title.y, title.yanchor) == ("container", 1, "top"), name
            assert title.pad.t >= MODEBAR_PX, name
            assert (title.x, title.xanchor) == (0, "left"), name
        reserve_modebar(shown)  # a second call changes nothing
        assert shown.layout.margin.t == top_before + MODEBAR_PX, name


def test_template_name_is_known_and_short_text():
    assert TEMPLATE == "lmm"
    assert short_text("Reaction ~ Days + (Days | Subject)", 20) == "Reaction ~ Days + (…"
    assert short_text("y ~ x", 20) == "y ~ x"
    assert len(short_text("a" * 100)) <= 20
    assert short_text("y ~\n   x  + z") == "y ~ x + z"
