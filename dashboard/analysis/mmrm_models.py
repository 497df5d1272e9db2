"""Models with a covariance structure of the visits (MMRM) on the general pages. No Streamlit.

The Model builder offers "correlation between a patient's visits": none (random effects
only) or one of :data:`STRUCTURES`, written as mmrm's term ``us(visit | patient)``. This
module says which column is the visit factor (:func:`visit_column`), whether a fit is an MMRM
(:func:`is_mmrm`), how to name one (:func:`structure_label`, :func:`mmrm_label`) and what the
pages that need random effects say instead (:data:`NEEDS_RANDOM_EFFECTS`).

An MMRM models the outcome of patient ``i`` as ``y_i = X_i b + e_i`` with
``e_i ~ N(0, Sigma_i)``, ``Sigma_i`` the rows and columns of the visits patient ``i`` has of
one visits x visits matrix ``Sigma`` whose shape the structure fixes; there are no random
effects, so nothing is patient-specific but the residuals.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import pandas as pd

from lmm_core.formula.terms import parse_formula

__all__ = [
    "MAX_VISITS",
    "NEEDS_RANDOM_EFFECTS",
    "NONE",
    "STRUCTURES",
    "VisitColumn",
    "combined_sentence",
    "has_random_effects",
    "is_mmrm",
    "mmrm_label",
    "structure_label",
    "structure_of",
    "visit_column",
]

#: the builder's "no structure" choice (random effects only)
NONE = "none"
#: mmrm's structure name -> words shown in the builder (and in model names), in menu order
STRUCTURES: dict[str, str] = {
    "us": "unstructured",
    "ar1": "AR(1)",
    "ar1h": "heterogeneous AR(1)",
    "cs": "compound symmetry",
    "toep": "Toeplitz",
    "ad": "ante-dependence",
}
#: more distinct values than this is a time, not a visit factor (us would need 120+ terms)
MAX_VISITS = 15

#: page -> the one sentence it shows for an MMRM (it needs random effects for the rest)
NEEDS_RANDOM_EFFECTS: dict[str, str] = {
    "trajectories": (
        "This page draws each patient's own line, which needs random effects: the active "
        "model is an MMRM (a covariance between visits, no random effects), so its only line "
        "is the population mean (the Model page's fixed effects). Choose a model with random "
        "effects here, or see the arms' means per visit on the Trial page."
    ),
    "shrinkage": (
        "Shrinkage needs random effects: the active model is an MMRM (a covariance between "
        "visits instead), so it has no patient-level estimates to shrink and no caterpillar "
        "plot. Choose a model with random effects to see them."
    ),
    "forecast": (
        "A patient's forecast from their own visits needs random effects: the active model "
        "is an MMRM (no random effects), so its forecast is the population forecast, the "
        "same for every patient with the same covariates (the Model page's fixed effects). "
        "Choose a model with random effects to forecast a patient."
    ),
}


def is_mmrm(result: object) -> bool:
    """Whether a fit has a covariance structure of the visits (an MMRM result, with or
    without random effects above the patient: :func:`has_random_effects`)."""
    design = getattr(result, "design", None)
    return getattr(design, "residual", None) is not None


def has_random_effects(result: object) -> bool:
    """Whether an MMRM also has random effects (above the patient, e.g. per hospital: an
    :class:`lmm_core.model.mmrm_random_results.MMRMRandomResult`)."""
    return bool(getattr(result, "reterms", ()))


def combined_sentence(result: object, page: str) -> str:
    """What ``page`` (``"trajectories"``, ``"shrinkage"``) says of a model with random
    effects above the patient and a covariance of the visits within the patient."""
    groups = ", ".join(getattr(result, "ngroups", {}) or {}) or "a level above the patient"
    if page == "trajectories":
        return (
            f"The active model has random effects per {groups} and a covariance between "
            "each patient's visits instead of patient-level random effects: it has no "
            "patient's own line, only the population mean shifted by each "
            f"{groups}'s random effect (the Model page's fixed effects and variance "
            f"components). Its {groups}-level estimates are on the Shrinkage page; the arms' "
            "means per visit are on the Trial page."
        )
    return (
        f"The active model has random effects per {groups} (shown below) and a covariance "
        "between each patient's visits instead of patient-level random effects, so there "
        f"are no patient-level estimates to shrink: each {groups}'s estimate is its "
        "predicted deviation from the population mean (BLUP), pulled toward 0 the more, the "
        f"fewer patients the {groups} has."
    )


def structure_of(formula: str) -> str | None:
    """The mmrm structure name of a formula (``"ar1"``), or ``None`` without one."""
    residual = parse_formula(formula).residual
    return None if residual is None else residual.structure


def structure_label(structure: str) -> str:
    """Words for a structure: ``"AR(1)"``, ``"unstructured"``; mmrm's name when unknown."""
    extra = {
        "toeph": "heterogeneous Toeplitz",
        "csh": "heterogeneous compound symmetry",
        "adh": "heterogeneous ante-dependence",
    }
    return STRUCTURES.get(structure, extra.get(structure, structure))


def mmrm_label(formula: str, base_label: str, taken: Collection[str] = ()) -> str:
    """A model name for an MMRM: the structure's words in place of the random-effects
    wording of ``base_label`` (:func:`dashboard.analysis.model_label.model_label`, which
    knows random effects only), e.g. ``"AR(1) visits + arm"``; ``#2``, ``#3``... when the
    name is in ``taken``."""
    structure = structure_of(formula)
    if structure is None:
        return base_label
    head = f"{structure_label(structure)} visits"
    rest = base_label.replace("no random effects", "").strip(" +")
    label = f"{head} + {rest}" if rest else head
    candidate, k = label, 1
    while candidate in taken:
        k += 1
        candidate = f"{label} #{k}"
    return candidate


@dataclass(frozen=True)
class VisitColumn:
    """The column that indexes a patient's visits, or why there is none.

    Attributes
    ----------
    column
        The visit column (``None`` when the data have none).
    levels
        Its distinct values in visit order (numbers sort as numbers).
    reason
        Why no structure can be chosen (empty when ``column`` is set).
    """

    column: str | None
    levels: tuple = ()
    reason: str = ""

    @property
    def note(self) -> str:
        """Which column is used, in words (empty without one)."""
        if self.column is None:
            return ""
        shown = ", ".join(str(v) for v in self.levels[:8]) + (
            ", ..." if len(self.levels) > 8 else ""
        )
        return (
            f"The visits are the {len(self.levels)} values of the time column "
            f"`{self.column}` ({shown}), taken as a factor in this order."
        )


def visit_column(data: pd.DataFrame, subject: str | None, time: str | None) -> VisitColumn:
    """The visit factor of a covariance structure: the time column when it has at most
    :data:`MAX_VISITS` distinct values and no patient has one value twice.

    (The roles have no separate "visit" role: the time role of a trial with scheduled visits
    is its visit number, as in the ``trial_visits`` example.)
    """
    if not subject or subject not in data.columns:
        return VisitColumn(None, reason="A covariance of the visits needs a subject column.")
    if not time or time not in data.columns:
        return VisitColumn(
            None, reason="A covariance of the visits needs a visit (time) column: none is set."
        )
    values = data[time].dropna()
    levels = pd.unique(values)
    if len(levels) < 2:
        return VisitColumn(None, reason=f"The time column `{time}` has one value: no visits.")
    if len(levels) > MAX_VISITS:
        return VisitColumn(
            None,
            reason=f"The time column `{time}` has {len(levels):,} distinct values; a covariance "
            f"of the visits needs scheduled visits (at most {MAX_VISITS}), such as a visit "
            "number. Choose one as the time role on the Data page.",
        )
    rows = data[[subject, time]].dropna()
    if rows.duplicated().any():
        return VisitColumn(
            None,
            reason=f"Some subjects have the same `{time}` twice; each visit can be seen once "
            "per subject.",
        )
    if isinstance(values.dtype, pd.CategoricalDtype):
        present = set(levels)
        order = [c for c in values.cat.categories if c in present]
    else:
        try:
            order = sorted(levels)
        except TypeError:  # mixed numbers and text: by text
            order = sorted(levels, key=str)
    return VisitColumn(time, tuple(order))
