"""Teach page, the truth controls: what each offers (range, step, tooltip) and the truth they set.

Pure, no Streamlit: :mod:`dashboard.views.teach` draws the controls from :data:`CONTROLS` and
:func:`settings_to_truth` turns the page's settings into the
:class:`~lmm_core.simulation.teaching_truth.LabTruth` of the study.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass, fields
from typing import Any

from dashboard.help.texts import help_text
from lmm_core.simulation.teaching_truth import SHAPES, LabTruth

__all__ = [
    "CONTROLS",
    "DEFAULT_SEED",
    "INTEGER_FIELDS",
    "SHAPE_CHOICES",
    "Control",
    "default_value",
    "settings_to_truth",
    "truth_key",
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
        help_text("curvature"),
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


#: the fitted shape's choices on the page: time_df -> "natural spline · ns(time, 3)"
SHAPE_CHOICES: dict[int, str] = {k: f"{name} · {term}" for k, (name, term) in SHAPES.items()}


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


def default_value(name: str) -> Any:
    """The lab's default for the truth field ``name``."""
    return getattr(LabTruth(), name)
