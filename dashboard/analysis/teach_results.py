"""Teach page, sections 3 and 4: the numbers they compute and what the session keeps of them.

Pure, no Streamlit: the shrinkage numbers of one study (:func:`slope_shrinkage_numbers`), the
Monte Carlo error of a coverage (:func:`coverage_error`), and the identity of a repeated study
with its stored summary (:class:`RepeatRun`, :class:`StoredRepeat`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from dashboard.base.constants import CONFIDENCE_LEVEL, z_value
from lmm_core.simulation.teaching import estimates
from lmm_core.simulation.teaching_repeat import ReplicateSummary, monte_carlo_se
from lmm_core.simulation.teaching_shrinkage import (
    expected_slope_weight,
    shrinkage_summary,
    slope_shrinkage,
)
from lmm_core.simulation.teaching_truth import LabTruth

__all__ = [
    "RepeatRun",
    "SlopeShrinkage",
    "StoredRepeat",
    "coverage_error",
    "slope_shrinkage_numbers",
]


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
