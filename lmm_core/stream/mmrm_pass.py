"""Pass 2 of a streamed MMRM: batches of whole subjects into summed products.

The rows come sorted by subject (by DuckDB, in its memory; on Spark they are partitioned and
sorted by subject), and :func:`~lmm_core.stream.mmrm_codes.whole_subjects` regroups the
batches so that none cuts a subject. Each batch goes through our own design code (the plan's
recipes, as new data for a prediction), its subjects are grouped by pattern (group and
visits) and their products summed (:class:`PatternTotal`; with random effects beside the
structure, per cell: :class:`lmm_core.stream.mmrm_random.CellTotal`), with the ``R`` of ``X``
for the aliased columns (:func:`summed_design`). On Spark each partition sums its own
subjects (:class:`SparkSubjects`) and the driver merges the totals.
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from functools import partial

import numpy as np
import pandas as pd

from lmm_core.design.build import Design, _keep_columns, aliased_message
from lmm_core.errors import LMMError
from lmm_core.formula.quoting import deparse
from lmm_core.model.fit import OFFSET_MESSAGE
from lmm_core.model.mmrm import PatternSums
from lmm_core.stream.batches import _batch_arrays, _qr_r
from lmm_core.stream.mmrm_codes import row_codes, row_patterns, whole_subjects
from lmm_core.stream.mmrm_plan import MMRMStreamPlan
from lmm_core.stream.spark import collect_payloads


class PatternTotal:
    """Pass 2's running sums: per pattern (group, visits) its :class:`PatternSums`, the rows
    seen and the ``R`` of ``X`` (every column; aliasing is decided at the end)."""

    def __init__(self, plan: MMRMStreamPlan) -> None:
        self.plan = plan
        self.sums: dict[tuple, PatternSums] = {}
        self.n = 0
        self.r: np.ndarray | None = None

    def add(self, frame: pd.DataFrame) -> None:
        """Add a batch of whole subjects (the checks and messages of the in-memory path)."""
        X, y, _ = _batch_arrays(self.plan.base, frame)
        for pattern in row_patterns(X, y, *row_codes(self.plan.residual, frame)):
            self.put((pattern.group, tuple(pattern.visits.tolist())), PatternSums.of(pattern))
        self.n += len(y)
        r = _qr_r(X)
        self.r = r if self.r is None else _qr_r(np.vstack([self.r, r]))

    def put(self, key: tuple, part) -> None:
        """Add the sums ``part`` of ``key`` (a pattern, or a cell)."""
        if key in self.sums:
            self.sums[key] += part
        else:
            self.sums[key] = part

    def merge(self, other: PatternTotal) -> None:
        """Add another total (a Spark partition's)."""
        for key, part in other.sums.items():
            self.put(key, part)
        self.n += other.n
        if other.r is not None:
            self.r = other.r if self.r is None else _qr_r(np.vstack([self.r, other.r]))


def accumulate(
    frames: Iterator[pd.DataFrame],
    plan: MMRMStreamPlan,
    batch_size: int,
    progress=None,
    kind: type[PatternTotal] = PatternTotal,
) -> PatternTotal:
    """Pass 2 over batches sorted by subject (DuckDB's reader, or a Spark partition), into a
    ``kind`` (:class:`PatternTotal`, or the cells of :mod:`lmm_core.stream.mmrm_random`)."""
    total = kind(plan)
    start, done = time.perf_counter(), 0
    held: list[pd.DataFrame] = []
    rows = 0
    for frame in whole_subjects(frames, plan.spec.subject.name):
        held.append(frame)
        rows += len(frame)
        if rows >= batch_size:
            total.add(pd.concat(held, ignore_index=True) if len(held) > 1 else held[0])
            done += rows
            held, rows = [], 0
            if progress is not None:
                progress(done, plan.base.n_used, done / max(time.perf_counter() - start, 1e-9))
    if held:
        total.add(pd.concat(held, ignore_index=True) if len(held) > 1 else held[0])
        done += rows
    if progress is not None:
        progress(done, plan.base.n_used, done / max(time.perf_counter() - start, 1e-9))
    return total


class SubjectPartition:
    """The function ``mapInPandas`` runs on each Spark partition of whole subjects: the value
    of ``work(frames)`` pickled as one row ``blocks`` (``("blocks", value)``; nothing when it
    is ``None``), or the data error it met (``("error", class name, message)``), which the
    driver raises as DuckDB would (:func:`~lmm_core.stream.spark.collect_payloads`)."""

    def __init__(self, work: Callable[[Iterator[pd.DataFrame]], object]) -> None:
        self.work = work

    def __call__(self, frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        try:
            value = self.work(frames)
        except LMMError as exc:
            payload: tuple | None = ("error", type(exc).__name__, str(exc))
        else:
            payload = None if value is None else ("blocks", value)
        if payload is not None:
            yield pd.DataFrame({"blocks": [pickle.dumps(payload, protocol=5)]})


class SparkSubjects:
    """The rows used on Spark, partitioned and sorted by subject (each partition holds whole
    subjects, in order): :meth:`run` maps a function over the partitions and returns their
    values on the driver. Held by a streamed MMRM fitted on Spark to stream its rows again (an
    empirical covariance); it holds the SparkSession, so such a result does not pickle."""

    def __init__(self, engine, columns, where: str, subject: str, n_used: int) -> None:
        self.engine = engine
        self.columns = tuple(columns)
        self.where = where
        self.subject = subject
        self.n_used = int(n_used)

    def run(self, work: Callable[[Iterator[pd.DataFrame]], object], progress=None) -> list:
        """``work(frames)`` on every partition (its ``None`` values dropped)."""
        frame = self.engine.selected(self.columns, self.where)
        job = (
            frame.repartition(frame[self.subject])
            .sortWithinPartitions(self.subject)
            .mapInPandas(SubjectPartition(work), "blocks binary")
        )
        return collect_payloads(self.engine, job, self.n_used, progress)


def _partition_total(plan, batch_size: int, kind, frames) -> PatternTotal | None:
    total = accumulate(frames, plan, batch_size, kind=kind)
    return total if total.n else None


def spark_pattern_total(
    engine,
    plan: MMRMStreamPlan,
    batch_size: int,
    progress,
    kind: type[PatternTotal] = PatternTotal,
) -> PatternTotal:
    """Pass 2 on Spark: partitions of whole subjects, their totals merged on the driver."""
    rows = spark_subjects(engine, plan)
    total = kind(plan)
    for part in rows.run(partial(_partition_total, plan, batch_size, kind), progress):
        total.merge(part)
    return total


def spark_subjects(engine, plan: MMRMStreamPlan) -> SparkSubjects:
    """The plan's rows on Spark, by subject."""
    base = plan.base
    return SparkSubjects(engine, base.columns, base.where, plan.spec.subject.name, base.n_used)


def summed_design(plan: MMRMStreamPlan, total: PatternTotal, reterms=()) -> Design:
    """The template design with the whole table's counts, the columns kept by R's rule on
    ``R`` (aliased ones dropped) and the in-memory notes (rows left out, aliased columns,
    offsets); ``X`` and ``y`` have no rows."""
    base = plan.base
    names = base.x_names
    assert total.r is not None
    keep = _keep_columns(total.r)
    aliased = tuple(nm for i, nm in enumerate(names) if i not in set(keep.tolist()))
    messages = list(base.messages) + ([aliased_message(aliased)] if aliased else [])
    if base.spec.offsets:
        terms = " + ".join(f"`{deparse(c)}`" for c in base.spec.offsets)
        messages.append(OFFSET_MESSAGE.format(terms=terms, response=base.design.response))
    return replace(
        base.design,
        y=np.zeros(0),
        X=np.zeros((0, len(keep))),
        x_names=tuple(names[i] for i in keep),
        aliased=aliased,
        reterms=tuple(reterms),
        rows=np.zeros(0, dtype=np.int64),
        n_dropped=base.n_total - base.n_used,
        messages=tuple(messages),
        kept_columns=keep,
        offset=np.zeros(0),
        residual=plan.residual,
    )


__all__ = [
    "PatternTotal",
    "SparkSubjects",
    "SubjectPartition",
    "accumulate",
    "spark_pattern_total",
    "spark_subjects",
    "summed_design",
]
