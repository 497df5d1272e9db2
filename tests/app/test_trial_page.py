"""Trial page (AppTest): the drop-out, the MMRM fitted with every covariance structure as a
job, the verdict, the coefficients and the correlation heatmaps; clear messages when the
active data are not a two-arm trial with visits."""

from __future__ import annotations

import numpy as np

from dashboard.analysis.trial import STRUCTURES
from dashboard.io.roles import Roles
from dashboard.state.session import Keys
from tests.app.conftest import figures_on, finish_jobs, texts

PAGE = "pages/trial.py"


def test_trial_page_on_the_example(app):
    app.selectbox(key=Keys.W_EXAMPLE).select("trial_visits").run()
    at = app.switch_page(PAGE).run()
    assert not at.exception
    assert at.selectbox(key=Keys.W_TRIAL_ARM).value == "arm"
    assert "102 of 150 patients" in texts(at.markdown)  # control completers
    figures = figures_on(at)
    assert len(figures) == 2  # the drop-out bars and the visit patterns, before any fit
    patterns = figures[1]["data"][0]
    assert patterns["type"] == "heatmap" and patterns["y"][0].startswith("all visits (")
    assert "patterns of visits" in texts(at.markdown)
    at.button(key=Keys.W_TRIAL_RUN).click().run()
    assert not at.exception
    finish_jobs(at)
    assert not at.exception
    stored = at.session_state[Keys.TRIAL_RESULTS][at.session_state[Keys.DATA_KEY]]
    assert [f.structure for f in stored.fits] == list(STRUCTURES)
    assert all(f.ok for f in stored.fits)
    words = texts(at.markdown)
    assert "primary model uses the unstructured" in words
    assert "AIC prefers" in words and "BIC prefers" in words
    figures = figures_on(at)
    assert len(figures) == 5  # drop-out, patterns, LS-means, forest, correlation
    assert len(figures[2]["data"]) == 2  # one line per arm
    forest = figures[3]["data"][0]
    assert len(forest["y"]) == 6 and forest["x"][-1] < 0
    heat = [t for t in figures[4]["data"] if t["type"] == "heatmap"]
    assert len(heat) == 2
    assert np.allclose(np.diag(np.asarray(heat[0]["z"], float)), 1.0)
    frames = [d.value for d in at.dataframe]
    assert any(list(f.index) == list(range(8)) and "AIC" in f.columns for f in frames)
    assert any("armtreatment:visit6" in set(f.get("term", [])) for f in frames)
    at.selectbox(key=Keys.W_TRIAL_SHOWN).select("ar1").run()
    assert not at.exception
    heat = [t for t in figures_on(at)[4]["data"] if t["type"] == "heatmap"]
    z = np.asarray(heat[0]["z"], float)
    assert np.allclose(z[0, 2], z[0, 1] ** 2)  # AR(1): rho^distance


def test_no_two_level_column(app):
    at = app.switch_page(PAGE).run()  # sleepstudy: no arm
    assert not at.exception
    assert "no column has exactly two values" in texts(at.info)
    assert Keys.W_TRIAL_RUN not in [b.key for b in at.button]


def test_continuous_time_is_refused_with_a_message(app):
    app.selectbox(key=Keys.W_EXAMPLE).select("trial_small").run()
    at = app.switch_page(PAGE).run()  # time in months, jittered: not scheduled visits
    assert not at.exception
    assert "needs scheduled visits" in texts(at.info)
    assert Keys.W_TRIAL_RUN not in [b.key for b in at.button]


def test_missing_subject_role(app):
    app.selectbox(key=Keys.W_EXAMPLE).select("trial_visits").run()
    app.session_state[Keys.ROLES] = Roles(time="visit", outcome="score").to_dict()
    at = app.switch_page(PAGE).run()
    assert not at.exception
    assert "needs a subject column" in texts(at.info)


def test_the_arm_choice_survives_a_page_switch(app):
    app.selectbox(key=Keys.W_EXAMPLE).select("trial_visits").run()
    at = app.switch_page(PAGE).run()
    assert at.selectbox(key=Keys.W_TRIAL_ARM).value == "arm"
    at.selectbox(key=Keys.W_TRIAL_ARM).select("sex").run()
    at = at.switch_page("pages/data.py").run()
    at = at.switch_page(PAGE).run()
    assert not at.exception
    assert at.selectbox(key=Keys.W_TRIAL_ARM).value == "sex"
