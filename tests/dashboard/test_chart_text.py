"""Written chart descriptions (dashboard.analysis.chart_text): numbers from the fits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashboard.analysis import chart_text as ct
from dashboard.analysis.glmm_diagnostics import binned_table, glmm_outcome
from dashboard.analysis.glmm_shrinkage import glmm_shrinkage
from dashboard.analysis.ladder import ladder_table
from dashboard.analysis.mmrm_diagnostics import mmrm_residuals
from dashboard.base.markup import escape_text
from dashboard.base.numbers import fmt, fmt_criterion
from lmm_core import datasets, fit_glmm, fit_lmm
from lmm_core.predict.per_group import shrinkage_estimates

#: column names a user may upload: spaces, accents, brackets
ODD = {"Reaction": "Temps de réaction [ms]", "Days": "Jours (privation)", "Subject": "Sujet n°"}


@pytest.fixture(scope="module")
def sleep():
    data, _ = datasets.load_example("sleepstudy")
    return data, fit_lmm("Reaction ~ Days + (Days | Subject)", data)


@pytest.fixture(scope="module")
def infections():
    data, _ = datasets.load_example("infections")
    return data, fit_glmm("infection ~ week + arm + (1 | patient)", data, family="binomial")


def test_trajectories_gives_the_population_slope_and_the_subjects_range(sleep):
    data, fit = sleep
    text = ct.trajectories_sentence(fit, time="Days", subject="Subject", n_subjects=18)
    beta = float(fit.fixef["Days"])
    own = beta + fit.ranef["Subject"]["Days"]
    assert beta == pytest.approx(10.467, rel=1e-3)  # lmer(Reaction ~ Days + (Days | Subject))
    assert text.startswith("Reaction against Days for 18 Subjects: the population line rises")
    assert f"rises {fmt(beta, 3)} per unit of Days" in text
    assert f"from {fmt(own.min(), 3)} to {fmt(own.max(), 3)} per unit" in text


def test_trajectories_of_a_random_intercept_says_parallel(sleep):
    data, _ = sleep
    fit = fit_lmm("Reaction ~ Days + (1 | Subject)", data)
    text = ct.trajectories_sentence(fit, time="Days", subject="Subject", n_subjects=18)
    level = fit.ranef["Subject"]["(Intercept)"]
    assert "parallel" in text and f"from {fmt(level.min(), 3)} to {fmt(level.max(), 3)}" in text


def test_falling_and_missing_time_terms(sleep):
    data, _ = sleep
    flipped = fit_lmm("Reaction ~ Days + (Days | Subject)", data.assign(Reaction=-data["Reaction"]))
    text = ct.trajectories_sentence(flipped, time="Days", subject="Subject", n_subjects=18)
    assert "falls 10.5 per unit of Days" in text
    nothing = fit_lmm("Reaction ~ 1 + (1 | Subject)", data)
    text = ct.trajectories_sentence(nothing, time="Days", subject="Subject", n_subjects=18)
    assert "no fixed effect of Days" in text


def test_odd_column_names_are_found_and_escaped(sleep):
    data, fit = sleep
    odd = data.rename(columns=ODD)
    f = "`Temps de réaction [ms]` ~ `Jours (privation)` + (`Jours (privation)` | `Sujet n°`)"
    fit_odd = fit_lmm(f, odd)
    text = ct.trajectories_sentence(
        fit_odd, time=ODD["Days"], subject=ODD["Subject"], n_subjects=18
    )
    plain = ct.trajectories_sentence(fit, time="Days", subject="Subject", n_subjects=18)
    assert escape_text(ODD["Reaction"]) in text and escape_text(ODD["Days"]) in text
    assert "`" not in text and "[ms]" not in text  # Markdown-safe: brackets escaped
    assert plain.split(": ", 1)[1].split(";")[0].split(" per ")[0] in text  # same slope
    est = shrinkage_estimates(fit_odd, ODD["Subject"])
    shrink = ct.shrinkage_sentence(est, ODD["Subject"])
    assert escape_text(ODD["Subject"]) in shrink and escape_text(ODD["Days"]) in shrink


def test_glmm_trajectories_speak_of_log_odds_and_odds_ratios(infections):
    data, fit = infections
    n = data["patient"].nunique()
    text = ct.trajectories_sentence(fit, time="week", subject="patient", n_subjects=n)
    beta = float(fit.fixef["week"])
    assert "log-odds" in text and f"odds ratio {fmt(np.exp(beta), 3)} per unit" in text
    assert "parallel" in text


def test_poisson_speaks_of_rate_ratios():
    data, _ = datasets.load_example("seizures")
    fit = fit_glmm(
        "seizures ~ period + arm + offset(log(exposure)) + (1 | patient)", data, family="poisson"
    )
    text = ct.trajectories_sentence(fit, time="period", subject="patient", n_subjects=10)
    assert "log rate" in text and "rate ratio" in text


def test_shrinkage_and_caterpillar_count_from_the_table(sleep, infections):
    _, fit = sleep
    est = shrinkage_estimates(fit, "Subject")
    text = ct.shrinkage_sentence(est, "Subject")
    kept = est.table["shrinkage:Days"].median()
    assert f"keeps {fmt(100 * kept, 2)}%" in text and "Days effect of 18 Subjects" in text
    t = est.table
    low = t["blup:Days"] - ct.Z95 * t["blup_sd:Days"]
    high = t["blup:Days"] + ct.Z95 * t["blup_sd:Days"]
    clear = int(((low > 0) | (high < 0)).sum())
    assert f"{clear} of 18 Days effect intervals exclude 0" in ct.caterpillar_sentence(
        est, "Subject"
    )
    data, glmm = infections
    g = ct.shrinkage_sentence(glmm_shrinkage(glmm, data, "patient"), "patient", glmm.link)
    assert "on the log-odds scale" in g and "level (intercept)" in g


def test_criteria_and_ladder_name_the_lowest():
    criteria = pd.DataFrame(
        {"AIC": [1794.5, 1763.9, 1765.0], "BIC": [1807.2, 1783.1, 1780.0]},
        index=pd.Index(["M1: intercept", "M2: slope", "M3: [odd] é"], name="model"),
    )
    text = ct.criteria_sentence(criteria)
    assert "AIC is lowest for M2: slope (1,763.90), 1.1 below M3: \\[odd\\] é" in text
    assert "BIC is lowest for M3: \\[odd\\] é (1,780.00), 3.1 below M2: slope" in text
    table = pd.DataFrame(
        {"step": ["1. intercept", "2. slope", "3. failed"], "AIC": [10.0, 4.0, np.nan],
         "BIC": [11.0, 6.0, np.nan]}
    )  # fmt: skip
    ladder = ct.ladder_sentence(table)
    assert "2 fitted steps" in ladder and "AIC is lowest for 2. slope (4.00), 6 below" in ladder


def test_ladder_sentence_from_a_real_ladder_table(sleep):
    from dashboard.analysis.ladder import Ladder, LadderSpec, LadderStep

    data, fit = sleep
    small = fit_lmm("Reaction ~ Days + (1 | Subject)", data)
    steps = tuple(
        LadderStep(LadderSpec(label, r.formula, "", "re"), r)
        for label, r in (("intercept", small), ("slope", fit))
    )
    text = ct.ladder_sentence(ladder_table(Ladder(steps, (), reml=True)))
    gap = fmt(small.aic - fit.aic, 3)
    assert (
        f"AIC is lowest for 2. slope ({fmt_criterion(fit.aic)}), {gap} below 1. intercept" in text
    )


def test_trial_sentences_read_the_last_visit():
    means = pd.DataFrame(
        {"VISIT": ["W02", "W02", "W12", "W12"], "arm": ["control", "drug", "control", "drug"],
         "estimate": [30.0, 29.0, 31.0, 26.5], "ci_lower": [29.0, 28.0, 30.0, 25.5],
         "ci_upper": [31.0, 30.0, 32.0, 27.5]}
    )  # fmt: skip
    text = ct.lsmeans_sentence(means, "VISIT", "arm", "score (points)")
    assert "at the last (W12): control 31 (95% CI 30 to 32); drug 26.5" in text
    diff = pd.DataFrame(
        {"VISIT": ["W02", "W12"], "estimate": [-1.0, -4.5], "ci_lower": [-2.5, -6.0],
         "ci_upper": [0.5, -3.0]}
    )  # fmt: skip
    d = ct.difference_sentence(diff, "VISIT", "score")
    assert "-4.5 (95% CI -6 to -3)" in d and "excludes 0 at 1 of them" in d


def test_residual_and_qq_sentences(sleep):
    _, fit = sleep
    z = fit.residuals / fit.sigma
    text = ct.residual_sentence(fit.fitted, z, "standardized residuals", sd=1.0)
    beyond = int((np.abs(z) > 2).sum())
    assert f"{beyond} ({fmt(100 * beyond / 180, 2)}%) lie beyond ±2 SD" in text
    assert f"the largest is {fmt(z[np.argmax(np.abs(z))], 3)} SD" in text
    qq = ct.qq_sentence(z)
    q1, q3 = np.quantile(z, [0.25, 0.75])
    assert f"between {fmt(q1, 3)} and {fmt(q3, 3)}" in qq and "±0.674" in qq
    # the residuals' own SD is the default scale: a unit change leaves the sentence unchanged
    assert (
        ct.residual_sentence(fit.fitted, fit.residuals).split(":")[1]
        == ct.residual_sentence(fit.fitted * 1000, fit.residuals * 1000).split(":")[1]
    )


def test_mmrm_and_glmm_diagnostics_sentences(infections):
    data, _ = datasets.load_example("trial_visits")
    mmrm = fit_lmm("score ~ arm * VISIT + baseline + us(VISIT | patient)", data)
    frame = mmrm_residuals(mmrm, data)
    text = ct.qq_sentence(frame["normalized"].to_numpy(), "normalized residuals")
    assert f"{len(frame):,} normalized residuals" in text
    raw = ct.residual_sentence(frame["fitted"], frame["residual"], "raw residuals")
    assert "raw residuals against fitted values" in raw
    _, glmm = infections
    table = binned_table(glmm_outcome(glmm))
    binned = ct.binned_sentence(table)
    k = int(table["outside"].sum())
    assert f"{k:,} of {len(table):,} bins lie outside" in binned


def test_empty_inputs_give_a_sentence_not_an_error():
    assert ct.qq_sentence(np.array([np.nan])).startswith("No ")
    assert ct.residual_sentence(np.array([1.0]), np.array([0.1])).startswith("Too few")
    assert ct.criteria_sentence(pd.DataFrame({"AIC": [np.nan], "BIC": [np.nan]})).startswith("No")
    assert ct.link_words("probit") == ("probit", None)
