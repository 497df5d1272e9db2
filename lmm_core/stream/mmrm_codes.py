"""Each row's visit, subject and group in a batch of a streamed MMRM.

The whole table's visits and groups are learned in pass 1 (:mod:`lmm_core.stream.mmrm_plan`);
a batch is coded against them (its subjects get codes of their own: a batch holds whole
subjects, :func:`lmm_core.stream.mmrm.whole_subjects`), with the checks and messages of the
in-memory path (:func:`lmm_core.design.residual.residual_term`): a subject with a visit twice,
a subject in two groups. Batches sorted by subject are regrouped into whole subjects by
:func:`whole_subjects`.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import numpy as np
import pandas as pd

from lmm_core.design.model_matrix import Evaluator
from lmm_core.design.residual import ResidualTerm, _point_labels
from lmm_core.design.residual_structures import SPATIAL
from lmm_core.errors import DataError, ModelError
from lmm_core.model.mmrm import Pattern, patterns


def row_codes(
    residual: ResidualTerm, frame: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(visits, subjects, groups)`` per row of ``frame``: visit and group codes in the
    whole table's labels (``residual.visits``, ``residual.groups``), subject codes of the
    batch.

    Raises
    ------
    DataError
        A subject with a visit (time) twice, or in two groups.
    ModelError
        A visit or group that pass 1 did not see (the table changed between passes).
    """
    spec = residual.spec
    ev = Evaluator(frame)
    if spec.structure in SPATIAL:
        points = np.column_stack([ev.column(c).values for c in spec.coordinates])  # type: ignore[union-attr]
        distinct, inverse = np.unique(points, axis=0, return_inverse=True)
        labels, local = _point_labels(distinct), np.ravel(inverse)
    else:
        factor = ev.column(spec.visit, as_factor=True)
        labels, local = factor.labels, factor.codes  # type: ignore[union-attr]
    visits = _lookup(residual.visits, labels)[local]
    subject = ev.column(spec.subject, as_factor=True)
    subjects = subject.codes  # type: ignore[union-attr]
    groups = np.zeros(len(frame), dtype=np.int64)
    if spec.group is not None:
        group = ev.column(spec.group, as_factor=True)
        groups = _lookup(residual.groups, group.labels)[group.codes]  # type: ignore[union-attr]
    if (visits < 0).any() or (groups < 0).any():
        raise ModelError("A visit or group was not seen in pass 1 (table changed?); fit again.")
    _check_subjects(residual, subject.labels, subjects, visits, groups)  # type: ignore[union-attr]
    return visits, subjects, groups


def row_patterns(X, y, visits, subjects, groups) -> list[Pattern]:
    """The patterns (:func:`lmm_core.model.mmrm.patterns`) of a batch's rows ``X``, ``y`` with
    the codes of :func:`row_codes`."""
    codes = SimpleNamespace(visit_codes=visits, subject_codes=subjects, group_codes=groups)
    return patterns(SimpleNamespace(X=X, y=y, residual=codes))  # type: ignore[arg-type]


def _lookup(known: tuple[str, ...], labels) -> np.ndarray:
    index = {v: i for i, v in enumerate(known)}
    return np.array([index.get(v, -1) for v in labels], dtype=np.int64)


def _check_subjects(residual, labels, subjects, visits, groups) -> None:
    spec = residual.spec
    if spec.group is not None:
        per_subject = pd.DataFrame({"s": subjects, "g": groups}).drop_duplicates()
        if per_subject["s"].duplicated().any():
            raise DataError(
                f"`{spec.label}`: some {spec.subject.name} appear in more than one level of "
                f"{spec.group.name}; each subject must belong to one group."
            )
    pairs = pd.DataFrame({"s": subjects, "v": visits})
    twice = pairs.duplicated()
    if twice.any():
        first = pairs[twice].iloc[0]
        what = "time" if spec.structure in SPATIAL else "visit"
        raise DataError(
            f"`{spec.label}`: {spec.subject.name} {labels[int(first['s'])]} has "
            f"{what} {residual.visits[int(first['v'])]} more than once; each subject can have "
            f"each {what} once (check for duplicated rows, or use a finer {what} column)."
        )


def whole_subjects(frames: Iterator[pd.DataFrame], subject: str) -> Iterator[pd.DataFrame]:
    """Batches of rows sorted by ``subject`` regrouped so that no subject is cut: the rows of
    each batch's last subject are held back and put in front of the next batch."""
    held: pd.DataFrame | None = None
    for frame in frames:
        if held is not None:
            frame = pd.concat([held, frame], ignore_index=True)
        ids = frame[subject]
        last = ids.iloc[-1]
        cut = len(frame) - int((ids.iloc[::-1] == last).cummin().sum())
        held = frame.iloc[cut:]
        if cut:
            yield frame.iloc[:cut]
    if held is not None and len(held):
        yield held


__all__ = ["row_codes", "row_patterns", "whole_subjects"]
