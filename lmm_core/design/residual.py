"""A residual covariance term ``us(visit | subject)`` evaluated on the rows used.

The visit column is a factor whose level order is the order of the visits (a numeric column
is read as ordered levels, ``1 < 2 < 10``); each subject contributes the visits it has, in
any row order; a subject seen twice at the same visit is an error. With ``us(visit | arm /
subject)`` every level of ``arm`` has its own covariance, and a subject must stay in one arm.

``sp_exp(time | subject)`` takes a numeric time instead: its "visits" are the distinct times
observed (sorted; labels as the numbers print), the structure gets their distances, and
subjects sharing the same times (scheduled visits) share one pattern as with a factor. A
subject with the same time twice is an error. With several coordinates, ``sp_exp(x, y |
subject)`` (mmrm's syntax), the "visits" are the distinct coordinate tuples (sorted
lexicographically, labelled ``"(x, y)"``) and the distance is Euclidean, ``d_jk = ||p_j -
p_k||``; the unit of distance is the median distance between a subject's consecutive points
(in that order), which for one coordinate is the median gap between consecutive times.
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
    """The distinct points (times, or tuples of coordinates) as a factor, and the points as
    an ``(m, d)`` array."""
    columns = []
    for coord in spec.coordinates:
        value = ev.column(coord)
        if not isinstance(value, Numeric):
            raise ModelError(
                f"`{spec.label}`: {spec.structure} needs a numeric time (e.g. weeks since "
                f"randomization) or numeric coordinates; {coord.name} is not numeric. Use a "
                "structure over visits (us, ar1, ...) for a visit factor."
            )
        columns.append(value.values[rows])
    points = np.column_stack(columns)
    distinct, codes = np.unique(points, axis=0, return_inverse=True)
    if len(distinct) > MAX_TIMES:
        what = "times" if points.shape[1] == 1 else "points"
        raise ModelError(
            f"`{spec.label}`: the data have {len(distinct)} distinct {what}; {spec.structure} "
            f"works with at most {MAX_TIMES}. Round the coordinates (e.g. times to days)."
        )
    return Factor(np.ravel(codes).astype(np.int64), _point_labels(distinct)), distinct


def _point_labels(points: np.ndarray) -> tuple[str, ...]:
    """``"2.5"`` for one coordinate, ``"(1, 2.5)"`` for several."""
    text = [[np.format_float_positional(v, trim="-") for v in row] for row in points]
    if points.shape[1] == 1:
        return tuple(row[0] for row in text)
    return tuple(f"({', '.join(row)})" for row in text)


def _structure(spec: ResidualSpec, m: int, points: np.ndarray | None, visit, subject):
    if points is None:
        return VisitCovariance(spec.structure, m)
    diff = points[:, None, :] - points[None, :, :]
    dist = np.sqrt(np.einsum("jkd,jkd->jk", diff, diff))
    order = np.lexsort((visit.codes, subject.codes))
    codes = visit.codes[order]
    same = np.diff(subject.codes[order]) == 0
    gaps = dist[codes[:-1], codes[1:]][same]
    scale = float(np.median(gaps)) if len(gaps) else float(np.max(dist))
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
