"""Residuals of an MMRM (a covariance structure of the visits): raw and normalized, and the
correlation between visits in the data next to the model's. No Streamlit.

For patient ``i`` with residuals ``r_i = y_i - X_i b`` at the visits it has (in visit order)
and model covariance ``Sigma_i = L_i L_i'`` (those visits' rows and columns of the fitted
visits x visits matrix, ``L_i`` its lower Cholesky factor), the normalized residuals are
``r*_i = L_i^-1 r_i``: independent standard normal when the model is right (nlme's
``residuals(type = "normalized")``). The raw residuals of one patient are correlated and
have a variance per visit, so their QQ plot is not the check; the normalized ones are.

With random effects above the patient as well (``(1 | hospital) + ar1(visit | patient)``,
:class:`~lmm_core.model.mmrm_random_results.MMRMRandomResult`) the patients of one cluster
``h`` (a level of the top grouping factor, which contains every patient and every other
factor's levels) are correlated through the shared effects: their marginal covariance is
``V_h = Z_h G Z_h' + blockdiag_{i in h} Sigma_i`` and the normalized residuals are
``L_h^-1 r_h`` with ``V_h = L_h L_h'`` (rows ordered by patient, then visit), computed
cluster by cluster. Their sum of squares is ``r' V^-1 r``. When the factors are crossed
(no factor contains the others) the whole data are one cluster, up to
:data:`MAX_CLUSTER_ROWS` rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.linalg import solve_triangular

from dashboard.analysis.mmrm_models import is_mmrm
from lmm_core import LMMError

__all__ = [
    "MAX_CLUSTER_ROWS",
    "MIN_PAIRS",
    "VisitCorrelations",
    "cluster_codes",
    "mmrm_residuals",
    "visit_correlations",
]

#: pairs of visits seen together in fewer patients than this have no observed correlation
MIN_PAIRS = 3
#: largest cluster whose marginal covariance is factored (a dense Cholesky of its rows)
MAX_CLUSTER_ROWS = 4000


def _require_mmrm(result: object) -> None:
    if not is_mmrm(result):
        raise LMMError("This needs a model with a covariance structure of the visits (an MMRM).")


def _has_random(result: object) -> bool:
    return bool(getattr(result, "reterms", None))


def cluster_codes(result) -> tuple[str | None, np.ndarray]:
    """The top grouping factor of a fit with random effects and a covariance of the visits,
    and each row's cluster code: the factor with the fewest levels among those in which every
    patient and every other factor's level lies in one level. ``(None, zeros)`` when there is
    none (crossed factors): then the whole data are one cluster."""
    res = result.design.residual
    terms = result.criterion.terms
    units = [np.asarray(res.subject_codes)] + [np.asarray(t.codes) for t in terms]
    best = None
    for t in terms:
        inside = all(
            len(np.unique(np.column_stack([u, t.codes]), axis=0)) == len(np.unique(u))
            for u in units
        )
        if inside and (best is None or t.n_levels < best.n_levels):
            best = t
    if best is None:
        return None, np.zeros(result.design.n, dtype=int)
    return best.group, np.asarray(best.codes)


def _random_parts(result) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
    """``Z`` (``n x q``, each term's columns level by level) and ``G`` (``q x q``, block
    diagonal: ``G_k`` once per level of term ``k``)."""
    n = result.design.n
    z_blocks, g_blocks = [], []
    for t, cov in zip(result.criterion.terms, result.covariance_matrices(), strict=True):
        s = t.z.shape[1]
        cols = (np.asarray(t.codes)[:, None] * s + np.arange(s)).ravel()
        rows = np.repeat(np.arange(n), s)
        z_blocks.append(sparse.csr_matrix((t.z.ravel(), (rows, cols)), shape=(n, t.n_levels * s)))
        g_blocks.append(sparse.kron(sparse.eye(t.n_levels), cov))
    return sparse.hstack(z_blocks).tocsr(), sparse.block_diag(g_blocks, format="csr")


def _sigma_blocks(result):
    """Per row: the structure's group, subject and visit codes, and the fitted ``Sigma``
    matrices (one per group)."""
    res = result.design.residual
    theta = result.criterion.split(result.opt.theta)[0] if _has_random(result) else result.theta
    matrices = res.matrices(theta)
    n = result.design.n
    groups = np.asarray(res.group_codes) if len(matrices) > 1 else np.zeros(n, dtype=int)
    return groups, np.asarray(res.subject_codes), np.asarray(res.visit_codes), matrices


def _whiten_clusters(result, resid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Normalized ``L_h^-1 r_h`` and standardized ``r / sqrt(diag V)`` residuals of a fit
    with random effects and a covariance of the visits (module docstring)."""
    name, clusters = cluster_codes(result)
    sizes = np.bincount(clusters)
    if sizes.max() > MAX_CLUSTER_ROWS:
        where = f"a level of {name} has" if name else "the crossed factors make one cluster of"
        raise LMMError(
            f"Normalized residuals need the covariance of a whole cluster, and {where} "
            f"{sizes.max():,} rows (more than {MAX_CLUSTER_ROWS:,})."
        )
    groups, subjects, visits, matrices = _sigma_blocks(result)
    Z, G = _random_parts(result)
    normalized = np.empty(len(resid))
    standardized = np.empty(len(resid))
    order = np.lexsort((visits, subjects, clusters))
    bounds = np.flatnonzero(np.diff(clusters[order])) + 1
    for rows in np.split(order, bounds):
        zr = Z[rows]
        V = (zr @ G @ zr.T).toarray()
        subj = subjects[rows]
        for s in np.unique(subj):
            at = np.flatnonzero(subj == s)
            v = visits[rows[at]]
            V[np.ix_(at, at)] += matrices[int(groups[rows[at[0]]])][np.ix_(v, v)]
        normalized[rows] = solve_triangular(np.linalg.cholesky(V), resid[rows], lower=True)
        standardized[rows] = resid[rows] / np.sqrt(np.diag(V))
    return normalized, standardized


def _whiten_patients(result, resid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Normalized ``L_i^-1 r_i`` and standardized residuals of an MMRM, patient by patient."""
    groups, subjects, visits, matrices = _sigma_blocks(result)
    normalized = np.empty(len(resid))
    standardized = np.empty(len(resid))
    order = np.lexsort((visits, subjects))
    bounds = np.flatnonzero(np.diff(subjects[order])) + 1
    for rows in np.split(order, bounds):
        v = visits[rows]
        sigma = matrices[int(groups[rows[0]])][np.ix_(v, v)]
        normalized[rows] = solve_triangular(np.linalg.cholesky(sigma), resid[rows], lower=True)
        standardized[rows] = resid[rows] / np.sqrt(np.diag(sigma))
    return normalized, standardized


def mmrm_residuals(result, data: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per observation of the fit (the design's row order).

    Parameters
    ----------
    result
        An MMRM fit, or random effects with a covariance of the visits (then ``fitted`` is
        still ``X b`` and the residuals are whitened cluster by cluster).
    data
        The data it was fitted to: then ``subject`` holds the subjects' ids (else their
        codes).

    Returns
    -------
    pandas.DataFrame
        ``subject`` and ``visit`` (labels), ``fitted`` (``X b``), ``residual``
        (``y - X b``), ``standardized`` (residual / the model SD of its visit) and
        ``normalized`` (``L_i^-1 r_i`` per patient, or ``L_h^-1 r_h`` per cluster: see the
        module docstring); ``standardized`` divides by the marginal SD ``sqrt(diag V)``.
    """
    _require_mmrm(result)
    design = result.design
    res = design.residual
    fitted = design.X @ result.beta
    resid = design.y - fitted
    whiten = _whiten_clusters if _has_random(result) else _whiten_patients
    normalized, standardized = whiten(result, resid)
    visits = np.asarray(res.visit_codes)
    labels = np.asarray(res.visits, dtype=object)
    ids = np.asarray(res.subject_codes)
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


def _patient_correlation(result, keep: np.ndarray) -> pd.DataFrame:
    """The correlation between a patient's visits that a fit with random effects and a
    covariance of the visits implies: ``V_i = Z_i G Z_i' + Sigma_i`` of each patient (rows
    ``keep``), its covariances averaged over the patients seen at both visits of a pair
    (the same for every patient when the random effects are intercepts), then scaled to a
    correlation."""
    groups, subjects, visits, matrices = _sigma_blocks(result)
    Z, G = _random_parts(result)
    m = len(result.design.residual.visits)
    total, count = np.zeros((m, m)), np.zeros((m, m))
    rows_all = np.flatnonzero(keep)
    order = rows_all[np.lexsort((visits[rows_all], subjects[rows_all]))]
    bounds = np.flatnonzero(np.diff(subjects[order])) + 1
    for rows in np.split(order, bounds):
        v = visits[rows]
        zr = Z[rows]
        block = (zr @ G @ zr.T).toarray() + matrices[int(groups[rows[0]])][np.ix_(v, v)]
        total[np.ix_(v, v)] += block
        count[np.ix_(v, v)] += 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = total / count
        sd = np.sqrt(np.diag(cov))
        corr = cov / np.outer(sd, sd)
    labels = list(result.design.residual.visits)
    return pd.DataFrame(corr, index=labels, columns=labels)


def visit_correlations(result) -> VisitCorrelations:
    """:class:`VisitCorrelations` of an MMRM fit (the data's from its residuals ``y - X b``:
    what the covariance structure must explain). With random effects above the patient, the
    model's correlation is that of a patient's marginal covariance
    (:func:`_patient_correlation`), which the shared effects raise."""
    _require_mmrm(result)
    frame = mmrm_residuals(result)
    res = result.design.residual
    model = result.residual_correlation()
    group = None
    keep = np.ones(result.design.n, dtype=bool)
    if isinstance(model, dict):
        group = next(iter(model))
        keep = np.asarray(res.group_codes) == 0
        frame = frame.loc[keep]
        model = model[group]
    if _has_random(result):
        model = _patient_correlation(result, keep)
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
