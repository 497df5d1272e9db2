"""The random-effects ladder (dashboard.analysis.ladder) without a browser.

Reference: lme4 1.1-31 fits of sleepstudy (tests/fixtures/reference/cases): REML criterion,
ML deviance, AIC and BIC of ``(1|Subject)``, ``(Days||Subject)``, ``(Days|Subject)``, and
anova()'s ML chi-square statistics (tests/fixtures/reference/lrt).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from dashboard.analysis import ladder as lad
from dashboard.analysis.records import FitRecord
from dashboard.io.roles import Roles
from lmm_core import ModelError, chibar_pvalue, datasets, fit_lmm

REF = Path(__file__).resolve().parents[1] / "fixtures" / "reference"
CASES = ("sleepstudy_intercept", "sleepstudy_slope_uncorr", "sleepstudy_slope_corr")
SLEEP_ROLES = Roles(subject="Subject", time="Days", outcome="Reaction")


def _case(name: str) -> dict:
    return json.loads((REF / "cases" / f"{name}.json").read_text())


@cache
def _example(name: str) -> tuple[pd.DataFrame, Roles]:
    data, info = datasets.load_example(name)
    return data, Roles.from_dict(info.roles)


@cache
def _ladder(name: str, reml: bool, active: str | None = None) -> lad.Ladder:
    data, roles = _example(name)
    plan = lad.plan_ladder(data, roles, active)
    frame, _ = lad.ladder_data(data, plan)
    steps = lad.run_ladder(plan.specs, lambda f: fit_lmm(f, frame, reml=reml))
    return lad.analyse_ladder(steps, reml, plan.notes)


def test_sleepstudy_plan():
    data, roles = _example("sleepstudy")
    plan = lad.plan_ladder(data, roles)
    assert [s.formula for s in plan.specs] == [
        "Reaction ~ Days + (1 | Subject)",
        "Reaction ~ Days + (Days || Subject)",
        "Reaction ~ Days + (Days | Subject)",
    ]
    assert [s.kind for s in plan.specs] == ["base", "variance", "correlation"]
    assert "outcome ~ time" in plan.notes[0]


@pytest.mark.parametrize("reml", [True, False])
def test_sleepstudy_matches_lme4(reml):
    ladder = _ladder("sleepstudy", reml)
    suffix = "reml" if reml else "ml"
    refs = [_case(f"{c}_{suffix}") for c in CASES]
    table = lad.ladder_table(ladder)
    key = "REML_criterion" if reml else "deviance"
    np.testing.assert_allclose(table["criterion"], [r[key] for r in refs], atol=1e-6)
    np.testing.assert_allclose(table["AIC"], [r["AIC"] for r in refs], atol=1e-6)
    np.testing.assert_allclose(table["BIC"], [r["BIC"] for r in refs], atol=1e-6)
    np.testing.assert_allclose(table["logLik"], [r["logLik"] for r in refs], atol=1e-4)
    assert list(table["npar"]) == [4, 5, 6]
    chisq = [refs[0][key] - refs[1][key], refs[1][key] - refs[2][key]]
    np.testing.assert_allclose(table["Chisq"].iloc[1:], chisq, atol=1e-6)
    if reml:  # the well-known values
        assert table["criterion"].iloc[2] == pytest.approx(1743.628, abs=1e-3)
    else:
        assert table["criterion"].iloc[2] == pytest.approx(1751.939, abs=1e-3)
        anova = json.loads((REF / "lrt" / "sleepstudy_random_effects.json").read_text())
        np.testing.assert_allclose(table["Chisq"].iloc[1:], anova["table"]["Chisq"][1:], atol=1e-6)


def test_right_reference_distributions():
    ladder = _ladder("sleepstudy", True)
    slope, corr = ladder.verdicts
    # a variance: 50:50 chi-bar-square, half the chi-square(1) p-value
    assert slope.test.p == pytest.approx(chibar_pvalue(slope.test.chisq, 1), rel=1e-12)
    assert slope.test.p == pytest.approx(stats.chi2.sf(slope.test.chisq, 1) / 2, rel=1e-10)
    assert "chi-bar-square" in slope.reference
    # a correlation: plain chi-square(1)
    assert corr.test.p_chibar is None
    assert corr.test.p == pytest.approx(stats.chi2.sf(corr.test.chisq, 1), rel=1e-12)
    assert corr.reference == "chi-square(1)"


def test_verdicts_in_plain_words():
    ladder = _ladder("sleepstudy", True)
    slope, corr = (v.sentence for v in ladder.verdicts)
    assert slope.startswith("**The random slope is needed**: p < 0.001, AIC drops by 40.8")
    assert corr.startswith("**The correlation between intercept and slope adds nothing**")
    assert "AIC rises by 2.0" in corr
    assert not ladder.problems


def test_figure_and_records():
    ladder = _ladder("sleepstudy", True)
    fig = lad.ladder_figure(ladder)
    assert [t.name for t in fig.data] == ["AIC", "BIC"]
    assert list(fig.data[0].x) == ["1. random intercept", "2. + random slope", "3. + correlation"]
    assert fig.data[0].marker.symbol[1] == "star"  # lowest AIC: the uncorrelated slope
    formula = "Reaction ~ Days + (Days | Subject)"
    result = ladder.steps[-1].result
    existing = [FitRecord("M1: x", formula, True, "k", "sleep", result, 0.0)]
    records = lad.ladder_records(ladder, data_key="k", data_name="sleep", existing=existing)
    assert [r.name for r in records] == ["ladder random intercept", "ladder random slope"]
    assert all(r.reml and r.data_key == "k" for r in records)
    assert records[0].result is ladder.steps[0].result


def test_active_model_fixed_effects_and_cluster_step():
    active = "y ~ time * arm + (time | patient) + (1 | hospital)"
    ladder = _ladder("trial_small", True, active)
    formulas = [s.spec.formula for s in ladder.steps]
    assert formulas[0] == "y ~ time + arm + time:arm + (1 | patient)"
    assert formulas[-1] == "y ~ time + arm + time:arm + (time | patient) + (1 | hospital)"
    cluster = ladder.verdicts[-1]
    assert cluster.test.p_chibar is not None and cluster.test.boundary.mixture_df == 1
    assert cluster.sentence.startswith("**The hospital level")
    assert "Fixed effects of the active model" in ladder.notes[0]
    # with time * arm the uncorrelated slope collapses to zero; the correlated one is needed
    assert ladder.steps[1].result.is_singular
    assert any("Step 2 (random slope): the fit is singular" in p for p in ladder.problems)
    assert ladder.verdicts[1].test.significant
    assert "brings in the slope together with its correlation" in ladder.verdicts[1].sentence
    assert len({s.result.nobs for s in ladder.steps}) == 1


def test_subject_ids_within_cluster_are_nested():
    data, _ = _example("trial_small")
    roles = Roles(subject="patient_in_hospital", cluster="hospital", time="time", outcome="y")
    plan = lad.plan_ladder(data, roles)
    assert plan.specs[0].formula == "y ~ time + (1 | hospital:patient_in_hospital)"
    assert plan.specs[-1].formula.endswith("(time | hospital:patient_in_hospital) + (1 | hospital)")
    assert any("repeat across hospital" in n for n in plan.notes)


def test_large_data_keep_every_rung():
    """(time || patient) on 12,500 patients: two terms on one factor, merged by the engine
    into one block per patient (formerly a dense 12,500 x 12,500 block)."""
    data, roles = _example("trial_large")
    plan = lad.plan_ladder(data, roles)
    assert [s.formula for s in plan.specs][:3] == [
        "y ~ time + (1 | patient)",
        "y ~ time + (time || patient)",
        "y ~ time + (time | patient)",
    ]
    res = fit_lmm(plan.specs[1].formula, data)
    assert res.converged and len(res.varcorr_table()) == 3


def test_missing_roles_and_failed_or_singular_fits():
    data, _ = _example("sleepstudy")
    with pytest.raises(ModelError, match="a subject id column"):
        lad.plan_ladder(data, Roles(time="Days", outcome="Reaction"))
    plan = lad.plan_ladder(data, SLEEP_ROLES)

    def fit(formula: str):
        if "||" in formula:
            raise ModelError("the optimizer gave up")
        return fit_lmm(formula, data)

    steps = lad.run_ladder(plan.specs, fit)
    ladder = lad.analyse_ladder(steps, True)
    assert not steps[1].ok and "gave up" in ladder.problems[0]
    (verdict,) = ladder.verdicts
    assert (verdict.index, verdict.against) == (2, 0)
    assert verdict.test.boundary.mixture_df == 2
    table = lad.ladder_table(ladder)
    assert table.loc[1, "singular"] == "failed" and np.isnan(table.loc[1, "AIC"])
    lad.ladder_figure(ladder)  # draws the fitted rungs only

    # a subject effect the data cannot support: every subject has the same level
    flat = data.assign(Reaction=250.0 + 10.0 * data["Days"] + np.tile(np.r_[1, -1], 90))
    plan = lad.plan_ladder(flat, SLEEP_ROLES)
    ladder = lad.analyse_ladder(
        lad.run_ladder(plan.specs, lambda f: fit_lmm(f, flat)), True, plan.notes
    )
    assert any("singular" in p for p in ladder.problems)


AWKWARD = {"Reaction": "SBP (mmHg)", "Days": "Visit day (d)", "Subject": "Patient ID é/ü"}


def test_quoted_names_every_rung_fits_and_keeps_the_active_model():
    """Issue 11: with `SBP (mmHg)` every rung failed ("Unknown function SBP"): the response
    lost its backticks when the ladder rebuilt the formula from the active model."""
    data = _example("sleepstudy")[0].rename(columns=AWKWARD)
    data["Sex*Group"] = np.where(data["Patient ID é/ü"].astype(int) % 2 == 0, "F", "M")
    data["Clinic: site"] = np.where(data["Patient ID é/ü"].astype(int) % 3 == 0, "a", "b")
    roles = Roles(subject="Patient ID é/ü", cluster="Clinic: site", time="Visit day (d)",
                  outcome="SBP (mmHg)")  # fmt: skip
    active = "`SBP (mmHg)` ~ `Visit day (d)` * `Sex*Group` + (1 | `Patient ID é/ü`)"
    plan = lad.plan_ladder(data, roles, active)
    assert plan.specs[0].formula == (
        "`SBP (mmHg)` ~ `Visit day (d)` + `Sex*Group` + `Visit day (d)`:`Sex*Group` "
        "+ (1 | `Patient ID é/ü`)"
    )
    assert plan.specs[-1].formula.endswith("+ (1 | `Clinic: site`)")
    steps = lad.run_ladder(plan.specs, lambda f: fit_lmm(f, data))
    assert [s.error for s in steps] == [""] * 4
    ladder = lad.analyse_ladder(steps, True, plan.notes)
    assert len(ladder.verdicts) == 3
    assert "`SBP (mmHg)` ~" in ladder.notes[0]  # shown as a code span


def test_status_header_tells_when_steps_fail():
    """The status box said 'Ladder fitted' although every step had failed."""
    data, _ = _example("sleepstudy")
    plan = lad.plan_ladder(data, SLEEP_ROLES)
    ok = lad.run_ladder(plan.specs, lambda f: fit_lmm(f, data))
    assert lad.ladder_status(ok, "0.31") == ("Ladder fitted in 0.31 s", "complete")

    def failing(formula: str):
        raise ModelError("Unknown function `SBP` at position 0")

    none = lad.run_ladder(plan.specs, failing)
    label, state = lad.ladder_status(none, "0.01")
    assert state == "error" and "No step of the ladder could be fitted" in label
    assert "fitted in" not in label
    some = [ok[0], none[1], ok[2]]
    label, state = lad.ladder_status(some, "0.2")
    assert label.startswith("Ladder: 2 of 3 steps fitted, 1 failed")
    problems = lad.analyse_ladder(some, True).problems
    assert "could not be fitted: Unknown function `SBP` at position 0" in problems[0]


def test_random_curve_rung_follows_the_active_model():
    """An active model with a spline per subject adds a last rung: that curve, tested against
    the straight line (nested: a natural spline contains every straight line)."""
    active = "Reaction ~ ns(Days, 3) + (ns(Days, 2) | Subject)"
    data, roles = _example("sleepstudy")
    plan = lad.plan_ladder(data, roles, active)
    assert [s.formula for s in plan.specs][-2:] == [
        "Reaction ~ ns(Days, 3) + (Days | Subject)",
        "Reaction ~ ns(Days, 3) + (ns(Days, 2) | Subject)",
    ]
    assert plan.specs[-1].label == "+ random curve"
    ladder = _ladder("sleepstudy", True, active)
    last = ladder.verdicts[-1]
    assert last.test.nested and last.test.df == 3
    small, large = (ladder.steps[i].result for i in (2, 3))
    assert last.test.chisq == pytest.approx(2 * (large.loglik - small.loglik), rel=1e-9)
    assert "random curve" in last.sentence
    data, roles = _example("trial_small")
    plan = lad.plan_ladder(data, roles, "y ~ poly(time, 2) * arm + (poly(time, 2) | patient)")
    assert plan.specs[-1].formula.endswith("+ (poly(time, 2) | patient) + (1 | hospital)")
