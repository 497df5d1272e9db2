"""``fit_glmm_stream``: a GLMM (binomial, Poisson) fitted from a table that need not fit in
memory, on DuckDB.

A linear mixed model needs one pass over the rows; a GLMM needs one per iteration of
penalized IRLS (:mod:`lmm_core.stream.glmm_pirls`): every evaluation of the Laplace criterion
at a new ``theta`` (or ``(theta, beta)``) finds the conditional mode again, a few passes from
the previous mode. The optimizer is the in-memory one (:mod:`lmm_core.glmm.fit`, lme4's two
stages): stage 1 minimises lme4's ``nAGQ = 0`` criterion over ``theta`` (``beta`` inside
PIRLS) by BOBYQA, stage 2 ``-2 log L`` over ``(theta, beta)`` by Newton's method from there,
with finite-difference derivatives (the Hessian by :func:`lmm_core.glmm.fit.hessian`, the
gradient by Richardson-extrapolated central differences; the in-memory fit's analytic gradient
needs per-row leverages, not in the blocks), falling back to BOBYQA as in memory. The
optimum is the in-memory fit's (the same criterion, the same
stopping rule on the Newton step).

The cost is said before the optimizer starts: the first pass is timed and
``estimated passes x seconds per pass`` is reported (:func:`cost_message`) to the progress
callback and kept in the result's messages, with the passes made at the end.
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from lmm_core.errors import DataError, ModelError
from lmm_core.glmm.family import make_family
from lmm_core.glmm.fit import HESSIAN_STEP, _stage1_bobyqa, _Stage2, hessian, stage2
from lmm_core.glmm.response import GLMMData
from lmm_core.glmm.results import GLMMResult
from lmm_core.model.linalg import single_threaded_blas
from lmm_core.stream.glmm_pirls import StreamCriterion
from lmm_core.stream.plan import plan_stream
from lmm_core.stream.sources import DuckDBEngine, as_source
from lmm_core.stream.spark import is_spark_frame

SPARK_MESSAGE = (
    "A GLMM is streamed on DuckDB only: it needs one pass over the rows per iteration of "
    'penalized IRLS. Use engine="duckdb" with the Parquet files (or the DuckDB table) the data '
    "live in, or fit a linear mixed model on Spark."
)


@dataclass(frozen=True)
class StreamedGLMMResult(GLMMResult):
    """A GLMM fitted by streaming: :class:`~lmm_core.glmm.results.GLMMResult`'s names
    (``fixef``, ``vcov``, ``fixef_table()``, ``theta``, ``varcorr_table()``, ``ranef``,
    ``ranef_sd``, ``loglik``, ``objective``, ``deviance``, ``aic``, ``bic``,
    ``predict(newdata)``) with no row-level arrays (``eta`` and the data's arrays are empty).

    Attributes
    ----------
    n_obs
        Rows used.
    passes
        Passes over the rows made (the first included).
    timings
        Seconds: ``plan`` (pass 1), ``first_pass``, ``per_pass`` (mean), ``total``.
    """

    n_obs: int = 0
    passes: int = 0
    timings: dict = field(default_factory=dict)

    @property
    def nobs(self) -> int:
        return int(self.n_obs)

    @property
    def fitted(self) -> np.ndarray:
        raise DataError(_NO_ROWS)

    def predict(self, newdata=None, include_re: bool = True, scale: str = "response"):
        """As :meth:`GLMMResult.predict`, on ``newdata`` only (a streamed fit keeps no rows)."""
        if newdata is None:
            raise DataError(_NO_ROWS)
        return super().predict(newdata, include_re=include_re, scale=scale)

    def simulate(self, *args, **kwargs):
        raise DataError("A streamed GLMM keeps no rows to simulate from; fit a sample instead.")


_NO_ROWS = "A streamed fit keeps no rows: pass newdata (e.g. a sample of patients) to predict()."


def estimated_passes(n_theta: int, p: int) -> int:
    """Passes a fit usually needs, from the counts measured on simulated trials: stage 1
    (BOBYQA, about ``10 + 12 n_theta`` evaluations), stage 2 (two Newton steps with the
    finite-difference Hessian and gradient, ``1 + 4 d + d (d - 1) / 2`` evaluations each
    with ``d = n_theta + p``, a chord step ``4 d`` and a few step evaluations), about 3.4 passes
    per evaluation (a warm-started PIRLS), plus the first pass."""
    d = n_theta + p
    evals = 10 + 12 * n_theta + 2 * (1 + 4 * d + d * (d - 1) // 2) + 4 * d + 3
    return 1 + int(round(3.4 * evals))


def cost_message(n_rows: int, passes: int, seconds: float) -> str:
    """The sentence that states the cost before fitting."""
    total = passes * seconds
    when = f"{total / 60:.0f} minutes" if total >= 90 else f"{total:.0f} seconds"
    return (
        f"A GLMM needs one pass over the {n_rows:,} rows per PIRLS iteration: about {passes} "
        f"passes, about {when} at {seconds:.2g} s per pass"
    )


def _say(progress, done: int, total: int, rate: float, message: str | None = None) -> None:
    if progress is None:
        return
    if message is None:
        progress(done, total, rate)
        return
    try:
        inspect.signature(progress).bind(done, total, rate, message=message)
    except (TypeError, ValueError):
        return
    progress(done, total, rate, message=message)


def fit_glmm_stream(
    formula: str,
    source: object,
    family: str = "binomial",
    link: str | None = None,
    *,
    engine: str | None = None,
    batch_size: int = 1_000_000,
    max_memory_gib: float = 2.0,
    progress=None,
    threads: int | None = None,
    spark: object | None = None,
) -> StreamedGLMMResult:
    """Fit a GLMM by the Laplace approximation from a table, by streaming on DuckDB.

    Parameters
    ----------
    formula
        glmer's formula (:func:`lmm_core.fit_glmm`): a 0/1 or ``cbind(successes, failures)``
        binomial outcome or counts, ``offset(...)`` terms, random effects on one or more
        grouping factors.
    source
        Parquet file/folder/glob, CSV path, :class:`~lmm_core.stream.sources.Source` (a
        DuckDB table), an Arrow table or dataset, or a pandas DataFrame (as Arrow).
    family, link
        As :func:`lmm_core.fit_glmm`.
    engine
        ``"duckdb"`` (the only engine for a GLMM; ``"spark"`` is refused with a message).
    batch_size, max_memory_gib, threads
        As :func:`lmm_core.stream.fit_lmm_stream`.
    progress
        ``progress(rows_done, rows_total, rows_per_second)`` after each batch of every pass;
        a callback that also takes a ``message`` keyword receives the cost sentence (before
        the optimizer) and a line per pass.

    Returns
    -------
    StreamedGLMMResult

    Raises
    ------
    lmm_core.errors.LMMError
        Formula, data or model problems (as in memory), Spark, a too-large model.
    """
    if engine == "spark" or spark is not None or is_spark_frame(source):
        raise ModelError(SPARK_MESSAGE)
    if engine not in (None, "duckdb"):
        raise ModelError(f"Unknown engine {engine!r}; a GLMM is streamed with 'duckdb'.")
    fam = make_family(family, link)
    t0 = time.perf_counter()
    eng = DuckDBEngine(as_source(source), threads=threads)
    try:
        _check_response(formula, eng, fam.name)
        plan = plan_stream(formula, eng, max_memory_gib=max_memory_gib, glmm=fam.name)
        t1 = time.perf_counter()

        def on_batch(done: int, k: int, seconds: float) -> None:
            _say(progress, done, plan.n_used, done / max(seconds, 1e-9))

        def rows():
            return eng.batches(plan.columns, plan.where, batch_size)

        crit = StreamCriterion(plan, fam, rows, on_batch)
        with single_threaded_blas():
            first = crit.start()
            _check_totals(plan, fam.name, first)
            est = estimated_passes(crit.theta0.size, crit.keep.size)
            cost = cost_message(plan.n_used, est, crit.pass_seconds[0])
            _say(progress, plan.n_used, plan.n_used, 0.0, cost + ".")
            result = _optimize(crit, formula, fam, plan, cost)
    finally:
        eng.close()
    t2 = time.perf_counter()
    timings = {
        "plan": t1 - t0,
        "first_pass": crit.pass_seconds[0],
        "per_pass": float(np.mean(crit.pass_seconds)),
        "stage1_passes": crit.stage1_passes,
        "total": t2 - t0,
    }
    note = (
        f"{crit.n_passes} passes over the {plan.n_used:,} rows were made "
        f"({timings['per_pass']:.2g} s per pass, {t2 - t0:.0f} s in all)"
    )
    _say(progress, plan.n_used, plan.n_used, 0.0, note + ".")
    return replace(
        result,
        messages=result.messages + (note,),
        passes=crit.n_passes,
        timings=timings,
        seconds=t2 - t0,
    )


def _check_response(formula: str, eng: DuckDBEngine, family: str) -> None:
    """A binomial outcome of text, categories or logical values is refused (recode it)."""
    from lmm_core.formula.grammar import Name, strip_parens
    from lmm_core.formula.terms import parse_formula

    spec = parse_formula(formula)
    node = strip_parens(spec.response)
    if not isinstance(node, Name) or node.name not in eng.columns():
        return
    dtype = eng.empty_frame([node.name])[node.name].dtype
    if pd.api.types.is_bool_dtype(dtype) or not pd.api.types.is_numeric_dtype(dtype):
        raise DataError(
            f"The outcome `{node.name}` is not numeric: a streamed binomial fit needs it coded "
            "0/1 in the table (e.g. `CASE WHEN outcome = 'yes' THEN 1 ELSE 0 END`), or fit a "
            "DataFrame."
        )


def _check_totals(plan, family: str, first) -> None:
    if family == "binomial" and plan.spec.cbind is None and first.y_sum in (0.0, first.w_sum):
        raise DataError(
            f"The outcome `{plan.spec.response_label}` takes one value "
            f"({0 if first.y_sum == 0 else 1}) in every row used: there is nothing to model."
        )


class _StreamStage2(_Stage2):
    """The in-memory second stage on the streamed criterion, without the analytic gradient:
    the Hessian by :func:`lmm_core.glmm.fit.hessian` and the gradient by Richardson's
    extrapolation of central differences at ``h`` and ``h / 2`` (error ``O(h^4)`` instead of
    ``O(h^2)``, which would leave the last Newton step, hence ``theta``, off by ~1e-5 where
    the criterion is flat), ``2 d`` more evaluations per gradient."""

    def __init__(self, crit: StreamCriterion, beta1: np.ndarray, se1: np.ndarray) -> None:
        self.crit, self.nagq = crit, 1
        self.beta1, self.se1 = beta1, se1
        self.nt = crit.theta0.size
        self.grad = None

    def _central(self, x: np.ndarray, idx: np.ndarray, h: float) -> np.ndarray:
        out = np.empty(idx.size)
        for a, j in enumerate(idx):
            e = np.zeros_like(x)
            e[j] = h
            out[a] = (self(x + e) - self(x - e)) / (2 * h)
        return out

    def derivatives(self, x, free, f, g):
        grad, hess, n = hessian(self, x, free, f0=f)
        idx = np.flatnonzero(free)
        grad = (4.0 * self._central(x, idx, HESSIAN_STEP / 2) - grad) / 3.0
        return grad, hess, n + 2 * idx.size

    def gradient_at(self, x, f, g):
        idx = np.arange(x.size)
        coarse = self._central(x, idx, HESSIAN_STEP)
        return (4.0 * self._central(x, idx, HESSIAN_STEP / 2) - coarse) / 3.0, 4 * x.size


def _optimize(crit: StreamCriterion, formula: str, fam, plan, cost: str) -> StreamedGLMMResult:
    """lme4's two stages (:func:`lmm_core.glmm.fit._fit`) on the streamed criterion."""
    phi1, evals1 = _stage1_bobyqa(crit)
    first = crit.pirls(phi1 / crit.theta_scale, None)
    crit.stage1_passes = crit.n_passes
    lx_inv = np.linalg.inv(first.l_x)
    se1 = np.sqrt(np.sum(lx_inv * lx_inv, axis=0))
    fun = _StreamStage2(crit, first.beta, se1)
    opt = stage2(fun, crit, phi1, se1, crit.beta_factor)
    state = opt.state
    b, cond_cov = crit.conditional(state)
    return StreamedGLMMResult(
        formula=formula,
        family=fam,
        nagq=1,
        theta=opt.theta,
        beta=opt.beta,
        vcov_beta=opt.vcov,
        loglik=-0.5 * fun.value(state),
        deviance=state.drsum,
        lme4_deviance=state.lme4_deviance,
        b=b,
        cond_cov=cond_cov,
        eta=np.zeros(0),
        data=_empty_data(plan, crit),
        converged=opt.converged,
        n_evals=evals1 + opt.n_evals,
        messages=tuple(plan.messages) + tuple(crit.notes) + (cost,) + tuple(opt.messages),
        n_obs=plan.n_used,
    )


def _empty_data(plan, crit: StreamCriterion) -> GLMMData:
    """The evaluated model without rows: the recipes (for ``predict(newdata)``), names,
    terms with the whole table's levels."""
    keep = crit.keep
    names = plan.x_names
    design = replace(
        plan.design,
        y=np.zeros(0),
        X=np.zeros((0, keep.size)),
        x_names=tuple(names[i] for i in keep),
        aliased=crit.aliased,
        reterms=plan.reterms,
        rows=np.zeros(0, dtype=np.int64),
        n_dropped=plan.n_total - plan.n_used,
        kept_columns=keep,
        offset=np.zeros(0),
        trials=None,
        folded_offset=None,
    )
    return GLMMData(
        design=design,
        y=np.zeros(0),
        weights=np.zeros(0),
        offset=np.zeros(0),
        rows=np.zeros(0, dtype=np.int64),
        response_label=plan.spec.response_label,
        offsets=tuple(c.arg for c in plan.spec.offsets),
        messages=tuple(plan.messages),
    )


__all__ = ["SPARK_MESSAGE", "StreamedGLMMResult", "cost_message", "fit_glmm_stream"]
