"""Covariance and df of the fixed effects of random effects plus a covariance of the visits,
behind :meth:`MMRMRandomResult.fixef_table
<lmm_core.model.mmrm_random_results.MMRMRandomResult.fixef_table>`.

Importing this module installs :func:`random_inference` with
:func:`~lmm_core.model.mmrm_random_results.register_random_inference`. Methods:

- ``"kenward-roger"`` / ``"kenward-roger-linear"``: :mod:`lmm_core.inference.mmrm_random_kr`
  (SAS's ``DDFM=KR``), df per coefficient by
  :func:`~lmm_core.inference.mmrm_kenward_roger.kenward_roger_df`;
- ``"satterthwaite"``: with the model-based covariance the result's own; with a cluster
  sandwich (``"CR0"``, ``"CR2"``, ``"CR3"``, :mod:`lmm_core.inference.mmrm_random_sandwich`)
  its ``tr(G)^2 / sum(G^2)`` df over the clusters;
- ``"between-within"`` (SAS's ``DDFM=BW``) with the *top-level* grouping factor (the hospital)
  as the between level: SAS splits the residual df by its SUBJECT= effect, and with a RANDOM
  ``SUBJECT=hospital`` and a REPEATED ``SUBJECT=patient(hospital)`` the effect that all rows
  nest in is the hospital (our choice where SAS's documentation does not say which SUBJECT=
  wins). A column is *between* when it is constant within every cluster, else *within* (the
  intercept within); ``df_between = H - n_between - 1`` and ``df_within = n - H - n_within``
  (``H`` clusters, ``n`` rows, ``n_within`` not counting the intercept; the ``- 1`` only
  with an intercept), as :func:`lmm_core.inference.mmrm_fixef.between_within_df` with the
  subjects replaced by the clusters;
- ``"residual"`` (``n - p``) and ``"wald"`` (``inf``) with any covariance.

What is derived is kept in the result's ``derived`` dict (keys ``"kenward_roger"``,
``"sandwich_<kind>"``).
"""

from __future__ import annotations

import numpy as np

from lmm_core.inference.mmrm_kenward_roger import KenwardRogerPieces, kenward_roger_df
from lmm_core.inference.mmrm_random_kr import random_kenward_roger_pieces
from lmm_core.inference.mmrm_random_sandwich import random_sandwich_pieces, top_clusters
from lmm_core.inference.mmrm_sandwich import SandwichPieces, sandwich_df
from lmm_core.model.mmrm_random_results import MMRMRandomResult, register_random_inference


def random_kenward_roger(result: MMRMRandomResult) -> KenwardRogerPieces:
    """The Kenward-Roger pieces of a combined fit, computed once."""
    if "kenward_roger" not in result.derived:
        result.derived["kenward_roger"] = random_kenward_roger_pieces(result)
    return result.derived["kenward_roger"]


def random_sandwich(result: MMRMRandomResult, kind: str) -> SandwichPieces:
    """The ``kind`` cluster sandwich of a combined fit, computed once."""
    key = f"sandwich_{kind}"
    if key not in result.derived:
        result.derived[key] = random_sandwich_pieces(result, kind)
    return result.derived[key]


def random_between_within_df(result: MMRMRandomResult) -> np.ndarray:
    """Between-within df of each coefficient, the top-level factor as between level."""
    _, codes = top_clusters(result)
    design = result.design
    n_clusters = int(codes.max()) + 1
    names = list(design.x_names)
    has_intercept = "(Intercept)" in names
    within = np.array(
        [
            name == "(Intercept)"
            or len(np.unique(np.column_stack([design.X[:, j], codes]), axis=0)) > n_clusters
            for j, name in enumerate(names)
        ]
    )
    df_between = n_clusters - int((~within).sum()) - int(has_intercept)
    df_within = design.n - n_clusters - (int(within.sum()) - int(has_intercept))
    return np.where(within, float(df_within), float(df_between))


@register_random_inference
def random_inference(
    result: MMRMRandomResult, df_method: str, vcov_method: str
) -> tuple[np.ndarray, np.ndarray]:
    """``(covariance of beta, df per coefficient)`` for ``df_method`` and ``vcov_method``
    (validated by the caller)."""
    p = len(result.beta)
    if df_method.startswith("kenward"):
        kr = random_kenward_roger(result)
        vcov = kr.vcov if df_method == "kenward-roger" else kr.vcov_linear
        df = [kenward_roger_df(result.vcov_beta, row, kr.w_psi, kr.p_mats)[0] for row in np.eye(p)]
        return vcov, np.array(df)
    sandwich = None if vcov_method == "model" else random_sandwich(result, vcov_method)
    vcov = result.vcov_beta if sandwich is None else sandwich.vcov
    if df_method == "satterthwaite":
        if sandwich is None:
            df = np.array([result.satterthwaite_df(row) for row in np.eye(p)])
        else:
            df = sandwich_df(result.vcov_beta, sandwich, np.eye(p))
    elif df_method == "between-within":
        df = random_between_within_df(result)
    elif df_method == "residual":
        df = np.full(p, float(result.nobs - p))
    else:
        df = np.full(p, np.inf)
    return vcov, df
