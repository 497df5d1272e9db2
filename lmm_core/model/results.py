"""The result of a fit: an immutable, picklable record with lme4's accessors.

Names follow lme4 so that users coming from R recognise every number: ``fixef``, ``vcov``,
``ranef`` (conditional modes), ``sigma``, ``theta``, ``varcorr_table()`` (as
``as.data.frame(VarCorr(fit))``), ``objective`` (``REMLcrit()`` or ``deviance()``),
``loglik``, ``aic``, ``bic``.

Log-likelihood of a fit: ``-objective / 2``; for a REML fit that is the REML
log-likelihood, as lme4's ``logLik()`` reports. ``AIC = -2 logLik + 2 k`` and
``BIC = -2 logLik + k log(n)`` with ``k = p + len(theta) + 1`` parameters.

The result is built complete, once (:func:`lmm_core.model.fit.result_at_theta`) and never
changed. It sits below the inference stage and does not import it: the tests with degrees of
freedom behind :meth:`LMMResult.fixef_table` are the function that
:mod:`lmm_core.inference.fixed_effects` installs with :func:`register_fixef_inference` when it
is imported (``import lmm_core`` does). What inference derives from a fit (Satterthwaite's
derivatives, the Kenward-Roger adjustment, fixed-effects tables) is kept in the result's
:class:`DerivedCache`, computed on first use.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from lmm_core.design.reterms import term_factors, theta_scale
from lmm_core.model.optimize import OptSummary
from lmm_core.model.summary import format_summary

FIXEF_COLUMNS = ["estimate", "std_error", "df", "t_value", "p_value", "ci_lower", "ci_upper"]

T = TypeVar("T")


class DerivedCache:
    """Values derived from a fitted model on first use, kept with it (picklable).

    Not part of the result's identity: equality and representation ignore it. Filling it does
    not change the result; two threads computing the same key both get a correct value.
    """

    def __init__(self) -> None:
        self._values: dict[Hashable, Any] = {}

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The value under ``key``, computed by ``compute()`` the first time."""
        if key not in self._values:
            self._values[key] = compute()
        return self._values[key]

    def __contains__(self, key: Hashable) -> bool:
        return key in self._values


#: ``(result, df method, level) -> table``: installed by :func:`register_fixef_inference`.
FixefInference = Callable[["LMMResult", str, float], pd.DataFrame]
_FIXEF_INFERENCE: list[FixefInference] = []


def register_fixef_inference(function: FixefInference) -> FixefInference:
    """Install the function behind :meth:`LMMResult.fixef_table` with a df method.

    :mod:`lmm_core.inference.fixed_effects` registers its ``fixef_inference`` when imported,
    so that results, a stage below inference, never import it (no import cycle).
    """
    _FIXEF_INFERENCE[:] = [function]
    return function


def is_singular_fit(theta: np.ndarray, reterms: tuple, tol: float) -> bool:
    """lme4's ``isSingular`` in unit-free form: a variance-like parameter of ``theta`` below
    ``tol`` once expressed per unit of its column's root mean square
    (:func:`lmm_core.design.reterms.theta_scale`), so that the verdict does not depend on the
    units of the covariates (lme4's own test on raw ``theta`` does)."""
    diag = np.concatenate([t.structure.is_variance for t in reterms])
    phi = theta * theta_scale(reterms)
    return bool(np.any(np.abs(phi[diag]) < tol))


VARCORR_COLUMNS = ["group", "var1", "var2", "vcov", "sdcor"]


def term_labels(reterms: tuple) -> list[str]:
    """lme4's VarCorr names: repeated group names get ``.1``, ``.2``, ... suffixes."""
    seen: dict[str, int] = {}
    labels = []
    for t in reterms:
        k = seen.get(t.group, 0)
        labels.append(t.group if k == 0 else f"{t.group}.{k}")
        seen[t.group] = k + 1
    return labels


def varcorr_rows(reterms: tuple, covariances: list[np.ndarray]) -> list[tuple]:
    """Rows of ``as.data.frame(VarCorr(fit))`` for the random-effects terms: per term its
    variances (``sdcor`` the SD), then the covariances its structure estimates (``sdcor`` the
    correlation); columns :data:`VARCORR_COLUMNS`."""
    rows: list[tuple] = []
    for label, t, cov in zip(term_labels(reterms), reterms, covariances, strict=True):
        sd = np.sqrt(np.diag(cov))
        for i, name in enumerate(t.cnames):
            rows.append((label, name, None, cov[i, i], sd[i]))
        for i, j in zip(*t.structure.covariance_pairs(), strict=True):
            denom = sd[i] * sd[j]
            corr = cov[i, j] / denom if denom > 0 else np.nan
            rows.append((label, t.cnames[j], t.cnames[i], cov[i, j], corr))
    return rows


def by_group(reterms: tuple, arrays: list[np.ndarray]) -> dict[str, pd.DataFrame]:
    """Per-term arrays (levels x columns) as one DataFrame per grouping factor (terms of one
    factor side by side), indexed by the factor's levels."""
    out: dict[str, pd.DataFrame] = {}
    for t, values in zip(reterms, arrays, strict=True):
        frame = pd.DataFrame(values, index=pd.Index(t.levels, name=t.group), columns=list(t.cnames))
        out[t.group] = frame if t.group not in out else out[t.group].join(frame)
    return out


def conditional_sds(cond_cov: list[np.ndarray]) -> list[np.ndarray]:
    """Square roots of the diagonals of per-level conditional covariances."""
    return [np.sqrt(np.diagonal(c, axis1=1, axis2=2)) for c in cond_cov]


@dataclass(frozen=True)
class LMMResult:
    """A fitted linear mixed model.

    Attributes
    ----------
    formula, reml
        What was fitted, and how.
    theta
        Relative covariance parameters, lme4's order (terms by decreasing number of levels,
        each term's lower triangle column-major).
    beta, vcov_beta
        Fixed effects and their covariance ``sigma^2 (L_X L_X')^{-1}``.
    sigma
        Residual standard deviation.
    objective
        REML criterion (``reml=True``) or ML deviance at the optimum.
    b, cond_cov
        Per random-effects term: conditional modes ``(levels, S)`` and conditional covariance
        blocks ``(levels, S, S)``.
    design
        The :class:`lmm_core.design.build.Design` the fit was computed on (rows, recipes for
        new data).
    opt
        The optimization record.
    """

    formula: str
    reml: bool
    theta: np.ndarray
    beta: np.ndarray
    vcov_beta: np.ndarray
    sigma: float
    objective: float
    ldl2: float
    ldrx2: float
    pwrss: float
    b: tuple[np.ndarray, ...]
    cond_cov: tuple[np.ndarray, ...]
    fitted: np.ndarray
    residuals: np.ndarray
    design: object = field(repr=False)
    opt: OptSummary = field(repr=False)
    messages: tuple[str, ...] = ()
    singular_tol: float = 1e-4
    #: what inference derives from the fit (df derivatives, tables), filled on first use
    derived: DerivedCache = field(
        default_factory=DerivedCache, init=False, repr=False, compare=False, hash=False
    )

    # ---------------------------------------------------------------- sizes and names
    @property
    def reterms(self) -> tuple:
        return self.design.reterms

    @property
    def x_names(self) -> list[str]:
        return list(self.design.x_names)

    @property
    def nobs(self) -> int:
        return int(self.design.y.shape[0])

    @property
    def ngroups(self) -> dict[str, int]:
        return {t.group: t.n_levels for t in self.reterms}

    @property
    def npar(self) -> int:
        """Number of parameters: fixed effects, ``theta`` and ``sigma``."""
        return len(self.beta) + len(self.theta) + 1

    @property
    def response(self) -> str:
        return self.design.response

    @property
    def y(self) -> np.ndarray:
        return self.design.y

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

    def fixef_table(
        self, df_method: str | None = "satterthwaite", level: float = 0.95
    ) -> pd.DataFrame:
        """Estimates, standard errors, df, t and p values and confidence intervals.

        Parameters
        ----------
        df_method
            ``"satterthwaite"`` (default, as lmerTest), ``"kenward-roger"`` (adjusted
            standard errors; slower) or ``"wald"`` (normal, ``df = inf``); ``None`` leaves
            ``df``, ``p_value`` and the interval empty (NaN). See
            :func:`lmm_core.inference.fixed_effects.fixef_inference`, which computes the table
            (once per method and level: later calls return a copy of the first).
        level
            Confidence level of ``ci_lower``/``ci_upper``.
        """
        if df_method is not None:
            if not _FIXEF_INFERENCE:
                raise RuntimeError(
                    "Tests of the fixed effects need lmm_core.inference.fixed_effects: import "
                    "lmm_core (or that module) first."
                )
            return _FIXEF_INFERENCE[0](self, df_method, level)
        se = self.std_errors
        table = pd.DataFrame(
            index=pd.Index(self.x_names, name="term"), columns=FIXEF_COLUMNS, dtype=float
        )
        table["estimate"] = self.beta
        table["std_error"] = se
        with np.errstate(divide="ignore", invalid="ignore"):
            table["t_value"] = self.beta / se
        return table

    # ---------------------------------------------------------------- variance components
    @property
    def lambdas(self) -> list[np.ndarray]:
        """Each term's relative covariance factor ``lambda_k`` (its structure at ``theta``)."""
        return term_factors(self.reterms, self.theta)

    def covariance_matrices(self) -> list[np.ndarray]:
        """``sigma^2 lambda lambda'`` per term: the random effects' covariance matrix."""
        return [self.sigma**2 * (lam @ lam.T) for lam in self.lambdas]

    def varcorr_table(self) -> pd.DataFrame:
        """Variance components like lme4's ``as.data.frame(VarCorr(fit))``.

        One row per variance (``var2`` None, ``sdcor`` the SD) then per covariance of each
        term that its structure estimates (``sdcor`` the correlation), the residual last as
        group ``"Residual"``.
        """
        rows = varcorr_rows(self.reterms, self.covariance_matrices())
        rows.append(("Residual", None, None, self.sigma**2, self.sigma))
        return pd.DataFrame(rows, columns=VARCORR_COLUMNS)

    # ---------------------------------------------------------------- random effects
    @property
    def ranef(self) -> dict[str, pd.DataFrame]:
        """Conditional modes of the random effects, one DataFrame per grouping factor."""
        return by_group(self.reterms, list(self.b))

    @property
    def ranef_sd(self) -> dict[str, pd.DataFrame]:
        """Conditional standard deviations of the random effects (lme4 ``condVar``)."""
        return by_group(self.reterms, conditional_sds(self.cond_cov))

    # ---------------------------------------------------------------- fit criteria
    @property
    def loglik(self) -> float:
        return -0.5 * self.objective

    @property
    def aic(self) -> float:
        return self.objective + 2.0 * self.npar

    @property
    def bic(self) -> float:
        return self.objective + self.npar * np.log(self.nobs)

    @property
    def is_singular(self) -> bool:
        """Whether an estimate lies on the boundary (:func:`is_singular_fit` with
        ``singular_tol``)."""
        return is_singular_fit(self.theta, self.reterms, self.singular_tol)

    @property
    def converged(self) -> bool:
        return self.opt.converged

    # ---------------------------------------------------------------- prediction
    def predict(self, newdata: pd.DataFrame | None = None, include_re: bool = True) -> np.ndarray:
        """Predictions on ``newdata`` (the fitted rows if omitted).

        ``X beta`` plus, when ``include_re``, ``z' b`` of each term for levels seen in the fit;
        a level not seen in the fit (a new patient) contributes 0, so it gets the
        population-level prediction. The ``offset()`` terms are added, as lme4's ``predict``
        (``fitted`` and the residuals are those of ``y - offset``). Rows with a missing
        covariate give NaN.
        """
        design = self.design
        if newdata is None:
            pred = self.fitted.copy() if include_re else design.X @ self.beta
            return pred if design.folded_offset is None else pred + design.folded_offset
        pred = design.fixed_matrix(newdata) @ self.beta
        if design.has_offset:
            pred = pred + design.offset_values(newdata)
        if include_re:
            for k, b in enumerate(self.b):
                codes, z = design.random_matrix(k, newdata)
                known = codes >= 0
                contrib = np.zeros(len(pred))
                contrib[known] = np.einsum("ij,ij->i", z[known], b[codes[known]])
                pred = pred + contrib
        return pred

    # ---------------------------------------------------------------- printing
    def summary_text(self) -> str:
        """A printed summary in the layout of lme4's ``summary(fit)``."""
        return format_summary(self)

    def __str__(self) -> str:
        return self.summary_text()
