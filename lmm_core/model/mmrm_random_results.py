"""Results of random effects plus a covariance of the visits
(:mod:`lmm_core.model.mmrm_random`): :class:`MMRMResult`'s surface plus lme4's random-effects
accessors.

- ``theta`` is the optimizer's ``psi = (theta_R, phi)``: the structure's parameters, then the
  random effects' unit-free ``phi``; ``residual_covariance()`` / ``residual_correlation()`` are
  the R-side ``Sigma`` (visits x visits), as for an MMRM;
- ``npar`` counts ``theta_R`` and the random-effects parameters (AIC and BIC as
  :class:`MMRMResult`: covariance parameters only, BIC with ``log(subjects)``);
- ``ranef``: conditional modes ``b = G Z' V^-1 (y - X beta)`` per grouping factor, in the
  layout of :attr:`LMMResult.ranef <lmm_core.model.results.LMMResult.ranef>`;
  ``varcorr_table()`` in the layout of ``as.data.frame(VarCorr(fit))``, the residual rows
  being the standard deviations of the visits;
- ``fixef_table``: ``"satterthwaite"`` (the numerical Jacobian of ``(X'V^-1X)^-1`` in ``psi``
  and ``2 H^-1``, as :class:`MMRMResult`), ``"residual"`` or ``"wald"`` with the model-based
  covariance are computed here; Kenward-Roger (and its "linear" variant), between-within and
  the cluster sandwiches ``"CR0"``, ``"CR2"``, ``"CR3"`` (clusters: the top-level grouping
  factor) come from :mod:`lmm_core.inference.mmrm_random_fixef`, which installs itself with
  :func:`register_random_inference` when imported (the inference stage imports this module,
  never the reverse).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
from scipy import stats

from lmm_core.model.mmrm_random import RandomMMRMCriterion
from lmm_core.model.mmrm_random_optimize import singular
from lmm_core.model.mmrm_results import (
    _LOCAL,
    DF_METHODS,
    MMRMInference,
    MMRMResult,
    _vcov_method,
)
from lmm_core.model.results import FIXEF_COLUMNS, VARCORR_COLUMNS, by_group, varcorr_rows

_STEP = 1e-5
_RANDOM_INFERENCE: list[MMRMInference] = []


def register_random_inference(function: MMRMInference) -> MMRMInference:
    """Install the function behind :meth:`MMRMRandomResult.fixef_table`'s Kenward-Roger,
    between-within and sandwich methods (:mod:`lmm_core.inference.mmrm_random_fixef`
    registers itself when imported)."""
    _RANDOM_INFERENCE[:] = [function]
    return function


def _inference() -> MMRMInference:
    if not _RANDOM_INFERENCE:
        raise RuntimeError(
            "Kenward-Roger, between-within and sandwich covariances of this model need "
            "lmm_core.inference.mmrm_random_fixef: import lmm_core (or that module) first."
        )
    return _RANDOM_INFERENCE[0]


@dataclass(eq=False)
class MMRMRandomResult(MMRMResult):
    """A fitted model with random effects and a covariance structure of the visits."""

    criterion: RandomMMRMCriterion  # type: ignore[assignment]

    @property
    def reterms(self) -> tuple:
        """The random-effects terms, merged by grouping factor (the order of ``theta``)."""
        return self.criterion.terms

    @property
    def is_singular(self) -> bool:
        """A standard deviation of the random effects estimated at 0 (the boundary)."""
        return singular(self.criterion, self.opt.theta)

    @property
    def ngroups(self) -> dict[str, int]:
        return {t.group: t.n_levels for t in self.reterms}

    # ---------------------------------------------------------------- random effects
    def covariance_matrices(self) -> list[np.ndarray]:
        """``G_k``: the covariance of each term's random effects (outcome units)."""
        return self.criterion.covariances(self.opt.theta)

    @property
    def ranef(self) -> dict[str, pd.DataFrame]:
        """Conditional modes of the random effects, one DataFrame per grouping factor."""
        return by_group(self.reterms, self.criterion.modes(self.opt.theta))

    def varcorr_table(self) -> pd.DataFrame:
        """Variance components like lme4's ``as.data.frame(VarCorr(fit))``: per term its
        variances and covariances (``sdcor`` the SD or the correlation), then ``"Residual"``
        rows: one (``var1`` None) when the structure has one standard deviation, else one per
        visit (``var1`` the visit; a dict group -> rows becomes one block per group, ``var2``
        the group)."""
        rows = varcorr_rows(self.reterms, self.covariance_matrices())
        rows += self._residual_rows()
        return pd.DataFrame(rows, columns=VARCORR_COLUMNS)

    def _residual_rows(self) -> list[tuple]:
        res = self.design.residual
        assert res is not None
        homogeneous = res.structure.n_sd == 1
        rows = []
        for group, sigma in zip(res.groups, res.matrices(self.opt.theta), strict=True):
            var = np.diag(sigma)
            extra = group if res.spec.group is not None else None
            if homogeneous:
                rows.append(("Residual", None, extra, var[0], np.sqrt(var[0])))
            else:
                rows += [("Residual", v, extra, var[j], np.sqrt(var[j]))
                         for j, v in enumerate(res.visits)]  # fmt: skip
        return rows

    # ---------------------------------------------------------------- inference
    @cached_property
    def _vcov_jacobian(self) -> np.ndarray:
        """``dC/dpsi_k`` of ``C = (X'V^-1X)^-1`` for every ``k``: ``(k, p, p)``, by central
        differences of step ``1e-5`` in the unit-free ``psi``."""
        psi = self.opt.theta
        out = []
        for k in range(len(psi)):
            e = np.zeros(len(psi))
            e[k] = _STEP
            up = np.linalg.inv(self.criterion.evaluate(psi + e).xtvx)
            down = np.linalg.inv(self.criterion.evaluate(psi - e).xtvx)
            out.append((up - down) / (2 * _STEP))
        return np.array(out)

    def fixef_table(
        self,
        df_method: str = "satterthwaite",
        level: float = 0.95,
        vcov_method: str = "model",
    ) -> pd.DataFrame:
        """Estimates, SEs, df, t and p values and confidence intervals: ``df_method``
        ``"satterthwaite"``, ``"kenward-roger"``, ``"kenward-roger-linear"``,
        ``"between-within"``, ``"residual"`` or ``"wald"``; ``vcov_method`` ``"model"`` or a
        cluster sandwich ``"CR0"``, ``"CR2"``, ``"CR3"`` (then Satterthwaite's df is the
        sandwich's own). Kenward-Roger takes ``vcov_method="model"`` only."""
        method = str(df_method).lower()
        kind = _vcov_method(vcov_method)
        if method not in DF_METHODS or (kind == "model" and method in _LOCAL):
            return super().fixef_table(method, level, kind)  # validates, or computes here
        if method.startswith("kenward") and kind != "model":
            return super().fixef_table(method, level, kind)  # the MMRM's message
        vcov, df = _inference()(self, method, kind)
        se = np.sqrt(np.diag(vcov))
        beta = self.beta
        t_value = beta / se
        q = stats.t.ppf(0.5 + level / 2.0, df)
        table = pd.DataFrame(
            {
                "estimate": beta,
                "std_error": se,
                "df": df,
                "t_value": t_value,
                "p_value": 2.0 * stats.t.sf(np.abs(t_value), df),
                "ci_lower": beta - q * se,
                "ci_upper": beta + q * se,
            },
            index=pd.Index(self.x_names, name="term"),
        )
        return table[FIXEF_COLUMNS].astype(float)

    def vcov_sandwich(self, kind: str = "CR0") -> pd.DataFrame:
        """Cluster-robust covariance of the fixed effects (clusters: the top-level grouping
        factor): ``"CR0"``, ``"CR2"`` or ``"CR3"``
        (:mod:`lmm_core.inference.mmrm_random_sandwich`)."""
        kind = _vcov_method(kind)
        if kind == "model":
            return self.vcov
        vcov, _ = _inference()(self, "wald", kind)
        return pd.DataFrame(vcov, index=self.x_names, columns=self.x_names)

    # ---------------------------------------------------------------- prediction
    def predict(self, newdata: pd.DataFrame | None = None, include_re: bool = True) -> np.ndarray:
        """``X beta`` plus, when ``include_re``, ``z' b`` of each term for levels seen in the
        fit (an unseen level adds 0). The correlation of the visits is not used: this is the
        prediction of a new visit's mean given the random effects, not a forecast from the
        subject's own residuals."""
        design = self.design
        X = design.X if newdata is None else design.fixed_matrix(newdata)
        pred = X @ self.beta
        if not include_re:
            return pred
        modes = self.criterion.modes(self.opt.theta)
        for k, term in enumerate(design.reterms):
            b = self._original_modes(modes, k)
            codes, z = (term.codes, term.z) if newdata is None else design.random_matrix(k, newdata)
            known = codes >= 0
            contrib = np.zeros(len(pred))
            contrib[known] = np.einsum("ij,ij->i", z[known], b[codes[known]])
            pred = pred + contrib
        return pred

    def _original_modes(self, modes: list[np.ndarray], k: int) -> np.ndarray:
        """The modes of the design's term ``k`` (before merging by grouping factor)."""
        for merged, pieces in zip(modes, self.criterion.parts, strict=True):
            for original, cols in pieces:
                if original == k:
                    return merged[:, cols]
        raise AssertionError(f"term {k} is not among the merged terms")
