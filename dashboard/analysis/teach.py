"""Teach page helpers without Streamlit: the truth controls' ranges and the plain-words texts.

The page (``pages/teach.py``) renders; this module decides what the controls offer and what
the explanations say, so both are testable without a browser.
"""

from __future__ import annotations

import math
from dataclasses import astuple, dataclass, fields
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from dashboard.base.constants import CONFIDENCE_LEVEL, z_value
from dashboard.base.numbers import fmt, fmt_pct
from lmm_core.simulation.teaching import (
    FORMULA,
    SHAPES,
    LabTruth,
    estimates,
    expected_slope_weight,
    is_curved,
    population_mean,
    shrinkage_summary,
    slope_shrinkage,
)
from lmm_core.simulation.teaching_repeat import ReplicateSummary, monte_carlo_se

__all__ = [
    "BOUNDARY_WORDS",
    "CONTROLS",
    "DEFAULT_SEED",
    "N_GRID",
    "SHAPE_CHOICES",
    "Control",
    "StudyCurves",
    "count_of",
    "curve_note",
    "naive_text",
    "settings_to_truth",
    "shown_subjects",
    "singular_text",
    "slope_note",
    "slope_word",
    "study_curves",
    "truth_key",
    "weight_note",
]


@dataclass(frozen=True)
class Control:
    """One truth control: label, range, step and tooltip (``kind``: slider or number)."""

    label: str
    low: float
    high: float
    step: float
    help: str
    kind: str = "slider"


#: LabTruth field -> its control on the page (defaults are LabTruth's)
CONTROLS: dict[str, Control] = {
    "intercept": Control(
        "Population intercept β₀",
        -1000.0,
        1000.0,
        1.0,
        "The average outcome at time 0 (the first visit) over all subjects.",
        "number",
    ),
    "slope": Control(
        "Population slope β₁",
        -50.0,
        50.0,
        0.5,
        "The average change of the outcome per time unit (per visit). The lab's main target.",
        "number",
    ),
    "sigma": Control(
        "Residual SD σ",
        0.1,
        20.0,
        0.1,
        "Visit-to-visit noise: how far single measurements scatter around a subject's own "
        "line (measurement error plus day-to-day variation).",
    ),
    "sd_intercept": Control(
        "SD of subject intercepts τ₀",
        0.0,
        20.0,
        0.5,
        "How much subjects differ at time 0: about 95% of subjects start within ±2 τ₀ of "
        "the population intercept.",
    ),
    "sd_slope": Control(
        "SD of subject slopes τ₁",
        0.0,
        5.0,
        0.05,
        "How much subjects differ in their rate of change. Set it small (e.g. 0.1) to see "
        "singular fits appear when you repeat the study.",
    ),
    "corr": Control(
        "Correlation intercept–slope ρ",
        -1.0,
        1.0,
        0.05,
        "Do subjects who start high change faster (ρ > 0) or slower (ρ < 0)?",
    ),
    "n_subjects": Control(
        "Subjects",
        5,
        200,
        1,
        "Number of subjects in one simulated study.",
    ),
    "n_visits": Control(
        "Visits per subject",
        3,
        20,
        1,
        "Planned visits per subject, at times 0, 1, 2, ... More visits: each subject's own "
        "slope is measured more precisely and the model trusts it more (less shrinkage).",
    ),
    "dropout": Control(
        "Dropout per visit",
        0.0,
        0.5,
        0.01,
        "Chance that a subject still in the study leaves before each later visit (completely "
        "at random; the first visit is always seen). Dropout makes some subjects' own "
        "slopes rest on few visits.",
    ),
    "curvature": Control(
        "Curvature κ (bend at mid-study)",
        -20.0,
        20.0,
        0.5,
        "How much the population curve bends. At mid-study the average outcome lies κ above "
        "the straight line from its start to its end (κ > 0: growth that slows down) or "
        "below it (κ < 0: growth that speeds up); 0 gives straight lines. The bend is zero at "
        "the first and the last visit, so β₀ is still the start and β₁ the average slope.",
    ),
    "time_df": Control(
        "Shape of time in the fitted model",
        1,
        3,
        1,
        "The fixed part of the model fitted to the study: a straight line in time, a "
        "quadratic poly(time, 2) or a natural spline ns(time, 3) (a smooth curve of cubic "
        "pieces joined at two knots). More degrees of freedom can follow a bend, and spend "
        "data on it when there is none. The random part stays (time | subject).",
        "shape",
    ),
}

INTEGER_FIELDS = ("n_subjects", "n_visits", "time_df")
#: seed of the first study a user sees: a typical draw (every interval covers the truth and
#: shrinkage is visible); "Draw a new study" moves on from it
DEFAULT_SEED = 2


def settings_to_truth(settings: dict[str, Any]) -> LabTruth:
    """The :class:`LabTruth` of the page's settings (missing entries take the defaults).

    Raises
    ------
    lmm_core.DataError
        When a value is out of range (LabTruth's own check).
    """
    values = {}
    for f in fields(LabTruth):
        if f.name in settings:
            v = settings[f.name]
            values[f.name] = int(v) if f.name in INTEGER_FIELDS else float(v)
    return LabTruth(**values)


def truth_key(truth: LabTruth) -> tuple:
    """A hashable key of the truth (cache key and the identity of a replicate run)."""
    return astuple(truth)


def _pct(p: float) -> str:
    return fmt_pct(p)


#: kind of fit (ReplicateSummary.boundary_counts) -> words, shared with the figure's legend
BOUNDARY_WORDS: dict[str, str] = {
    "slope SD = 0": "the slope SD estimated as zero",
    "correlation = ±1": "the correlation estimated as ±1",
    "intercept SD = 0": "the intercept SD estimated as zero",
    "other boundary": "another parameter on its boundary",
}


def count_of(k: int, n: int) -> str:
    """``"12 of 100 (12%)"``: a count with its denominator and share."""
    return f"{k:,} of {n:,} ({_pct(k / n) if n else '–'})"


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
        (:func:`lmm_core.simulation.teaching.shrinkage_summary`).
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


#: the fitted shape's choices on the page: time_df -> "natural spline · ns(time, 3)"
SHAPE_CHOICES: dict[int, str] = {k: f"{name} · {term}" for k, (name, term) in SHAPES.items()}
N_GRID = 60  # time points of the curves in section 2


def slope_word(truth: LabTruth) -> str:
    """``"average slope"`` when the truth or the fit is curved, else ``"slope"``."""
    return "average slope" if is_curved(truth) else "slope"


@dataclass(frozen=True)
class StudyCurves:
    """Section 2's curves on a fine grid of time (:func:`study_curves`).

    Attributes
    ----------
    grid
        ``time`` (``N_GRID`` points from 0 to ``T``), ``truth`` (the true population curve)
        and ``fitted`` (the fitted population curve, ``x(t)' beta_hat``).
    subjects
        The shown subjects' curves on the same grid: ``subject``, ``time``, ``fitted``
        (``x(t)' beta_hat + z(t)' b_i``) and ``truth``.
    points
        The shown subjects' visits: ``subject``, ``time``, ``y``.
    means
        The observed mean per visit time: ``time``, ``y``, ``n``.
    knots
        Interior knots of a spline fit (empty otherwise).
    shape
        The fitted shape's name (``"natural spline"``).
    """

    grid: pd.DataFrame
    subjects: pd.DataFrame
    points: pd.DataFrame
    means: pd.DataFrame
    knots: tuple[float, ...]
    shape: str


def shown_subjects(data: pd.DataFrame, k: int = 3) -> list[str]:
    """``k`` subjects spread over the study: those at the ranks ``(j + 1/2) m / k`` of the
    ``m`` subjects' mean outcome (no extremes, none alike); all of them when ``m <= k``."""
    level = data.groupby("subject", observed=True)["y"].mean().sort_values()
    order = level.index.astype(str)
    m, k = len(order), min(k, len(order))
    return [order[int((j + 0.5) * m / k)] for j in range(k)]


def study_curves(
    lab: Any, result: Any, *, n_grid: int = N_GRID, n_subjects: int = 3
) -> StudyCurves:
    """The true and fitted population curves, and a few subjects' fitted and true curves, on
    ``n_grid`` times from 0 to ``T`` (``result.predict`` on new times: the spline's knots and
    the polynomial's coefficients are the fit's own).

    A subject's true curve is ``f(t) + u_0i + u_1i t`` (the population curve ``f`` of
    :func:`lmm_core.simulation.teaching.population_mean` plus its own line's deviation).
    """
    truth, data = lab.truth, lab.data
    t = np.linspace(0.0, truth.span, int(n_grid))
    f = population_mean(truth, t)
    fitted = result.predict(pd.DataFrame({"time": t}), include_re=False)
    grid = pd.DataFrame({"time": t, "truth": f, "fitted": fitted})
    chosen = shown_subjects(data, n_subjects)
    k = len(t)
    curves = pd.DataFrame({"subject": np.repeat(chosen, k), "time": np.tile(t, len(chosen))})
    curves["fitted"] = result.predict(curves, include_re=True)
    own = lab.subjects.loc[chosen]
    u0 = np.repeat(own["intercept"].to_numpy() - truth.intercept, k)
    u1 = np.repeat(own["slope"].to_numpy() - truth.slope, k)
    curves["truth"] = np.tile(f, len(chosen)) + u0 + u1 * curves["time"].to_numpy()
    points = data.loc[data["subject"].astype(str).isin(chosen), ["subject", "time", "y"]]
    means = data.groupby("time")["y"].agg(["mean", "size"]).reset_index()
    means.columns = ["time", "y", "n"]
    knots = tuple(result.design.spline_knots().get("time", ()))
    shape = SHAPES[truth.time_df][0]
    return StudyCurves(grid, curves, points.astype({"subject": str}), means, knots, shape)


def curve_note(truth: LabTruth) -> str:
    """One or two sentences on what to look at in section 2's curves."""
    name = SHAPES[truth.time_df][0]
    if not is_curved(truth):
        return (
            "Black: the true population line; blue: the fitted one; coloured: three subjects' "
            "visits and fitted lines (dotted: their true lines). Set a **curvature κ** in "
            "section 1 to bend the truth, and a curved **shape of time** to let the fit bend."
        )
    if truth.time_df == 1:
        return (
            f"The truth bends (κ = {fmt(truth.curvature, 3)}) but the fitted straight line "
            "cannot: look where the blue line misses the black curve, at the start, in the "
            "middle and at the end. What the line cannot follow is counted as noise, so σ̂ "
            "tends to come out too large and the intercept off; choose a quadratic or a spline "
            "in section 1 to let the fit bend."
        )
    if truth.curvature == 0:
        return (
            f"The truth is a straight line; the fitted {name} may bend, so it spends data on "
            "a bend that is not there: it wiggles a little around the black line, and its "
            "estimated curvature should be near 0 (see the table)."
        )
    return (
        f"The fitted {name} bends with the truth: the blue curve follows the black one. "
        "Switch the shape of time to the straight line in section 1 to see a line miss the "
        "bend."
    )


def slope_note(truth: LabTruth) -> str:
    """What the intercept, slope and curvature rows mean when the truth or the fit bends."""
    span = f"{truth.span:g}"
    return (
        "**A curve has no single slope**: it is steeper in some places than in others. The "
        f"table reports the **average slope** from the first to the last planned visit, "
        f"(f(T) − f(0)) / T with T = {span}: for the truth it is β₁ (the bend is zero at both "
        "ends); for the fit it is that combination of its coefficients (the coefficients of "
        "poly() or ns() columns mean nothing on their own), with a Satterthwaite t interval. "
        "The intercept is the fitted curve at time 0, the curvature its bend at mid-study."
    )


def default_value(name: str) -> Any:
    """The lab's default for the truth field ``name``."""
    return getattr(LabTruth(), name)


@dataclass(frozen=True)
class SlopeShrinkage:
    """Section 3's numbers: per-subject own vs mixed slopes, their summary, the expected weight
    on a subject's own slope and the fit's estimates."""

    table: Any
    summary: dict[str, float]
    weight: float
    fitted: Any


def slope_shrinkage_numbers(truth: LabTruth, lab: Any, result: Any) -> SlopeShrinkage:
    """Own and mixed-model slopes of the lab's study ``lab`` fitted as ``result``."""
    table = slope_shrinkage(result, lab)
    weight = float(expected_slope_weight(truth.sd_slope, truth.sigma, truth.n_visits))
    return SlopeShrinkage(table, shrinkage_summary(table), weight, estimates(result, truth.span))


def coverage_error(rate: float, n: int, level: float = CONFIDENCE_LEVEL) -> float:
    """Half-width of the Monte Carlo interval at ``level`` of a coverage ``rate`` seen in ``n``
    simulated studies (1.96 standard errors for 95%)."""
    return z_value(level) * monte_carlo_se(rate, n)


class RepeatRun(NamedTuple):
    """What a repeated study depends on: the truth, the seed, the number of studies, the df."""

    truth: tuple
    seed: int
    n_rep: int
    df: str

    def same_study(self, other: RepeatRun) -> bool:
        """Whether ``other`` repeats the same study with the same interval method (its
        number of repeats may differ)."""
        return (self.truth, self.seed, self.df) == (other.truth, other.seed, other.df)


class StoredRepeat(NamedTuple):
    """A finished repeated study kept in the session, with the run it answers."""

    run: RepeatRun
    summary: ReplicateSummary
