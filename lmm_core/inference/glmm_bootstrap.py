"""Parametric bootstrap of a GLMM: of its estimates (lme4's ``bootMer``) and of the
likelihood-ratio test between two nested GLMMs (pbkrtest's ``PBmodcomp``).

Each replicate ``b = 1..B`` draws a response from a fitted model with new random effects
(:func:`lmm_core.glmm.simulate.simulate_glmm`, lme4's ``use.u = FALSE``) and refits the
model(s) to it by maximum likelihood, started from the fit's estimates
(:func:`lmm_core.glmm.refit.refit_glmm`). The draws come from one ``numpy.random.Generator``
seeded once, replicate after replicate, so a seed reproduces every replicate and the first
``B`` replicates of a longer run are those of a shorter one. A refit that raises is recorded
as failed (NaN) and does not stop the run.

* Estimates: the SDs and correlations of the random effects and the fixed effects of every
  replicate; :class:`lmm_core.inference.bootstrap.BootstrapResult` turns them into percentile
  (or basic, normal) intervals. :func:`lmm_core.inference.bootstrap.parametric_bootstrap`
  calls :func:`bootstrap_samples` for a GLMM fit.
* Test (:func:`pb_lrt`): responses are drawn from the smaller (null) model, both models are
  refitted, and ``T*_b = 2 (logLik*_large - logLik*_small)``. The bootstrap p-value is
  ``(1 + #{T*_b >= T}) / (1 + B_used)`` (Davison & Hinkley 1997, eq. 4.11; as PBmodcomp),
  valid also when the null value of a variance is on the boundary, where the chi-square
  reference is conservative.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy import stats

from lmm_core.errors import ComparisonError
from lmm_core.glmm.pirls import PIRLSFailure
from lmm_core.glmm.refit import refit_glmm
from lmm_core.glmm.results import GLMMResult
from lmm_core.glmm.simulate import simulate_glmm
from lmm_core.inference.glmm_lrt import check_same_model_data
from lmm_core.inference.glmm_profile import glmm_parameter_names, glmm_sdcor
from lmm_core.inference.nesting import check_nesting
from lmm_core.model.linalg import single_threaded_blas

REFIT_ERRORS = (np.linalg.LinAlgError, PIRLSFailure, ValueError, FloatingPointError, RuntimeError)


def _check_n_boot(n_boot: object) -> int:
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot must be a whole number >= 1, not {n_boot!r}")
    return int(n_boot)


def _failure_messages(failed: np.ndarray, converged: np.ndarray, errors: dict[str, int]):
    n = failed.size
    messages = []
    if failed.any():
        kinds = ", ".join(f"{k} x{v}" for k, v in errors.items())
        messages.append(f"{failed.sum()} of {n} replicates failed to refit ({kinds}).")
    n_nc = int((~converged & ~failed).sum())
    if n_nc:
        messages.append(f"{n_nc} of {n} refits did not end normally (kept).")
    return messages


def bootstrap_samples(
    result: GLMMResult,
    n_boot: int,
    seed: int | None,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Bootstrap replicates of a GLMM's SDs, correlations and fixed effects.

    Returns
    -------
    dict
        The fields of :class:`lmm_core.inference.bootstrap.BootstrapResult`: ``estimates``
        (the fit's values, named as :func:`glmm_parameter_names`), ``samples`` (one row per
        replicate), ``converged``, ``failed``, ``seed``, ``seconds``, ``messages``.
    """
    n_boot = _check_n_boot(n_boot)
    start = time.perf_counter()
    names = glmm_parameter_names(result)
    reterms = result.reterms
    estimates = pd.Series(
        np.concatenate([glmm_sdcor(reterms, result.theta), result.beta]),
        index=names,
        name="estimate",
    )
    rng = np.random.default_rng(seed)
    values = np.full((n_boot, len(names)), np.nan)
    converged = np.zeros(n_boot, bool)
    failed = np.zeros(n_boot, bool)
    errors: dict[str, int] = {}
    with single_threaded_blas():
        for i in range(n_boot):
            ystar = simulate_glmm(result, 1, seed=rng)[0]
            try:
                fit = refit_glmm(result, ystar)
                values[i] = np.concatenate([glmm_sdcor(reterms, fit.theta), fit.beta])
                converged[i] = fit.converged
            except REFIT_ERRORS as exc:
                failed[i] = True
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            if progress is not None:
                progress(i + 1, n_boot)
    return {
        "estimates": estimates,
        "samples": pd.DataFrame(values, columns=names),
        "converged": converged,
        "failed": failed,
        "seed": seed,
        "seconds": time.perf_counter() - start,
        "messages": tuple(_failure_messages(failed, converged, errors)),
    }


def pb_lrt(
    small: GLMMResult,
    large: GLMMResult,
    n_boot: int = 200,
    seed: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Parametric-bootstrap likelihood-ratio test of ``small`` against ``large``, as
    ``pbkrtest::PBmodcomp(large, small)``.

    Parameters
    ----------
    small, large
        Nested GLMM fits of the same rows (either order: the one with fewer parameters is the
        null model).
    n_boot
        Number of bootstrap replicates.
    seed
        Seed of the random draws.
    progress
        Called as ``progress(i, n_boot)`` after replicate ``i``.

    Returns
    -------
    pd.DataFrame
        Rows ``"LRT"`` (chi-square reference) and ``"PBtest"`` (bootstrap reference); columns
        ``stat``, ``df``, ``p_value``. ``attrs``: ``samples`` (the ``T*_b``, NaN for failed
        replicates), ``n_used``, ``n_failed``, ``seed``, ``seconds``, ``messages``.

    Raises
    ------
    ComparisonError
        Different data, family or link, equal numbers of parameters, or models not nested.
    """
    n_boot = _check_n_boot(n_boot)
    if not (isinstance(small, GLMMResult) and isinstance(large, GLMMResult)):
        raise ComparisonError("The bootstrap likelihood-ratio test compares two GLMM fits.")
    if small.npar > large.npar:
        small, large = large, small
    check_same_model_data((large, small), [large.formula, small.formula])
    df = large.npar - small.npar
    if df <= 0:
        raise ComparisonError("The two models have the same number of parameters: no test.")
    nesting = check_nesting(small, large)
    if not nesting.nested:
        raise ComparisonError(f"The models are not nested: {nesting.reason}")
    start = time.perf_counter()
    stat = 2.0 * (large.loglik - small.loglik)
    rng = np.random.default_rng(seed)
    samples = np.full(n_boot, np.nan)
    errors: dict[str, int] = {}
    with single_threaded_blas():
        for i in range(n_boot):
            ystar = simulate_glmm(small, 1, seed=rng)[0]
            try:
                fit0 = refit_glmm(small, ystar)
                fit1 = refit_glmm(large, ystar)
                samples[i] = 2.0 * (fit1.loglik - fit0.loglik)
            except REFIT_ERRORS as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            if progress is not None:
                progress(i + 1, n_boot)
    ok = samples[np.isfinite(samples)]
    p_boot = (1.0 + np.sum(ok >= stat)) / (1.0 + ok.size)
    table = pd.DataFrame(
        {
            "stat": [stat, stat],
            "df": [float(df), np.nan],
            "p_value": [float(stats.chi2.sf(max(stat, 0.0), df)), float(p_boot)],
        },
        index=pd.Index(["LRT", "PBtest"], name="test"),
    )
    failed = ~np.isfinite(samples)
    table.attrs.update(
        samples=samples,
        n_used=int(ok.size),
        n_failed=int(failed.sum()),
        seed=seed,
        seconds=time.perf_counter() - start,
        messages=_failure_messages(failed, np.ones(n_boot, bool), errors),
    )
    return table


__all__ = ["bootstrap_samples", "pb_lrt"]
