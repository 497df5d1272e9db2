"""Compare page, "Does the curve earn its keep?": the shapes of time fitted as a job, the
verdict, the table, the figure and the fits kept as records; guards and a failing shape."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from dashboard.analysis.records import FitRecord
from dashboard.io.roles import Roles
from dashboard.state import cached
from dashboard.state.session import Keys
from lmm_core import LMMError, datasets, fit_lmm, lrt
from tests.app.conftest import figures_on, finish_jobs, texts

CHICK = "weight ~ Time * Diet + (Time | Chick)"
NS3 = "weight ~ ns(Time, 3) * Diet + (Time | Chick)"
RUN, ADD = "curve_run", "curve_add"  # the section's buttons (pages/compare.py)
SHAPES = ["straight line", "quadratic", "natural spline (3 df)", "natural spline (4 df)"]


@cache
def chick_fit(formula: str, reml: bool = True):
    data, _ = datasets.load_example("chickweight")
    return fit_lmm(formula, data, reml=reml)


def chick_record(name: str, formula: str) -> FitRecord:
    return FitRecord(
        name=name,
        formula=formula,
        reml=True,
        data_key="example:chickweight",
        data_name="chickweight",
        result=chick_fit(formula),
        seconds=0.0,
    )


def on_chickweight(app, records):
    """The Compare page with chickweight active and ``records`` fitted (the last active)."""
    app.selectbox(key=Keys.W_EXAMPLE).select("chickweight").run()
    assert app.session_state[Keys.DATA_KEY] == "example:chickweight"
    app.session_state[Keys.FITS] = records
    app.session_state[Keys.ACTIVE_FIT] = records[-1].name if records else None
    at = app.switch_page("pages/compare.py").run()
    assert not at.exception
    return at


def curve_frame(at):
    return next(d.value for d in at.dataframe if "p" in d.value.columns and "shape" in d.value)


def run_shapes(at):
    at.button(key=RUN).click().run()
    assert not at.exception
    finish_jobs(at)  # a job of the runner: it may outlast the page's short wait
    assert not at.exception
    return at


def test_chickweight_spline_earns_its_keep_and_fits_are_kept(app):
    at = on_chickweight(app, [chick_record("M1: linear growth", CHICK)])
    assert "Does the curve earn its keep?" in [h.value for h in at.header]
    assert NS3 in texts(at.markdown)  # the plan lists every shape's formula
    run_shapes(at)
    table = curve_frame(at)
    assert list(table["shape"]) == ["straight line (active model)", *SHAPES[1:]]
    line, ns3 = chick_fit(CHICK, False), chick_fit(NS3, False)
    expected = lrt(line, ns3, names=["line", "ns3"]).loc["ns3"]
    assert table["logLik"].iloc[2] == pytest.approx(ns3.loglik, abs=1e-6)
    assert table["Chisq"].iloc[2] == pytest.approx(expected["Chisq"], rel=1e-8)
    assert table["Df"].iloc[2] == 8
    assert table["p"].iloc[2] < 1e-20
    assert table["AIC"].iloc[0] - table["AIC"].iloc[2] == pytest.approx(156.517, abs=0.01)
    verdict = texts(at.markdown)
    assert "**The natural spline (3 df)** fits clearly better than a straight line" in verdict
    assert "LRT p < 0.001" in verdict and "not nested" in verdict
    assert "natural spline (3 df)" in texts(at.info)  # what to do
    (fig,) = figures_on(at)
    legend = sorted((t for t in fig["data"] if t["showlegend"]), key=lambda t: t["legendrank"])
    assert [t["name"] for t in legend] == ["observed mean", *SHAPES]
    assert fig["data"][-1]["name"] == "natural spline (3 df)"  # the recommended, on top
    assert fig["data"][-1]["line"]["width"] > legend[1]["line"]["width"]
    assert [a["text"] for a in fig["layout"]["annotations"]] == [f"Diet = {d}" for d in "1234"]
    at.button(key=ADD).click().run()
    assert not at.exception
    names = [r.name for r in at.session_state[Keys.FITS]]
    assert names == ["M1: linear growth"] + [f"M{i + 2}: curve {s}" for i, s in enumerate(SHAPES)]
    assert at.session_state[Keys.ACTIVE_FIT] == "M1: linear growth"
    assert all(not r.reml for r in at.session_state[Keys.FITS][1:])
    assert "Added M2: curve straight line" in texts(at.success)
    at.button(key=ADD).click().run()
    assert "already among the fitted models" in texts(at.success)
    assert len(at.session_state[Keys.FITS]) == 5


def test_other_active_model_asks_to_compare_again(app):
    records = [chick_record("M1: linear growth", CHICK), chick_record("M2: spline", NS3)]
    at = on_chickweight(app, records[:1])
    run_shapes(at)
    at.session_state[Keys.FITS] = records
    at.session_state[Keys.ACTIVE_FIT] = "M2: spline"
    at.run()
    assert "compared for another active model" in texts(at.info)
    run_shapes(at)
    assert curve_frame(at)["shape"].iloc[2] == "natural spline (3 df) (active model)"
    assert "Keep the active model's shape" in texts(at.info)


def test_a_failing_shape_does_not_hide_the_others(app, monkeypatch):
    real = cached.fit_model

    def fit(data_key, formula, reml, data, job=None):
        if "poly(" in formula:
            raise LMMError("the quadratic broke on purpose")
        return real(data_key, formula, reml, data, job)

    monkeypatch.setattr(cached, "fit_model", fit)
    at = run_shapes(on_chickweight(app, [chick_record("M1: linear growth", CHICK)]))
    assert "could not be fitted: the quadratic broke on purpose" in texts(at.warning)
    table = curve_frame(at)
    assert np.isnan(table["AIC"].iloc[1]) and np.isfinite(table["AIC"].iloc[2])
    assert "fits clearly better than a straight line" in texts(at.markdown)
    (fig,) = figures_on(at)
    assert "quadratic" not in [t["name"] for t in fig["data"]]


def test_guards_without_fit_and_without_time(app):
    at = on_chickweight(app, [])
    assert "starts from a fitted model" in texts(at.info)
    assert RUN not in [b.key for b in at.button]
    at.session_state[Keys.FITS] = [chick_record("M1: linear growth", CHICK)]
    at.session_state[Keys.ACTIVE_FIT] = "M1: linear growth"
    at.session_state[Keys.ROLES] = Roles(subject="Chick", outcome="weight").to_dict()
    at.run()
    assert not at.exception
    assert "needs a numeric time column" in texts(at.info)
    assert RUN not in [b.key for b in at.button]
