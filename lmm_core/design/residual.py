"""A residual covariance term ``us(visit | subject)`` evaluated on the rows used.

The visit column is a factor whose level order is the order of the visits (a numeric column
is read as ordered levels, ``1 < 2 < 10``); each subject contributes the visits it has, in
any row order; a subject seen twice at the same visit is an error. With ``us(visit | arm /
subject)`` every level of ``arm`` has its own covariance, and a subject must stay in one arm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lmm_core.design.model_matrix import Evaluator, Factor
from lmm_core.design.residual_structures import STRUCTURES, VisitCovariance
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
        Visit labels in visit order.
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


def _visit_factor(ev: Evaluator, spec: ResidualSpec, rows: np.ndarray) -> Factor:
    value = ev.column(spec.visit, as_factor=True)
    assert isinstance(value, Factor)
    return value.take(rows)


def residual_term(ev: Evaluator, spec: ResidualSpec, rows: np.ndarray) -> ResidualTerm:
    """Evaluate ``spec`` on ``rows`` of the evaluator's data (checks included)."""
    if spec.structure not in STRUCTURES:
        raise ModelError(
            f"`{spec.label}`: the spatial structure sp_exp is not available yet; use one "
            f"of {', '.join(STRUCTURES)} on a visit factor."
        )
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
        raise DataError(
            f"`{spec.label}`: {spec.subject.name} {subject.labels[int(first['s'])]} has "
            f"visit {visit.labels[int(first['v'])]} more than once; each subject can have "
            "each visit once (check for duplicated rows, or use a finer visit column)."
        )
    if len(visit.labels) < 2:
        raise ModelError(f"`{spec.label}` needs at least two visits; the data have one.")
    return ResidualTerm(
        spec=spec,
        visits=visit.labels,
        visit_codes=visit.codes,
        subject_codes=subject.codes,
        n_subjects=len(subject.labels),
        group_codes=np.asarray(group_codes),
        groups=tuple(groups),
        structure=VisitCovariance(spec.structure, len(visit.labels)),
    )
