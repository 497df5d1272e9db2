"""Likelihood-profile confidence intervals, as lme4's ``confint(fit, method = "profile")``.

The parameters are those lme4 profiles: per random-effects term the standard deviations
``sd_k`` and correlations ``cor_kl`` of the random effects, the residual SD ``sigma``, and
the fixed effects ``beta_j``. For one parameter ``psi`` with the others re-optimized,

    d(psi)    = min over the other parameters of the ML deviance -2 log L,
    zeta(psi) = sign(psi - psi_hat) * sqrt(d(psi) - d(psi_hat)),

and the level-``1 - alpha`` interval is ``{psi : |zeta(psi)| <= z_{1 - alpha/2}}``, i.e. the
deviance rises by at most the chi-square(1) quantile ``z^2`` above its minimum (Bates et al.
2015, sec. 5.1). Each bound is a root of ``zeta(psi) -/+ z``: it is bracketed by secant
steps on a scale where ``zeta`` is nearly linear (log for SDs and ``sigma``, Fisher's
``atanh`` for correlations, the identity for fixed effects) and then found by Brent's method,
so it is the exact root (lme4 interpolates a spline through a grid of profile points, which
agrees to about three significant digits). Every evaluation of ``d`` is warm-started from the
optimum of the nearest point already evaluated.

* Variance parameters: the deviance with ``beta`` profiled out is, for ``theta`` and
  ``sigma``, ``ldL2(theta) + r^2(theta) / sigma^2 + n log(2 pi sigma^2)``; lme4's
  ``devfun2`` writes it in ``(sd, cor, sigma)`` and so do we: ``theta`` of a term is the
  lower Cholesky factor of ``D R D / sigma^2`` (``D = diag(sd)``, ``R`` the correlations),
  i.e. ``D chol(R) / sigma``. The other parameters are minimised by BOBYQA within
  ``sd >= 0``, ``-1 <= cor <= 1``, ``sigma > 0``.
* Fixed effect ``beta_j``: refit with the offset ``x_j beta_j`` (``y - x_j beta_j`` as the
  response, ``X`` without column ``j``); ``d`` is that model's ML deviance, with ``sigma`` and
  the other coefficients profiled out analytically and ``theta`` optimized.
* Boundaries: an SD whose profile stays below the cutoff down to 0 gets the lower bound 0,
  a correlation that stays below it up to +/-1 gets that bound (as lme4's ``confint``).

**REML fits.** lme4's ``profile()`` refits a REML fit by maximum likelihood (``devfun2``
calls ``refitML``) and profiles the ML deviance; intervals are therefore around the ML
estimates. We do the same for every fit, REML or ML, so the numbers match lme4's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.stats import norm

from lmm_core.design.reterms import split_theta, theta_scale
from lmm_core.model.bobyqa import SafeObjective, bobyqa
from lmm_core.model.deviance import ProfiledDeviance
from lmm_core.model.fit import fit_design
from lmm_core.model.linalg import single_threaded_blas
from lmm_core.model.results import LMMResult

LOG_2PI = float(np.log(2.0 * np.pi))


@dataclass(frozen=True)
class ProfileParameter:
    """One profiled parameter: ``kind`` is ``"sd"``, ``"cor"``, ``"sigma"`` or ``"fixef"``."""

    name: str
    kind: str
    index: int  # position in the (sd, cor, ..., sigma) vector, or the column of X
    estimate: float


def parameter_names(result: LMMResult) -> list[str]:
    """Readable lme4 names (``tnames(fit, old = FALSE)``): SDs/correlations, sigma, fixef.

    ``"sd_(Intercept)|Subject"``, ``"cor_Days.(Intercept)|Subject"``, ``"sd_Days|Subject"``,
    ``"sigma"``, then the fixed-effect names (each structure's
    :meth:`~lmm_core.design.covariance.CovarianceStructure.sdcor_names`). A repeated name gets
    a ``.1``, ``.2`` suffix.
    """
    names = [n for t in result.reterms for n in t.structure.sdcor_names(t.group, t.cnames)]
    seen: dict[str, int] = {}
    unique = []
    for n in names:
        k = seen.get(n, 0)
        unique.append(n if k == 0 else f"{n}.{k}")
        seen[n] = k + 1
    return unique + ["sigma"] + list(result.x_names)


def sdcor_from_theta(reterms, theta: np.ndarray, sigma: float) -> np.ndarray:
    """``(sd, cor)`` of every term in ``theta``'s order, then ``sigma`` (lme4's ``Cv_to_Sv``).

    Each term's :meth:`~lmm_core.design.covariance.CovarianceStructure.sdcor`; a correlation
    with a zero SD is undefined and reported as 0.
    """
    thetas = split_theta(reterms, theta)
    parts = [t.structure.sdcor(th, sigma) for t, th in zip(reterms, thetas, strict=True)]
    return np.concatenate([*parts, [sigma]]).astype(float)


def theta_from_sdcor(reterms, phi: np.ndarray) -> np.ndarray | None:
    """Inverse of :func:`sdcor_from_theta` (for an unstructured term ``lambda = D chol(R) /
    sigma``, ``D`` the SDs and ``R`` the correlations).

    Returns None when a term's correlation matrix is not positive semi-definite.
    """
    sigma = phi[-1]
    parts = [
        t.structure.theta_from_sdcor(values, sigma)
        for t, values in zip(reterms, split_theta(reterms, phi[:-1]), strict=True)
    ]
    return None if any(p is None for p in parts) else np.concatenate(parts)


def _minimize(fun, x0, lower, upper, step) -> tuple[np.ndarray, float, int]:
    """Bounded derivative-free minimisation (:func:`lmm_core.model.bobyqa.bobyqa`; Nelder-Mead
    for one variable): the best point seen, its value and the number of evaluations."""
    x0 = np.clip(np.asarray(x0, float), lower, upper)
    obj = SafeObjective(fun)
    if x0.size == 0:
        return x0, obj(x0), 1
    obj(x0)
    bobyqa(obj, x0, lower, upper, step=step, max_evals=20_000, ftol_abs=1e-11, xtol_rel=1e-10)
    return obj.best_x, obj.best_f, obj.n_evals


class LikelihoodProfile:
    """The profiled ML deviance of a fit, one parameter at a time.

    Parameters
    ----------
    result
        A fit (REML or ML). A REML fit is refitted by ML first, as lme4's ``profile()`` does.

    Attributes
    ----------
    ml
        The ML fit whose deviance is profiled.
    parameters
        The profiled parameters (see :func:`parameter_names`) with their ML estimates.
    base
        The minimum ML deviance ``d(psi_hat)``.
    n_evals
        Deviance evaluations so far.
    """

    def __init__(self, result: LMMResult):
        self.ml = (
            fit_design(result.design, reml=False, start=result.theta) if result.reml else result
        )
        design = self.ml.design
        self.reterms = design.reterms
        self.X, self.y = design.X, design.y
        self.n = self.X.shape[0]
        self.dev = ProfiledDeviance(self.X, self.y, self.reterms, reml=False)
        self.base = float(self.ml.objective)
        self.phi_hat = sdcor_from_theta(self.reterms, self.ml.theta, self.ml.sigma)
        diag = np.concatenate([t.structure.is_variance for t in self.reterms])
        kinds = [("sd" if d else "cor") for d in diag] + ["sigma"] + ["fixef"] * self.X.shape[1]
        estimates = np.concatenate([self.phi_hat, self.ml.beta])
        nvp = self.phi_hat.size
        self.parameters = {
            name: ProfileParameter(name, kind, i if i < nvp else i - nvp, float(est))
            for i, (name, kind, est) in enumerate(
                zip(parameter_names(self.ml), kinds, estimates, strict=True)
            )
        }
        # Units of (sd, cor, sigma): an SD of a random effect of column j is measured in
        # sigma / s_j (s of reterms.theta_scale), so that steps and edge tests do not depend
        # on the units of the covariates.
        scale = np.append(theta_scale(self.reterms), 1.0)
        self.units = np.where(np.array(kinds[:nvp]) == "cor", 1.0, self.ml.sigma / scale)
        self.lower = np.where(np.array(kinds[:nvp]) == "cor", -1.0, 0.0)
        self.lower[-1] = 1e-8 * self.ml.sigma
        self.upper = np.where(np.array(kinds[:nvp]) == "cor", 1.0, np.inf)
        self._warm: dict[str, list[tuple[float, np.ndarray]]] = {}
        self.n_evals = 0
        self.messages: list[str] = []

    # ------------------------------------------------------------------ the profile
    def _ml_deviance(self, phi: np.ndarray) -> float:
        """ML deviance at ``(sd, cor, sigma)`` with ``beta`` profiled out (lme4's devfun2)."""
        theta = theta_from_sdcor(self.reterms, phi)
        if theta is None:
            return np.nan
        ldl2, pwrss = self.dev.ldl2_pwrss(theta)
        sigma2 = phi[-1] ** 2
        return ldl2 + pwrss / sigma2 + self.n * (LOG_2PI + np.log(sigma2))

    def _start(self, name: str, value: float, default: np.ndarray) -> np.ndarray:
        points = self._warm.get(name)
        if not points:
            return default.copy()
        return min(points, key=lambda item: abs(item[0] - value))[1].copy()

    def deviance(self, name: str, value: float) -> float:
        """``d(psi)``: the ML deviance minimised over all parameters but ``name = value``."""
        par = self.parameters[name]
        with single_threaded_blas():
            if par.kind == "fixef":
                return self._fixef_deviance(par, value)
            w = par.index
            free = np.arange(self.phi_hat.size) != w
            start = self._start(name, value, self.phi_hat[free])
            step = np.where(
                self.upper[free] == 1.0,
                0.05,
                np.maximum(0.05 * np.abs(start), 1e-3 * self.units[free]),
            )

            def fun(x: np.ndarray) -> float:
                phi = np.empty(self.phi_hat.size)
                phi[free], phi[w] = x, value
                return self._ml_deviance(phi)

            x, f, n = _minimize(fun, start, self.lower[free], self.upper[free], step)
        self.n_evals += n
        self._warm.setdefault(name, []).append((value, x))
        return f

    def _fixef_deviance(self, par: ProfileParameter, value: float) -> float:
        dev = self.dev.with_fixed_coefficient(par.index, value)
        start = self._start(par.name, value, self.ml.theta)
        step = np.maximum(0.05 * np.abs(start), 0.02 / dev.theta_scale)
        x, f, n = _minimize(dev, start, dev.lower, np.full(start.size, np.inf), step)
        self.n_evals += n
        self._warm.setdefault(par.name, []).append((value, x))
        return f

    def zeta(self, name: str, value: float) -> float:
        """Signed square root of the deviance rise: ``sign(psi - psi_hat) sqrt(d - d_hat)``."""
        diff = self.deviance(name, value) - self.base
        if diff < -1e-6:
            self.messages.append(
                f"Profiling {name} found a deviance {-diff:.2g} below the ML fit's: the fit "
                "may not be at its optimum."
            )
        return float(np.sign(value - self.parameters[name].estimate) * np.sqrt(max(diff, 0.0)))

    # ------------------------------------------------------------------ the bounds
    def interval(self, name: str, level: float = 0.95) -> tuple[float, float]:
        """The profile-likelihood interval of one parameter at confidence ``level``."""
        z = float(norm.ppf(0.5 + level / 2.0))
        return self._bound(name, -1, z), self._bound(name, +1, z)

    @staticmethod
    def _known_bound(par: ProfileParameter, side: int) -> float | None:
        """A bound at the edge of the parameter space without search: a correlation estimated
        at +/-1 on that side, the lower bound of an SD estimated at 0."""
        if par.kind == "cor" and abs(par.estimate) >= 1.0 - 1e-10 and np.sign(par.estimate) == side:
            return float(side)
        if par.kind in ("sd", "sigma") and par.estimate <= 0.0 and side < 0:
            return 0.0
        return None

    def _scale(self, par: ProfileParameter, side: int, unit: float) -> tuple:
        """``(fwd, inv, delta, edge)``: the scale on which ``zeta`` is nearly linear, the first
        step on it and the edge of the parameter space on that side (None: none)."""
        if par.kind == "fixef":
            return (lambda x: x), (lambda t: t), float(self.ml.std_errors[par.index]), None
        if par.kind == "cor":
            return np.arctanh, np.tanh, 0.25, float(side)
        edge = 0.0 if side < 0 else None
        if par.estimate <= 0.0:
            return (lambda x: x), (lambda t: t), 0.5 * unit, edge
        return np.log, np.exp, 0.2, edge

    def _bound(self, name: str, side: int, z: float) -> float:
        """The root of ``side * zeta(psi) = z``: secant steps outwards on the parameter's scale
        to bracket it, then Brent's method (the edge of the parameter space if reached first)."""
        par = self.parameters[name]
        est = par.estimate
        unit = 1.0 if par.kind == "fixef" else float(self.units[par.index])
        known = self._known_bound(par, side)
        if known is not None:
            return known
        fwd, inv, delta, edge = self._scale(par, side, unit)
        tol = 1e-9 * delta  # on the parameter's scale: a billionth of the first step

        def excess(x: float) -> float:
            return side * self.zeta(name, x) - z

        t_hat = float(fwd(est))
        t_prev, g_prev = t_hat, -z
        t = t_hat + side * delta
        for _ in range(60):
            x = float(inv(t))
            if edge is not None and (
                abs(x - edge) < 1e-4 * max(abs(est), 1e-2 * unit) or np.sign(edge - x) != side
            ):
                g_edge = excess(edge)
                if g_edge <= 0:
                    return edge
                return float(brentq(excess, float(inv(t_prev)), edge, xtol=tol * unit, rtol=1e-10))
            g = excess(x)
            if g >= 0:
                root = brentq(lambda s: excess(float(inv(s))), t_prev, t, xtol=tol, rtol=1e-10)
                return float(inv(root))
            step = abs(t - t_prev)
            slope = (g - g_prev) / step  # rise of the excess per unit step outwards
            target = -g / slope if slope > 0 else 4.0 * step
            target = float(np.clip(target * 1.05, 0.2 * step, 4.0 * max(step, abs(t - t_hat))))
            t_prev, g_prev = t, g
            t = t + side * target
        self.messages.append(f"The profile of {name} did not reach the cutoff on one side.")
        return np.nan

    def confint(self, level: float = 0.95, which: list[str] | None = None) -> pd.DataFrame:
        """Profile intervals as a DataFrame (index: parameter names; columns lower, upper)."""
        start = time.perf_counter()
        names = list(self.parameters) if which is None else list(which)
        rows = [self.interval(name, level) for name in names]
        out = pd.DataFrame(
            rows, index=pd.Index(names, name="parameter"), columns=["lower", "upper"]
        )
        out.attrs.update(
            level=level,
            method="profile",
            ml_estimates={n: self.parameters[n].estimate for n in names},
            messages=list(dict.fromkeys(self.messages)),
            seconds=time.perf_counter() - start,
            n_evals=self.n_evals,
        )
        return out


def profile_confint(
    result: LMMResult, level: float = 0.95, which: list[str] | None = None
) -> pd.DataFrame:
    """Likelihood-profile confidence intervals, as lme4's ``confint(fit, method="profile")``.

    Parameters
    ----------
    result
        A fit. REML fits are refitted by ML first and the ML deviance is profiled, as lme4
        does, so the intervals surround the ML estimates.
    level
        Confidence level; a bound is where ``d(psi) - d(psi_hat) = chi2_1(level)``.
    which
        Parameter names to profile (see :func:`parameter_names`); all by default.

    Returns
    -------
    pd.DataFrame
        Index: ``"sd_(Intercept)|Subject"``, ``"cor_Days.(Intercept)|Subject"``, ...,
        ``"sigma"``, fixed-effect names; columns ``lower``, ``upper``. ``attrs`` holds
        ``level``, ``ml_estimates``, ``messages``, ``seconds`` and ``n_evals``.
    """
    return LikelihoodProfile(result).confint(level, which)
