"""The result of a GLMM fit, with the accessors of :class:`lmm_core.model.results.LMMResult`.

Names follow lme4: ``fixef``, ``vcov``, ``ranef`` (conditional modes), ``varcorr_table()``
(``as.data.frame(VarCorr(fit))``; no residual row: the binomial and Poisson scale is fixed
at 1), ``loglik``, ``aic``, ``bic``. Two deviances, both reported by glmer under that name:

* ``objective``: ``-2 log L`` with every constant (``summary(fit)``'s "deviance" for a
  Laplace fit; for ``nagq > 1`` lme4 1.1 leaves out the saturated log-likelihood, we do not);
* ``deviance``: ``deviance(fit)``, the sum of the squared deviance residuals at the
  conditional modes.

``AIC = -2 log L + 2 k`` and ``BIC = -2 log L + k log(n)`` with ``k = p + len(theta)``.
Tests of the fixed effects are Wald ``z`` tests (``z = estimate / SE``, ``p = 2 Phi(-|z|)``,
interval ``estimate +- z_{1 - alpha/2} SE``), as ``summary(glmer)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import norm

from lmm_core.design.reterms import term_factors
from lmm_core.errors import DataError
from lmm_core.glmm.family import Family
from lmm_core.glmm.pirls import GLMMCriterion, PIRLSState
from lmm_core.glmm.response import GLMMData
from lmm_core.glmm.simulate import simulate_glmm
from lmm_core.model.results import (
    VARCORR_COLUMNS,
    by_group,
    conditional_sds,
    is_singular_fit,
    varcorr_rows,
)

FIXEF_COLUMNS = ["estimate", "std_error", "z_value", "p_value", "ci_lower", "ci_upper"]

#: profile intervals of a GLMM, registered by lmm_core.inference.glmm_profile (a later stage)
_PROFILE: list = []


def register_profile(function):
    """Register ``function(result, level, which) -> DataFrame`` (lower/upper per parameter) as
    the profile intervals :meth:`GLMMResult.fixef_table` uses with ``ci="profile"``."""
    _PROFILE[:] = [function]
    return function


def _profile_confint(result, level: float, which: list[str]) -> pd.DataFrame:
    if not _PROFILE:
        raise RuntimeError(
            "Profile intervals need lmm_core.inference.glmm_profile: import lmm_core first."
        )
    return _PROFILE[0](result, level, which)


def conditional_effects(crit: GLMMCriterion, state: PIRLSState):
    """Conditional modes ``b = Lambda u~`` and their conditional covariances
    ``lambda A_ZZ^-1 lambda'`` per level (lme4's ``condVar``), one array per original term."""
    sys = crit.system
    covs_u = state.factor.inverse_diag_blocks(sys.sizes)
    lams = sys.lambdas(state.theta)
    b_out: list = [None] * len(crit.reterms)
    c_out: list = [None] * len(crit.reterms)
    start = 0
    for term, lam, cov_u, pieces in zip(sys.merged, lams, covs_u, sys.parts, strict=True):
        m, s = term.n_levels, term.n_columns
        u = state.u[start : start + m * s].reshape(m, s)
        b = u @ lam.T
        cov = np.einsum("st,itu,vu->isv", lam, cov_u, lam)
        for k, cols in pieces:
            b_out[k] = b[:, cols]
            c_out[k] = cov[:, cols, cols]
        start += m * s
    return tuple(b_out), tuple(c_out)


@dataclass(frozen=True)
class GLMMResult:
    """A fitted generalized linear mixed model (see the module docstring).

    Attributes
    ----------
    formula, family, nagq
        What was fitted: formula, response distribution with its link, quadrature points.
    theta, beta, vcov_beta
        Relative covariance parameters (lme4's order), fixed effects and their covariance.
    loglik
        Log-likelihood with all constants (Laplace or quadrature).
    deviance, lme4_deviance
        ``sum d_i`` at the modes (glmer's ``deviance()``) and lme4's Laplace criterion
        ``sum d_i + ||u||^2 + log |L_Z|^2`` there.
    b, cond_cov
        Per term: conditional modes ``(levels, S)`` and covariances ``(levels, S, S)``.
    eta
        Linear predictor at the modes (with the offset), on the rows used.
    data
        The evaluated model (design, response, weights, offset).
    """

    formula: str
    family: Family
    nagq: int
    theta: np.ndarray
    beta: np.ndarray
    vcov_beta: np.ndarray
    loglik: float
    deviance: float
    lme4_deviance: float
    b: tuple[np.ndarray, ...]
    cond_cov: tuple[np.ndarray, ...]
    eta: np.ndarray
    data: GLMMData = field(repr=False)
    converged: bool = True
    n_evals: int = 0
    seconds: float = 0.0
    messages: tuple[str, ...] = ()
    singular_tol: float = 1e-4

    # ---------------------------------------------------------------- sizes and names
    @property
    def design(self):
        return self.data.design

    @property
    def reterms(self) -> tuple:
        return self.design.reterms

    @property
    def x_names(self) -> list[str]:
        return list(self.design.x_names)

    @property
    def nobs(self) -> int:
        return int(self.data.y.shape[0])

    @property
    def y(self) -> np.ndarray:
        """The response on the rows used (proportions of the trials, or counts)."""
        return self.data.y

    @property
    def ngroups(self) -> dict[str, int]:
        return {t.group: t.n_levels for t in self.reterms}

    @property
    def npar(self) -> int:
        """Number of parameters: fixed effects and ``theta`` (no residual scale)."""
        return len(self.beta) + len(self.theta)

    @property
    def response(self) -> str:
        return self.data.response_label

    @property
    def link(self) -> str:
        return self.family.link.name

    # ---------------------------------------------------------------- fixed effects
    @property
    def fixef(self) -> pd.Series:
        return pd.Series(self.beta, index=self.x_names, name="estimate")

    @property
    def vcov(self) -> pd.DataFrame:
        return pd.DataFrame(self.vcov_beta, index=self.x_names, columns=self.x_names)

    @property
    def std_errors(self) -> np.ndarray:
        return np.sqrt(np.diag(self.vcov_beta))

    def fixef_table(self, level: float = 0.95, ci: str = "wald") -> pd.DataFrame:
        """Estimates, standard errors, Wald ``z`` and ``p``, and intervals at ``level``:
        Wald (``estimate +- z SE``) or, with ``ci="profile"``, likelihood-profile intervals
        as ``confint(fit, method = "profile")`` (:mod:`lmm_core.inference.glmm_profile`,
        registered when :mod:`lmm_core` is imported)."""
        if not 0 < level < 1:
            raise DataError(f"The confidence level must be between 0 and 1, not {level!r}.")
        if ci not in ("wald", "profile"):
            raise DataError(f"ci must be 'wald' or 'profile', not {ci!r}.")
        se = self.std_errors
        z = self.beta / se
        q = norm.ppf(0.5 + level / 2)
        table = pd.DataFrame(index=pd.Index(self.x_names, name="term"), columns=FIXEF_COLUMNS)
        table["estimate"] = self.beta
        table["std_error"] = se
        table["z_value"] = z
        table["p_value"] = 2 * norm.sf(np.abs(z))
        table["ci_lower"] = self.beta - q * se
        table["ci_upper"] = self.beta + q * se
        if ci == "profile":
            bounds = _profile_confint(self, level, self.x_names)
            table["ci_lower"] = bounds.loc[self.x_names, "lower"].to_numpy()
            table["ci_upper"] = bounds.loc[self.x_names, "upper"].to_numpy()
        return table.astype(float)

    # ---------------------------------------------------------------- variance components
    @property
    def lambdas(self) -> list[np.ndarray]:
        return term_factors(self.reterms, self.theta)

    def covariance_matrices(self) -> list[np.ndarray]:
        """``lambda lambda'`` per term: the random effects' covariance matrix (scale 1)."""
        return [lam @ lam.T for lam in self.lambdas]

    def varcorr_table(self) -> pd.DataFrame:
        """Variance components as ``as.data.frame(VarCorr(fit))``: variances (``sdcor`` the
        SD), then covariances (``sdcor`` the correlation); no residual row."""
        return pd.DataFrame(
            varcorr_rows(self.reterms, self.covariance_matrices()), columns=VARCORR_COLUMNS
        )

    # ---------------------------------------------------------------- random effects
    @property
    def ranef(self) -> dict[str, pd.DataFrame]:
        """Conditional modes of the random effects (link scale), one table per group."""
        return by_group(self.reterms, list(self.b))

    @property
    def ranef_sd(self) -> dict[str, pd.DataFrame]:
        """Conditional standard deviations of the random effects (lme4's ``condVar``)."""
        return by_group(self.reterms, conditional_sds(self.cond_cov))

    # ---------------------------------------------------------------- fit criteria
    @property
    def objective(self) -> float:
        """``-2 log L`` with every constant."""
        return -2.0 * self.loglik

    @property
    def aic(self) -> float:
        return self.objective + 2.0 * self.npar

    @property
    def bic(self) -> float:
        return self.objective + self.npar * np.log(self.nobs)

    @property
    def is_singular(self) -> bool:
        """Whether a variance parameter lies on its bound (unit-free test)."""
        return is_singular_fit(self.theta, self.reterms, self.singular_tol)

    @property
    def fitted(self) -> np.ndarray:
        """Fitted means ``mu`` at the conditional modes (probabilities or rates)."""
        return self.family.link.linkinv(self.eta)

    # ---------------------------------------------------------------- prediction
    def predict(
        self,
        newdata: pd.DataFrame | None = None,
        include_re: bool = True,
        scale: str = "response",
    ) -> np.ndarray:
        """Predictions on ``newdata`` (the fitted rows if omitted).

        ``eta = offset + X beta`` plus, when ``include_re``, ``z' b`` of each term for levels
        seen in the fit (a new level contributes 0: the curve of a typical group, not the
        population average); ``scale="response"`` returns ``g^-1(eta)``, ``"link"`` ``eta``.
        """
        if scale not in ("response", "link"):
            raise DataError(f"scale must be 'response' or 'link', not {scale!r}.")
        if newdata is None:
            eta = self.eta.copy()
            if not include_re:
                eta = self.data.offset + self.design.X @ self.beta
        else:
            eta = self.design.fixed_matrix(newdata) @ self.beta
            eta = eta + self.data.offset_values(newdata)
            if include_re:
                for k, b in enumerate(self.b):
                    codes, z = self.design.random_matrix(k, newdata)
                    known = codes >= 0
                    contrib = np.zeros(len(eta))
                    contrib[known] = np.einsum("ij,ij->i", z[known], b[codes[known]])
                    eta = eta + contrib
        return eta if scale == "link" else self.family.link.linkinv(eta)

    # ---------------------------------------------------------------- simulation
    def simulate(
        self,
        n_sim: int = 1,
        *,
        seed: int | np.random.Generator | None = None,
        use_u: bool = False,
    ) -> np.ndarray:
        """Responses simulated from the fit, as lme4's ``simulate()``
        (:func:`lmm_core.glmm.simulate.simulate_glmm`): ``(n_sim, n)`` proportions of the
        trials (binomial) or counts (Poisson); new random effects ``N(0, lambda lambda')``
        at each draw, or the conditional modes with ``use_u=True``."""
        return simulate_glmm(self, n_sim, seed=seed, use_u=use_u)


__all__ = ["FIXEF_COLUMNS", "GLMMResult", "conditional_effects"]
