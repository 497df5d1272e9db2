"""Parametric bootstrap of a fit (lme4's ``bootMer`` with ``use.u = FALSE``).

Each replicate ``b = 1..B`` draws a new response from the fitted model,

    y*_b = X beta_hat + Z Lambda(theta_hat) u*_b + e*_b,
    u*_b ~ N(0, sigma_hat^2 I),  e*_b ~ N(0, sigma_hat^2 I)

(new random effects every time, :func:`lmm_core.model.simulate.simulate`), refits it with the same
criterion (REML or ML) starting from ``theta_hat``, and keeps the fixed effects, the SDs and
correlations of the random effects and ``sigma``. The draws come from one
``numpy.random.Generator`` seeded once, replicate after replicate, so a seed reproduces every
replicate and the first ``B`` replicates of a longer run are those of a shorter one.

A replicate whose refit raises is recorded as failed (a row of NaN) and one whose optimizer
check did not pass as not converged (kept, as lme4 keeps them); neither stops the run.

Intervals from the replicates ``t*`` of a parameter with estimate ``t_hat``
(Davison & Hinkley 1997, ch. 5; lme4's ``boot.type``):

    percentile:  [q_{alpha/2}(t*), q_{1-alpha/2}(t*)]
    basic:       [2 t_hat - q_{1-alpha/2}(t*), 2 t_hat - q_{alpha/2}(t*)]
    normal:      (t_hat - bias) -/+ z_{1-alpha/2} sd(t*),  bias = mean(t*) - t_hat

A GLMM fit (:class:`~lmm_core.glmm.results.GLMMResult`) is bootstrapped by
:func:`lmm_core.inference.glmm_bootstrap.bootstrap_samples` (binomial or Poisson responses,
maximum-likelihood refits; no ``sigma`` column) into the same :class:`BootstrapResult`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import norm

from lmm_core.glmm.results import GLMMResult
from lmm_core.inference.glmm_bootstrap import bootstrap_samples
from lmm_core.inference.profile import parameter_names, sdcor_from_theta
from lmm_core.model.deviance import ProfiledDeviance
from lmm_core.model.linalg import single_threaded_blas
from lmm_core.model.optimize import OptimizerOptions, optimize_theta
from lmm_core.model.results import LMMResult
from lmm_core.model.simulate import simulate

METHODS = ("percentile", "basic", "normal")


@dataclass(frozen=True)
class BootstrapResult:
    """Replicates of a parametric bootstrap.

    Attributes
    ----------
    estimates
        The fit's own estimates: SDs and correlations of the random effects
        (``"sd_(Intercept)|Subject"``, ...), ``"sigma"``, then the fixed effects.
    samples
        One row per replicate, the same columns; NaN rows for failed replicates.
    converged, failed
        Per replicate: the optimizer's check passed; the refit raised an error.
    seed
        The seed the responses were drawn with.
    seconds
        Wall time of the run.
    """

    estimates: pd.Series
    samples: pd.DataFrame
    converged: np.ndarray
    failed: np.ndarray
    seed: int | None
    seconds: float
    messages: tuple[str, ...] = field(default=())

    @property
    def n_boot(self) -> int:
        return int(self.samples.shape[0])

    @property
    def n_failed(self) -> int:
        return int(self.failed.sum())

    @property
    def n_not_converged(self) -> int:
        return int((~self.converged & ~self.failed).sum())

    def confint(self, level: float = 0.95, method: str = "percentile") -> pd.DataFrame:
        """Bootstrap confidence intervals (module docstring for the formulas).

        Parameters
        ----------
        level
            Confidence level.
        method
            ``"percentile"`` (default, lme4's ``"perc"``), ``"basic"`` or ``"normal"``.

        Returns
        -------
        pd.DataFrame
            Index: the parameter names; columns ``lower``, ``upper``. Failed replicates are
            left out; ``attrs`` records ``n_used``.
        """
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
        if not 0.0 < level < 1.0:
            raise ValueError("level must be between 0 and 1")
        ok = self.samples.loc[~self.failed]
        alpha = 1.0 - level
        est = self.estimates
        if ok.empty:
            lower = upper = pd.Series(np.nan, index=est.index)
        elif method == "percentile":
            lower, upper = ok.quantile(alpha / 2), ok.quantile(1 - alpha / 2)
        elif method == "basic":
            lower, upper = 2 * est - ok.quantile(1 - alpha / 2), 2 * est - ok.quantile(alpha / 2)
        else:
            z = norm.ppf(1 - alpha / 2)
            centre = 2 * est - ok.mean()
            sd = ok.std(ddof=1)
            lower, upper = centre - z * sd, centre + z * sd
        out = pd.DataFrame({"lower": lower, "upper": upper}).reindex(est.index)
        out.index.name = "parameter"
        out.attrs.update(level=level, method=method, n_used=int(ok.shape[0]))
        return out


def parametric_bootstrap(
    result: LMMResult,
    n_boot: int,
    seed: int | None,
    progress: Callable[[int, int], None] | None = None,
    *,
    options: OptimizerOptions | None = None,
) -> BootstrapResult:
    """Parametric bootstrap: simulate from the fit, refit each replicate, collect estimates.

    Parameters
    ----------
    result
        The fit to bootstrap (REML fits are refitted by REML, ML fits by ML; a GLMM by
        maximum likelihood with its own ``nagq``).
    n_boot
        Number of replicates.
    seed
        Seed of the random draws (reproducible runs).
    progress
        Called as ``progress(i, n_boot)`` after replicate ``i`` (1-based).
    options
        Optimizer tolerances of the refits (the fit's defaults otherwise).

    Returns
    -------
    BootstrapResult
    """
    if n_boot < 1:
        raise ValueError("n_boot must be at least 1")
    if isinstance(result, GLMMResult):
        return BootstrapResult(**bootstrap_samples(result, n_boot, seed, progress))
    start = time.perf_counter()
    design = result.design
    names = parameter_names(result)
    estimates = pd.Series(
        np.concatenate([sdcor_from_theta(design.reterms, result.theta, result.sigma), result.beta]),
        index=names,
        name="estimate",
    )
    opts = options or OptimizerOptions(keep_log=False)
    rng = np.random.default_rng(seed)
    values = np.full((n_boot, len(names)), np.nan)
    converged = np.zeros(n_boot, bool)
    failed = np.zeros(n_boot, bool)
    errors: dict[str, int] = {}
    with single_threaded_blas():
        for i in range(n_boot):
            ystar = simulate(result, 1, seed=rng)[0]
            try:
                values[i], converged[i] = _refit(design, ystar, result, opts)
            except (np.linalg.LinAlgError, ValueError, FloatingPointError, RuntimeError) as exc:
                failed[i] = True
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            if progress is not None:
                progress(i + 1, n_boot)
    messages = []
    if failed.any():
        kinds = ", ".join(f"{k} x{v}" for k, v in errors.items())
        messages.append(f"{failed.sum()} of {n_boot} replicates failed to refit ({kinds}).")
    n_nc = int((~converged & ~failed).sum())
    if n_nc:
        messages.append(f"{n_nc} of {n_boot} refits did not pass the convergence check (kept).")
    return BootstrapResult(
        estimates=estimates,
        samples=pd.DataFrame(values, columns=names),
        converged=converged,
        failed=failed,
        seed=seed,
        seconds=time.perf_counter() - start,
        messages=tuple(messages),
    )


def _refit(design, ystar: np.ndarray, result: LMMResult, opts) -> tuple[np.ndarray, bool]:
    """One replicate: optimize theta from the fitted value, return (sd/cor, sigma, beta)."""
    dev = ProfiledDeviance(design.X, ystar, design.reterms, result.reml)
    opt = optimize_theta(dev, result.theta, opts)
    sol = dev.solve(opt.final)
    row = np.concatenate([sdcor_from_theta(design.reterms, sol.theta, sol.sigma), sol.beta])
    if not np.all(np.isfinite(row)):
        raise FloatingPointError("non-finite estimates")
    return row, bool(opt.converged)
