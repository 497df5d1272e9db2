"""Prediction page in AppTest: the numbers shown equal lmm_core's new-subject forecast."""

from __future__ import annotations

import numpy as np

from dashboard.figures import prediction as fp
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


def _expected(name, formula, patient, k, subject, time, horizon, extra=None):
    data = datasets.load_example(name)[0]
    res = _fit(name, formula)
    rows = data[data[subject].astype(str) == patient].sort_values(time)
    observed = rows.head(k).drop(columns=[subject])
    covs = {c: rows[c].iloc[0] for c in (extra or [])}
    future = fp.future_rows(covs, time, data[time].min(), horizon)
    for c in extra or []:
        future[c] = future[c].astype(data[c].dtype)
    return new_subject_forecast(res, observed, future), future


def _shown_table(at):
    (table,) = [df for df in at.dataframe if "forecast" in df.value.columns]
    return table.value


def test_sleepstudy_forecast_equals_lmm_core_and_narrows(app):
    at = _page(inject(app, "sleepstudy", SLEEP))
    assert at.title[0].value == "Prediction"
    patient = at.selectbox(key=Keys.PRED_W + "patient").value
    assert at.number_input(key=Keys.PRED_W + "k").value == 2
    fc, future = _expected("sleepstudy", SLEEP, patient, 2, "Subject", "Days", 9.0)
    shown = _shown_table(at)
    expected = fp.forecast_table(fc, future["Days"], "Days")
    np.testing.assert_allclose(shown["forecast"], expected["forecast"], rtol=1e-9)
    np.testing.assert_allclose(shown["prediction high"], expected["prediction high"], rtol=1e-9)
    fig = figures_on(at)[0]
    (line,) = [t for t in fig["data"] if t.get("name") == "forecast for this patient"]
    np.testing.assert_allclose(np.asarray(line["y"], float), fc.table["fit"], rtol=1e-9)
    assert "still mostly trusts the population" in texts(at.markdown)
    width2 = (shown["prediction high"] - shown["prediction low"]).iloc[-1]

    at.number_input(key=Keys.PRED_W + "k").set_value(6).run()
    assert not at.exception
    shown6 = _shown_table(at)
    assert (shown6["prediction high"] - shown6["prediction low"]).iloc[-1] < width2
    assert "the model follows this patient" in texts(at.markdown)
    widths = figures_on(at)[1]
    y = np.asarray(widths["data"][0]["y"], float)
    assert len(y) == 7 and np.all(np.diff(y) < 0)


def test_trial_forecast_uses_arm_and_hospital(app):
    at = _page(inject(app, "trial_small", TRIAL))
    patient = at.selectbox(key=Keys.PRED_W + "patient").value
    assert at.selectbox(key=Keys.PRED_W + "cov_arm").value in ("control", "treatment")
    horizon = at.number_input(key=Keys.PRED_W + "horizon").value
    extra = ["arm", "hospital"]
    fc, future = _expected("trial_small", TRIAL, patient, 2, "patient", "time", horizon, extra)
    expected = fp.forecast_table(fc, future["time"], "time")["forecast"]
    np.testing.assert_allclose(_shown_table(at)["forecast"], expected)
    at.selectbox(key=Keys.PRED_W + "cov_hospital").select("(a new one)").run()
    assert not at.exception
    other = _shown_table(at)["forecast"]
    assert not np.allclose(other, expected)


def test_guard_without_a_fit(app):
    at = _page(app)
    assert "Fit one on the Model page" in texts(at.info)
    assert not figures_on(at)
