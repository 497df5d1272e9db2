"""Covariance and df of an MMRM's fixed effects for every method of mmrm, behind
:meth:`MMRMResult.fixef_table <lmm_core.model.mmrm_results.MMRMResult.fixef_table>`.

Importing this module installs :func:`mmrm_inference` with
:func:`~lmm_core.model.mmrm_results.register_mmrm_inference`. Methods (mmrm's names):

- ``"kenward-roger"`` / ``"kenward-roger-linear"``: the adjusted covariance of
  :mod:`lmm_core.inference.mmrm_kenward_roger` and its df (for one coefficient, Satterthwaite's);
- ``"satterthwaite"``: with the model-based covariance the result's own
  :meth:`~lmm_core.model.mmrm_results.MMRMResult.satterthwaite_df`; with an empirical one
  (``"CR0"``, ``"CR2"``, ``"CR3"``, :mod:`lmm_core.inference.mmrm_sandwich`) its
  ``tr(G)^2 / sum(G^2)`` df;
- ``"between-within"`` (mmrm's, as SAS's ``DDFM=BW``): a column is *within* subjects when it
  is the intercept or takes more than one value within some subject (more distinct (value,
  subject) pairs than subjects), otherwise *between*; ``df_between = N - n_between - 1`` and
  ``df_within = n - N - (n_within - 1)`` (``N`` subjects, ``n`` rows, the intercept not
  counted among the within columns), the ``- 1`` only with an intercept;
- ``"residual"`` (``n - p``) and ``"wald"`` (``inf``) with any covariance.

What is derived (Kenward-Roger pieces, a sandwich) is kept in the result's ``derived`` dict.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from lmm_core.inference.mmrm_kenward_roger import (
    KenwardRogerPieces,
    kenward_roger_df,
    kenward_roger_pieces,
)
from lmm_core.inference.mmrm_sandwich import SandwichPieces, sandwich_df, sandwich_pieces
from lmm_core.model.mmrm_results import MMRMResult, register_mmrm_inference


def derived(result, key: str, compute: Callable[[], object]):
    """``result.derived[key]``, computed by ``compute()`` on first use."""
    if key not in result.derived:
        result.derived[key] = compute()
    return result.derived[key]


def _kenward_roger(result: MMRMResult) -> KenwardRogerPieces:
    return derived(result, "kenward_roger", lambda: kenward_roger_pieces(result))


def _sandwich(result: MMRMResult, kind: str) -> SandwichPieces:
    return derived(result, f"sandwich_{kind}", lambda: sandwich_pieces(result, kind))


def between_within_by(design, codes: np.ndarray) -> np.ndarray:
    """Between-within df of each coefficient with clusters ``codes`` (0..N-1) as the between
    level (module docstring: subjects for an MMRM)."""
    n_clusters = int(codes.max()) + 1
    within = np.array(
        [
            len(np.unique(np.column_stack([design.X[:, j], codes]), axis=0)) > n_clusters
            for j in range(design.X.shape[1])
        ]
    )
    return between_within_from(design.x_names, within, design.n, n_clusters)


def between_within_from(names, within: np.ndarray, n: int, n_clusters: int) -> np.ndarray:
    """Between-within df from which columns vary within a cluster (``within``; the
    intercept counts as within), ``n`` rows and ``n_clusters`` clusters."""
    names = list(names)
    has_intercept = "(Intercept)" in names
    within = np.asarray(within, dtype=bool) | (np.array(names) == "(Intercept)")
    df_between = n_clusters - int((~within).sum()) - int(has_intercept)
    df_within = n - n_clusters - (int(within.sum()) - int(has_intercept))
    return np.where(within, float(df_within), float(df_between))


def between_within_df(result: MMRMResult) -> np.ndarray:
    """mmrm's between-within df of each coefficient (module docstring), with the subjects
    as clusters (which columns vary within a subject: from the rows, or for a streamed fit
    from its patterns' sums, :meth:`MMRMCriterion.within_subject_columns`)."""
    within = result.criterion.within_subject_columns()
    return between_within_from(result.x_names, within, result.nobs, result.n_subjects)


def structured_inference(
    result,
    df_method: str,
    vcov_method: str,
    kenward_roger: Callable[[], KenwardRogerPieces],
    sandwich: Callable[[str], SandwichPieces],
    between_within: Callable[[], np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """``(covariance of beta, df per coefficient)`` of a fit with a covariance of the visits,
    given how its Kenward-Roger pieces, sandwich and between-within df are had."""
    p = len(result.beta)
    if df_method.startswith("kenward"):
        kr = kenward_roger()
        vcov = kr.vcov if df_method == "kenward-roger" else kr.vcov_linear
        df = [kenward_roger_df(result.vcov_beta, row, kr.w_psi, kr.p_mats)[0] for row in np.eye(p)]
        return vcov, np.array(df)
    pieces = None if vcov_method == "model" else sandwich(vcov_method)
    vcov = result.vcov_beta if pieces is None else pieces.vcov
    if df_method == "satterthwaite":
        if pieces is None:
            df = np.array([result.satterthwaite_df(row) for row in np.eye(p)])
        else:
            df = sandwich_df(result.vcov_beta, pieces, np.eye(p))
    elif df_method == "between-within":
        df = between_within()
    elif df_method == "residual":
        df = np.full(p, float(result.nobs - p))
    else:
        df = np.full(p, np.inf)
    return vcov, df


@register_mmrm_inference
def mmrm_inference(
    result: MMRMResult, df_method: str, vcov_method: str
) -> tuple[np.ndarray, np.ndarray]:
    """``(covariance of beta, df per coefficient)`` for ``df_method`` and ``vcov_method``
    (validated by the caller, :meth:`MMRMResult.fixef_table`)."""
    return structured_inference(
        result,
        df_method,
        vcov_method,
        lambda: _kenward_roger(result),
        lambda kind: _sandwich(result, kind),
        lambda: between_within_df(result),
    )
