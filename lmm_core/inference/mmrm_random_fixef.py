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

from lmm_core.inference.mmrm_fixef import between_within_by, derived, structured_inference
from lmm_core.inference.mmrm_kenward_roger import KenwardRogerPieces
from lmm_core.inference.mmrm_random_kr import random_kenward_roger_pieces
from lmm_core.inference.mmrm_random_sandwich import random_sandwich_pieces, top_clusters
from lmm_core.inference.mmrm_sandwich import SandwichPieces
from lmm_core.model.mmrm_random_results import MMRMRandomResult, register_random_inference


def random_kenward_roger(result: MMRMRandomResult) -> KenwardRogerPieces:
    """The Kenward-Roger pieces of a combined fit, computed once."""
    return derived(result, "kenward_roger", lambda: random_kenward_roger_pieces(result))


def random_sandwich(result: MMRMRandomResult, kind: str) -> SandwichPieces:
    """The ``kind`` cluster sandwich of a combined fit, computed once."""
    return derived(result, f"sandwich_{kind}", lambda: random_sandwich_pieces(result, kind))


def random_between_within_df(result: MMRMRandomResult) -> np.ndarray:
    """Between-within df of each coefficient, the top-level factor as between level."""
    _, codes = top_clusters(result)
    return between_within_by(result.design, codes)


@register_random_inference
def random_inference(
    result: MMRMRandomResult, df_method: str, vcov_method: str
) -> tuple[np.ndarray, np.ndarray]:
    """``(covariance of beta, df per coefficient)`` for ``df_method`` and ``vcov_method``
    (validated by the caller)."""
    return structured_inference(
        result,
        df_method,
        vcov_method,
        lambda: random_kenward_roger(result),
        lambda kind: random_sandwich(result, kind),
        lambda: random_between_within_df(result),
    )
