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
  and ``2 H^-1``, as :class:`MMRMResult`), ``"residual"`` or ``"wald"``, model-based covariance.
  Kenward-Roger, between-within and the sandwich estimators are refused with a
  :class:`~lmm_core.errors.ModelError`: their MMRM implementations
  (:mod:`lmm_core.inference.mmrm_kenward_roger`, :mod:`lmm_core.inference.mmrm_sandwich`)
  take the subjects as independent, which random effects above the subject break.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from lmm_core.errors import ModelError
from lmm_core.model.mmrm_random import RandomMMRMCriterion
from lmm_core.model.mmrm_random_optimize import singular
from lmm_core.model.mmrm_results import MMRMResult, _vcov_method

_AVAILABLE = ("satterthwaite", "residual", "wald")
_STEP = 1e-5
_MMRM_ONLY = ("kenward", "sandwich")  # keys of MMRM-only pieces in ``derived``


class _Derived(dict):
    """``derived`` of a combined fit: asking it for the pieces of the MMRM-only inference
    (Kenward-Roger, sandwiches; what LS-means and F tests with those methods look up first) is
    a :class:`ModelError` naming what is available, not a failure deep inside them."""

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str) and key.startswith(_MMRM_ONLY):
            raise ModelError(_refusal(key.split("_")[0], "model"))
        return super().__contains__(key)


VARCORR_COLUMNS = ["group", "var1", "var2", "vcov", "sdcor"]


@dataclass(eq=False)
class MMRMRandomResult(MMRMResult):
    """A fitted model with random effects and a covariance structure of the visits."""

    criterion: RandomMMRMCriterion  # type: ignore[assignment]
    derived: dict[str, Any] = field(default_factory=_Derived, repr=False)

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
        out: dict[str, pd.DataFrame] = {}
        modes = self.criterion.modes(self.opt.theta)
        for t, values in zip(self.reterms, modes, strict=True):
            frame = pd.DataFrame(
                values, index=pd.Index(t.levels, name=t.group), columns=list(t.cnames)
            )
            out[t.group] = frame if t.group not in out else out[t.group].join(frame)
        return out

    def varcorr_table(self) -> pd.DataFrame:
        """Variance components like lme4's ``as.data.frame(VarCorr(fit))``: per term its
        variances and covariances (``sdcor`` the SD or the correlation), then ``"Residual"``
        rows: one (``var1`` None) when the structure has one standard deviation, else one per
        visit (``var1`` the visit; a dict group -> rows becomes one block per group, ``var2``
        the group)."""
        rows = []
        seen: dict[str, int] = {}
        for t, cov in zip(self.reterms, self.covariance_matrices(), strict=True):
            k = seen.get(t.group, 0)
            seen[t.group] = k + 1
            label = t.group if k == 0 else f"{t.group}.{k}"
            sd = np.sqrt(np.diag(cov))
            for i, name in enumerate(t.cnames):
                rows.append((label, name, None, cov[i, i], sd[i]))
            for i, j in zip(*t.structure.covariance_pairs(), strict=True):
                denom = sd[i] * sd[j]
                rows.append((label, t.cnames[j], t.cnames[i], cov[i, j],
                             cov[i, j] / denom if denom > 0 else np.nan))  # fmt: skip
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
        ``"satterthwaite"``, ``"residual"`` or ``"wald"`` with the model-based covariance."""
        method = str(df_method).lower()
        if method not in _AVAILABLE or _vcov_method(vcov_method) != "model":
            raise ModelError(_refusal(df_method, vcov_method))
        return super().fixef_table(method, level, "model")

    def vcov_sandwich(self, kind: str = "CR0") -> pd.DataFrame:
        """Only the model-based covariance is available with random effects."""
        if _vcov_method(kind) == "model":
            return self.vcov
        raise ModelError(_refusal("satterthwaite", kind))

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


def _refusal(df_method: str, vcov_method: str) -> str:
    return (
        f"df_method={df_method!r} with vcov_method={vcov_method!r} is not available for random "
        "effects together with a covariance of the visits (Kenward-Roger, between-within and "
        "the sandwich estimators here take the subjects as independent). Available: "
        "df_method 'satterthwaite', 'residual' or 'wald' with vcov_method='model'."
    )
