"""The result of a streamed MMRM: :class:`~lmm_core.model.mmrm_results.MMRMResult`'s names,
from the patterns' summed products alone.

Everything the sums give is computed as for an in-memory fit: ``fixef``, the model-based
``vcov``, ``theta``, ``residual_covariance()``, ``loglik``, ``aic``, ``bic``, ``nobs``,
``predict(newdata)`` and ``fixef_table()`` with Satterthwaite's df (exact Hessian and
``d(X'V^-1X)/dtheta`` from the sums, :mod:`lmm_core.model.mmrm_hessian`), residual or Wald df,
Kenward-Roger (its sums over subjects are sums over patterns of ``sum_i x_ij x_ik'``,
:mod:`lmm_core.inference.mmrm_kenward_roger`) and the between-within df (which columns vary
within a subject, from the same sums). The empirical (sandwich) covariances ``CR0``, ``CR2``,
``CR3`` and their Satterthwaite df stream the rows once more, sorted by patient
(:mod:`lmm_core.stream.mmrm_sandwich`; DuckDB or Spark).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from lmm_core.errors import DataError, ModelError
from lmm_core.inference.mmrm_fixef import between_within_df
from lmm_core.model.mmrm_results import MMRMResult, _vcov_method
from lmm_core.stream.mmrm_codes import row_codes
from lmm_core.stream.mmrm_sandwich import streamed_sandwich


@dataclass(eq=False, kw_only=True)
class StreamedFit:
    """What a streamed fit adds to its in-memory result class (keyword-only fields, after
    the in-memory result's): the counts of the whole table, the timings, the rows to stream
    again and, for a view on some patients, their sample.

    Attributes
    ----------
    n_obs
        Rows used.
    timings
        Seconds of each step (``pass1``, ``pass2``, ``optimize``, ``total``) and
        ``rows_per_second`` of pass 2.
    rows
        The rows streamed again on demand: a :class:`~lmm_core.stream.sources.RowStream`
        (DuckDB), or on Spark a :class:`~lmm_core.stream.mmrm_pass.SparkSubjects` (the
        partitions of whole patients; it holds the session, so that result does not pickle).
    subjects
        Patients of the whole fit (a view on a sample codes only the sampled ones).
    sample
        The sample this result is seen on (``on_sample``), ``None`` for the whole fit.
    """

    n_obs: int = 0
    timings: dict = field(default_factory=dict)
    rows: Callable | None = field(default=None, repr=False)
    subjects: int = 0
    sample: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def nobs(self) -> int:
        return int(self.n_obs)

    @property
    def n_subjects(self) -> int:
        return int(self.subjects)

    @property
    def is_sample_view(self) -> bool:
        """Whether this is the fit seen on a sample of its patients (``on_sample``)."""
        return self.sample is not None


@dataclass(eq=False)
class StreamedMMRMResult(StreamedFit, MMRMResult):
    """A streamed MMRM fit (:mod:`lmm_core.stream.mmrm`; fields of :class:`StreamedFit`)."""

    def on_sample(self, sample: pd.DataFrame) -> StreamedMMRMResult:
        """This fit seen on ``sample`` (some patients' rows of the fitted table), as
        :meth:`lmm_core.stream.results.StreamedLMMResult.on_sample`: the estimates stay those
        of the whole fit; the design holds the sample's rows the model uses (``X``, ``y``,
        each row's visit, patient and group), so that ``predict()``, fitted values and
        residuals are the whole fit's for those rows.

        Raises
        ------
        DataError
            When no row of ``sample`` is used by the model.
        ModelError
            A visit or group of the sample that the fit did not see (the table changed).
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
        visits, subjects, groups = row_codes(res, part)
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

    def _errors_and_df(self, method: str, kind: str) -> tuple[np.ndarray, np.ndarray]:
        """As :meth:`MMRMResult._errors_and_df`; an empirical covariance streams the rows
        once more (:func:`lmm_core.stream.mmrm_sandwich.streamed_sandwich`, kept)."""
        if kind == "model":
            return super()._errors_and_df(method, kind)
        vcov, df = self._sandwich(kind)
        p = len(df)
        if method == "between-within":
            df = between_within_df(self)
        elif method == "residual":
            df = np.full(p, float(self.nobs - p))
        elif method == "wald":
            df = np.full(p, np.inf)
        return np.sqrt(np.diag(vcov)), df

    def _sandwich(self, kind: str) -> tuple[np.ndarray, np.ndarray]:
        key = f"streamed_sandwich_{kind}"
        if key not in self.derived:
            self.derived[key] = streamed_sandwich(self, kind)
        return self.derived[key]

    def vcov_sandwich(self, kind: str = "CR0") -> pd.DataFrame:
        """The empirical covariance ``"CR0"``, ``"CR2"`` or ``"CR3"`` (one more pass over the
        rows, sorted by patient), or ``"model"``."""
        kind = _vcov_method(kind)
        if kind == "model":
            return self.vcov
        vcov = self._sandwich(kind)[0]
        return pd.DataFrame(vcov, index=self.x_names, columns=self.x_names)

    def predict(self, newdata: pd.DataFrame | None = None, include_re: bool = False) -> np.ndarray:
        """Population predictions ``X beta`` for ``newdata`` (required for the whole fit,
        which keeps no rows; a view on a sample predicts its rows)."""
        if newdata is None and not self.is_sample_view:
            raise ModelError("A streamed fit keeps no rows: give the rows to predict (newdata).")
        return super().predict(newdata, include_re)


__all__ = ["StreamedFit", "StreamedMMRMResult"]
