"""Trajectories page in AppTest with a fitted model injected into session state."""

from __future__ import annotations

from functools import cache

import numpy as np

from dashboard.analysis.records import FitRecord
from dashboard.help.texts import help_text
from dashboard.state.session import Keys
from lmm_core import datasets, fit_lmm
from lmm_core.predict.per_group import deviation_by
from tests.app.conftest import figures_on, texts

SLEEP = "Reaction ~ Days + (Days | Subject)"
TRIAL = "y ~ time * arm + (time | patient) + (1 | hospital)"
PAGE = "pages/trajectories.py"


@cache
def _fit(name: str, formula: str):
    return fit_lmm(formula, datasets.load_example(name)[0])


def inject(at, name: str, formula: str, label: str = "M1: random slope"):
    """Make ``name`` the active example and store a fit of ``formula`` as the active model."""
    if name != at.session_state[Keys.DATA_NAME]:
        at.selectbox(key=Keys.W_EXAMPLE).select(name).run()
    record = FitRecord(
        name=label, formula=formula, reml=True, data_key=f"example:{name}", data_name=name,
        result=_fit(name, formula), seconds=0.0,
    )  # fmt: skip
    at.session_state[Keys.FITS] = [record]
    at.session_state[Keys.ACTIVE_FIT] = label
    return at


def _page(at):
    at.switch_page(PAGE).run()
    assert not at.exception
    return at


def _trace(fig, name):
    (trace,) = [t for t in fig["data"] if t.get("name") == name]
    return trace


def test_sleepstudy_population_curve_and_subject_curves_equal_the_model(app):
    at = _page(inject(app, "sleepstudy", SLEEP))
    assert at.title[0].value == "Trajectories"
    res = _fit("sleepstudy", SLEEP)
    (fig,) = figures_on(at)
    pop = _trace(fig, "population average")
    x = np.asarray(pop["x"], dtype=float)
    np.testing.assert_allclose(pop["y"], res.fixef["(Intercept)"] + res.fixef["Days"] * x)
    lo, hi = np.asarray(pop["customdata"], dtype=float).T
    assert np.all(lo < pop["y"]) and np.all(hi > pop["y"])
    curves = _trace(fig, "Subject curves")
    ids = np.array([c[0] for c in curves["customdata"]])
    shown = [s for s in dict.fromkeys(ids) if s]
    assert len(shown) == 12  # default: a random sample of 12
    data = datasets.load_example("sleepstudy")[0]
    first = data[data["Subject"].astype(str) == shown[0]].sort_values("Days")
    cx = np.asarray(curves["x"], float)[ids == shown[0]]
    cy = np.asarray(curves["y"], float)[ids == shown[0]]
    assert len(cx) > 4 * len(first)  # drawn on a grid, not only at the visits
    at_visit = np.isin(cx, first["Days"].astype(float))
    np.testing.assert_allclose(cy[at_visit], res.predict(first))
    np.testing.assert_allclose(cy, np.interp(cx, first["Days"], res.predict(first)))
    assert not [t for t in fig["data"] if t.get("name") == "spline knots"]
    assert "Drawn: 12 of 18 Subjects" in texts(at.markdown)
    assert "population average" in texts(at.markdown)


def test_choice_modes_and_settings_survive_a_page_switch(app):
    at = _page(inject(app, "sleepstudy", SLEEP))
    at.selectbox(key=Keys.TRAJ_W + "mode").select("Most visits").run()
    at.number_input(key=Keys.TRAJ_W + "count").set_value(3).run()
    assert not at.exception
    assert "Drawn: 3 of 18" in texts(at.markdown)
    at.selectbox(key=Keys.TRAJ_W + "mode").select("Pick by id").run()
    at.multiselect(key=Keys.TRAJ_W + "picked").set_value(["309", "335"]).run()
    curves = _trace(figures_on(at)[0], "Subject curves")
    assert {c[0] for c in curves["customdata"] if c[0]} == {"309", "335"}
    at.switch_page("pages/explore.py").run()
    at = _page(at)
    assert at.multiselect(key=Keys.TRAJ_W + "picked").value == ["309", "335"]
    at.selectbox(key=Keys.TRAJ_W + "mode").select("Largest deviation from the population").run()
    at.number_input(key=Keys.TRAJ_W + "count").set_value(1).run()
    curves = _trace(figures_on(at)[0], "Subject curves")
    dev = deviation_by(_fit("sleepstudy", SLEEP), datasets.load_example("sleepstudy")[0], "Subject")
    assert {c[0] for c in curves["customdata"] if c[0]} == {str(dev.idxmax())}


def test_trial_small_arms_clusters_and_facets(app):
    at = _page(inject(app, "trial_small", TRIAL))
    assert at.selectbox(key=Keys.TRAJ_W + "by").value == "arm"
    (fig,) = figures_on(at)
    names = [t["name"] for t in fig["data"]]
    assert "population average (control)" in names and "population average (treatment)" in names
    assert any(n.startswith("hospital curves") for n in names)
    assert "Dotted lines" in texts(at.markdown)
    res = _fit("trial_small", TRIAL)
    treat = _trace(fig, "population average (treatment)")
    fe = res.fixef
    x = np.asarray(treat["x"], float)
    expected = fe["(Intercept)"] + fe["armtreatment"] + (fe["time"] + fe["time:armtreatment"]) * x
    np.testing.assert_allclose(treat["y"], expected)
    at.checkbox(key=Keys.TRAJ_W + "facet").check().run()
    at.checkbox(key=Keys.TRAJ_W + "clusters").uncheck().run()
    assert not at.exception
    (fig,) = figures_on(at)
    assert len(fig["layout"]["annotations"]) == 2
    assert not any(t["name"].startswith("hospital") for t in fig["data"])


def test_guard_without_a_fit_links_to_the_model_page(app):
    at = _page(app)
    assert "Fit one on the Model page" in texts(at.info)
    assert at.get("page_link")[0].proto.page.endswith("model")
    assert not figures_on(at)


def test_integer_covariate_off_the_axis_draws_without_an_exception(app):
    """Issue 11 item 1: a whole-number covariate (Age) not on the horizontal axis crashed the
    page with 'Trying to coerce float values to integers'."""
    from dashboard.io.roles import Roles

    data = datasets.load_example("sleepstudy")[0].copy()
    subjects = sorted(data["Subject"].unique())
    ages = [23, 31, 45, 52, 38, 27, 61, 44, 35, 29, 50, 41, 33, 58, 47, 26, 39, 55]
    data["Age"] = data["Subject"].map(dict(zip(subjects, ages, strict=True)))
    data["Age"] = data["Age"].astype("int64")
    formula = "Reaction ~ Days + Age + (Days | Subject)"
    roles = Roles(subject="Subject", time="Days", outcome="Reaction", covariates=("Age",))
    at = app
    at.session_state[Keys.DATASET] = data
    at.session_state[Keys.DATA_KEY] = "upload:sleep_age"
    at.session_state[Keys.DATA_NAME] = "sleep_age"
    at.session_state[Keys.DATA_SOURCE] = "upload"
    at.session_state[Keys.ROLES] = roles.to_dict()
    record = FitRecord(
        name="M1", formula=formula, reml=True, data_key="upload:sleep_age",
        data_name="sleep_age", result=fit_lmm(formula, data), seconds=0.0,
    )  # fmt: skip
    at.session_state[Keys.FITS] = [record]
    at.session_state[Keys.ACTIVE_FIT] = "M1"
    at = _page(at)
    (fig,) = figures_on(at)
    pop = _trace(fig, "population average")
    fe = record.result.fixef
    x = np.asarray(pop["x"], dtype=float)
    expected = fe["(Intercept)"] + fe["Days"] * x + fe["Age"] * data["Age"].mean()
    np.testing.assert_allclose(pop["y"], expected)
    assert "Age = " in texts(at.markdown) + texts(at.caption)


CHICK = "weight ~ ns(Time, 3) * Diet + (ns(Time, 2) | Chick)"
POLY = "Reaction ~ poly(Days, 2) + (poly(Days, 2) | Subject)"


def test_chick_spline_curves_run_on_a_grid_and_knots_are_marked(app):
    at = _page(inject(app, "chickweight", CHICK, "M1: spline"))
    res = _fit("chickweight", CHICK)
    data = datasets.load_example("chickweight")[0]
    assert at.selectbox(key=Keys.TRAJ_W + "by").value == "Diet"
    (fig,) = figures_on(at)
    curves = [t for t in fig["data"] if t["name"] == "Chick curves"]
    assert len(curves) == 4  # one trace per diet
    for trace in curves:
        ids = np.array([c[0] for c in trace["customdata"]])
        for sid in [s for s in dict.fromkeys(ids) if s]:
            rows = data[data["Chick"] == sid].sort_values("Time")
            x = np.asarray(trace["x"], float)[ids == sid]
            y = np.asarray(trace["y"], float)[ids == sid]
            assert len(x) >= 50 > 4 * len(rows)
            at_visit = np.isin(x, rows["Time"].astype(float))
            np.testing.assert_allclose(y[at_visit], res.predict(rows), rtol=1e-10)
    knots = _trace(fig, "spline knots")
    xs = np.asarray(knots["x"], float)
    assert set(xs[np.isfinite(xs)]) == {6.0, 10.0, 14.0}
    assert "knot at Time" in knots["hovertemplate"]
    assert knots["line"]["dash"] == "dot" and knots["line"]["width"] <= 1
    note = texts(at.caption)
    assert "Dotted vertical lines: the spline's knots (Time = 6, 10, 14)" in note
    assert "ns(Time, knots = c(6, 14), Boundary.knots = c(0, 21))" in note
    (caption,) = [c for c in at.caption if c.value.startswith("Dotted vertical lines")]
    assert caption.proto.help == help_text("knots")  # the glossary's knots as its tooltip
    pop = _trace(fig, "population average (1)")
    assert len(pop["x"]) == 60


def test_poly_model_draws_curves_without_knots(app):
    at = _page(inject(app, "sleepstudy", POLY, "M1: quadratic"))
    res = _fit("sleepstudy", POLY)
    (fig,) = figures_on(at)
    curves = _trace(fig, "Subject curves")
    ids = np.array([c[0] for c in curves["customdata"]])
    sid = next(s for s in ids if s)
    x = np.asarray(curves["x"], float)[ids == sid]
    y = np.asarray(curves["y"], float)[ids == sid]
    data = datasets.load_example("sleepstudy")[0]
    rows = data[data["Subject"] == sid].sort_values("Days")
    assert len(x) > 40
    grid = rows.iloc[[0] * len(x)].assign(Days=x)
    np.testing.assert_allclose(y, res.predict(grid), rtol=1e-10)
    quadratic = np.polyfit(x, y, 2)
    np.testing.assert_allclose(np.polyval(quadratic, x), y, atol=1e-8)  # a parabola
    assert abs(quadratic[0]) > 1e-3  # that bends
    assert not [t for t in fig["data"] if t.get("name") == "spline knots"]
    assert "Dotted vertical lines" not in texts(at.caption)
