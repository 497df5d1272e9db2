"""Shrinkage page in AppTest with a fitted model injected into session state."""

from __future__ import annotations

import numpy as np

from dashboard.figures import shrinkage as fs
from dashboard.figures import shrinkage_curves as fsc
from dashboard.state.session import Keys
from lmm_core import datasets
from lmm_core.predict.per_group import shrinkage_estimates
from tests.app.conftest import figures_on, texts
from tests.app.test_trajectories_page import SLEEP, TRIAL, _fit, inject

PAGE = "pages/shrinkage.py"


def _page(at):
    at.switch_page(PAGE).run()
    assert not at.exception
    return at


def test_sleepstudy_figures_and_own_estimates_equal_lstsq(app):
    at = _page(inject(app, "sleepstudy", SLEEP))
    assert at.title[0].value == "Shrinkage"
    figs = figures_on(at)
    assert len(figs) == 3  # 1-D (a panel per effect), 2-D, caterpillar
    panels = [a["text"] for a in figs[0]["layout"]["annotations"]]
    assert panels[0].startswith("(Intercept): own") and panels[1].startswith("Days: own")
    assert "ellipse" in figs[1]["layout"]["title"]["text"]
    assert [a["text"] for a in figs[2]["layout"]["annotations"]][0].startswith("(Intercept): BLUP")
    own = [t for t in figs[0]["data"] if t["name"] == "own data only"][1]  # the Days panel
    data = datasets.load_example("sleepstudy")[0]
    for sid, x in zip([c[0] for c in own["customdata"]], own["x"], strict=True):
        rows = data[data["Subject"].astype(str) == sid]
        design = np.column_stack([np.ones(len(rows)), rows["Days"]])
        slope = np.linalg.lstsq(design, rows["Reaction"].to_numpy(), rcond=None)[0][1]
        assert x == np.float64(slope) or abs(x - slope) < 1e-9
    mixed = [t for t in figs[0]["data"] if t["name"] == "mixed model"][1]
    res = _fit("sleepstudy", SLEEP)
    coef = res.ranef["Subject"]["Days"] + res.fixef["Days"]
    np.testing.assert_allclose(mixed["x"], coef.loc[[c[0] for c in mixed["customdata"]]])
    assert "borrowing strength" in texts(at.markdown)
    assert "Every Subject has enough observations" in texts(at.success)


def test_trial_small_left_out_patients_and_ellipses(app):
    at = _page(inject(app, "trial_small", TRIAL))
    est = shrinkage_estimates(_fit("trial_small", TRIAL), "patient")
    assert at.selectbox(key=Keys.SHRINK_W + "group").value == "patient"
    assert "random effects for hospital" in texts(at.caption)
    assert "200 of the 498" in texts(at.caption)
    figs = figures_on(at)
    ellipses = [t for t in figs[1]["data"] if t["name"] == "95% of the population (model)"]
    assert len(ellipses) == 2
    assert f"{len(est.left_out)} of 500 patients have no own-data estimate" in texts(at.markdown)
    (table,) = [d for d in at.dataframe if "reason" in d.value.columns]
    assert set(table.value["patient"]) == set(est.left_out.index)
    at.selectbox(key=Keys.SHRINK_W + "group").select("hospital").run()
    assert not at.exception
    assert len(figures_on(at)) == 2  # one effect: a 1-D plot and a caterpillar
    assert "n·τ² / (n·τ² + σ²)" in texts(at.info)


def test_random_intercept_weights_are_the_exact_formula(app):
    formula = "Reaction ~ Days + (1 | Subject)"
    at = _page(inject(app, "sleepstudy", formula, "M2: random intercept"))
    res = _fit("sleepstudy", formula)
    tau2 = res.covariance_matrices()[0][0, 0]
    w10 = 10 * tau2 / (10 * tau2 + res.sigma**2)
    assert f"10 obs. → {w10:.2f}" in texts(at.info)
    figs = figures_on(at)
    assert len(figs) == 2
    assert "Median shrinkage" not in texts(at.markdown)  # balanced: one value of n


def test_guard_without_a_fit_links_to_the_model_page(app):
    at = _page(app)
    assert "Fit one on the Model page" in texts(at.info)
    assert at.get("page_link")[0].proto.page.endswith("model")


CHICK = "weight ~ ns(Time, 3) * Diet + (ns(Time, 2) | Chick)"
POLY = "Reaction ~ poly(Days, 2) + (poly(Days, 2) | Subject)"


def test_chick_spline_random_part_reads_as_curves(app):
    at = _page(inject(app, "chickweight", CHICK, "M1: spline"))
    res = _fit("chickweight", CHICK)
    figs = figures_on(at)
    assert len(figs) == 4  # whole curves, 1-D (a panel per effect), 2-D, caterpillar
    curves, one_d, two_d, caterpillar = figs
    assert "Whole curves: own fit → mixed model" in [h.value for h in at.subheader]
    note = texts(at.markdown)
    assert r"curve coefficients** (ns\(Time, 2\)1, ns\(Time, 2\)2)" in note
    assert "ns(Time, knots = c(10), Boundary.knots = c(0, 21))" in note
    titles = [a["text"] for a in curves["layout"]["annotations"]]
    est = shrinkage_estimates(res, "Chick")
    n = est.table["n"]
    assert titles == [f"Chick {v} (n = {n[v]})" for v in fsc.curve_levels(est)]
    assert titles[:2] == ["Chick 16 (n = 7)", "Chick 15 (n = 8)"]  # chick 18 (2 visits): no fit
    mixed = [t for t in curves["data"] if t["name"] == "mixed model"]
    assert len(mixed) == 6 and all(len(t["x"]) >= 50 for t in mixed)
    panels = [a["text"] for a in one_d["layout"]["annotations"]]
    assert [p.split(":")[0] for p in panels] == ["(Intercept)", "ns(Time, 2)1", "ns(Time, 2)2"]
    assert at.selectbox(key=Keys.SHRINK_W + "x").value == "(Intercept)"
    assert at.selectbox(key=Keys.SHRINK_W + "y").value == "ns(Time, 2)1"
    ellipses = [t for t in two_d["data"] if t["name"] == "95% of the population (model)"]
    assert len(ellipses) == 4  # one per diet
    assert "Ellipses are drawn around the 4 population values shared by most" in texts(at.caption)
    b = res.ranef["Chick"]["ns(Time, 2)2"]
    third = [t for t in caterpillar["data"] if t.get("xaxis") == "x3"]
    xs = np.concatenate([np.asarray(t["x"], float) for t in third])
    np.testing.assert_allclose(np.sort(xs), np.sort(b.to_numpy()))
    at.selectbox(key=Keys.SHRINK_W + "x").select("ns(Time, 2)1").run()
    at.selectbox(key=Keys.SHRINK_W + "y").select("ns(Time, 2)2").run()
    assert not at.exception
    assert "ns(Time, 2)2 against ns(Time, 2)1" in figures_on(at)[2]["layout"]["title"]["text"]


def test_poly_random_part_renders(app):
    at = _page(inject(app, "sleepstudy", POLY, "M1: quadratic"))
    figs = figures_on(at)
    assert len(figs) == 4
    assert "poly(Days, 2, coefs = list(alpha" in texts(at.markdown)
    own = [t for t in figs[1]["data"] if t["name"] == "own data only"][2]  # poly(Days, 2)2
    data = datasets.load_example("sleepstudy")[0]
    res = _fit("sleepstudy", POLY)
    basis = res.design.bases["poly(Days, 2)"]
    for sid, x in zip([c[0] for c in own["customdata"]], own["x"], strict=True):
        rows = data[data["Subject"] == sid]
        design = np.column_stack([np.ones(len(rows)), basis.evaluate(rows["Days"].to_numpy())])
        coef = np.linalg.lstsq(design, rows["Reaction"].to_numpy(), rcond=None)[0]
        assert abs(x - coef[2]) < 1e-8


def test_shares_outside_zero_to_one_are_explained(app):
    at = _page(inject(app, "chickweight", CHICK, "M1: spline"))
    assert "A share below 0 or above 1 is no error" in texts(at.caption)


def test_shares_note_follows_the_table(app):
    at = _page(inject(app, "trial_small", TRIAL))
    by_n = fs.shrinkage_by_n(shrinkage_estimates(_fit("trial_small", TRIAL), "patient"))
    assert by_n["kept: time"].iloc[0] < 0  # two visits: the slope is pulled past the population
    assert "A share below 0 or above 1 is no error" in texts(at.caption)
    at.selectbox(key=Keys.SHRINK_W + "group").select("hospital").run()  # one effect: no note
    assert "A share below 0 or above 1 is no error" not in texts(at.caption)
