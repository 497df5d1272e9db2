"""Prediction page in AppTest: the numbers shown equal lmm_core's new-subject forecast."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dashboard.help.texts import help_text
from dashboard.state.session import Keys
from lmm_core import datasets
from lmm_core.predict.forecast import new_subject_forecast
from tests.app.conftest import figures_on, texts
from tests.app.test_trajectories_page import SLEEP, TRIAL, _fit, inject

PAGE = "pages/prediction.py"


def _page(at):
    at.switch_page(PAGE).run()
    assert not at.exception
    return at


def _forecast_at(name, formula, patient, k, subject, time, times, extra=None):
    """lmm_core's forecast for ``patient`` from the first ``k`` visits at ``times``."""
    data = datasets.load_example(name)[0]
    res = _fit(name, formula)
    rows = data[data[subject].astype(str) == patient].sort_values(time)
    observed = rows.head(k).drop(columns=[subject])
    covs = {c: rows[c].iloc[0] for c in (extra or [])}
    future = pd.DataFrame({time: np.asarray(times, float)})
    for c, v in covs.items():
        future[c] = pd.Series([v] * len(future), dtype=data[c].dtype)
    return new_subject_forecast(res, observed, future), rows


def _shown_table(at):
    (table,) = [df for df in at.dataframe if "forecast" in df.value.columns]
    return table.value


def _line(at, name="forecast for this patient"):
    (line,) = [t for t in figures_on(at)[0]["data"] if t.get("name") == name]
    return np.asarray(line["x"], float), np.asarray(line["y"], float)


def test_sleepstudy_forecast_equals_lmm_core_and_narrows(app):
    at = _page(inject(app, "sleepstudy", SLEEP))
    assert at.title[0].value == "Prediction"
    patient = at.selectbox(key=Keys.PRED_W + "patient").value
    assert at.number_input(key=Keys.PRED_W + "k").value == 2
    shown = _shown_table(at)
    assert list(shown["Days"]) == [2, 3, 4, 5, 6, 7, 8, 9]  # one row per later visit
    fc, rows = _forecast_at("sleepstudy", SLEEP, patient, 2, "Subject", "Days", shown["Days"])
    np.testing.assert_allclose(shown["forecast"], fc.table["fit"], rtol=1e-9)
    np.testing.assert_allclose(shown["prediction high"], fc.table["upper_total"], rtol=1e-9)
    np.testing.assert_allclose(shown["measured (not used)"], rows["Reaction"].iloc[2:])
    x, y = _line(at)
    assert len(x) >= 60 and set(range(10)) <= set(x)  # a grid holding every visit time
    fc_line, _ = _forecast_at("sleepstudy", SLEEP, patient, 2, "Subject", "Days", x)
    np.testing.assert_allclose(y, fc_line.table["fit"], rtol=1e-9)
    assert "still mostly trusts the population" in texts(at.markdown)
    width2 = (shown["prediction high"] - shown["prediction low"]).iloc[-1]

    at.number_input(key=Keys.PRED_W + "k").set_value(6).run()
    assert not at.exception
    shown6 = _shown_table(at)
    assert list(shown6["Days"]) == [6, 7, 8, 9]
    assert (shown6["prediction high"] - shown6["prediction low"]).iloc[-1] < width2
    assert "the model follows this patient" in texts(at.markdown)
    assert "rate of change" in texts(at.markdown)
    widths = figures_on(at)[1]
    y = np.asarray(widths["data"][0]["y"], float)
    assert len(y) == 7 and np.all(np.diff(y) < 0)


def test_trial_forecast_uses_arm_and_hospital(app):
    at = _page(inject(app, "trial_small", TRIAL))
    patient = at.selectbox(key=Keys.PRED_W + "patient").value
    assert at.selectbox(key=Keys.PRED_W + "cov_arm").value in ("control", "treatment")
    horizon = at.number_input(key=Keys.PRED_W + "horizon").value
    shown = _shown_table(at)
    assert shown["time"].iloc[-1] == horizon and np.isnan(shown["measured (not used)"].iloc[-1])
    extra = ["arm", "hospital"]
    fc, _ = _forecast_at("trial_small", TRIAL, patient, 2, "patient", "time", shown["time"], extra)
    np.testing.assert_allclose(shown["forecast"], fc.table["fit"])
    at.selectbox(key=Keys.PRED_W + "cov_hospital").select("(a new one)").run()
    assert not at.exception
    other = _shown_table(at)["forecast"]
    assert not np.allclose(other, fc.table["fit"])


CHICK = "weight ~ ns(Time, 3) * Diet + (ns(Time, 2) | Chick)"
POLY = "Reaction ~ poly(Days, 2) + (poly(Days, 2) | Subject)"


def test_chick_spline_forecast_runs_on_a_grid_with_knots(app):
    at = _page(inject(app, "chickweight", CHICK, "M1: spline"))
    patient = at.selectbox(key=Keys.PRED_W + "patient").value
    at.number_input(key=Keys.PRED_W + "k").set_value(4).run()
    assert not at.exception
    shown = _shown_table(at)
    data = datasets.load_example("chickweight")[0]
    rows = data[data["Chick"] == patient].sort_values("Time")
    assert list(shown["Time"]) == list(rows["Time"].iloc[4:])  # one row per later visit
    x, y = _line(at)
    assert len(x) >= 60 > 5 * len(shown)
    fc, _ = _forecast_at("chickweight", CHICK, patient, 4, "Chick", "Time", x, ["Diet"])
    np.testing.assert_allclose(y, fc.table["fit"], rtol=1e-9)
    ahead = x >= shown["Time"].iloc[0]
    chord = np.interp(x[ahead], x[ahead][[0, -1]], y[ahead][[0, -1]])
    assert np.max(np.abs(y[ahead] - chord)) > 5  # the forecast bends over the future range
    fig = figures_on(at)[0]
    (knots,) = [t for t in fig["data"] if t.get("name") == "spline knots"]
    assert set(np.asarray(knots["x"], float)[np.isfinite(knots["x"])]) == {6.0, 10.0, 14.0}
    (band,) = [t for t in fig["data"] if str(t.get("name")).startswith("95% band: + residual")]
    assert len(band["x"]) == 2 * len(x)  # the bands run along the same grid
    assert "Dotted vertical lines: the spline's knots" in texts(at.caption)
    (caption,) = [c for c in at.caption if c.value.startswith("Dotted vertical lines")]
    assert caption.proto.help == help_text("knots")
    note = texts(at.markdown)
    assert r"its curve coefficient ns\(Time, 2\)1" in note  # Markdown-escaped
    assert "slope" not in note.split("removed")[1]
    assert "each one alone is not a rate of change" in texts(at.caption)
    assert len(figures_on(at)) == 2  # the forecast and the band widths


def test_poly_forecast_renders_without_knots(app):
    at = _page(inject(app, "sleepstudy", POLY, "M1: quadratic"))
    x, _ = _line(at)
    assert len(x) >= 60
    fig = figures_on(at)[0]
    assert not [t for t in fig["data"] if t.get("name") == "spline knots"]
    assert r"its curve coefficient poly\(Days, 2\)2" in texts(at.markdown)


def test_guard_without_a_fit(app):
    at = _page(app)
    assert "Fit one on the Model page" in texts(at.info)
    assert not figures_on(at)


def test_horizon_beyond_the_data_and_every_visit_used(app):
    at = _page(inject(app, "chickweight", CHICK, "M1: spline"))
    patient = at.selectbox(key=Keys.PRED_W + "patient").value
    at.number_input(key=Keys.PRED_W + "horizon").set_value(30.0).run()
    assert not at.exception
    shown = _shown_table(at)
    assert shown["Time"].iloc[-1] == 30 and np.isnan(shown["measured (not used)"].iloc[-1])
    assert shown["Time"].iloc[-2] == 21  # the last later visit, then the horizon
    x, y = _line(at)
    assert x.max() == 30 and np.all(np.isfinite(y))
    fc, _ = _forecast_at("chickweight", CHICK, patient, 2, "Chick", "Time", [30.0], ["Diet"])
    np.testing.assert_allclose(shown["forecast"].iloc[-1], fc.table["fit"].iloc[0], rtol=1e-9)
    at.number_input(key=Keys.PRED_W + "k").set_value(12).run()  # every visit of this chick
    assert not at.exception
    assert list(_shown_table(at)["Time"]) == [30]
    at.number_input(key=Keys.PRED_W + "horizon").set_value(21.0).run()
    assert not at.exception
    assert list(_shown_table(at)["Time"]) == [21]
