"""A streamed MMRM: ``fit_lmm("y ~ arm * visit + us(visit | patient)", source)``.

The criterion of an MMRM (:mod:`lmm_core.model.mmrm`) needs the rows only through each
pattern's summed products (:class:`~lmm_core.model.mmrm.PatternSums`: the subjects of one
group with the same visits, ``sum_i X_i (x) X_i``, ``sum_i X_i (x) y_i``, ``sum_i y_i y_i'``),
so a table of any length is fitted in three steps:

1. pass 1 (:mod:`lmm_core.stream.mmrm_plan`): SQL aggregates for the design, the visits, the
   groups and the number of patterns (memory estimated, refused above the limit);
2. pass 2 (:mod:`lmm_core.stream.mmrm_pass`): the rows sorted by subject, in batches of
   whole subjects through our own design code, their products summed per pattern (with
   random effects beside the structure, per cell: :mod:`lmm_core.stream.mmrm_random`);
3. the optimizer of the in-memory path (:func:`~lmm_core.model.mmrm.optimize_mmrm`: Fisher
   scoring from moment estimates, which the sums give, then Newton on the exact Hessian) on
   :meth:`MMRMCriterion.from_sums <lmm_core.model.mmrm.MMRMCriterion.from_sums>`.

The criterion at a given ``theta`` equals the in-memory one up to the order of the sums
(relative differences about 1e-14): the in-memory fit also keeps large patterns as these sums.
The checks of the in-memory path are made per batch with its messages: a subject with a visit
twice, a subject in two groups, non-finite transformed values.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from lmm_core.errors import ModelError
from lmm_core.model.linalg import single_threaded_blas
from lmm_core.model.mmrm import MMRMCriterion, PatternSums, optimize_mmrm
from lmm_core.model.mmrm_results import MMRMResult
from lmm_core.stream.mmrm_pass import (
    PatternTotal,
    accumulate,
    spark_pattern_total,
    spark_subjects,
    summed_design,
)
from lmm_core.stream.mmrm_plan import MMRMStreamPlan, plan_mmrm_stream
from lmm_core.stream.mmrm_random import CellTotal, fit_cell_sums
from lmm_core.stream.mmrm_results import StreamedMMRMResult


def fit_mmrm_stream(
    formula: str,
    eng,
    *,
    reml: bool,
    batch_size: int,
    max_memory_gib: float,
    progress=None,
    spark: bool = False,
) -> MMRMResult:
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
        kind, fit = CellTotal, fit_cell_sums
    if spark:
        total = spark_pattern_total(eng, plan, batch_size, progress, kind)
        rows = spark_subjects(eng, plan)
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
    design = summed_design(plan, total)
    keep = design.kept_columns
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
    with single_threaded_blas():
        crit = MMRMCriterion.from_sums(plan.residual, sums, total.n, reml)
        opt = optimize_mmrm(crit)
    return StreamedMMRMResult(
        design.formula,
        design,
        bool(reml),
        opt,
        crit,
        design.messages + tuple(opt.messages),
        n_obs=total.n,
        subjects=plan.residual.n_subjects,
    )


__all__ = ["fit_mmrm_stream", "fit_pattern_sums"]
