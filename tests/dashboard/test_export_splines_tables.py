"""Result tables and the HTML report of a spline model (issue 13): coefficient names with
commas survive the CSV, the report shows the formula as written, the knots the fit learned
(a Bases table), the code with those knots, and curved trajectories."""

from __future__ import annotations

import datetime as dt
import io
import re

import numpy as np
import pandas as pd
import pytest

from dashboard.analysis.records import FitRecord
from dashboard.export.figures import model_figures
from dashboard.export.report import build_report
from dashboard.export.results import (
    bases_table,
    blup_table,
    fixed_effects_table,
    to_csv_bytes,
    variance_components_table,
)
from dashboard.io.roles import Roles
from lmm_core import datasets, fit_lmm

FORMULA = "weight ~ ns(Time, 3) * Diet + (ns(Time, 2) | Chick)"
WHEN = dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def chick():
    data, info = datasets.load_example("chickweight")
    return fit_lmm(FORMULA, data), data, Roles.from_dict(info.roles)


def _roundtrip(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(to_csv_bytes(frame)))


def test_coefficient_names_with_commas_survive_the_csv(chick):
    result, _, _ = chick
    table = fixed_effects_table(result)
    raw = to_csv_bytes(table).decode("utf-8")
    assert '\n"ns(Time, 3)1",' in raw and '\n"ns(Time, 3)2:Diet3",' in raw
    back = _roundtrip(table)
    assert list(back["term"]) == result.x_names
    np.testing.assert_array_equal(back["estimate"].to_numpy(), result.beta)
    blups = _roundtrip(blup_table(result))
    assert list(blups["effect"].unique()) == ["(Intercept)", "ns(Time, 2)1", "ns(Time, 2)2"]
    vc = _roundtrip(variance_components_table(result))
    assert {"ns(Time, 2)1", "ns(Time, 2)2"} <= set(vc["var1"].dropna())


def test_bases_table(chick):
    result, _, _ = chick
    table = bases_table(result)
    assert table.to_dict("records") == [
        {"term": "ns(Time, 3)", "kind": "natural cubic spline", "knots": "6, 14",
         "boundary_knots": "0, 21", "df": 3},
        {"term": "ns(Time, 2)", "kind": "natural cubic spline", "knots": "10",
         "boundary_knots": "0, 21", "df": 2},
    ]  # fmt: skip
    sleep = datasets.load_example("sleepstudy")[0]
    poly = fit_lmm("Reaction ~ poly(Days, 2, raw = TRUE) + bs(Days, df = 3) + (1 | Subject)", sleep)
    rows = bases_table(poly).to_dict("records")
    assert rows[0] == {"term": "poly(Days, 2, raw = TRUE)", "kind": "raw polynomial of degree 2",
                       "knots": "", "boundary_knots": "", "df": 2}  # fmt: skip
    assert rows[1]["kind"] == "cubic B-spline" and rows[1]["knots"] == "none"
    assert rows[1]["boundary_knots"] == "0, 9" and rows[1]["df"] == 3
    assert bases_table(fit_lmm("Reaction ~ Days + (1 | Subject)", sleep)).empty


def test_report_of_a_spline_model(chick):
    result, data, roles = chick
    record = FitRecord(name="M2: curved growth", formula=FORMULA, reml=True, data_key="k",
                       data_name="chickweight", result=result, seconds=0.3)  # fmt: skip
    figs = model_figures(result, data, roles)
    html = build_report(record, data, figures=list(figs.values()), generated=WHEN)
    assert f"Formula: <code>{FORMULA}</code>" in html  # as written
    bases = html[html.index("<h2>Bases</h2>") : html.index("<h2>Fixed effects")]
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", bases)
    assert cells == ["ns(Time, 3)", "natural cubic spline", "6, 14", "0, 21", "3",
                     "ns(Time, 2)", "natural cubic spline", "10", "0, 21", "2"]  # fmt: skip
    assert '<td class="t">ns(Time, 3)2:Diet4</td>' in html
    assert "ns(Time, knots = c(6, 14), Boundary.knots = c(0, 21))" in html  # R and Python code
    assert "library(splines)" in html
    # the report's trajectories are curves: model lines at more times than the visits
    title, traj = figs["trajectories"]
    assert f"<figcaption>{title}</figcaption>" in html
    lines = [t for t in traj.data if t.mode == "lines" and t.x is not None]
    times = [np.unique(np.asarray(t.x, dtype=float)[np.isfinite(np.asarray(t.x, float))])
             for t in lines]  # fmt: skip
    assert max(len(x) for x in times) > data["Time"].nunique()


def test_report_without_splines_has_no_bases_section():
    data = datasets.load_example("sleepstudy")[0]
    result = fit_lmm("Reaction ~ Days + (Days | Subject)", data)
    record = FitRecord(name="M1", formula=result.formula, reml=True, data_key="k",
                       data_name="sleepstudy", result=result, seconds=0.1)  # fmt: skip
    html = build_report(record, data, generated=WHEN)
    assert "<h2>Bases</h2>" not in html and "library(splines)" not in html
