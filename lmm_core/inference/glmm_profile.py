"""Likelihood-profile confidence intervals for a GLMM, as ``confint(glmer, method="profile")``.

The parameters are those lme4 profiles for a GLMM: per random-effects term the standard
deviations ``sd_k`` and correlations ``cor_kl`` of the random effects (no residual scale: the
binomial and Poisson scale is 1, so ``theta`` of a term is the lower Cholesky factor of
``D R D``, ``D = diag(sd)``, ``R`` the correlations), then the fixed effects ``beta_j``. For one
parameter ``psi`` with all the others re-optimized,

    d(psi)    = min over the other parameters of -2 log L   (Laplace or the fit's quadrature),
    zeta(psi) = sign(psi - psi_hat) * sqrt(d(psi) - d(psi_hat)),

and the level-``1 - alpha`` interval is ``{psi : |zeta(psi)| <= z_{1 - alpha/2}}``. The bounds
are found as for a linear mixed model (:class:`lmm_core.inference.profile.LikelihoodProfile`,
whose root search this class inherits: secant steps on a scale where ``zeta`` is nearly linear,
then Brent's method; an SD whose profile stays under the cutoff down to 0 gets the bound 0).
Unlike a linear mixed model nothing can be profiled out analytically: each ``d(psi)`` is a
BOBYQA minimisation over ``(sd, cor)`` and ``beta`` (:func:`lmm_core.glmm.refit.minimise`),
in unit-free coordinates (an SD times the scale of its covariate, ``beta`` in units of its
standard error), warm-started from the nearest point already profiled.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lmm_core.design.reterms import theta_scale
from lmm_core.glmm.refit import criterion_for, minimise, minus2_loglik
from lmm_core.glmm.results import GLMMResult, register_profile
from lmm_core.inference.profile import (
    LikelihoodProfile,
    ProfileParameter,
    sdcor_from_theta,
    theta_from_sdcor,
)
from lmm_core.model.linalg import single_threaded_blas


def glmm_parameter_names(result: GLMMResult) -> list[str]:
    """lme4's readable names: ``"sd_(Intercept)|herd"``, ``"cor_time.(Intercept)|patient"``,
    ..., then the fixed effects (no ``sigma``; a repeated name gets ``.1``, ``.2``)."""
    names = [n for t in result.reterms for n in t.structure.sdcor_names(t.group, t.cnames)]
    seen: dict[str, int] = {}
    unique = []
    for n in names:
        k = seen.get(n, 0)
        unique.append(n if k == 0 else f"{n}.{k}")
        seen[n] = k + 1
    return unique + list(result.x_names)


def glmm_sdcor(reterms, theta: np.ndarray) -> np.ndarray:
    """SDs and correlations of the random effects (scale 1), in ``theta``'s order."""
    return sdcor_from_theta(reterms, theta, 1.0)[:-1]


class GLMMProfile(LikelihoodProfile):
    """The profiled ``-2 log L`` of a GLMM fit, one parameter at a time (module docstring).

    Parameters
    ----------
    result
        A GLMM fit; profiles use its ``nagq``.

    Attributes
    ----------
    ml, parameters, base, n_evals
        As :class:`~lmm_core.inference.profile.LikelihoodProfile`: the fit, the profiled
        parameters with their estimates, the minimum ``-2 log L`` and evaluations so far.
    """

    def __init__(self, result: GLMMResult):  # noqa: D107  (the class docstring)
        if not isinstance(result, GLMMResult):
            raise TypeError("GLMMProfile needs a GLMM fit (fit_glmm).")
        self.ml = result
        self.reterms = result.reterms
        self.crit = criterion_for(result)
        self.base = float(result.objective)
        self.phi_hat = glmm_sdcor(self.reterms, result.theta)
        nvp = self.phi_hat.size
        is_var = np.concatenate([t.structure.is_variance for t in self.reterms])
        kinds = [("sd" if v else "cor") for v in is_var] + ["fixef"] * result.beta.size
        estimates = np.concatenate([self.phi_hat, result.beta])
        self.parameters = {
            name: ProfileParameter(name, kind, i if i < nvp else i - nvp, float(est))
            for i, (name, kind, est) in enumerate(
                zip(glmm_parameter_names(result), kinds, estimates, strict=True)
            )
        }
        cor = ~is_var
        # unit-free coordinates z: sd * s (s of theta_scale), cor, (beta - beta_hat) / se
        self.units = np.where(cor, 1.0, 1.0 / theta_scale(self.reterms))
        self.se = np.where(result.std_errors > 0, result.std_errors, 1.0)
        nb = result.beta.size
        self.z_lower = np.concatenate([np.where(cor, -1.0, 0.0), np.full(nb, -np.inf)])
        self.z_upper = np.concatenate([np.where(cor, 1.0, np.inf), np.full(nb, np.inf)])
        self.z_step = np.concatenate([np.where(cor, 0.05, 0.1), np.full(nb, 0.25)])
        self.z_hat = np.concatenate([self.phi_hat / self.units, np.zeros(nb)])
        self._warm: dict[str, list[tuple[float, np.ndarray]]] = {}
        self.n_evals = 0
        self.messages: list[str] = []

    def _minus2(self, z: np.ndarray) -> float:
        """``-2 log L`` at unit-free coordinates ``z`` (NaN for an impossible correlation)."""
        nvp = self.phi_hat.size
        theta = theta_from_sdcor(self.reterms, np.append(z[:nvp] * self.units, 1.0))
        if theta is None:
            return np.nan
        beta = self.ml.beta + self.se * z[nvp:]
        return minus2_loglik(self.crit, self.ml.nagq, theta, beta)

    def deviance(self, name: str, value: float) -> float:
        """``d(psi)``: ``-2 log L`` minimised over all parameters but ``name = value``."""
        par = self.parameters[name]
        nvp = self.phi_hat.size
        if par.kind == "fixef":
            k = nvp + par.index
            fixed = (value - self.ml.beta[par.index]) / self.se[par.index]
        else:
            k = par.index
            fixed = value / self.units[k]
        free = np.arange(self.z_hat.size) != k
        start = self._start(name, value, self.z_hat[free])

        def fun(x: np.ndarray) -> float:
            z = np.empty(self.z_hat.size)
            z[free], z[k] = x, fixed
            return self._minus2(z)

        with single_threaded_blas():
            x, f, n, _ = minimise(
                fun, start, self.z_lower[free], self.z_upper[free], self.z_step[free]
            )
        self.n_evals += n
        self._warm.setdefault(name, []).append((value, x))
        return f


@register_profile
def glmm_profile_confint(
    result: GLMMResult, level: float = 0.95, which: list[str] | None = None
) -> pd.DataFrame:
    """Likelihood-profile confidence intervals of a GLMM, as lme4's
    ``confint(glmer_fit, method = "profile")``.

    Parameters
    ----------
    result
        A GLMM fit (Laplace or quadrature: the profile uses the fit's criterion).
    level
        Confidence level; a bound is where ``d(psi) - d(psi_hat) = chi2_1(level)``.
    which
        Parameter names (:func:`glmm_parameter_names`); all by default.

    Returns
    -------
    pd.DataFrame
        Index: ``"sd_(Intercept)|herd"``, ..., fixed-effect names; columns ``lower``,
        ``upper``; ``attrs`` as :meth:`LikelihoodProfile.confint`.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, not {level!r}")
    return GLMMProfile(result).confint(level, which)


__all__ = ["GLMMProfile", "glmm_parameter_names", "glmm_profile_confint", "glmm_sdcor"]
