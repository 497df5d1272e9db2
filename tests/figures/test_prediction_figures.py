"""Prediction figures: traces carry lmm_core's forecast, bands nest, tables and inputs."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd

from dashboard.figures import prediction as fp
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
    assert fp.model_columns(res) == ("y", ["time", "arm"], ["patient", "hospital"])
    assert fp.subject_group(res, "patient") == "patient"
    assert fp.subject_group(res, "not a group") == "patient"
    rows = fp.future_rows({"arm": "treatment", "time": 99}, "time", 0, 6, n=4)
    assert list(rows["time"]) == [0, 2, 4, 6] and set(rows["arm"]) == {"treatment"}
