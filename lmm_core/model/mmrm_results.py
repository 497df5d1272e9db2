"""Results of an MMRM fit (:mod:`lmm_core.model.mmrm`), with ``fit_lmm``'s surface.

- ``fixef``, ``vcov`` (model-based: ``(X' V^-1 X)^-1``), ``std_errors``, ``loglik``;
- ``aic`` and ``bic`` as mmrm counts them: the parameters are the covariance parameters
  ``theta`` (REML and ML alike), and BIC uses ``log(number of subjects)``;
- ``residual_covariance()``: the visits x visits covariance (a dict group -> matrix for a
  group-specific structure) and ``residual_correlation()``;
- ``fixef_table(df_method, vcov_method)``: ``"satterthwaite"`` (as mmrm: for a contrast ``l``,
  ``v = l' C(theta) l``, ``df = 2 v^2 / (g' A g)`` with ``g = dv/dtheta`` exact and ``A =
  2 H^-1`` the covariance of ``theta``, ``H`` the exact Hessian of the criterion ``-2 l``),
  ``"residual"`` (``n - p``) or ``"wald"`` (normal) with the model-based covariance are
  computed here; ``"kenward-roger"``, ``"kenward-roger-linear"``, ``"between-within"`` and
  the empirical covariances ``vcov_method="CR0" | "CR2" | "CR3"`` (with their own
  Satterthwaite df) come from :mod:`lmm_core.inference.mmrm_fixef`, which installs itself
  with :func:`register_mmrm_inference` when imported (the inference stage imports this
  module, never the reverse).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from lmm_core.design.build import Design
from lmm_core.errors import LMMError
from lmm_core.model.mmrm import MMRMCriterion, MMRMOptimum
from lmm_core.model.results import FIXEF_COLUMNS

DF_METHODS = (
    "satterthwaite",
    "kenward-roger",
    "kenward-roger-linear",
    "between-within",
    "residual",
    "wald",
)
VCOV_METHODS = ("model", "CR0", "CR2", "CR3")
_LOCAL = ("satterthwaite", "residual", "wald")  # with vcov_method="model": computed here

#: ``(result, df method, vcov method) -> (covariance of beta, df per coefficient)``.
MMRMInference = Callable[["MMRMResult", str, str], tuple[np.ndarray, np.ndarray]]
_MMRM_INFERENCE: list[MMRMInference] = []


def register_mmrm_inference(function: MMRMInference) -> MMRMInference:
    """Install the function behind :meth:`MMRMResult.fixef_table`'s Kenward-Roger,
    between-within and empirical methods (:mod:`lmm_core.inference.mmrm_fixef` registers
    itself when imported, so that this module never imports the inference stage)."""
    _MMRM_INFERENCE[:] = [function]
    return function


def _inference() -> MMRMInference:
    if not _MMRM_INFERENCE:
        raise RuntimeError(
            "Kenward-Roger, between-within and empirical covariances of an MMRM need "
            "lmm_core.inference.mmrm_fixef: import lmm_core (or that module) first."
        )
    return _MMRM_INFERENCE[0]


@dataclass(eq=False)
class MMRMResult:
    """A fitted MMRM (no random effects, a structured covariance of the visits)."""

    formula: str
    design: Design
    reml: bool
    opt: MMRMOptimum
    criterion: MMRMCriterion = field(repr=False)
    messages: tuple[str, ...] = ()
    #: What inference derives from the fit (Kenward-Roger pieces, sandwiches), on first use.
    derived: dict[str, Any] = field(default_factory=dict, repr=False)

    # ---------------------------------------------------------------- estimates
    @cached_property
    def _at_optimum(self):
        return self.criterion.evaluate(self.opt.theta)

    @property
    def theta(self) -> np.ndarray:
        """Covariance parameters (unit-free parametrization of
        :mod:`lmm_core.design.residual_structures`)."""
        return self.opt.theta.copy()

    @property
    def beta(self) -> np.ndarray:
        return self._at_optimum.beta.copy()

    @property
    def x_names(self) -> list[str]:
        return list(self.design.x_names)

    @property
    def fixef(self) -> pd.Series:
        return pd.Series(self.beta, index=self.x_names, name="estimate")

    @cached_property
    def vcov_beta(self) -> np.ndarray:
        """Model-based covariance of the fixed effects, ``(X' V^-1 X)^-1``."""
        return np.linalg.inv(self._at_optimum.xtvx)

    @property
    def vcov(self) -> pd.DataFrame:
        return pd.DataFrame(self.vcov_beta, index=self.x_names, columns=self.x_names)

    @property
    def std_errors(self) -> np.ndarray:
        return np.sqrt(np.diag(self.vcov_beta))

    # ---------------------------------------------------------------- likelihood
    @property
    def objective(self) -> float:
        """``-2`` times the REML (or ML) log-likelihood."""
        return float(self.opt.objective)

    @property
    def loglik(self) -> float:
        return -0.5 * self.objective

    @property
    def nobs(self) -> int:
        return self.design.n

    @property
    def n_subjects(self) -> int:
        assert self.design.residual is not None
        return self.design.residual.n_subjects

    @property
    def npar(self) -> int:
        """Parameters counted by AIC/BIC as mmrm counts them: the covariance parameters
        ``theta`` only (REML and ML)."""
        return len(self.opt.theta)

    @property
    def aic(self) -> float:
        return self.objective + 2.0 * self.npar

    @property
    def bic(self) -> float:
        return self.objective + self.npar * float(np.log(self.n_subjects))

    @property
    def converged(self) -> bool:
        return self.opt.converged

    @property
    def is_singular(self) -> bool:
        return False

    @property
    def response(self) -> str:
        return self.design.response

    # ---------------------------------------------------------------- covariance
    def residual_covariance(self) -> pd.DataFrame | dict[str, pd.DataFrame]:
        """The estimated covariance of the visits (visits x visits), or for a group-specific
        structure a dict group label -> matrix. For ``sp_exp`` the rows and columns are the
        distinct observed times, sorted (labels as the numbers print):
        ``sigma^2 rho^|t_j - t_k|``, ``rho`` per unit of the time column
        (``design.residual.structure.rho(theta)``)."""
        res = self.design.residual
        assert res is not None
        frames = [
            pd.DataFrame(m, index=list(res.visits), columns=list(res.visits))
            for m in res.matrices(self.opt.theta)
        ]
        if res.spec.group is None:
            return frames[0]
        return dict(zip(res.groups, frames, strict=True))

    def residual_correlation(self) -> pd.DataFrame | dict[str, pd.DataFrame]:
        """The correlation between visits implied by :meth:`residual_covariance`."""
        cov = self.residual_covariance()

        def corr(frame: pd.DataFrame) -> pd.DataFrame:
            sd = np.sqrt(np.diag(frame.to_numpy()))
            return frame / np.outer(sd, sd)

        return corr(cov) if isinstance(cov, pd.DataFrame) else {g: corr(c) for g, c in cov.items()}

    # ---------------------------------------------------------------- inference
    @cached_property
    def theta_vcov(self) -> np.ndarray:
        """Covariance of ``theta``: ``2 H^-1`` (``H``: Hessian of ``-2 l`` at the optimum)."""
        return 2.0 * np.linalg.pinv(self.opt.hessian)

    @cached_property
    def _vcov_jacobian(self) -> np.ndarray:
        """``dC/dtheta_k = C P_k C`` for every ``k``: ``(k, p, p)``, with ``P_k =
        -d(X'V^-1X)/dtheta_k`` exact (:mod:`lmm_core.model.mmrm_hessian`)."""
        p_mats = self.criterion.second_order(self.opt.theta)[1]
        return self.vcov_beta @ p_mats @ self.vcov_beta

    def satterthwaite_df(self, contrast: np.ndarray) -> float:
        """Satterthwaite df of ``l' beta`` for one contrast row ``l``."""
        v = float(contrast @ self.vcov_beta @ contrast)
        g = np.einsum("a,kab,b->k", contrast, self._vcov_jacobian, contrast)
        denom = float(g @ self.theta_vcov @ g)
        return 2.0 * v**2 / denom if denom > 0 else float("inf")

    def vcov_sandwich(self, kind: str = "CR0") -> pd.DataFrame:
        """Empirical covariance of the fixed effects: ``"CR0"`` (sandwich), ``"CR2"``
        (bias-reduced) or ``"CR3"`` (jackknife), as mmrm's Empirical* covariances
        (:mod:`lmm_core.inference.mmrm_sandwich`)."""
        kind = _vcov_method(kind)
        if kind == "model":
            return self.vcov
        vcov, _ = _inference()(self, "wald", kind)
        return pd.DataFrame(vcov, index=self.x_names, columns=self.x_names)

    def fixef_table(
        self,
        df_method: str = "satterthwaite",
        level: float = 0.95,
        vcov_method: str = "model",
    ) -> pd.DataFrame:
        """Estimates, standard errors, df, t and p values and confidence intervals.

        ``df_method``: ``"satterthwaite"``, ``"kenward-roger"`` (adjusted covariance),
        ``"kenward-roger-linear"``, ``"between-within"``, ``"residual"`` or ``"wald"``;
        ``vcov_method``: ``"model"`` or an empirical ``"CR0"``, ``"CR2"``, ``"CR3"`` (then
        Satterthwaite's df is the empirical one, as mmrm's). Kenward-Roger defines its own
        covariance and takes ``vcov_method="model"`` only.
        """
        method = str(df_method).lower()
        if method not in DF_METHODS:
            raise LMMError(
                f"Unknown degrees-of-freedom method {df_method!r} for this model; choose one of "
                f"{', '.join(DF_METHODS)}."
            )
        kind = _vcov_method(vcov_method)
        if method.startswith("kenward") and kind != "model":
            raise LMMError(
                "Kenward-Roger adjusts the model-based covariance; use vcov_method='model' with "
                "it, or Satterthwaite's df with an empirical covariance."
            )
        se, df = self._errors_and_df(method, kind)
        table = pd.DataFrame(index=pd.Index(self.x_names, name="term"), columns=FIXEF_COLUMNS)
        table["estimate"] = self.beta
        table["std_error"] = se
        table["df"] = df
        table["t_value"] = self.beta / se
        table["p_value"] = 2.0 * stats.t.sf(np.abs(table["t_value"].to_numpy(float)), df)
        q = stats.t.ppf(0.5 + level / 2.0, df)
        table["ci_lower"] = self.beta - q * se
        table["ci_upper"] = self.beta + q * se
        return table.astype(float)

    def _errors_and_df(self, method: str, kind: str) -> tuple[np.ndarray, np.ndarray]:
        """Standard errors and df of the coefficients for validated ``method`` and ``kind``."""
        if kind == "model" and method in _LOCAL:
            se = self.std_errors
            if method == "satterthwaite":
                df = np.array([self.satterthwaite_df(row) for row in np.eye(len(se))])
            elif method == "residual":
                df = np.full(len(se), float(self.nobs - len(se)))
            else:
                df = np.full(len(se), np.inf)
            return se, df
        vcov, df = _inference()(self, method, kind)
        return np.sqrt(np.diag(vcov)), df

    def predict(self, newdata: pd.DataFrame | None = None, include_re: bool = False) -> np.ndarray:
        """Population predictions ``X beta`` (an MMRM has no random effects)."""
        X = self.design.X if newdata is None else self.design.fixed_matrix(newdata)
        return X @ self.beta


def _vcov_method(name: str) -> str:
    for known in VCOV_METHODS:
        if str(name).lower() == known.lower():
            return known
    raise LMMError(
        f"Unknown covariance of the fixed effects {name!r}; choose one of "
        f"{', '.join(VCOV_METHODS)}."
    )
