"""Compare page in AppTest: lme4's table and AIC/BIC shown, refit note, guards, warnings."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from dashboard.state import Keys
from lmm_core import datasets, fit_lmm, lrt
from tests.app.conftest import figures_on, texts

FORMULAS = {
    "M1: random intercept": "Reaction ~ Days + (1 | Subject)",
    "M2: uncorrelated slope": "Reaction ~ Days + (Days || Subject)",
    "M3: correlated slope": "Reaction ~ Days + (Days | Subject)",
}


@cache
def sleep_fit(formula: str, rows: int | None = None):
    data, _ = datasets.load_example("sleepstudy")
    return fit_lmm(formula, data if rows is None else data.iloc[:rows])


def record(name: str, formula: str, rows: int | None = None) -> dict:
    return dict(
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
    app.session_state[Keys.ACTIVE_FIT] = records[-1]["name"] if records else None
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
    expected = lrt(*[r["result"] for r in records], names=list(FORMULAS))
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
    assert shown.loc["M1: all rows", "AIC"] == pytest.approx(records[0]["result"].aic)
    assert not has_table(at, "compare_lrt")


def test_single_fit_gives_guidance(app):
    at = compare(app, [record("M1: random intercept", FORMULAS["M1: random intercept"])])
    assert "at least two fitted models" in texts(at.info)
    assert not at.dataframe


def test_guard_without_fits(app):
    at = compare(app, [])
    assert "Fit one on the Model page" in texts(at.info)
    assert not at.dataframe
