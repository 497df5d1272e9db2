"""``fit_lmm_stream``: a linear mixed model fitted from a table that need not fit in memory.

A linear mixed model needs the rows only through the cross-products of ``[Z X y]``
(:mod:`lmm_core.model.cross_products`); every evaluation of the profiled criterion costs
the same whatever the number of rows. The fit therefore takes:

1. pass 1 (:mod:`lmm_core.stream.plan`): SQL aggregates (DuckDB or Spark SQL) for what the
   design needs (rows used, levels, scaling constants, spline knots), and the memory
   estimate, refused above ``max_memory_gib``;
2. pass 2 (:mod:`lmm_core.stream.batches`): record batches through our design code, their
   blocks summed (DuckDB, batches of ``batch_size`` rows; on Spark, per partition on the
   executors, then on the driver: :mod:`lmm_core.stream.spark`);
3. the optimizer of the in-memory path (:func:`lmm_core.model.optimize.optimize_theta`) on
   :meth:`ProfiledDeviance.from_cross_products`, and the solution at the optimum.

The criterion at a given ``theta`` equals the in-memory one up to the order of the sums
(relative differences about 1e-13), so the optimum is the same. One difference: the in-memory
optimizer may restart from a moment-based start (:mod:`lmm_core.model.starts`) when its
first optimum is on the boundary; that start needs per-level residual sums of squares of a
pooled regression, not in the blocks, so a streamed fit restarts only from its own optimum.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pandas as pd

from lmm_core.errors import ModelError
from lmm_core.formula.quoting import deparse
from lmm_core.formula.terms import parse_formula
from lmm_core.model.deviance import ProfiledDeviance
from lmm_core.model.fit import OFFSET_MESSAGE, SINGULAR_MESSAGE, FitOptions, solution_fields
from lmm_core.model.linalg import single_threaded_blas
from lmm_core.stream.batches import BatchBlocks, BlockSum, finish
from lmm_core.stream.mmrm import fit_mmrm_stream
from lmm_core.stream.mmrm_results import StreamedMMRMResult
from lmm_core.stream.plan import StreamPlan, plan_stream
from lmm_core.stream.results import StreamedLMMResult, optimum
from lmm_core.stream.sources import DuckDBEngine, as_source
from lmm_core.stream.spark import SparkEngine, SparkRows, is_spark_frame, spark_blocks

#: ``progress(rows_done, rows_total, rows_per_second)``, called after each batch of pass 2.
Progress = Callable[[int, int, float], None]


def fit_lmm_stream(
    formula: str,
    source: object,
    *,
    reml: bool = True,
    options: FitOptions | None = None,
    start: np.ndarray | None = None,
    engine: str | None = None,
    spark: object | None = None,
    batch_size: int = 1_000_000,
    max_memory_gib: float = 2.0,
    progress: Progress | None = None,
    threads: int | None = None,
) -> StreamedLMMResult:
    """Fit a linear mixed model by REML (default) or ML from a table, by streaming.

    Parameters
    ----------
    formula
        lme4-style formula, as :func:`lmm_core.fit_lmm`.
    source
        Parquet file/folder/glob or CSV path, :class:`~lmm_core.stream.sources.Source`
        (``Source.duckdb(path, table)`` for a DuckDB table) or an Arrow table or dataset;
        for Spark, a Spark DataFrame, a Parquet/CSV path or a pandas DataFrame.
    reml, options, start
        As :func:`lmm_core.fit_lmm`.
    engine
        ``"duckdb"`` (embedded, streaming) or ``"spark"`` (:mod:`lmm_core.stream.spark`);
        default: Spark for a Spark DataFrame or when ``spark`` is given, else DuckDB.
    spark
        The SparkSession of ``engine="spark"`` (default: the source's or the active one).
    batch_size
        Rows per batch of pass 2 (memory of a batch: about ``batch_size * (p + 2 S) * 8``
        bytes of matrices).
    max_memory_gib
        Refuse models whose blocks are estimated above this (GiB).
    progress
        ``progress(rows_done, rows_total, rows_per_second)`` after each batch of pass 2.
    threads
        DuckDB threads (default: all cores).

    Returns
    -------
    StreamedLMMResult

    Raises
    ------
    lmm_core.errors.LMMError
        For any formula, data or model problem, and for a model too large for memory (the
        message gives the estimate).
    """
    options = options or FitOptions()
    t0 = time.perf_counter()
    eng = _open_engine(engine, source, spark, threads)
    if parse_formula(formula).residual is not None:
        return _fit_mmrm(formula, eng, reml, batch_size, max_memory_gib, progress)
    extra: dict = {}
    if isinstance(eng, SparkEngine):
        try:
            plan = plan_stream(formula, eng, max_memory_gib=max_memory_gib)
        finally:
            eng.close()
        t1 = time.perf_counter()
        blocks, extra = spark_blocks(eng, plan, batch_size, progress)
        rows = SparkRows(eng, plan.columns, plan.where)
    else:
        plan = plan_stream(formula, eng, max_memory_gib=max_memory_gib)
        t1 = time.perf_counter()
        blocks = _accumulate(eng, plan, batch_size, progress)
        rows = lambda: eng.batches(plan.columns, plan.where, batch_size)  # noqa: E731
    t2 = time.perf_counter()
    if blocks.cp.n != plan.n_used:
        raise ModelError("The table changed between the two passes; fit again.")
    result = fit_blocks(plan, blocks, reml=reml, options=options, start=start)
    t3 = time.perf_counter()
    timings = {
        "pass1": t1 - t0,
        "pass2": t2 - t1,
        "rows_per_second": plan.n_used / max(t2 - t1, 1e-9),
        **extra,
        **result.timings,
        "total": t3 - t0,
    }
    return replace(result, timings=timings, rows=rows)


def _fit_mmrm(formula, eng, reml, batch_size, max_memory_gib, progress) -> StreamedMMRMResult:
    """A covariance structure of the visits: :mod:`lmm_core.stream.mmrm`."""
    on_spark = isinstance(eng, SparkEngine)
    try:
        return fit_mmrm_stream(
            formula,
            eng,
            reml=reml,
            batch_size=batch_size,
            max_memory_gib=max_memory_gib,
            progress=progress,
            spark=on_spark,
        )
    finally:
        eng.close()


def _open_engine(engine: str | None, source: object, spark: object | None, threads: int | None):
    """The engine of the passes: Spark for a Spark DataFrame, a session given or
    ``engine="spark"``; DuckDB otherwise."""
    if engine is None:
        engine = "spark" if spark is not None or is_spark_frame(source) else "duckdb"
    if engine == "spark":
        return SparkEngine(spark, source)
    if engine == "duckdb":
        if is_spark_frame(source):
            raise ModelError(
                'A Spark DataFrame is fitted with engine="spark" (or read the Parquet files it '
                'was written to with engine="duckdb").'
            )
        return DuckDBEngine(as_source(source), threads=threads)
    raise ModelError(f"Unknown engine {engine!r}; use 'duckdb' or 'spark'.")


def _accumulate(
    eng: DuckDBEngine, plan: StreamPlan, batch_size: int, progress: Progress | None
) -> BatchBlocks:
    """Pass 2 on DuckDB. DuckDB's reader hands out batches no larger than a Parquet row
    group; they are gathered up to ``batch_size`` rows and added to a :class:`BlockSum`
    (a batch costs its rows and the levels it has, not every level of the table)."""
    blocks = BlockSum(plan)
    done = 0
    held: list = []
    rows = 0
    start = time.perf_counter()
    for frame in eng.batches(plan.columns, plan.where, batch_size):
        held.append(frame)
        rows += len(frame)
        done += len(frame)
        if rows >= batch_size:
            blocks.add(_concat(held))
            held, rows = [], 0
        if progress is not None:
            progress(done, plan.n_used, done / max(time.perf_counter() - start, 1e-9))
    if held:
        blocks.add(_concat(held))
    total = blocks.total()
    if total is None:
        raise ModelError("The table changed between the two passes; fit again.")
    return total


def _concat(frames: list) -> pd.DataFrame:
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def fit_blocks(
    plan: StreamPlan,
    blocks: BatchBlocks,
    *,
    reml: bool = True,
    options: FitOptions | None = None,
    start: np.ndarray | None = None,
) -> StreamedLMMResult:
    """Optimize and solve from summed blocks (stage 3 of the module docstring)."""
    options = options or FitOptions()
    cp, keep, aliased, notes = finish(plan, blocks)
    messages = list(plan.messages) + notes
    if plan.spec.offsets:
        terms = " + ".join(f"`{deparse(c)}`" for c in plan.spec.offsets)
        messages.append(OFFSET_MESSAGE.format(terms=terms, response=plan.design.response))
    names = plan.x_names
    design = replace(
        plan.design,
        y=np.zeros(0),
        X=np.zeros((0, len(keep))),
        x_names=tuple(names[i] for i in keep),
        aliased=aliased,
        reterms=plan.reterms,
        rows=np.zeros(0, dtype=np.int64),
        n_dropped=plan.n_total - plan.n_used,
        messages=tuple(messages),
        kept_columns=keep,
        offset=np.zeros(0),
    )
    t0 = time.perf_counter()
    with single_threaded_blas():
        dev = ProfiledDeviance.from_cross_products(cp, plan.reterms, reml)
    opt, sol, cond_cov, singular = optimum(dev, start, options)
    t1 = time.perf_counter()
    messages += list(opt.messages)
    if singular:
        messages.append(SINGULAR_MESSAGE)
    return StreamedLMMResult(
        formula=design.formula,
        reml=bool(reml),
        **solution_fields(sol, cond_cov),
        fitted=np.zeros(0),
        residuals=np.zeros(0),
        design=design,
        opt=opt,
        messages=tuple(messages),
        singular_tol=options.singular_tol,
        n_obs=cp.n,
        theta_units=dev.theta_scale,
        timings={"optimize": t1 - t0, "result": time.perf_counter() - t1},  # optimize: + solve
        deviance=dev,
    )


__all__ = ["Progress", "fit_blocks", "fit_lmm_stream"]
