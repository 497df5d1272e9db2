"""Random-effects terms: one ``(lhs | group)`` of the formula, evaluated on the data.

For a term with grouping factor ``g`` (``m`` levels) and ``S`` columns in its left-hand side,
the model matrix block is ``Z_k = [z_r e_{g(r)}']`` (a Khatri-Rao product): row ``r`` holds
``z_r`` (length ``S``) in the columns of its level ``g(r)``. Columns are level-major: level
``i``, column ``j`` sits at ``i * S + j``.

The relative covariance factor of the term is a lower-triangular ``S x S`` matrix ``lambda``,
the same for every level, made from the term's slice of ``theta`` by its covariance structure
(:mod:`lmm_core.design.covariance`): unstructured for ``(x | g)``. :func:`amalgamate` merges
the terms on one grouping factor (``(t || g)`` gives two) into one term whose structure is the
direct sum of theirs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lmm_core.design.covariance import CovarianceStructure, direct_sum


@dataclass(frozen=True)
class ReTerm:
    """One random-effects term evaluated on the rows used by the fit.

    Attributes
    ----------
    group
        lme4's group name: ``"Subject"``, ``"cask:batch"`` for ``(1 | batch/cask)``.
    levels
        Level labels (strings), in lme4's order (sorted).
    codes
        Integer array ``(n,)``: the level index of each row.
    z
        Float array ``(n, S)``: the term's left-hand-side model matrix.
    cnames
        Column names of ``z`` as lme4 writes them (``"(Intercept)"``, ``"Days"``).
    structure
        The covariance structure: ``theta_k -> lambda`` (``GeneralCovariance(S)`` for
        ``(x | g)``).
    rebuild
        Opaque recipe that :func:`lmm_core.design.build.term_matrix` uses to evaluate ``z`` on
        new data with the same columns (factor levels, centring constants, ...).
    """

    group: str
    levels: tuple[str, ...]
    codes: np.ndarray
    z: np.ndarray
    cnames: tuple[str, ...]
    structure: CovarianceStructure = field(repr=False, compare=False)
    rebuild: object = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.structure.size != self.z.shape[1]:
            raise ValueError(
                f"the covariance structure has {self.structure.size} columns, the term "
                f"{self.z.shape[1]}"
            )

    @property
    def n_levels(self) -> int:
        return len(self.levels)

    @property
    def n_columns(self) -> int:
        """``S``, the number of random effects per level."""
        return self.z.shape[1]

    @property
    def n_theta(self) -> int:
        """Number of the term's parameters in ``theta``."""
        return self.structure.n_theta

    def theta_names(self) -> list[str]:
        """lme4-style names: ``Subject.(Intercept)``, ``Subject.Days.(Intercept)``, ..."""
        return self.structure.theta_names(self.group, self.cnames)


def amalgamate(
    terms: tuple[ReTerm, ...],
) -> tuple[tuple[ReTerm, ...], np.ndarray, list[list[tuple[int, slice]]]]:
    """Merge the terms that share a grouping factor into one term each (MixedModels.jl).

    ``(1 | g) + (0 + t | g)``, which ``(t || g)`` expands to, becomes one term with
    ``z = [1, t]`` and a diagonal ``lambda`` (:func:`lmm_core.design.covariance.direct_sum`):
    the same model, but its random effects form one ``2 x 2`` block per level instead of a
    dense block of all levels of the second term.

    Returns
    -------
    merged
        The terms, each grouping factor once, in the order of its first term.
    perm
        Index array: ``theta[perm]`` is theta in the order of ``merged``.
    parts
        For each merged term, ``(original term index, columns of z)`` of its pieces.
    """
    groups: dict[tuple, list[int]] = {}
    for k, t in enumerate(terms):
        groups.setdefault((t.group, t.levels), []).append(k)
    merged, perm, parts = [], [], []
    offsets = np.concatenate([[0], np.cumsum([t.n_theta for t in terms])]).astype(int)
    for members in groups.values():
        if len(members) > 1 and not all(
            np.array_equal(terms[k].codes, terms[members[0]].codes) for k in members
        ):
            members_list = [[k] for k in members]  # same labels, different rows: keep apart
        else:
            members_list = [members]
        for ks in members_list:
            perm.extend(np.arange(offsets[k], offsets[k + 1]) for k in ks)
            if len(ks) == 1:
                merged.append(terms[ks[0]])
                parts.append([(ks[0], slice(0, terms[ks[0]].n_columns))])
                continue
            pieces, start = [], 0
            for k in ks:
                pieces.append((k, slice(start, start + terms[k].n_columns)))
                start += terms[k].n_columns
            first = terms[ks[0]]
            merged.append(
                ReTerm(
                    group=first.group,
                    levels=first.levels,
                    codes=first.codes,
                    z=np.hstack([terms[k].z for k in ks]),
                    cnames=tuple(c for k in ks for c in terms[k].cnames),
                    structure=direct_sum([terms[k].structure for k in ks]),
                )
            )
            parts.append(pieces)
    perm_arr = np.concatenate(perm) if perm else np.zeros(0, dtype=int)
    return tuple(merged), perm_arr.astype(int), parts


def split_theta(terms: tuple[ReTerm, ...], theta: np.ndarray) -> list[np.ndarray]:
    """Each term's slice of ``theta`` (the terms' parameters one term after the other)."""
    bounds = np.cumsum([0] + [t.n_theta for t in terms])
    return [theta[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def term_factors(terms: tuple[ReTerm, ...], theta: np.ndarray) -> list[np.ndarray]:
    """Each term's ``S x S`` relative covariance factor ``lambda_k(theta_k)``."""
    return [t.structure.factor(th) for t, th in zip(terms, split_theta(terms, theta), strict=True)]


def column_rms(term: ReTerm) -> np.ndarray:
    """Root mean square of each column of the term's ``z`` (1 for a column of zeros): the
    unit in which :func:`theta_scale` measures that column's random effect."""
    if not term.z.shape[0]:
        return np.ones(term.n_columns)
    rms = np.sqrt(np.mean(term.z * term.z, axis=0))
    return np.where(np.isfinite(rms) & (rms > 0), rms, 1.0)


def theta_scale(terms: tuple[ReTerm, ...]) -> np.ndarray:
    """Unit of each ``theta`` element: the root mean square of its row's ``z`` column.

    With ``D`` the diagonal matrix of these values per term, ``lambda_s = D lambda`` is the
    relative covariance factor of the random effects of the rescaled columns ``z D^-1``
    (row ``i`` of a lower-triangular factor scales by ``d_i``, so ``lambda_s`` is lower
    triangular with the same bounds); each structure says what that does to its parameters
    (:meth:`~lmm_core.design.covariance.CovarianceStructure.theta_units`).
    ``phi = theta * theta_scale(terms)`` therefore does not change when a covariate changes its
    unit (time in seconds or in years): the optimizer, its stopping rules, derivative steps and
    the singularity test work on ``phi``.
    """
    out = [t.structure.theta_units(column_rms(t)) for t in terms]
    return np.concatenate(out) if out else np.zeros(0)
