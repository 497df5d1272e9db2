"""The result of a streamed fit: :class:`LMMResult`'s names, from the blocks alone.

Everything that the blocks give is there under lme4's names, computed as for an in-memory
fit: ``fixef``, ``vcov``, ``std_errors``, ``theta``, ``sigma``, ``varcorr_table()``,
``ranef`` and ``ranef_sd`` (conditional modes and SDs from the blocked factor), ``objective``,
``loglik``, ``aic``, ``bic``, ``nobs``, ``ngroups``, ``predict(newdata)`` and
``fixef_table()`` with Satterthwaite's df (finite differences of the criterion, which
touches only the blocks; :mod:`lmm_core.inference.satterthwaite`). What needs the rows is
streamed again on demand: :meth:`StreamedLMMResult.iter_fitted` (fitted values and
residuals, batch by batch). Kenward-Roger needs ``Z'V^{-1}Z`` from the rows and is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from lmm_core.design.build import term_matrix
from lmm_core.errors import ModelError
from lmm_core.inference.satterthwaite import varpar_derivatives
from lmm_core.model.results import LMMResult
from lmm_core.model.summary import format_summary


@dataclass(frozen=True)
class StreamedLMMResult(LMMResult):
    """A linear mixed model fitted by streaming (``fitted``/``residuals`` are empty).

    Attributes
    ----------
    n_obs
        Rows used.
    theta_units
        Units of ``theta`` read from the blocks (:func:`lmm_core.design.reterms.theta_scale`).
    timings
        Seconds of each stage (``pass1``, ``pass2``, ``optimize``, ``result``) and rows per
        second of pass 2 (``rows_per_second``).
    """

    n_obs: int = 0
    theta_units: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    timings: dict = field(default_factory=dict, compare=False)
    deviance: object = field(default=None, repr=False, compare=False)
    #: ``() -> iterator of pandas batches`` of the rows used, in the order of pass 2
    rows: Callable[[], Iterator[pd.DataFrame]] | None = field(
        default=None, repr=False, compare=False
    )

    @property
    def nobs(self) -> int:
        return int(self.n_obs)

    @property
    def y(self) -> np.ndarray:
        raise ModelError(
            "A streamed fit does not hold the rows: iter_fitted() streams the response, "
            "fitted values and residuals."
        )

    @property
    def is_singular(self) -> bool:
        diag = np.concatenate([t.structure.is_variance for t in self.reterms])
        phi = self.theta * self.theta_units
        return bool(np.any(np.abs(phi[diag]) < self.singular_tol))

    def fixef_table(
        self, df_method: str | None = "satterthwaite", level: float = 0.95
    ) -> pd.DataFrame:
        """As :meth:`LMMResult.fixef_table`; Satterthwaite's derivatives come from the blocks
        (the criterion is evaluated ``4 k^2 + 3`` times, ``k = len(theta)``)."""
        method = str(df_method).lower() if df_method is not None else None
        if method is not None and method.startswith("kenward"):
            raise ModelError(
                "Kenward-Roger needs the random-effects design row by row, which a streamed "
                "fit does not hold; use Satterthwaite (default) or Wald."
            )
        if method == "satterthwaite" and self.deviance is not None:
            self.derived.get(
                "satterthwaite", lambda: varpar_derivatives(self.deviance, self.theta, self.sigma)
            )
        return super().fixef_table(df_method, level)

    def predict(self, newdata: pd.DataFrame | None = None, include_re: bool = True) -> np.ndarray:
        """Predictions on ``newdata`` (:meth:`LMMResult.predict`); for the rows of the fit,
        :meth:`iter_fitted`."""
        if newdata is None:
            raise ModelError(
                "A streamed fit does not hold its rows: give newdata, or stream the fitted "
                "values with iter_fitted()."
            )
        return super().predict(newdata, include_re)

    def iter_fitted(self, columns: tuple[str, ...] = ()) -> Iterator[pd.DataFrame]:
        """Stream the rows used again: per batch, ``columns`` of the table and ``response``,
        ``fitted`` (``X beta + Z b``) and ``residual`` (response minus offset minus fitted,
        as the in-memory ``residuals``)."""
        if self.rows is None:
            raise ModelError("This result has no source to stream its rows from.")
        design = self.design
        for frame in self.rows():
            y = design.response_values(frame)
            if design.has_offset:
                y = y - design.offset_values(frame)
            fitted = design.fixed_matrix(frame) @ self.beta
            for t, b in zip(self.reterms, self.b, strict=True):
                codes, z = term_matrix(t, frame)
                fitted = fitted + np.einsum("ij,ij->i", z, b[codes])
            out = frame[list(columns)].copy() if columns else pd.DataFrame(index=frame.index)
            out["response"] = y
            out["fitted"] = fitted
            out["residual"] = y - fitted
            yield out

    def fitted_values(self) -> np.ndarray:
        """Fitted values of every row used (one more pass; ``n`` floats in memory)."""
        return np.concatenate([f["fitted"].to_numpy() for f in self.iter_fitted()])

    def residual_values(self) -> np.ndarray:
        """Residuals of every row used (one more pass; ``n`` floats in memory)."""
        return np.concatenate([f["residual"].to_numpy() for f in self.iter_fitted()])

    def summary_text(self) -> str:
        """lme4's summary layout, without the residual quantiles (not held)."""
        text = format_summary(replace(self, residuals=np.array([np.nan])))
        lines = text.splitlines()
        for i, line in enumerate(lines):
            if line.startswith("Scaled residuals:"):
                lines[i : i + 3] = ["Scaled residuals: not held by a streamed fit"]
                break
        return "\n".join(lines)


__all__ = ["StreamedLMMResult"]
