"""Residuals of an MMRM (a covariance structure of the visits): raw and normalized, and the
correlation between visits in the data next to the model's. No Streamlit.

For patient ``i`` with residuals ``r_i = y_i - X_i b`` at the visits it has (in visit order)
and model covariance ``Sigma_i = L_i L_i'`` (those visits' rows and columns of the fitted
visits x visits matrix, ``L_i`` its lower Cholesky factor), the normalized residuals are
``r*_i = L_i^-1 r_i``: independent standard normal when the model is right (nlme's
``residuals(type = "normalized")``). The raw residuals of one patient are correlated and
have a variance per visit, so their QQ plot is not the check; the normalized ones are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.linalg import solve_triangular

from dashboard.analysis.mmrm_models import is_mmrm
from lmm_core import LMMError

__all__ = ["MIN_PAIRS", "VisitCorrelations", "mmrm_residuals", "visit_correlations"]

#: pairs of visits seen together in fewer patients than this have no observed correlation
MIN_PAIRS = 3


def _require_mmrm(result: object) -> None:
    if not is_mmrm(result):
        raise LMMError("This needs a model with a covariance structure of the visits (an MMRM).")
    if getattr(result, "reterms", None):
        raise LMMError(
            "This model has random effects above the patient besides the covariance of the "
            "visits: its residuals would have to be whitened with the covariance of a whole "
            "cluster, which is not available yet; the plots below are for MMRMs alone."
        )


def mmrm_residuals(result, data: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per observation of the fit (the design's row order).

    Parameters
    ----------
    result
        An MMRM fit.
    data
        The data it was fitted to: then ``subject`` holds the subjects' ids (else their
        codes).

    Returns
    -------
    pandas.DataFrame
        ``subject`` and ``visit`` (labels), ``fitted`` (``X b``), ``residual``
        (``y - X b``), ``standardized`` (residual / the model SD of its visit) and
        ``normalized`` (``L_i^-1 r_i`` per patient, see the module docstring).
    """
    _require_mmrm(result)
    design = result.design
    res = design.residual
    fitted = design.X @ result.beta
    resid = design.y - fitted
    matrices = res.matrices(result.theta)
    groups = np.asarray(res.group_codes) if len(matrices) > 1 else np.zeros(design.n, dtype=int)
    subjects = np.asarray(res.subject_codes)
    visits = np.asarray(res.visit_codes)
    normalized = np.empty(design.n)
    standardized = np.empty(design.n)
    order = np.lexsort((visits, subjects))
    bounds = np.flatnonzero(np.diff(subjects[order])) + 1
    for rows in np.split(order, bounds):
        v = visits[rows]
        sigma = matrices[int(groups[rows[0]])][np.ix_(v, v)]
        normalized[rows] = solve_triangular(np.linalg.cholesky(sigma), resid[rows], lower=True)
        standardized[rows] = resid[rows] / np.sqrt(np.diag(sigma))
    labels = np.asarray(res.visits, dtype=object)
    ids = subjects
    if data is not None:
        ids = data.iloc[design.rows][res.spec.subject.name].to_numpy()
    return pd.DataFrame(
        {
            "subject": ids,
            "visit": labels[visits],
            "fitted": fitted,
            "residual": resid,
            "standardized": standardized,
            "normalized": normalized,
        }
    )


@dataclass(frozen=True)
class VisitCorrelations:
    """The correlation between visits: the model's and the data's (visits x visits).

    Attributes
    ----------
    model
        The fitted structure's correlation (of the first group for a group-specific one).
    observed
        Pairwise-complete correlation of the residuals ``y - X b`` across patients (NaN where
        fewer than :data:`MIN_PAIRS` patients were seen at both visits).
    pairs
        Patients seen at both visits of each pair.
    group
        The group shown for a group-specific structure (else ``None``).
    """

    model: pd.DataFrame
    observed: pd.DataFrame
    pairs: pd.DataFrame
    group: str | None = None

    def largest_gap(self) -> float:
        """The largest ``|model - observed|`` over the pairs with an observed value."""
        gap = (self.model - self.observed).abs().to_numpy(float)
        return float(np.nanmax(gap)) if np.isfinite(gap).any() else float("nan")


def visit_correlations(result) -> VisitCorrelations:
    """:class:`VisitCorrelations` of an MMRM fit (the data's from its residuals ``y - X b``:
    what the covariance structure must explain)."""
    _require_mmrm(result)
    frame = mmrm_residuals(result)
    res = result.design.residual
    model = result.residual_correlation()
    group = None
    if isinstance(model, dict):
        group = next(iter(model))
        keep = np.asarray(res.group_codes) == 0
        frame = frame.loc[keep]
        model = model[group]
    table = frame.pivot(index="subject", columns="visit", values="residual")
    table = table.reindex(columns=list(res.visits))
    seen = table.notna().astype(float)
    pairs = (seen.T @ seen).astype(int)
    observed = table.corr(min_periods=MIN_PAIRS)
    labels = [str(v) for v in res.visits]
    for part in (model, observed, pairs):
        part.index = labels
        part.columns = labels
    return VisitCorrelations(model, observed, pairs, group)
