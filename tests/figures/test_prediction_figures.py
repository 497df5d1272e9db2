"""Prediction figures: traces carry lmm_core's forecast, bands nest, tables and inputs."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd

from dashboard.figures import prediction as fp
from dashboard.figures.model_inputs import model_columns, subject_group
from lmm_core import datasets, fit_lmm
from lmm_core.predict.forecast import new_subject_forecast

SLEEP = "Reaction ~ Days + (Days | Subject)"
TRIAL = "y ~ time * arm + (time | patient) + (1 | hospital)"


@cache
def _fit(name: str, formula: str):
    data = datasets.load_example(name)[0]
    return data, fit_lmm(formula, data)


def _forecast(k: int = 3):
    data, res = _fit("sleepstudy", SLEEP)
    rows = data[data["Subject"] == "308"].sort_values("Days")
    future = fp.future_rows({}, "Days", 0, 12, n=25)
    return res, rows, future, new_subject_forecast(res, rows.head(k), future)


def test_forecast_figure_traces_equal_the_forecast():
    res, rows, future, fc = _forecast()
    obs = pd.DataFrame({"x": rows["Days"].head(3), "y": rows["Reaction"].head(3)})
    later = pd.DataFrame({"x": rows["Days"].iloc[3:], "y": rows["Reaction"].iloc[3:]})
    fig = fp.forecast_figure(fc, future["Days"], obs, later=later, x_label="Days")
    names = [t.name for t in fig.data]
    assert names[3:] == [
        "population average", "forecast for this patient", "visits used",
        "later visits (not used)",
    ]  # fmt: skip
    assert all(n.startswith("95% band") for n in names[:3])
    line = fig.data[4]
    np.testing.assert_allclose(line.x, future["Days"])
    np.testing.assert_allclose(line.y, fc.table["fit"])
    np.testing.assert_allclose(fig.data[3].y, res.predict(future, include_re=False))
    np.testing.assert_allclose(fig.data[5].y, obs["y"])
    # bands: closed polygons, widest drawn first, each inside the previous one
    tops = [np.asarray(t.y[:25], float) for t in fig.data[:3]]
    assert np.all(tops[0] > tops[1]) and np.all(tops[1] > tops[2])
    np.testing.assert_allclose(tops[0], fc.table["upper_total"])
    assert "3 visits" in fig.layout.title.text
    no_later = fp.forecast_figure(fc, future["Days"], obs)
    assert len(no_later.data) == 6


def test_unsorted_x_is_drawn_in_order():
    res, rows, future, fc = _forecast()
    shuffled = future.sample(frac=1.0, random_state=1)
    fc2 = new_subject_forecast(res, rows.head(3), shuffled)
    obs = pd.DataFrame({"x": [], "y": []})
    fig = fp.forecast_figure(fc2, shuffled["Days"], obs)
    np.testing.assert_allclose(fig.data[4].x, np.sort(future["Days"]))
    np.testing.assert_allclose(fig.data[4].y, fc.table["fit"])


def test_band_widths_shrink_and_their_figure():
    res, rows, future, _ = _forecast()
    widths = fp.band_widths(res, rows.head(5), future.iloc[[-1]], group="Subject", level=0.95)
    assert list(widths.index) == [0, 1, 2, 3, 4, 5]
    assert (np.diff(widths["total"]) < 0).all() and (np.diff(widths["mean"]) < 0).all()
    assert (widths["fixed"] <= widths["mean"]).all() and (widths["mean"] < widths["total"]).all()
    fig = fp.band_width_figure(widths, x_value=12.0, x_label="Days")
    np.testing.assert_allclose(fig.data[0].y, widths["total"])
    assert "Days = 12" in fig.layout.title.text


def test_forecast_table_thins_rows_and_keeps_the_ends():
    _, _, future, fc = _forecast()
    table = fp.forecast_table(fc, future["Days"], "Days", max_rows=5)
    assert len(table) == 5
    assert table["Days"].iloc[0] == 0 and table["Days"].iloc[-1] == 12
    row = fc.table.iloc[-1]
    assert table["prediction high"].iloc[-1] == row["upper_total"]
    assert table["patient band low"].iloc[-1] == row["lower_mean"]


def test_model_columns_and_future_rows():
    data, res = _fit("trial_small", TRIAL)
    assert model_columns(res) == ("y", ["time", "arm"], ["patient", "hospital"])
    assert subject_group(res, "patient") == "patient"
    assert subject_group(res, "not a group") == "patient"
    rows = fp.future_rows({"arm": "treatment", "time": 99}, "time", 0, 6, n=4)
    assert list(rows["time"]) == [0, 2, 4, 6] and set(rows["arm"]) == {"treatment"}


CHICK = "weight ~ ns(Time, 3) * Diet + (ns(Time, 2) | Chick)"


def test_future_rows_add_the_visit_times_inside_the_range():
    rows = fp.future_rows({"arm": "a"}, "time", 0, 9, n=4, at=[1.0, 3.0000000001, 6, 12, -1])
    assert list(rows["time"]) == [0, 1.0, 3.0000000001, 6, 9]  # 3 gives way to the visit
    assert set(rows["arm"]) == {"a"}
    same = fp.future_rows({}, "time", 0, 9, n=4)
    assert list(same["time"]) == [0, 3, 6, 9]


def test_forecast_table_one_row_per_future_visit_with_the_measured_value():
    res, rows, future, fc = _forecast()
    visits = pd.DataFrame({"x": [12.0, 5.0, 7.5, 99.0], "y": [np.nan, 300.0, 310.0, 1.0]})
    table = fp.forecast_table(fc, future["Days"], "Days", at=visits)
    assert list(table["Days"]) == [5.0, 7.5, 12.0]  # 99 is not a forecast row
    np.testing.assert_allclose(table["measured (not used)"], [300.0, 310.0, np.nan])
    pos = [list(future["Days"]).index(v) for v in (5.0, 7.5, 12.0)]
    np.testing.assert_allclose(table["forecast"], fc.table["fit"].iloc[pos])
    np.testing.assert_allclose(table["prediction low"], fc.table["lower_total"].iloc[pos])
    bare = fp.forecast_table(fc, future["Days"], "Days", at=visits[["x"]])
    assert "measured (not used)" not in bare.columns and len(bare) == 3


def test_spline_forecast_on_a_grid_with_knot_lines_and_narrowing_bands():
    data = datasets.load_example("chickweight")[0]
    res = fit_lmm(CHICK, data)
    rows = data[data["Chick"] == "21"].sort_values("Time")
    future = fp.future_rows({"Diet": "2"}, "Time", 0, 21, at=rows["Time"])
    future["Diet"] = future["Diet"].astype(data["Diet"].dtype)
    assert len(future) == 60 + 10  # Time 0 and 21 are grid ends; 10 visits in between
    fc = new_subject_forecast(res, rows.head(3), future)
    obs = pd.DataFrame({"x": rows["Time"].head(3), "y": rows["weight"].head(3)})
    later = pd.DataFrame({"x": rows["Time"].iloc[3:], "y": rows["weight"].iloc[3:]})
    knots = ((6.0, "ns(Time, 3)"), (10.0, "ns(Time, 2)"), (14.0, "ns(Time, 3)"))
    fig = fp.forecast_figure(fc, future["Time"], obs, later=later, knots=knots, x_label="Time")
    assert fig.data[0].name == "spline knots"
    ys = np.asarray(fig.data[0].y, float)
    assert np.nanmin(ys) == min(fc.table["lower_total"].min(), obs["y"].min(), later["y"].min())
    assert np.nanmax(ys) == max(fc.table["upper_total"].max(), later["y"].max())
    line = next(t for t in fig.data if t.name == "forecast for this patient")
    np.testing.assert_allclose(line.x, future["Time"])
    np.testing.assert_allclose(line.y, fc.table["fit"])
    pop = next(t for t in fig.data if t.name == "population average")
    np.testing.assert_allclose(pop.y, res.predict(future, include_re=False), rtol=1e-12)
    assert len(fp.forecast_figure(fc, future["Time"], obs).data) == 6  # no knots: none drawn
    widths = fp.band_widths(res, rows.head(6), future.iloc[[-1]], group="Chick", level=0.95)
    assert (np.diff(widths["mean"]) <= 1e-9).all() and (np.diff(widths["total"]) <= 1e-9).all()
    assert widths["mean"].iloc[-1] < 0.7 * widths["mean"].iloc[0]


def test_band_width_figure_starts_at_zero_and_keeps_equal_bands_visible():
    res, rows, future, _ = _forecast()
    widths = fp.band_widths(res, rows.head(2), future.iloc[[-1]], group="Subject", level=0.95)
    fig = fp.band_width_figure(widths, x_value=12.0, x_label="Days")
    assert fig.layout.yaxis.rangemode == "tozero"
    assert [t.name for t in fig.data] == ["prediction band (3)", "patient band (2)", "fixed (1)"]
    lines = [t.line.width for t in fig.data]
    assert lines == sorted(lines, reverse=True) and lines[0] > 2 * lines[1] - 1
    assert fig.layout.legend.y < -0.25 and fig.layout.margin.b >= 90
