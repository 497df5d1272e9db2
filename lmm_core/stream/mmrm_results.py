"""The result of a streamed MMRM: :class:`~lmm_core.model.mmrm_results.MMRMResult`'s names,
from the patterns' summed products alone.

Everything the sums give is computed as for an in-memory fit: ``fixef``, the model-based
``vcov``, ``theta``, ``residual_covariance()``, ``loglik``, ``aic``, ``bic``, ``nobs``,
``predict(newdata)`` and ``fixef_table()`` with Satterthwaite's df (exact Hessian and
``d(X'V^-1X)/dtheta`` from the sums, :mod:`lmm_core.model.mmrm_hessian`), residual or Wald df,
and Kenward-Roger (its sums over subjects are sums over patterns of ``sum_i x_ij x_ik'``,
:mod:`lmm_core.inference.mmrm_kenward_roger`). The empirical (sandwich) covariances and the
between-within df need each subject's rows and are refused with a message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from lmm_core.errors import ModelError
from lmm_core.model.mmrm_results import MMRMResult

ROWS_MESSAGE = (
    "{what} needs each patient's rows, which a streamed fit does not keep: use the "
    "model-based covariance with Satterthwaite's or Kenward-Roger's df, or fit on a "
    "DataFrame (a sample of patients)."
)


@dataclass(eq=False)
class StreamedMMRMResult(MMRMResult):
    """A streamed MMRM fit (:mod:`lmm_core.stream.mmrm`).

    Attributes
    ----------
    n_obs
        Rows used.
    timings
        Seconds of each step (``pass1``, ``pass2``, ``optimize``, ``total``) and
        ``rows_per_second`` of pass 2.
    rows
        The rows streamed again on demand (a :class:`~lmm_core.stream.sources.RowStream`;
        ``None`` on Spark).
    """

    n_obs: int = 0
    timings: dict = field(default_factory=dict)
    rows: Callable | None = field(default=None, repr=False)

    @property
    def nobs(self) -> int:
        return int(self.n_obs)

    def fixef_table(
        self, df_method: str = "satterthwaite", level: float = 0.95, vcov_method: str = "model"
    ) -> pd.DataFrame:
        """As :meth:`MMRMResult.fixef_table`; ``vcov_method`` other than ``"model"`` and
        ``df_method="between-within"`` are refused (they need the rows)."""
        if str(vcov_method).lower() != "model":
            raise ModelError(ROWS_MESSAGE.format(what=f"The empirical covariance {vcov_method}"))
        if str(df_method).lower() == "between-within":
            raise ModelError(ROWS_MESSAGE.format(what="The between-within df"))
        return super().fixef_table(df_method, level, vcov_method)

    def vcov_sandwich(self, kind: str = "CR0") -> pd.DataFrame:
        """Refused unless ``kind="model"`` (module docstring)."""
        if str(kind).lower() != "model":
            raise ModelError(ROWS_MESSAGE.format(what=f"The empirical covariance {kind}"))
        return self.vcov

    def predict(self, newdata: pd.DataFrame | None = None, include_re: bool = False) -> np.ndarray:
        """Population predictions ``X beta`` for ``newdata`` (required: no rows are kept)."""
        if newdata is None:
            raise ModelError("A streamed fit keeps no rows: give the rows to predict (newdata).")
        return super().predict(newdata, include_re)


__all__ = ["ROWS_MESSAGE", "StreamedMMRMResult"]
