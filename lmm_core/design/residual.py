"""A residual covariance term ``us(visit | subject)`` evaluated on the rows used.

The visit column is a factor whose level order is the order of the visits (a numeric column
is read as ordered levels, ``1 < 2 < 10``); each subject contributes the visits it has, in
any row order; a subject seen twice at the same visit is an error. With ``us(visit | arm /
subject)`` every level of ``arm`` has its own covariance, and a subject must stay in one arm.

``sp_exp(time | subject)`` takes a numeric time instead: its "visits" are the distinct times
observed (sorted; labels as the numbers print), the structure gets their distances, and
subjects sharing the same times (scheduled visits) share one pattern as with a factor. A
subject with the same time twice is an error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lmm_core.design.model_matrix import Evaluator, Factor, Numeric
from lmm_core.design.residual_structures import SPATIAL, STRUCTURES, VisitCovariance
from lmm_core.errors import DataError, ModelError
from lmm_core.formula.spec import ResidualSpec


@dataclass(frozen=True)
class ResidualTerm:
    """The covariance structure of the visits, evaluated on the rows used.

    Attributes
    ----------
    spec
        The formula term.
    visits
        Visit labels in visit order (``sp_exp``: the distinct times, sorted).
    visit_codes, subject_codes, group_codes
        Per row used: index into ``visits``, subject index, group index (0 without groups).
    groups
        Group labels (``("",)`` without groups).
    structure
        One :class:`VisitCovariance` over all the visits (shared by the groups).
    """

    spec: ResidualSpec
    visits: tuple[str, ...]
    visit_codes: np.ndarray
    subject_codes: np.ndarray
    n_subjects: int
    group_codes: np.ndarray
    groups: tuple[str, ...]
    structure: VisitCovariance

    @property
    def n_theta(self) -> int:
        """Parameters of all groups' covariances."""
        return self.structure.n_theta * len(self.groups)

    def matrices(self, theta: np.ndarray) -> list[np.ndarray]:
        """``Sigma`` of each group at ``theta`` (the groups' parameters one after another)."""
        k = self.structure.n_theta
        return [self.structure.matrix(theta[g * k : (g + 1) * k]) for g in range(len(self.groups))]


#: at most this many distinct times for ``sp_exp`` (its covariance is ``m x m``)
MAX_TIMES = 2000


def _visit_factor(ev: Evaluator, spec: ResidualSpec, rows: np.ndarray) -> Factor:
    value = ev.column(spec.visit, as_factor=True)
    assert isinstance(value, Factor)
    return value.take(rows)


def _time_factor(ev: Evaluator, spec: ResidualSpec, rows: np.ndarray) -> tuple[Factor, np.ndarray]:
    """The distinct times of a numeric time column as a factor, and the times."""
    value = ev.column(spec.visit)
    if not isinstance(value, Numeric):
        raise ModelError(
            f"`{spec.label}`: {spec.structure} needs a numeric time (e.g. weeks since "
            f"randomization); {spec.visit.name} is not numeric. Use a structure over visits "
            "(us, ar1, ...) for a visit factor."
        )
    times = value.values[rows]
    distinct, codes = np.unique(times, return_inverse=True)
    if len(distinct) > MAX_TIMES:
        raise ModelError(
            f"`{spec.label}`: the data have {len(distinct)} distinct times; {spec.structure} "
            f"works with at most {MAX_TIMES}. Round the times (e.g. to days)."
        )
    labels = tuple(np.format_float_positional(t, trim="-") for t in distinct)
    return Factor(codes.astype(np.int64), labels), distinct


def _structure(spec: ResidualSpec, m: int, times: np.ndarray | None, visit, subject):
    if times is None:
        return VisitCovariance(spec.structure, m)
    dist = np.abs(np.subtract.outer(times, times))
    order = np.lexsort((visit.codes, subject.codes))
    gaps = np.diff(times[visit.codes[order]])[np.diff(subject.codes[order]) == 0]
    scale = float(np.median(gaps)) if len(gaps) else float(np.ptp(times))
    return VisitCovariance(spec.structure, m, distances=dist, scale=scale)


def residual_term(ev: Evaluator, spec: ResidualSpec, rows: np.ndarray) -> ResidualTerm:
    """Evaluate ``spec`` on ``rows`` of the evaluator's data (checks included)."""
    if spec.structure not in STRUCTURES:
        raise ModelError(f"`{spec.label}`: use one of {', '.join(STRUCTURES)}.")
    times = None
    if spec.structure in SPATIAL:
        visit, times = _time_factor(ev, spec, rows)
    else:
        visit = _visit_factor(ev, spec, rows)
    subject = ev.column(spec.subject, as_factor=True).take(rows)
    if spec.group is not None:
        group = ev.column(spec.group, as_factor=True).take(rows)
        per_subject = pd.DataFrame({"s": subject.codes, "g": group.codes}).drop_duplicates()
        if per_subject["s"].duplicated().any():
            raise DataError(
                f"`{spec.label}`: some {spec.subject.name} appear in more than one level of "
                f"{spec.group.name}; each subject must belong to one group."
            )
        group_codes, groups = group.codes, group.labels
    else:
        group_codes, groups = np.zeros(len(rows), dtype=np.int64), ("",)
    pairs = pd.DataFrame({"s": subject.codes, "v": visit.codes})
    twice = pairs.duplicated()
    if twice.any():
        first = pairs[twice].iloc[0]
        what = "time" if times is not None else "visit"
        raise DataError(
            f"`{spec.label}`: {spec.subject.name} {subject.labels[int(first['s'])]} has "
            f"{what} {visit.labels[int(first['v'])]} more than once; each subject can have "
            f"each {what} once (check for duplicated rows, or use a finer {what} column)."
        )
    if len(visit.labels) < 2:
        raise ModelError(f"`{spec.label}` needs at least two visits; the data have one.")
    structure = _structure(spec, len(visit.labels), times, visit, subject)
    return ResidualTerm(
        spec=spec,
        visits=visit.labels,
        visit_codes=visit.codes,
        subject_codes=subject.codes,
        n_subjects=len(subject.labels),
        group_codes=np.asarray(group_codes),
        groups=tuple(groups),
        structure=structure,
    )
