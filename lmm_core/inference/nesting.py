"""Is one fitted model a special case of another?  And is the test on the boundary?

A likelihood-ratio test compares a smaller model with a larger one that contains it: every
model the smaller one can express, the larger one can express too (set some of its extra
parameters to zero). For two fits of ``y = X beta + Z b + e`` this holds when

* both model the same response on the same rows;
* every fixed-effect column of the smaller model is a column of the larger one (checked by
  name, and otherwise by the column space: ``X_small = X_large A`` for some ``A``);
* every random-effects term of the smaller model lies inside a term of the larger one with
  the same grouping factor: its columns are among (or in the span of) that term's columns.
  Two uncorrelated terms ``(1 | g) + (0 + t | g)`` lie inside the correlated ``(t | g)``, but
  not the other way round (the correlated term has a covariance the pair cannot express).
  Terms of the smaller model that share a larger term must have distinct columns.

When the larger model adds a variance (a new random intercept or slope), the smaller model
sets that variance to 0, which is on the boundary of its allowed values (a variance cannot be
negative). The usual chi-square reference is then wrong (conservative); when exactly one
variance is added, together with ``k`` covariances of the new effect with effects already in
its term, and the fixed effects are the same, the statistic follows the 50:50 mixture of
chi-square(k) and chi-square(k + 1) (Self & Liang 1987; Stram & Lee 1994), computed by
:func:`lmm_core.inference.lrt_table.chibar_pvalue` with ``df = k + 1``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from lmm_core.model.results import LMMResult

__all__ = ["BoundaryTest", "NestingCheck", "boundary_test_info", "check_nesting", "is_nested"]

_SPAN_TOL = 1e-8


@dataclass(frozen=True)
class NestingCheck:
    """Outcome of :func:`check_nesting`.

    Attributes
    ----------
    nested
        True when the smaller model is a special case of the larger one.
    reason
        One plain-language sentence: why (not).
    """

    nested: bool
    reason: str

    def __bool__(self) -> bool:
        return self.nested


@dataclass(frozen=True)
class BoundaryTest:
    """Which extra parameters the larger model adds, and whether the test is on the boundary.

    Attributes
    ----------
    added_fixed
        Names of fixed-effect columns only the larger model has.
    added_variances
        ``"group: column"`` of each random-effect variance only the larger model has.
    added_covariances
        ``"group: column1 x column2"`` of each covariance only the larger model has.
    on_boundary
        True when at least one added parameter is a variance (its null value, 0, is on the
        boundary of the parameter space): the naive chi-square p-value is too large.
    mixture_df
        ``df`` for :func:`lmm_core.inference.lrt_table.chibar_pvalue` (the 50:50 mixture of
        chi-square ``df - 1`` and ``df``) when that mixture is the right reference: exactly one
        variance added with its covariances, nothing else. ``None`` otherwise.
    """

    added_fixed: tuple[str, ...]
    added_variances: tuple[str, ...]
    added_covariances: tuple[str, ...]
    on_boundary: bool
    mixture_df: int | None


def _same_rows(small: LMMResult, large: LMMResult) -> str | None:
    """Why the two fits are not of the same response and rows, or None when they are."""
    if small.response != large.response:
        return f"they model different responses ({small.response} and {large.response})"
    if small.nobs != large.nobs or not np.array_equal(small.design.rows, large.design.rows):
        return (
            f"they were fitted to different rows ({small.nobs:,} and {large.nobs:,} observations)"
        )
    if not np.array_equal(small.y, large.y):
        return "their responses differ on the same rows"
    return None


def _in_span(a: np.ndarray, b: np.ndarray) -> bool:
    """True when every column of ``a`` is a linear combination of the columns of ``b``."""
    if a.shape[1] == 0:
        return True
    if b.shape[1] == 0:
        return False
    coef, *_ = np.linalg.lstsq(b, a, rcond=None)
    scale = max(float(np.abs(a).max()), 1.0)
    return bool(np.abs(a - b @ coef).max() <= _SPAN_TOL * scale * np.sqrt(a.shape[0]))


def _fixed_contained(small: LMMResult, large: LMMResult) -> bool:
    if set(small.x_names) <= set(large.x_names):
        return True
    return _in_span(np.asarray(small.design.X, float), np.asarray(large.design.X, float))


def _term_inside(term, host) -> bool:
    """Is the random-effects term ``term`` inside ``host`` (same group, columns contained)?"""
    if term.group != host.group or not np.array_equal(term.codes, host.codes):
        return False
    if set(term.cnames) <= set(host.cnames):
        return True
    return _in_span(np.asarray(term.z, float), np.asarray(host.z, float))


def _random_contained(small: LMMResult, large: LMMResult) -> str | None:
    """Why the random part of ``small`` is not inside that of ``large``, or None."""
    used: dict[int, list[str]] = {}
    for term in small.reterms:
        hosts = [i for i, host in enumerate(large.reterms) if _term_inside(term, host)]
        free = [i for i in hosts if not set(term.cnames) & set(used.get(i, []))]
        if not free:
            cols = " + ".join(term.cnames)
            if any(t.group == term.group for t in large.reterms):
                return (
                    f"the random effects ({cols} | {term.group}) of the smaller model are not "
                    f"part of one random-effects term of the larger model (e.g. a correlated "
                    f"term is not contained in uncorrelated ones)"
                )
            return f"the larger model has no random effects for {term.group}"
        used.setdefault(free[0], []).extend(term.cnames)
    return None


def check_nesting(small: LMMResult, large: LMMResult) -> NestingCheck:
    """Is ``small`` a special case of ``large``?

    Parameters
    ----------
    small, large
        Two fits; ``small`` should have no more parameters than ``large``.

    Returns
    -------
    NestingCheck
        ``nested`` and a one-sentence ``reason``.
    """
    problem = _same_rows(small, large)
    if problem:
        return NestingCheck(False, f"Not comparable: {problem}.")
    if small.npar > large.npar:
        return NestingCheck(False, "The first model has more parameters than the second.")
    if not _fixed_contained(small, large):
        extra = [n for n in small.x_names if n not in large.x_names]
        return NestingCheck(
            False,
            "Not nested: the smaller model has fixed effects the larger one lacks "
            f"({', '.join(extra)}).",
        )
    problem = _random_contained(small, large)
    if problem:
        return NestingCheck(False, f"Not nested: {problem}.")
    return NestingCheck(True, "Nested: the larger model contains every term of the smaller one.")


def is_nested(small: LMMResult, large: LMMResult) -> bool:
    """True when ``small`` is a special case of ``large`` (see :func:`check_nesting`)."""
    return check_nesting(small, large).nested


def _variance_parameters(result: LMMResult) -> tuple[Counter, Counter]:
    """Multisets of ``group: column`` variances and ``group: c1 x c2`` covariances."""
    variances: Counter = Counter()
    covariances: Counter = Counter()
    for term in result.reterms:
        names = list(term.cnames)
        for name in names:
            variances[f"{term.group}: {name}"] += 1
        for j, first in enumerate(names):
            for second in names[j + 1 :]:
                pair = " x ".join(sorted((first, second)))
                covariances[f"{term.group}: {pair}"] += 1
    return variances, covariances


def boundary_test_info(small: LMMResult, large: LMMResult) -> BoundaryTest:
    """The extra parameters of ``large`` over ``small`` and the boundary reference.

    Parameters
    ----------
    small, large
        Two fits, ``small`` nested in ``large`` (see :func:`check_nesting`).

    Returns
    -------
    BoundaryTest
        ``mixture_df`` is set when exactly one variance (plus ``mixture_df - 1`` covariances
        of that new effect) is added and the fixed effects are the same; then the p-value of
        the likelihood-ratio statistic is ``chibar_pvalue(chisq, mixture_df)``.

    Examples
    --------
    ``(1 | Subject)`` to ``(Days || Subject)`` adds one variance: ``mixture_df == 1`` (the
    p-value is half the naive one). ``(1 | Subject)`` to ``(Days | Subject)`` adds a variance
    and a covariance: ``mixture_df == 2``. ``(Days || Subject)`` to ``(Days | Subject)`` adds
    only a covariance: not on the boundary.
    """
    added_fixed = tuple(n for n in large.x_names if n not in set(small.x_names))
    var_s, cov_s = _variance_parameters(small)
    var_l, cov_l = _variance_parameters(large)
    added_var = tuple(sorted((var_l - var_s).elements()))
    added_cov = tuple(sorted((cov_l - cov_s).elements()))
    on_boundary = bool(added_var)
    counted = len(added_fixed) + len(added_var) + len(added_cov)
    mixture_df = None
    if (
        len(added_var) == 1
        and not added_fixed
        and set(small.x_names) == set(large.x_names)
        and counted == large.npar - small.npar
        and all(_touches(c, added_var[0]) for c in added_cov)
    ):
        mixture_df = 1 + len(added_cov)
    return BoundaryTest(added_fixed, added_var, added_cov, on_boundary, mixture_df)


def _touches(covariance: str, variance: str) -> bool:
    """Does the covariance ``"g: a x b"`` involve the effect of the variance ``"g: a"``?"""
    group, pair = covariance.split(": ", 1)
    v_group, v_name = variance.split(": ", 1)
    return group == v_group and v_name in pair.split(" x ")
