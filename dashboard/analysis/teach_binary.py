"""Teach page, binary outcome: the controls, the truth they set, and the numbers shown.

Pure, no Streamlit. :mod:`dashboard.views.teach_binary` draws the controls from
:data:`BINARY_CONTROLS`; :func:`settings_to_binary_truth` turns the settings into a
:class:`~lmm_core.simulation.teaching_binary.BinaryTruth`; :func:`recovery_table` sets the
GLMM's and the logistic regression's estimates against what each estimates;
:func:`attenuation` and :func:`attenuation_text` give the marginal effect three ways.
"""

from __future__ import annotations

import math
from dataclasses import astuple, dataclass, fields
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from dashboard.base.numbers import fmt
from lmm_core.predict.population_average import population_average
from lmm_core.simulation.teaching_binary import (
    ATTENUATION_C2,
    MAX_SD,
    BinaryFits,
    BinaryStudy,
    BinaryTruth,
    approximate_marginal,
    expit,
    marginal_target,
    true_curves,
)

__all__ = [
    "BINARY_CONTROLS",
    "BINARY_DEFAULT_SEED",
    "BINARY_INTRO",
    "EFFECT_LABELS",
    "ODDS_RATIOS",
    "Attenuation",
    "BinaryControl",
    "BinaryCurves",
    "attenuation",
    "attenuation_curve",
    "attenuation_text",
    "binary_curves",
    "binary_default",
    "binary_truth_key",
    "effect_word",
    "recovery_table",
    "settings_to_binary_truth",
]

BINARY_DEFAULT_SEED = 1
#: the odds ratios offered by the slider
ODDS_RATIOS = (0.1, 0.2, 0.25, 0.33, 0.5, 0.67, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 10.0)
EFFECT_LABELS = {"treatment": "Treatment (between subjects)", "time": "Time (per visit)"}
INTEGER_FIELDS = ("n_subjects", "n_visits")


@dataclass(frozen=True)
class BinaryControl:
    """One truth control: label, range, step and tooltip."""

    label: str
    low: float
    high: float
    step: float
    help: str


BINARY_CONTROLS: dict[str, BinaryControl] = {
    "baseline": BinaryControl(
        "Baseline probability of the typical subject",
        0.02,
        0.98,
        0.01,
        "The chance of the outcome (e.g. an infection at a visit) for a subject whose own "
        "random effect is 0, untreated or at the first visit. It sets β₀ = logit(p₀).",
    ),
    "sd": BinaryControl(
        "SD of subject intercepts τ (logit scale)",
        0.0,
        5.0,
        0.1,
        "How much subjects differ in their own risk, on the log-odds scale: 95% of subjects "
        "have log-odds within ±2τ of the typical subject. τ = 2 means some subjects are "
        "almost always, others almost never, positive. Larger τ flattens the averaged curve.",
    ),
    "n_subjects": BinaryControl(
        "Subjects",
        1,
        20_000,
        10,
        "Number of subjects in the simulated study (every other one treated).",
    ),
    "n_visits": BinaryControl(
        "Visits per subject",
        1,
        30,
        1,
        "Binary visits per subject. Few visits per subject (2 or 3) with a large τ is where "
        "the Laplace approximation struggles (see the last part).",
    ),
}


def binary_default(name: str) -> Any:
    """The default of the truth field ``name``."""
    return getattr(BinaryTruth(), name)


def settings_to_binary_truth(settings: dict[str, Any]) -> BinaryTruth:
    """The :class:`BinaryTruth` of the page's settings (missing entries take the defaults).

    Raises
    ------
    lmm_core.DataError
        When a value is out of range (with a message saying which and why).
    """
    values: dict[str, Any] = {}
    for f in fields(BinaryTruth):
        if f.name in settings:
            v = settings[f.name]
            values[f.name] = (
                int(v) if f.name in INTEGER_FIELDS else v if f.name == "effect" else float(v)
            )
    return BinaryTruth(**values)


def binary_truth_key(truth: BinaryTruth) -> tuple:
    """A hashable key of the truth (cache and job key)."""
    return astuple(truth)


def effect_word(truth: BinaryTruth) -> str:
    """``"treatment"`` or ``"one visit later"``: what the odds ratio compares."""
    return "treatment" if truth.effect == "treatment" else "one visit later"


@dataclass(frozen=True)
class Attenuation:
    """The effect on the log-odds scale, subject-specific and population-averaged.

    Attributes
    ----------
    conditional
        ``beta_1``: the true within-subject log odds ratio.
    marginal
        The exact population-averaged one: what a logistic regression ignoring subjects
        estimates in a very large study (by integration).
    approximate
        ``beta_1 / sqrt(1 + 0.346 tau^2)``.
    """

    conditional: float
    marginal: float
    approximate: float

    @property
    def ratio(self) -> float:
        """``marginal / conditional`` (``nan`` when the effect is 0)."""
        return self.marginal / self.conditional if self.conditional != 0 else float("nan")


def attenuation(truth: BinaryTruth, sd: float | None = None) -> Attenuation:
    """:class:`Attenuation` of the truth (with SD ``sd``, default the truth's)."""
    tau = truth.sd if sd is None else float(sd)
    return Attenuation(
        truth.beta1, marginal_target(truth, tau)[1], approximate_marginal(truth.beta1, tau)
    )


def attenuation_curve(truth: BinaryTruth, n: int = 41) -> pd.DataFrame:
    """The three log odds ratios of :class:`Attenuation` for SDs from 0 to 5 (or more)."""
    top = max(5.0, min(truth.sd, MAX_SD))
    rows = [astuple(attenuation(truth, s)) for s in np.linspace(0.0, top, n)]
    out = pd.DataFrame(rows, columns=["conditional", "marginal", "approximate"])
    out.insert(0, "sd", np.linspace(0.0, top, n))
    return out


def attenuation_text(truth: BinaryTruth, att: Attenuation, glm_estimate: float) -> str:
    """The attenuation in words and numbers (Markdown)."""
    word = effect_word(truth)
    if truth.beta1 == 0:
        return (
            "With an odds ratio of 1 there is no effect, within subjects or averaged over "
            "them: nothing to attenuate. Move the odds-ratio slider to see the difference."
        )
    return (
        f"Within a subject, the odds ratio of {word} is **{fmt(math.exp(att.conditional), 3)}** "
        f"(log odds ratio β₁ = {fmt(att.conditional, 3)}). Averaged over subjects who differ by "
        f"τ = {truth.sd:g} on the logit scale, the same truth gives a population-averaged "
        f"odds ratio of only **{fmt(math.exp(att.marginal), 3)}** (log odds ratio "
        f"{fmt(att.marginal, 3)}, {att.ratio:.0%} of β₁), computed exactly by integrating over "
        f"the subjects. The classical approximation β₁ / √(1 + {fmt(ATTENUATION_C2, 3)} τ²) gives "
        f"{fmt(att.approximate, 3)}. The logistic regression that ignores the subjects estimated "
        f"{fmt(glm_estimate, 3)} from this study: it estimates the averaged effect, not the "
        "subject-specific one. Neither is wrong: they answer different questions (*what "
        "happens to one subject* vs *what happens to the population's rate*)."
    )


def _ci(est: float, se: float, q: float) -> tuple[float, float]:
    return est - q * se, est + q * se


def recovery_table(fits: BinaryFits, truth: BinaryTruth, level: float = 0.95) -> pd.DataFrame:
    """GLMM (subject-specific) and logistic regression (population-averaged) estimates.

    One row per parameter: the intercept and the effect on the log-odds scale, the odds ratio
    and the SD of the subject intercepts; columns ``truth`` (subject-specific),
    ``glmm``, ``glmm_lower``, ``glmm_upper`` (Wald), ``averaged`` (the population-averaged
    truth: the logistic regression's large-study target), ``glm``, ``glm_lower``,
    ``glm_upper`` (Wald, every row counted as independent).
    """
    q = float(norm.ppf(0.5 + level / 2))
    g, lr = fits.glmm, fits.glm
    a, c = marginal_target(truth)
    se = g.std_errors
    rows = []
    labels = ("Intercept (log-odds at x = 0)", f"Effect of {truth.column} (log odds ratio)")
    for i, (label, t, pa) in enumerate(
        zip(labels, (truth.beta0, truth.beta1), (a, c), strict=True)
    ):
        rows.append(
            (label, t, g.beta[i], *_ci(g.beta[i], se[i], q), pa, lr.beta[i],
             *_ci(lr.beta[i], lr.se[i], q))
        )  # fmt: skip
    last = rows[-1]
    rows.append(("Odds ratio", *np.exp(last[1:])))
    sd = float(np.sqrt(g.covariance_matrices()[0][0, 0]))
    nan = float("nan")
    rows.append(("SD of subject intercepts τ", truth.sd, sd, nan, nan, nan, nan, nan, nan))
    columns = ["parameter", "truth", "glmm", "glmm_lower", "glmm_upper", "averaged", "glm"]
    return pd.DataFrame(rows, columns=[*columns, "glm_lower", "glm_upper"])


@dataclass(frozen=True)
class BinaryCurves:
    """What the curves figure draws.

    ``curves``: on a grid of ``x``, the true typical-subject (``typical``) and averaged
    (``averaged``) curves, the GLMM's typical curve (``glmm_typical``) and averaged curve
    with its estimated SD (``glmm_averaged``), and the logistic regression's (``glm``).
    ``subjects``: a sample of subjects' own true curves (``subject``, ``x``, ``p``).
    ``observed``: the share of 1s at each ``x`` of the study (``x``, ``share``, ``n``).
    """

    curves: pd.DataFrame
    subjects: pd.DataFrame
    observed: pd.DataFrame


def binary_curves(
    study: BinaryStudy, fits: BinaryFits, n_shown: int = 40, n_grid: int = 61
) -> BinaryCurves:
    """:class:`BinaryCurves` of one study and its fits (the first ``n_shown`` subjects)."""
    truth, data = study.truth, study.data
    lo, hi = truth.x_range()
    x = np.linspace(lo, hi, n_grid if truth.effect == "time" else 2)
    curves = true_curves(truth, x)
    g = fits.glmm
    eta = g.beta[0] + g.beta[1] * x
    tau = float(np.sqrt(g.covariance_matrices()[0][0, 0]))
    curves["glmm_typical"] = expit(eta)
    curves["glmm_averaged"] = population_average(eta, np.full(x.size, tau**2), expit)
    curves["glm"] = expit(fits.glm.beta[0] + fits.glm.beta[1] * x)
    per_subject = data.drop_duplicates("subject").head(n_shown)
    # every subject's own curve over the whole range (for a treatment: the same subject
    # untreated and treated, though each is seen in one arm only)
    xs = np.broadcast_to(x, (len(per_subject), x.size))
    b = per_subject["b"].to_numpy()[:, None]
    subjects = pd.DataFrame(
        {
            "subject": np.repeat(per_subject["subject"].to_numpy(), xs.shape[1]),
            "x": xs.ravel(),
            "p": expit(truth.beta0 + truth.beta1 * xs + b).ravel(),
        }
    )
    observed = (data.groupby(truth.column)["y"].agg(share="mean", n="size").reset_index()).rename(
        columns={truth.column: "x"}
    )
    return BinaryCurves(curves, subjects, observed)


BINARY_INTRO = (
    "Set a true **logistic mixed model** for a yes/no outcome, simulate a study from it and "
    "fit it twice: with a random intercept per subject (a GLMM, as glmer) and with an "
    "ordinary logistic regression that ignores who is who. The two estimate **different "
    "things**: the GLMM the effect *within a subject*, the logistic regression the effect on "
    "the *population's rate*, which is closer to no effect (attenuated) the more subjects "
    "differ. Last, check whether the GLMM's Laplace approximation is accurate enough."
)
