"""A streamed MMRM: ``fit_lmm("y ~ arm * visit + us(visit | patient)", source)``.

The criterion of an MMRM (:mod:`lmm_core.model.mmrm`) needs the rows only through each
pattern's summed products (:class:`~lmm_core.model.mmrm.PatternSums`: the subjects of one
group with the same visits, ``sum_i X_i (x) X_i``, ``sum_i X_i (x) y_i``, ``sum_i y_i y_i'``),
so a table of any length is fitted in three steps:

1. pass 1 (:mod:`lmm_core.stream.mmrm_plan`): SQL aggregates for the design, the visits, the
   groups and the number of patterns (memory estimated, refused above the limit);
2. pass 2: the rows sorted by subject (DuckDB sorts out of core; on Spark the rows are
   partitioned and sorted by subject), so that a batch holds whole subjects (the rows of a
   subject cut by the end of a batch wait for the next one); each batch goes through our own
   design code (the plan's recipes, as new data for a prediction), its subjects are grouped
   by pattern and their products summed, with the ``R`` of ``X`` for the aliased columns;
3. the optimizer of the in-memory path (:func:`~lmm_core.model.mmrm.optimize_mmrm`: Fisher
   scoring from moment estimates, which the sums give, then Newton on the exact Hessian) on
   :meth:`MMRMCriterion.from_sums <lmm_core.model.mmrm.MMRMCriterion.from_sums>`.

The criterion at a given ``theta`` equals the in-memory one up to the order of the sums
(relative differences about 1e-14): the in-memory fit also keeps large patterns as these sums.
The checks of the in-memory path are made per batch with its messages: a subject with a visit
twice, a subject in two groups, non-finite transformed values.
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Iterator
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pandas as pd

from lmm_core.design.build import _keep_columns
from lmm_core.design.model_matrix import Evaluator
from lmm_core.design.residual import _point_labels
from lmm_core.design.residual_structures import SPATIAL
from lmm_core.errors import DataError, LMMError, ModelError
from lmm_core.formula.quoting import deparse
from lmm_core.model.fit import OFFSET_MESSAGE
from lmm_core.model.linalg import single_threaded_blas
from lmm_core.model.mmrm import MMRMCriterion, PatternSums, optimize_mmrm, patterns
from lmm_core.model.mmrm_results import MMRMResult
from lmm_core.stream.batches import _batch_arrays, _qr_r
from lmm_core.stream.mmrm_plan import MMRMStreamPlan, plan_mmrm_stream
from lmm_core.stream.mmrm_results import StreamedMMRMResult


class PatternTotal:
    """Pass 2's running sums: per pattern (group, visits) its :class:`PatternSums`, the rows
    seen and the ``R`` of ``X`` (every column; aliasing is decided at the end)."""

    def __init__(self, plan: MMRMStreamPlan) -> None:
        self.plan = plan
        self.sums: dict[tuple, PatternSums] = {}
        self.n = 0
        self.r: np.ndarray | None = None
        self._visit_index = {v: i for i, v in enumerate(plan.residual.visits)}
        self._group_index = {g: i for i, g in enumerate(plan.residual.groups)}

    def add(self, frame: pd.DataFrame) -> None:
        """Add a batch of whole subjects (the checks and messages of the in-memory path)."""
        X, y, _ = _batch_arrays(self.plan.base, frame)
        visits, subjects, groups = self._codes(frame)
        design = SimpleNamespace(
            X=X,
            y=y,
            residual=SimpleNamespace(
                visit_codes=visits, subject_codes=subjects, group_codes=groups
            ),
        )
        for pattern in patterns(design):  # type: ignore[arg-type]
            part = PatternSums.of(pattern)
            key = (pattern.group, tuple(pattern.visits.tolist()))
            if key in self.sums:
                self.sums[key] += part
            else:
                self.sums[key] = part
        self.n += len(y)
        r = _qr_r(X)
        self.r = r if self.r is None else _qr_r(np.vstack([self.r, r]))

    def merge(self, other: PatternTotal) -> None:
        """Add another total (a Spark partition's)."""
        for key, part in other.sums.items():
            if key in self.sums:
                self.sums[key] += part
            else:
                self.sums[key] = part
        self.n += other.n
        if other.r is not None:
            self.r = other.r if self.r is None else _qr_r(np.vstack([self.r, other.r]))

    def _codes(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per row: the visit and group (whole-table codes) and the subject (batch codes)."""
        spec = self.plan.spec
        ev = Evaluator(frame)
        if spec.structure in SPATIAL:
            points = np.column_stack(
                [ev.column(c).values for c in spec.coordinates]  # type: ignore[union-attr]
            )
            distinct, inverse = np.unique(points, axis=0, return_inverse=True)
            labels = _point_labels(distinct)
            local = np.ravel(inverse)
        else:
            factor = ev.column(spec.visit, as_factor=True)
            labels, local = factor.labels, factor.codes  # type: ignore[union-attr]
        lookup = np.array([self._visit_index.get(v, -1) for v in labels], dtype=np.int64)
        visits = lookup[local]
        subject = ev.column(spec.subject, as_factor=True)
        subjects = subject.codes  # type: ignore[union-attr]
        groups = np.zeros(len(frame), dtype=np.int64)
        if spec.group is not None:
            group = ev.column(spec.group, as_factor=True)
            glookup = np.array([self._group_index.get(g, -1) for g in group.labels])  # type: ignore[union-attr]
            groups = glookup[group.codes]  # type: ignore[union-attr]
        if (visits < 0).any() or (groups < 0).any():
            raise ModelError("A visit or group was not seen in pass 1 (table changed?); fit again.")
        _check_subjects(spec, subject.labels, subjects, visits, groups, self.plan.residual)  # type: ignore[union-attr]
        return visits, subjects, groups


def _check_subjects(spec, labels, subjects, visits, groups, residual) -> None:
    """The in-memory checks (:func:`lmm_core.design.residual.residual_term`) on a batch of
    whole subjects."""
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


def accumulate(frames: Iterator[pd.DataFrame], plan: MMRMStreamPlan, batch_size: int,
               progress=None, kind: type[PatternTotal] = PatternTotal) -> PatternTotal:  # fmt: skip
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


class MMRMPartition:
    """The function ``mapInPandas`` runs on each Spark partition (rows partitioned and sorted
    by subject): one row ``blocks``, the pickled :class:`PatternTotal` (or the error)."""

    def __init__(self, plan: MMRMStreamPlan, batch_size: int,
                 kind: type[PatternTotal] = PatternTotal) -> None:  # fmt: skip
        self.plan = plan
        self.batch_size = int(batch_size)
        self.kind = kind

    def __call__(self, frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        try:
            total = accumulate(frames, self.plan, self.batch_size, kind=self.kind)
        except LMMError as exc:
            payload = ("error", type(exc).__name__, str(exc))
        else:
            payload = ("blocks", total) if total.n else None
        if payload is not None:
            yield pd.DataFrame({"blocks": [pickle.dumps(payload, protocol=5)]})


def spark_pattern_total(engine, plan: MMRMStreamPlan, batch_size: int, progress,
                        kind: type[PatternTotal] = PatternTotal) -> PatternTotal:  # fmt: skip
    """Pass 2 on Spark: partitions of whole subjects, their totals merged on the driver."""
    from lmm_core.stream.spark import _ERRORS, _collect, _is_spark_exception

    subject = plan.spec.subject.name
    frame = engine.selected(plan.base.columns, plan.base.where)
    job = (
        frame.repartition(frame[subject])
        .sortWithinPartitions(subject)
        .mapInPandas(MMRMPartition(plan, batch_size, kind), "blocks binary")
    )
    try:
        rows = _collect(engine.spark, job, plan.base.n_used, progress)
    except LMMError:
        raise
    except Exception as exc:
        if _is_spark_exception(exc):
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise ModelError(f"The Spark job of pass 2 failed: {first}") from exc
        raise
    total = kind(plan)
    for row in rows:
        payload = pickle.loads(row["blocks"])
        if payload[0] == "error":
            raise _ERRORS.get(payload[1], DataError)(payload[2])
        total.merge(payload[1])
    return total


def fit_mmrm_stream(formula: str, eng, *, reml: bool, batch_size: int, max_memory_gib: float,
                    progress=None, spark: bool = False) -> MMRMResult:  # fmt: skip
    """Passes 1 and 2 on ``eng`` (DuckDB or Spark), then the fit (module docstring): a
    :class:`StreamedMMRMResult`, or with random effects beside the structure a
    :class:`~lmm_core.stream.mmrm_random_results.StreamedMMRMRandomResult`
    (:mod:`lmm_core.stream.mmrm_random`)."""
    t0 = time.perf_counter()
    plan = plan_mmrm_stream(formula, eng, max_memory_gib=max_memory_gib)
    t1 = time.perf_counter()
    subject = plan.spec.subject.name
    kind, fit = PatternTotal, fit_pattern_sums
    if plan.base.reterms:  # random effects beside the structure: sums per cell
        from lmm_core.stream.mmrm_random import CellTotal, fit_cell_sums

        kind, fit = CellTotal, fit_cell_sums
    if spark:
        total = spark_pattern_total(eng, plan, batch_size, progress, kind)
        rows = None
    else:
        frames = eng.batches(plan.base.columns, plan.base.where, batch_size, order_by=[subject])
        total = accumulate(frames, plan, batch_size, progress, kind)
        rows = eng.row_stream(plan.base.columns, plan.base.where, batch_size)
    t2 = time.perf_counter()
    if total.n != plan.base.n_used or total.r is None:
        raise ModelError("The table changed between the two passes; fit again.")
    result = fit(plan, total, reml=reml)
    timings = {
        "pass1": t1 - t0,
        "pass2": t2 - t1,
        "rows_per_second": plan.base.n_used / max(t2 - t1, 1e-9),
        "optimize": time.perf_counter() - t2,
        "total": time.perf_counter() - t0,
    }
    return replace(result, timings=timings, rows=rows)


def fit_pattern_sums(plan: MMRMStreamPlan, total: PatternTotal, *, reml: bool = True):
    """Drop the aliased columns (R's rule on ``R``), optimize and return the result."""
    base = plan.base
    names = base.x_names
    assert total.r is not None
    keep = _keep_columns(total.r)
    aliased = tuple(nm for i, nm in enumerate(names) if i not in set(keep.tolist()))
    messages = list(base.messages)
    if aliased:
        k = len(aliased)
        messages.append(
            f"fixed-effect model matrix is rank deficient so dropping {k} column"
            f"{'s' * (k > 1)} / coefficient{'s' * (k > 1)}: {', '.join(aliased)} (each is a "
            "combination of earlier columns)"
        )
    if base.spec.offsets:
        terms = " + ".join(f"`{deparse(c)}`" for c in base.spec.offsets)
        messages.append(OFFSET_MESSAGE.format(terms=terms, response=base.design.response))
    sums = [
        PatternSums(
            q.group,
            q.visits,
            q.n,
            np.ascontiguousarray(q.xx[:, :, keep][:, :, :, keep]),
            np.ascontiguousarray(q.xy[:, :, keep]),
            q.yy,
        )
        for q in total.sums.values()
    ]
    design = replace(
        base.design,
        y=np.zeros(0),
        X=np.zeros((0, len(keep))),
        x_names=tuple(names[i] for i in keep),
        aliased=aliased,
        reterms=(),
        rows=np.zeros(0, dtype=np.int64),
        n_dropped=base.n_total - base.n_used,
        messages=tuple(messages),
        kept_columns=keep,
        offset=np.zeros(0),
        residual=plan.residual,
    )
    with single_threaded_blas():
        crit = MMRMCriterion.from_sums(plan.residual, sums, total.n, reml)
        opt = optimize_mmrm(crit)
    return StreamedMMRMResult(
        design.formula,
        design,
        bool(reml),
        opt,
        crit,
        tuple(messages) + tuple(opt.messages),
        n_obs=total.n,
        subjects=plan.residual.n_subjects,
    )


__all__ = ["MMRMPartition", "PatternTotal", "fit_mmrm_stream", "fit_pattern_sums",
           "whole_subjects"]  # fmt: skip
