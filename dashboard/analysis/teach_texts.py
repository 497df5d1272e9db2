"""Teach page, the plain-words texts: the introduction, and what the numbers of sections 3 and
4 say (why shrinkage differs from its formula, singular fits, naive standard errors).

Pure, no Streamlit, so every sentence is testable without a browser.
"""

from __future__ import annotations

import math

from dashboard.base.numbers import fmt, fmt_pct
from lmm_core.simulation.teaching_curves import FORMULA
from lmm_core.simulation.teaching_repeat import ReplicateSummary
from lmm_core.simulation.teaching_shrinkage import expected_slope_weight
from lmm_core.simulation.teaching_truth import LabTruth

__all__ = [
    "BOUNDARY_WORDS",
    "INTRO",
    "count_of",
    "naive_text",
    "singular_text",
    "weight_note",
]

#: The first words of the Teach page: what the lab does, with the model it fits.
INTRO = f"""
In real data nobody knows the true parameters, so nobody can check how well a model recovers
them. Here **you set the truth**, the lab draws a study from it, fits the mixed model
`{FORMULA}` with this app's engine (or a curved shape of time that you choose), and puts
every estimate next to the truth. Each subject has its own line: intercept β₀ + u₀ and slope
β₁ + u₁, where the subject's deviations (u₀, u₁) are drawn with SDs τ₀, τ₁ and correlation ρ;
a curvature κ bends everybody's line by the same amount; measurements scatter around the line
with SD σ.
"""


#: kind of fit (ReplicateSummary.boundary_counts) -> words, shared with the figure's legend
BOUNDARY_WORDS: dict[str, str] = {
    "slope SD = 0": "the slope SD estimated as zero",
    "correlation = ±1": "the correlation estimated as ±1",
    "intercept SD = 0": "the intercept SD estimated as zero",
    "other boundary": "another parameter on its boundary",
}


def count_of(k: int, n: int) -> str:
    """``"12 of 100 (12%)"``: a count with its denominator and share."""
    return f"{k:,} of {n:,} ({fmt_pct(k / n) if n else '–'})"


def singular_text(summary: ReplicateSummary) -> str:
    """Plain words on how often the fits were singular, and why singular fits happen.

    The counts are :meth:`ReplicateSummary.boundary_counts`, the same numbers as the legend
    of the slope-SD histogram: the kinds are exclusive and add up to the singular total.
    """
    t = summary.truth
    counts = summary.boundary_counts()
    k = summary.singular_count()
    kinds = [
        f"{c:,} with {BOUNDARY_WORDS[label]}" for label, c in counts.items() if label != "none"
    ]
    truth = (
        f"The truth is τ₁ = {fmt(t.sd_slope, 3)}, τ₀ = {fmt(t.sd_intercept, 3)}, "
        f"ρ = {fmt(t.corr, 3)}."
    )
    if k:
        head = (
            f"In **{count_of(k, summary.n)}** studies the fit was singular: "
            f"{'; '.join(kinds)}. {truth}"
        )
    else:
        head = f"None of the {summary.n:,} studies gave a singular fit. {truth}"
    why = (
        "\n\n**Why singular fits happen.** The model must split the variation of the "
        "subjects' own slopes into a true part (τ₁², how much subjects really differ) and a "
        "noise part (σ² divided by how spread out the visits are). When the true differences "
        "are small next to the noise, or there are few visits or subjects, the own slopes "
        "can by chance vary *less* than the noise alone would make them vary. The best "
        "estimate is then on the edge of what is allowed: a variance of exactly zero (a "
        "variance cannot be negative), or, in a model with a correlation, a correlation of "
        "exactly ±1 (every subject's slope deviation a fixed multiple of its intercept "
        "deviation: one kind of variation fewer). Either way the fit is called singular. It "
        "does not mean that subjects are identical; it means that these data cannot tell "
        "that part of the variation apart from the noise. A simpler model (for example a "
        "random intercept only, or no correlation) describes them as well."
    )
    if k == 0:
        why += (
            " Try it: lower the SD of subject slopes (e.g. to 0.2), lower the visits or raise "
            "the residual SD, and repeat."
        )
    return head + why


def naive_text(summary: ReplicateSummary) -> str:
    """Plain words comparing the naive and the mixed-model standard errors of the slope.

    The verdict compares the average naive standard error with the average mixed-model one
    (itself close to the real spread of the estimates, and far less noisy than that spread
    or than a coverage count): more than 10% smaller is "too narrow", more than 10% larger
    "too wide".
    """
    emp = summary.empirical_sd()
    se_mixed = float(summary.table["se"].mean()) if summary.n else math.nan
    se_naive = float(summary.table["se_ols"].mean()) if summary.n else math.nan
    lines = (
        f"Across the studies the slope estimates really spread with SD **{fmt(emp, 3)}** (the "
        "true standard error). The mixed model's standard error averaged "
        f"**{fmt(se_mixed, 3)}**; the naive regression's averaged **{fmt(se_naive, 3)}**."
    )
    ratio = se_naive / se_mixed if se_mixed > 0 else math.nan
    if not math.isfinite(ratio):
        return lines
    if ratio < 0.9:
        verdict = (
            f" **The naive intervals are too narrow** (standard errors {1 - ratio:.0%} too "
            "small). Naive regression treats every row as an independent piece of "
            "information. But the slope is learnt from how each subject changes, and subjects "
            "differ in their slopes (τ₁): rows of one subject share that subject's slope, so "
            "many visits of the same subjects are worth far less than as many independent "
            "people. The naive standard error is too small, its intervals miss the truth too "
            "often, and its p-values are too small."
        )
    elif ratio > 1.1:
        verdict = (
            f" **Here the naive intervals are too wide** (standard errors {ratio - 1:.0%} too "
            "large). With large differences between subjects at baseline (τ₀) and small "
            "differences in slope, naive regression counts the baseline differences as noise, "
            "although they do not blur the slope (each subject is compared with itself). "
            "Naive standard errors are wrong in either direction; they are right only by "
            "accident."
        )
    else:
        verdict = (
            " Here the naive standard errors happen to be about right: the inflation from "
            "subjects differing at baseline and the deflation from subjects differing in "
            "slope roughly cancel. Change τ₀ or τ₁ and repeat: naive standard errors are "
            "right only by accident."
        )
    return lines + verdict


def weight_note(
    truth: LabTruth, est: dict[str, float], median_factor: float, mean_visits: float
) -> str:
    """Why the expected weight on the own slope and the median shrinkage factor differ.

    Parameters
    ----------
    truth
        The truth of the study shown (its ``n_visits`` and ``sigma`` are section 3's).
    est
        :func:`lmm_core.simulation.teaching.estimates` of the study's fit.
    median_factor
        Median over subjects of ``(mixed - population) / (own - population)``
        (:func:`lmm_core.simulation.teaching_shrinkage.shrinkage_summary`).
    mean_visits
        Visits actually seen per subject, on average.

    Returns
    -------
    str
        Markdown: both numbers, what each is computed from, and the formula's value with the
        fit's estimates instead of the truth (usually the biggest part of the gap).
    """
    n = int(truth.n_visits)
    w_true = float(expected_slope_weight(truth.sd_slope, truth.sigma, n))
    w_est = float(expected_slope_weight(est["sd_slope"], est["sigma"], n))
    return (
        f"**Why the expected weight ({fmt(w_true, 2)}) and the median factor "
        f"({fmt(median_factor, 2)}) differ.** The expected weight is a formula for a "
        f"*typical subject of the design*: seen at all {n} planned visits, with the **true** "
        f"τ₁ = {fmt(truth.sd_slope, 3)} and σ = {fmt(truth.sigma, 3)} you set, and no "
        "intercept–slope correlation. The median factor is *measured in this simulated "
        "study*: for each subject, the share of its own deviation that its mixed-model slope "
        "kept, then the median over the subjects. The fit only knows its **estimates** "
        f"(τ̂₁ = {fmt(est['sd_slope'], 3)}, σ̂ = {fmt(est['sigma'], 3)}, "
        f"ρ̂ = {fmt(est['corr'], 2)}; with these the formula gives {fmt(w_est, 2)}), each "
        f"subject has only the visits it kept after dropout ({fmt(mean_visits, 3)} on "
        "average), and a correlated intercept also pulls the slope. With many subjects, "
        "every visit seen and ρ = 0 the two numbers agree."
    )
