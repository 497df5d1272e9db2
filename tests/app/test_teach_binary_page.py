"""Teach page, binary outcome, in AppTest: curves, estimates against the truth, attenuation,
bad input, and the Laplace vs quadrature section run as a job."""

from __future__ import annotations

import math

import numpy as np

from dashboard.analysis.teach_binary import attenuation
from dashboard.state.session import Keys
from lmm_core.simulation.teaching_binary import BinaryTruth, true_curves
from tests.app.conftest import figures_on, finish_jobs, texts

PAGE = "pages/teach.py"
W = Keys.TEACH_BINARY_W


def _binary(at, **truth):
    at.switch_page(PAGE).run()
    assert not at.exception
    at.session_state[Keys.TEACH_BINARY_SETTINGS].update(truth)
    at.radio(key=Keys.W_TEACH_OUTCOME).set_value("binary").run()
    assert not at.exception
    return at


def _curves_figure(at):
    (fig,) = [f for f in figures_on(at) if "Subject-specific" in f["layout"]["title"]["text"]]
    return {t.get("name"): t for t in fig["data"]}


def _recovery(at):
    (table,) = [d.value for d in at.dataframe if "averaged" in d.value.columns]
    return table


def test_binary_section_shows_both_curves_and_the_attenuation(app):
    at = _binary(app, n_subjects=100, n_visits=4, sd=2.0, odds_ratio=3.0, seed=1)
    truth = BinaryTruth(n_subjects=100, n_visits=4, sd=2.0, odds_ratio=3.0)
    traces = _curves_figure(at)
    expected = true_curves(truth, np.array([0.0, 1.0]))
    np.testing.assert_allclose(traces["Typical subject (truth, b = 0)"]["y"], expected["typical"])
    np.testing.assert_allclose(traces["Population average (truth)"]["y"], expected["averaged"])
    table = _recovery(at)
    assert list(table["parameter"])[-1] == "SD of subject intercepts τ"
    assert math.isclose(table["truth"].iloc[1], math.log(3.0))
    att = attenuation(truth)
    assert math.isclose(table["averaged"].iloc[1], att.marginal, rel_tol=1e-9)
    assert f"{math.exp(att.marginal):.2f}" in texts(at.markdown)
    # the quadrature section waits for its button
    assert "Press the button to refit" in texts(at.info)


def test_larger_sd_flattens_the_averaged_curve(app):
    at = _binary(app, n_subjects=60, n_visits=3, sd=0.5, seed=2)
    small = _curves_figure(at)["Population average (truth)"]["y"]
    at.slider(key=W + "sd").set_value(4.0).run()
    assert not at.exception
    large = _curves_figure(at)["Population average (truth)"]["y"]
    assert abs(large[1] - large[0]) < abs(small[1] - small[0])


def test_two_subjects_give_a_clear_message(app):
    at = _binary(app)
    at.number_input(key=W + "n_subjects").set_value(2).run()
    assert not at.exception
    message = texts(at.error)
    assert "cannot be simulated" in message and "from 10" in message
    assert not [f for f in figures_on(at) if "Subject-specific" in str(f["layout"])]


def test_quadrature_section_runs_as_a_job(app):
    at = _binary(app, n_subjects=60, n_visits=3, sd=3.0, seed=3)
    at.button(key=W + "quadrature_run").click().run()
    finish_jobs(at)
    assert not at.exception
    (table,) = [d.value for d in at.dataframe if "log-likelihood" in d.value.columns]
    assert list(table["nagq"]) == [1, 3, 5, 9, 15, 25]
    assert [f for f in figures_on(at) if "quadrature" in f["layout"]["title"]["text"]]
    boxes = texts(at.success) + texts(at.info) + texts(at.warning) + texts(at.error)
    assert "Laplace" in boxes and "standard errors" in boxes


def test_continuous_lab_is_still_the_default(app):
    app.switch_page(PAGE).run()
    assert not app.exception
    assert any("truth inside?" in d.value.columns for d in app.dataframe)
