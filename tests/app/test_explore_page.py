"""Explore page in AppTest: figures for examples and uploads, colour choice, guards."""

from __future__ import annotations

import numpy as np

from dashboard.state.session import Keys
from tests.app.conftest import figures_on, texts, upload


def _explore(app):
    app.switch_page("pages/explore.py").run()
    assert not app.exception
    return app


def test_sleepstudy_trajectories_mean_and_visits(app):
    at = _explore(app)
    assert at.title[0].value == "Explore"
    spaghetti, mean, visits = figures_on(at)
    (trace,) = spaghetti["data"]
    assert trace["type"] == "scatter"
    assert len({n for n in trace["customdata"] if n}) == 18
    assert "one line per Subject (18)" in spaghetti["layout"]["title"]["text"]
    assert [t.get("fill") for t in mean["data"]] == ["toself", None]
    assert len(mean["data"][1]["x"]) == 10
    assert list(visits["data"][0]["x"]) == [10]
    assert "random intercept" in texts(at.caption)


def test_colour_by_covariate_splits_lines_and_means(app):
    app.selectbox(key=Keys.W_EXAMPLE).select("orthodont").run()
    at = _explore(app)
    assert at.selectbox(key=Keys.W_EXPLORE_COLOR).value == "Sex"  # first covariate
    spaghetti, mean, _ = figures_on(at)
    assert [t["name"] for t in spaghetti["data"]] == ["Female", "Male"]
    assert [t["name"] for t in mean["data"] if t.get("fill") is None] == ["Female", "Male"]
    at.selectbox(key=Keys.W_EXPLORE_COLOR).select("(none)").run()
    assert not at.exception
    assert len(figures_on(at)[0]["data"]) == 1
    assert at.session_state[Keys.EXPLORE_COLOR] == "(none)"


def test_large_trial_is_sampled_with_webgl(app):
    app.selectbox(key=Keys.W_EXAMPLE).select("trial_large").run()
    at = _explore(app)
    assert at.selectbox(key=Keys.W_EXPLORE_COLOR).value == "arm"  # covariate before cluster
    assert at.slider(key=Keys.W_EXPLORE_MAX).value == 400
    spaghetti, mean, visits = figures_on(at)
    assert {t["type"] for t in spaghetti["data"]} == {"scattergl"}
    assert [t["name"] for t in spaghetti["data"]] == ["control", "treatment"]
    assert "400 of 12,500" in texts(at.caption)
    assert len([t for t in mean["data"] if t.get("fill") is None]) == 2
    assert int(np.sum(visits["data"][0]["y"])) == 12_500
    at.selectbox(key=Keys.W_EXPLORE_COLOR).select("hospital").run()
    spaghetti, mean, _ = figures_on(at)
    assert len(spaghetti["data"]) > 50  # one trace per sampled hospital
    assert "too many groups" in texts(at.caption)  # 100 hospitals: one overall mean
    assert len([t for t in mean["data"] if t.get("fill") is None]) == 1
    at.slider(key=Keys.W_EXPLORE_MAX).set_value(100).run()
    assert "100 of 12,500" in texts(at.caption)


def test_uploaded_data_are_explored(app):
    csv = "id,month,value\n" + "\n".join(f"s{i},{m},{i + m}" for i in range(5) for m in range(3))
    upload(app, "mine.csv", csv.encode())
    at = _explore(app)
    spaghetti, _, _ = figures_on(at)
    assert "one line per id (5)" in spaghetti["layout"]["title"]["text"]


def test_guard_links_to_the_data_page_when_roles_are_missing(app):
    roles = dict(app.session_state[Keys.ROLES])
    roles["outcome"] = None
    app.session_state[Keys.ROLES] = roles
    at = _explore(app)
    assert "needs a numeric outcome column" in texts(at.info)
    assert at.get("page_link")[0].proto.page.endswith("data")
    assert not figures_on(at)
