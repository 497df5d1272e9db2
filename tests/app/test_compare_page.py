"""Compare page in AppTest: lme4's table and AIC/BIC shown, refit note, guards, warnings."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from dashboard.analysis.records import FitRecord
from dashboard.state.session import Keys
from lmm_core import datasets, fit_lmm, lrt
from tests.app.conftest import figures_on, finish_jobs, texts

FORMULAS = {
    "M1: random intercept": "Reaction ~ Days + (1 | Subject)",
    "M2: uncorrelated slope": "Reaction ~ Days + (Days || Subject)",
    "M3: correlated slope": "Reaction ~ Days + (Days | Subject)",
}


@cache
def sleep_fit(formula: str, rows: int | None = None):
    data, _ = datasets.load_example("sleepstudy")
    return fit_lmm(formula, data if rows is None else data.iloc[:rows])


def record(name: str, formula: str, rows: int | None = None) -> FitRecord:
    return FitRecord(
        name=name,
        formula=formula,
        reml=True,
        data_key="example:sleepstudy",
        data_name="sleepstudy",
        result=sleep_fit(formula, rows),
        seconds=0.0,
    )


def compare(app, records):
    app.session_state[Keys.FITS] = records
    app.session_state[Keys.ACTIVE_FIT] = records[-1].name if records else None
    app.switch_page("pages/compare.py").run()
    assert not app.exception
    return app


COLUMN_OF = {  # a column that identifies each table (AppTest does not expose the keys)
    "compare_lrt": "Pr(>Chisq)",
    "compare_steps": "verdict",
    "compare_criteria": "delta_AIC",
    "compare_as_fitted": "method",
}


def frame_by_key(at, key):
    return next(d.value for d in at.dataframe if COLUMN_OF[key] in d.value.columns)


def has_table(at, key) -> bool:
    return any(COLUMN_OF[key] in d.value.columns for d in at.dataframe)


def test_three_sleepstudy_models_table_equals_lrt(app):
    records = [record(n, f) for n, f in FORMULAS.items()]
    at = compare(app, records)
    assert at.multiselect(key=Keys.W_COMPARE_PICK).value == list(FORMULAS)
    expected = lrt(*[r.result for r in records], names=list(FORMULAS))
    shown = frame_by_key(at, "compare_lrt")
    assert list(shown.index) == list(expected.index)
    np.testing.assert_allclose(
        shown.to_numpy(dtype=float), expected.to_numpy(dtype=float), rtol=1e-10, equal_nan=True
    )
    assert "refitting model(s) with ML" in texts(at.info)
    criteria = frame_by_key(at, "compare_criteria")
    np.testing.assert_allclose(criteria["AIC"], expected["AIC"], rtol=1e-12)
    assert criteria["delta_AIC"].min() == 0.0
    verdict = texts(at.markdown)
    assert "**AIC** prefers **M2: uncorrelated slope**" in verdict
    assert "prefer **M2: uncorrelated slope**" in verdict  # LRT at 5%
    steps = frame_by_key(at, "compare_steps")
    p_naive, p_chibar = steps.loc[0, ["p (chi-square)", "p (chi-bar-square)"]]
    assert p_chibar == pytest.approx(p_naive / 2, rel=1e-10)
    assert np.isnan(steps.loc[1, "p (chi-bar-square)"])  # only a covariance added
    assert "edge" in texts(at.caption)
    (fig,) = figures_on(at)
    assert [t["name"] for t in fig["data"]] == ["delta AIC", "delta BIC"]


def test_deselecting_is_kept_and_one_model_gives_guidance(app):
    at = compare(app, [record(n, f) for n, f in FORMULAS.items()])
    at.multiselect(key=Keys.W_COMPARE_PICK).unselect("M3: correlated slope").run()
    assert not at.exception
    assert at.session_state[Keys.COMPARE_SELECTION] == list(FORMULAS)[:2]
    assert len(frame_by_key(at, "compare_lrt")) == 2
    at.multiselect(key=Keys.W_COMPARE_PICK).unselect("M2: uncorrelated slope").run()
    assert "at least two models" in texts(at.info)
    assert not has_table(at, "compare_lrt")


def test_non_nested_models_warn(app):
    records = [
        record("A: slope only", "Reaction ~ Days + (0 + Days | Subject)"),
        record("B: intercept", "Reaction ~ 1 + (1 | Subject)"),
    ]
    at = compare(app, records)
    assert "not nested" in texts(at.warning)
    assert "AIC and BIC only" in texts(at.warning)


def test_different_rows_warn_without_crash(app):
    records = [
        record("M1: all rows", FORMULAS["M1: random intercept"]),
        record("M2: fewer rows", FORMULAS["M3: correlated slope"], rows=170),
    ]
    at = compare(app, records)
    warning = texts(at.warning)
    assert "cannot be compared" in warning and "170 rows" in warning
    shown = frame_by_key(at, "compare_as_fitted")
    assert shown.loc["M1: all rows", "AIC"] == pytest.approx(records[0].result.aic)
    assert not has_table(at, "compare_lrt")


def test_single_fit_gives_guidance(app):
    at = compare(app, [record("M1: random intercept", FORMULAS["M1: random intercept"])])
    assert "at least two fitted models" in texts(at.info)
    assert not at.dataframe


def test_guard_without_fits(app):
    at = compare(app, [])
    assert "Fit one on the Model page" in texts(at.info)
    assert not at.dataframe


# --------------------------------------------------------------------------- ladder
LADDER_COLUMN = "reference"  # identifies the ladder's table


def ladder_frame(at):
    return next(d.value for d in at.dataframe if LADDER_COLUMN in d.value.columns)


def test_ladder_without_fits_matches_lme4_and_adds_records(app):
    at = compare(app, [])
    assert "Reaction ~ Days + (Days || Subject)" in texts(at.markdown)
    at.button(key=Keys.W_LADDER_RUN).click().run()
    assert not at.exception
    finish_jobs(at)  # a job of the runner: it may outlast the page's short wait
    table = ladder_frame(at)
    np.testing.assert_allclose(
        table["criterion"], [1786.46508539492, 1743.66929358148, 1743.62827195995], atol=1e-6
    )
    verdicts = texts(at.markdown)
    assert "The random slope is needed" in verdicts and "p < 0.001" in verdicts
    assert "adds nothing" in verdicts
    (fig,) = figures_on(at)
    assert [t["name"] for t in fig["data"]] == ["AIC", "BIC"]
    at.button(key=Keys.W_LADDER_ADD).click().run()
    assert not at.exception
    names = [r.name for r in at.session_state[Keys.FITS]]
    assert names == [
        "M1: ladder random intercept",
        "M2: ladder random slope",
        "M3: ladder correlation",
    ]
    assert "Added M1: ladder random intercept" in texts(at.success)
    # the comparison above now has three models; the ladder stays
    assert has_table(at, "compare_lrt") and len(ladder_frame(at)) == 3
    at.button(key=Keys.W_LADDER_ADD).click().run()
    assert "already among the fitted models" in texts(at.success)
    assert len(at.session_state[Keys.FITS]) == 3


def test_ladder_keeps_the_active_model_and_switches_method(app):
    records = [record("M1: random intercept", FORMULAS["M1: random intercept"])]
    at = compare(app, records)
    at.radio(key=Keys.W_LADDER_REML).set_value("ML").run()
    at.button(key=Keys.W_LADDER_RUN).click().run()
    assert not at.exception
    finish_jobs(at)  # a job of the runner: it may outlast the page's short wait
    np.testing.assert_allclose(ladder_frame(at)["criterion"].iloc[2], 1751.93934448899, atol=1e-6)
    at.button(key=Keys.W_LADDER_ADD).click().run()
    assert at.session_state[Keys.ACTIVE_FIT] == "M1: random intercept"
    assert len(at.session_state[Keys.FITS]) == 4  # ML fits differ from the REML record
    at.radio(key=Keys.W_LADDER_REML).set_value("REML").run()
    assert "fitted with other settings" in texts(at.info)


def test_ladder_on_trial_small_has_the_hospital_step(app):
    app.selectbox(key=Keys.W_EXAMPLE).select("trial_small").run()
    at = app.switch_page("pages/compare.py").run()
    assert not at.exception
    at.button(key=Keys.W_LADDER_RUN).click().run()
    assert not at.exception
    finish_jobs(at)  # a job of the runner: it may outlast the page's short wait
    table = ladder_frame(at)
    assert list(table["step"]) == [
        "1. random intercept",
        "2. + random slope",
        "3. + correlation",
        "4. + hospital level",
    ]
    assert table["reference"].iloc[3].startswith("chi-bar-square")
    assert "The hospital level" in texts(at.markdown)


def test_ladder_needs_roles(app):
    from dashboard.io.roles import Roles

    app.session_state[Keys.ROLES] = Roles(subject="Subject", outcome="Reaction").to_dict()
    at = compare(app, [])
    assert "a numeric time column" in texts(at.info)
    assert Keys.W_LADDER_RUN not in [b.key for b in at.button]
