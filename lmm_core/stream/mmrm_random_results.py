"""The result of a streamed MMRM with random effects above the subject:
:class:`~lmm_core.model.mmrm_random_results.MMRMRandomResult`'s names, from the cells' summed
outer products alone (:mod:`lmm_core.stream.mmrm_random`).

Everything the sums give is computed as for an in-memory fit: ``fixef``, the model-based
``vcov``, ``theta``, ``residual_covariance()``, ``covariance_matrices()``,
``varcorr_table()``, ``ranef`` (the conditional modes ``b = G Z'V^-1 (y - X beta)`` need only
``Z'WZ``, ``Z'WX``, ``Z'Wy`` per level, which the cells give), ``loglik``, ``aic``, ``bic``,
``nobs``, ``predict(newdata)`` and ``fixef_table()`` with Satterthwaite's df (the Jacobian of
``(X'V^-1X)^-1`` from the criterion), residual or Wald df, and with one grouping factor the
cluster sandwiches CR0/CR2/CR3 and their df (per level ``X_h'V_h^-1X_h`` and ``X_h'V_h^-1r_h``
from the cells, :meth:`~lmm_core.model.mmrm_random.RandomMMRMCriterion.cluster_sums`). What
needs each patient's rows is refused with a message: the between-within df, Kenward-Roger (its
``V^-1 X`` and ``dV V^-1 dV`` products are computed row by row,
:mod:`lmm_core.inference.mmrm_random_kr`, also behind LS-means and F tests) and ``predict()``
without ``newdata`` (except on the view of a sample,
:meth:`StreamedMMRMRandomResult.on_sample`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from lmm_core.design.build import term_matrix
from lmm_core.design.reterms import amalgamate
from lmm_core.errors import DataError, ModelError
from lmm_core.model.mmrm_random_results import MMRMRandomResult
from lmm_core.stream.mmrm_results import StreamedFit, StreamedMMRMResult

ROWS_MESSAGE = (
    "{what} needs each patient's rows when random effects are beside the covariance of the "
    "visits, which a streamed fit does not keep: use the model-based covariance with "
    "Satterthwaite's df, or fit on a DataFrame (a sample of patients)."
)
KR_MESSAGE = ROWS_MESSAGE.format(what="Kenward-Roger")


class _NeedsRows:
    """Stands in ``derived`` for what the rows would give (Kenward-Roger): any use
    raises the message, wherever it is asked for (``fixef_table``, LS-means, F tests)."""

    def __init__(self, message: str) -> None:
        self.message = message

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        raise ModelError(self.message)


def _refusals() -> dict:
    return {"kenward_roger": _NeedsRows(KR_MESSAGE)}


@dataclass(eq=False)
class StreamedMMRMRandomResult(StreamedFit, MMRMRandomResult):
    """A streamed fit of random effects plus a covariance of the visits (fields of
    :class:`~lmm_core.stream.mmrm_results.StreamedFit`)."""

    def __post_init__(self) -> None:
        self.derived.update(_refusals())

    def on_sample(self, sample: pd.DataFrame) -> StreamedMMRMRandomResult:
        """This fit seen on ``sample`` (some patients' rows of the fitted table), as
        :meth:`StreamedMMRMResult.on_sample <lmm_core.stream.mmrm_results.StreamedMMRMResult.
        on_sample>` (whose steps it runs): the estimates, the conditional modes and the
        criterion stay those of the whole fit; the design holds the sample's rows (``X``,
        ``y``, each row's visit, patient, group and the random-effects terms' levels and
        ``z``, also in the criterion's merged terms, which the app's diagnostics read), so
        that ``predict()``, fitted values and residuals are the whole fit's for those rows.

        Raises
        ------
        DataError
            When no row of ``sample`` is used by the model, or a visit, group or level of a
            grouping factor of the sample was not in the fit (the table changed since).
        """
        view = StreamedMMRMResult.on_sample(self, sample)  # type: ignore[arg-type]
        design = view.design
        part = view.sample.iloc[design.rows].reset_index(drop=True)  # type: ignore[union-attr]
        terms = []
        for term in design.reterms:
            codes, z = term_matrix(term, part)
            if (codes < 0).any():
                raise DataError(
                    f"The sample has levels of `{term.group}` the fit has not seen: the table "
                    "changed since the fit; fit again."
                )
            terms.append(replace(term, codes=codes, z=z))
        crit = copy.copy(self.criterion)  # the sums, with the merged terms of these rows
        crit.terms = amalgamate(tuple(terms))[0]
        out = replace(view, design=replace(design, reterms=tuple(terms)), criterion=crit)
        return out  # type: ignore[return-value]

    def fixef_table(
        self, df_method: str = "satterthwaite", level: float = 0.95, vcov_method: str = "model"
    ) -> pd.DataFrame:
        """As :meth:`MMRMRandomResult.fixef_table`; ``"between-within"`` and Kenward-Roger
        are refused (they need the rows)."""
        method = str(df_method).lower()
        if method == "between-within":
            raise ModelError(ROWS_MESSAGE.format(what="The between-within df"))
        if method.startswith("kenward"):
            raise ModelError(KR_MESSAGE)
        return super().fixef_table(df_method, level, vcov_method)

    def predict(self, newdata: pd.DataFrame | None = None, include_re: bool = True) -> np.ndarray:
        """As :meth:`MMRMRandomResult.predict` for ``newdata`` (required for the whole fit,
        which keeps no rows; a view on a sample predicts its rows)."""
        if newdata is None and not self.is_sample_view:
            raise ModelError("A streamed fit keeps no rows: give the rows to predict (newdata).")
        return super().predict(newdata, include_re)


__all__ = ["KR_MESSAGE", "ROWS_MESSAGE", "StreamedMMRMRandomResult"]
