"""The result of a streamed MMRM: :class:`~lmm_core.model.mmrm_results.MMRMResult`'s names,
from the patterns' summed products alone.

Everything the sums give is computed as for an in-memory fit: ``fixef``, the model-based
``vcov``, ``theta``, ``residual_covariance()``, ``loglik``, ``aic``, ``bic``, ``nobs``,
``predict(newdata)`` and ``fixef_table()`` with Satterthwaite's df (exact Hessian and
``d(X'V^-1X)/dtheta`` from the sums, :mod:`lmm_core.model.mmrm_hessian`), residual or Wald df,
Kenward-Roger (its sums over subjects are sums over patterns of ``sum_i x_ij x_ik'``,
:mod:`lmm_core.inference.mmrm_kenward_roger`) and the between-within df (which columns vary
within a subject, from the same sums). The empirical (sandwich) covariances need each
subject's rows and are refused with a message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from lmm_core.design.model_matrix import Evaluator
from lmm_core.errors import DataError, ModelError
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
    #: patients of the whole fit (a view on a sample codes only the sampled ones)
    subjects: int = 0
    #: the sample this result is seen on (:meth:`on_sample`), ``None`` for the whole fit
    sample: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def nobs(self) -> int:
        return int(self.n_obs)

    @property
    def n_subjects(self) -> int:
        return int(self.subjects)

    @property
    def is_sample_view(self) -> bool:
        """Whether this is the fit seen on a sample of its patients (:meth:`on_sample`)."""
        return self.sample is not None

    def on_sample(self, sample: pd.DataFrame) -> StreamedMMRMResult:
        """This fit seen on ``sample`` (some patients' rows of the fitted table), as
        :meth:`lmm_core.stream.results.StreamedLMMResult.on_sample`: the estimates stay those
        of the whole fit; the design holds the sample's rows the model uses (``X``, ``y``,
        each row's visit, patient and group), so that ``predict()``, fitted values and
        residuals are the whole fit's for those rows.

        Raises
        ------
        DataError
            When no row of ``sample`` is used by the model, or a visit or group of the
            sample was not in the fit (the table changed since).
        """
        design = self.design
        res = design.residual
        assert res is not None
        frame = sample.reset_index(drop=True)
        used = [c for c in dict.fromkeys(n.name for n in design.spec.column_refs())]
        ok = frame[used].notna().all(axis=1).to_numpy() if len(frame) else np.zeros(0, bool)
        rows = np.flatnonzero(ok)
        if rows.size == 0:
            raise DataError("No row of the sample is used by this model.")
        part = frame.iloc[rows].reset_index(drop=True)
        y = design.response_values(part)
        if design.has_offset:
            y = y - design.offset_values(part)
        X = design.fixed_matrix(part)
        visits, subjects, groups = _sample_codes(res, part)
        residual = replace(
            res,
            visit_codes=visits,
            subject_codes=subjects,
            n_subjects=int(subjects.max()) + 1,
            group_codes=groups,
        )
        view = replace(
            design, y=y, X=X, rows=rows, n_dropped=len(frame) - rows.size, residual=residual
        )
        return replace(self, design=view, sample=frame, derived={})

    def fixef_table(
        self, df_method: str = "satterthwaite", level: float = 0.95, vcov_method: str = "model"
    ) -> pd.DataFrame:
        """As :meth:`MMRMResult.fixef_table`; ``vcov_method`` other than ``"model"`` is
        refused (the empirical covariances need the rows)."""
        if str(vcov_method).lower() != "model":
            raise ModelError(ROWS_MESSAGE.format(what=f"The empirical covariance {vcov_method}"))
        return super().fixef_table(df_method, level, vcov_method)

    def vcov_sandwich(self, kind: str = "CR0") -> pd.DataFrame:
        """Refused unless ``kind="model"`` (module docstring)."""
        if str(kind).lower() != "model":
            raise ModelError(ROWS_MESSAGE.format(what=f"The empirical covariance {kind}"))
        return self.vcov

    def predict(self, newdata: pd.DataFrame | None = None, include_re: bool = False) -> np.ndarray:
        """Population predictions ``X beta`` for ``newdata`` (required for the whole fit,
        which keeps no rows; a view on a sample predicts its rows)."""
        if newdata is None and not self.is_sample_view:
            raise ModelError("A streamed fit keeps no rows: give the rows to predict (newdata).")
        return super().predict(newdata, include_re)


def _sample_codes(res, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row of ``frame``: its visit and group in the fit's labels, its patient (codes
    of the sample's patients)."""
    from lmm_core.design.residual import residual_term

    term = residual_term(Evaluator(frame), res.spec, np.arange(len(frame)))
    visit_of = {v: i for i, v in enumerate(res.visits)}
    group_of = {g: i for i, g in enumerate(res.groups)}
    visits = np.array([visit_of.get(v, -1) for v in term.visits])[term.visit_codes]
    groups = np.array([group_of.get(g, -1) for g in term.groups])[term.group_codes]
    if res.spec.group is None:
        groups = np.zeros(len(frame), dtype=np.int64)
    if (visits < 0).any() or (groups < 0).any():
        raise DataError(
            "The sample has visits or groups the fit has not seen: the table changed since "
            "the fit; fit again."
        )
    return visits, term.subject_codes, groups


__all__ = ["ROWS_MESSAGE", "StreamedMMRMResult"]
