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

import numpy as np

from lmm_core.inference.mmrm_kenward_roger import (
    KenwardRogerPieces,
    kenward_roger_df,
    kenward_roger_pieces,
)
from lmm_core.inference.mmrm_sandwich import SandwichPieces, sandwich_df, sandwich_pieces
from lmm_core.model.mmrm_results import MMRMResult, register_mmrm_inference


def _kenward_roger(result: MMRMResult) -> KenwardRogerPieces:
    if "kenward_roger" not in result.derived:
        result.derived["kenward_roger"] = kenward_roger_pieces(result)
    return result.derived["kenward_roger"]


def _sandwich(result: MMRMResult, kind: str) -> SandwichPieces:
    key = f"sandwich_{kind}"
    if key not in result.derived:
        result.derived[key] = sandwich_pieces(result, kind)
    return result.derived[key]


def between_within_df(result: MMRMResult) -> np.ndarray:
    """mmrm's between-within df of each coefficient (module docstring)."""
    design = result.design
    res = design.residual
    assert res is not None
    n_subj = res.n_subjects
    names = list(design.x_names)
    has_intercept = "(Intercept)" in names
    within = np.array(
        [
            name == "(Intercept)"
            or len(np.unique(np.column_stack([design.X[:, j], res.subject_codes]), axis=0)) > n_subj
            for j, name in enumerate(names)
        ]
    )
    n_between = int((~within).sum())
    n_within = int(within.sum()) - int(has_intercept)
    df_between = n_subj - n_between - int(has_intercept)
    df_within = design.n - n_subj - n_within
    return np.where(within, float(df_within), float(df_between))


@register_mmrm_inference
def mmrm_inference(
    result: MMRMResult, df_method: str, vcov_method: str
) -> tuple[np.ndarray, np.ndarray]:
    """``(covariance of beta, df per coefficient)`` for ``df_method`` and ``vcov_method``
    (validated by the caller, :meth:`MMRMResult.fixef_table`)."""
    p = len(result.beta)
    if df_method.startswith("kenward"):
        kr = _kenward_roger(result)
        vcov = kr.vcov if df_method == "kenward-roger" else kr.vcov_linear
        df = [kenward_roger_df(result.vcov_beta, row, kr.w_psi, kr.p_mats)[0] for row in np.eye(p)]
        return vcov, np.array(df)
    if vcov_method == "model":
        vcov = result.vcov_beta
        sandwich = None
    else:
        sandwich = _sandwich(result, vcov_method)
        vcov = sandwich.vcov
    if df_method == "satterthwaite":
        if sandwich is None:
            df = np.array([result.satterthwaite_df(row) for row in np.eye(p)])
        else:
            df = sandwich_df(result.vcov_beta, sandwich, np.eye(p))
    elif df_method == "between-within":
        df = between_within_df(result)
    elif df_method == "residual":
        df = np.full(p, float(result.nobs - p))
    else:
        df = np.full(p, np.inf)
    return vcov, df
