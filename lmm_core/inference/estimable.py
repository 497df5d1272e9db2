"""Tests of linear functions ``L beta`` for either kind of fit, and MMRM's type-III F tests.

One surface for a random-effects fit (:class:`~lmm_core.model.results.LMMResult`, through
:func:`~lmm_core.inference.fixed_effects.contrast_test`) and an MMRM fit
(:class:`~lmm_core.model.mmrm_results.MMRMResult`), so that LS-means and their contrasts are
computed the same way on both:

- :func:`row_tests`: for each row ``l`` of ``L``, the estimate ``l' b``, its standard error
  ``sqrt(l' C l)`` and the denominator df (MMRM: ``result.satterthwaite_df(l)``, mmrm's
  one-dimensional Satterthwaite df; ``"kenward-roger"`` and ``"kenward-roger-linear"``: the
  adjusted covariance ``Phi_A`` of :mod:`lmm_core.inference.mmrm_kenward_roger` and its df;
  ``"residual"``: ``n - p``; ``"wald"``: ``inf``);
- :func:`mmrm_f_test`: the F test of a several-row ``L`` as mmrm's ``df_md`` (and lmerTest):
  with ``L C L' = P diag(w) P'`` (rank ``q``), the rotated rows ``P' L`` are uncorrelated,
  ``F = sum_i (p_i' L b)^2 / w_i / q``; each rotated row has its Satterthwaite df ``nu_i`` and
  the denominator df is ``2E / (E - q)`` with ``E = sum nu_i / (nu_i - 2)`` (``nu_1`` when all
  are equal, 2 when any ``nu_i <= 2``). The F value depends only on the hypothesis, but
  this df depends on the basis chosen for it (the rotation is not invariant to ``L -> A L``):
  :func:`type3_tests` uses the type-III rows, as lmerTest does;
- :func:`type3_tests`: one type-III F test per model term (hypotheses of
  :func:`~lmm_core.inference.fixed_effects.type3_contrasts`), for either kind of fit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from lmm_core.errors import LMMError
from lmm_core.inference.fixed_effects import (
    ContrastTest,
    anova_table,
    contrast_test,
    type3_contrasts,
)
from lmm_core.inference.mmrm_kenward_roger import (
    KenwardRogerPieces,
    kenward_roger_df,
    kenward_roger_pieces,
)
from lmm_core.inference.mmrm_random_fixef import random_kenward_roger
from lmm_core.model.mmrm_random_results import MMRMRandomResult
from lmm_core.model.mmrm_results import MMRMResult

_ALIASES = {"kr": "kenward-roger", "kenward_roger": "kenward-roger", "normal": "wald"}
#: df methods for linear functions of an MMRM's fixed effects (between-within is defined
#: per coefficient only).
MMRM_METHODS = ("satterthwaite", "kenward-roger", "kenward-roger-linear", "residual", "wald")


def _mmrm_method(method: str) -> str:
    m = str(method).lower().replace(" ", "-").replace("_", "-")
    m = _ALIASES.get(m, m)
    if m not in MMRM_METHODS:
        raise LMMError(
            f"Degrees-of-freedom method {method!r} is not available for LS-means and F tests of "
            f"this model; choose one of {', '.join(MMRM_METHODS)}."
        )
    return m


def _kr_pieces(result: MMRMResult) -> KenwardRogerPieces:
    """The Kenward-Roger pieces of an MMRM fit, computed once (the same ``derived`` key as
    :mod:`lmm_core.inference.mmrm_fixef`); for random effects plus a covariance of the visits
    those of :mod:`lmm_core.inference.mmrm_random_kr`."""
    if isinstance(result, MMRMRandomResult):
        return random_kenward_roger(result)
    if "kenward_roger" not in result.derived:
        result.derived["kenward_roger"] = kenward_roger_pieces(result)
    return result.derived["kenward_roger"]


def _mmrm_vcov(result: MMRMResult, method: str) -> np.ndarray:
    if not method.startswith("kenward"):
        return result.vcov_beta
    kr = _kr_pieces(result)
    return kr.vcov if method == "kenward-roger" else kr.vcov_linear


def _mmrm_row_df(result: MMRMResult, row: np.ndarray, method: str) -> float:
    if method == "satterthwaite":
        return result.satterthwaite_df(row)
    if method.startswith("kenward"):
        kr = _kr_pieces(result)
        return kenward_roger_df(result.vcov_beta, row, kr.w_psi, kr.p_mats)[0]
    return float(result.nobs - result.design.p) if method == "residual" else float("inf")


def row_tests(result, L: np.ndarray, method: str = "satterthwaite") -> pd.DataFrame:
    """Estimate, standard error and df of each row of ``L`` (one t test per row).

    Parameters
    ----------
    result
        An :class:`~lmm_core.model.results.LMMResult` or an
        :class:`~lmm_core.model.mmrm_results.MMRMResult`.
    L
        ``(k, p)`` matrix of linear functions of the fixed effects.
    method
        Denominator df: ``"satterthwaite"``, ``"kenward-roger"`` (random-effects fits; the
        standard error is then the adjusted one), ``"residual"`` (MMRM) or ``"wald"``.

    Returns
    -------
    DataFrame
        Columns ``estimate``, ``std_error``, ``df`` (one row per row of ``L``).
    """
    L = np.atleast_2d(np.asarray(L, float))
    if isinstance(result, MMRMResult):
        m = _mmrm_method(method)
        est = L @ result.beta
        se = np.sqrt(np.einsum("ij,jk,ik->i", L, _mmrm_vcov(result, m), L))
        df = np.array([_mmrm_row_df(result, row, m) for row in L])
        return pd.DataFrame({"estimate": est, "std_error": se, "df": df})
    tests = [contrast_test(result, row, method=method) for row in L]
    return pd.DataFrame(
        {
            "estimate": [t.estimate for t in tests],
            "std_error": [t.std_error for t in tests],
            "df": [t.den_df for t in tests],
        }
    )


def md_denominator_df(nu: np.ndarray) -> float:
    """Combined df of ``q`` independent t statistics (mmrm's ``h_md_denom_df``)."""
    nu = np.asarray(nu, float)
    if np.all(np.abs(np.diff(nu)) < np.sqrt(np.finfo(float).eps)):
        return float(nu[0])
    if np.any(nu <= 2):
        return 2.0
    e = float(np.sum(nu / (nu - 2.0)))
    return 2.0 * e / (e - len(nu))


def mmrm_f_test(result: MMRMResult, L: np.ndarray, method: str = "satterthwaite") -> ContrastTest:
    """F test of ``L beta = 0`` for an MMRM fit (module docstring: mmrm's ``df_md``)."""
    m = _mmrm_method(method)
    L = np.atleast_2d(np.asarray(L, float))
    p = len(result.beta)
    if L.shape[1] != p:
        raise LMMError(f"The contrast has {L.shape[1]} columns; the model has {p} coefficients.")
    if m.startswith("kenward"):
        return _mmrm_kr_f_test(result, L, m)
    w, vecs = np.linalg.eigh(L @ result.vcov_beta @ L.T)
    order = np.argsort(w)[::-1]
    w, vecs = w[order], vecs[:, order]
    q = int(np.sum(w > w[0] * 1e-10)) if w.size and w[0] > 0 else 0
    if q == 0:
        raise LMMError("The hypothesis has no estimable row.")
    rotated = vecs[:, :q].T @ L
    est = rotated @ result.beta
    f = float(np.sum(est**2 / w[:q]) / q)
    if m == "satterthwaite":
        ddf = md_denominator_df(np.array([result.satterthwaite_df(r) for r in rotated]))
    else:
        ddf = _mmrm_row_df(result, rotated[0], m)
    pv = float(stats.f.sf(f, q, ddf)) if np.isfinite(ddf) else float(stats.chi2.sf(f * q, q))
    return ContrastTest(f, q, ddf, pv, m)


def _mmrm_kr_f_test(result: MMRMResult, L: np.ndarray, method: str) -> ContrastTest:
    """Kenward-Roger's scaled F (mmrm's ``df_md`` for Kenward-Roger): ``lambda d' (L Phi_A
    L')^-1 d / q`` with df ``m`` (rows reduced to a full-rank basis; KR is invariant to it)."""
    _, sv, vt = np.linalg.svd(L, full_matrices=False)
    q = int(np.sum(sv > sv[0] * 1e-10)) if sv.size and sv[0] > 0 else 0
    if q == 0:
        raise LMMError("The hypothesis has no estimable row.")
    lr = vt[:q]
    kr = _kr_pieces(result)
    ddf, scale = kenward_roger_df(result.vcov_beta, lr, kr.w_psi, kr.p_mats)
    d = lr @ result.beta
    f = scale * float(d @ np.linalg.solve(lr @ _mmrm_vcov(result, method) @ lr.T, d)) / q
    return ContrastTest(f, q, ddf, float(stats.f.sf(f, q, ddf)), method, f_scale=scale)


def type3_tests(result, df_method: str = "satterthwaite") -> pd.DataFrame:
    """Type-III F test of each fixed term (lmerTest's ``anova``; for MMRM, mmrm's ``df_md``).

    Returns
    -------
    DataFrame
        Index ``term``; columns ``num_df``, ``den_df``, ``F``, ``p_value`` (a random-effects
        fit also has lmerTest's ``sum_sq`` and ``mean_sq``).
    """
    if not isinstance(result, MMRMResult):
        return anova_table(result, method=df_method)
    rows = {}
    for term, L in type3_contrasts(result.design).items():
        if L.shape[0] == 0:
            continue
        test = mmrm_f_test(result, L, method=df_method)
        rows[term] = (test.num_df, test.den_df, test.F, test.p_value)
    table = pd.DataFrame.from_dict(
        rows, orient="index", columns=["num_df", "den_df", "F", "p_value"]
    )
    table.index.name = "term"
    return table
