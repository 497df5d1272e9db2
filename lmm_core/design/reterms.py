"""Random-effects terms: one ``(lhs | group)`` of the formula, evaluated on the data.

For a term with grouping factor ``g`` (``m`` levels) and ``S`` columns in its left-hand side,
the model matrix block is ``Z_k = [z_r e_{g(r)}']`` (a Khatri-Rao product): row ``r`` holds
``z_r`` (length ``S``) in the columns of its level ``g(r)``. Columns are level-major: level
``i``, column ``j`` sits at ``i * S + j``.

The relative covariance factor of the term is a lower-triangular ``S x S`` matrix ``lambda``,
the same for every level; ``theta`` holds its lower triangle column-major (lme4's ``Lind``
order). Diagonal entries are bounded below by 0, off-diagonal ones are free. A term made by
:func:`amalgamate` (several terms on one grouping factor, as ``(t || g)`` gives) keeps some
entries of ``lambda`` at zero: its ``positions`` list the free ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


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
    rebuild
        Opaque recipe that :func:`lmm_core.design.build.term_matrix` uses to evaluate ``z`` on new
        data with the same columns (factor levels, centring constants, ...).
    """

    group: str
    levels: tuple[str, ...]
    codes: np.ndarray
    z: np.ndarray
    cnames: tuple[str, ...]
    rebuild: object = field(default=None, repr=False, compare=False)
    positions: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False, compare=False)

    @property
    def n_levels(self) -> int:
        return len(self.levels)

    @property
    def n_columns(self) -> int:
        """``S``, the number of random effects per level."""
        return self.z.shape[1]

    @property
    def n_theta(self) -> int:
        return len(self.theta_positions()[0])

    def theta_positions(self) -> tuple[np.ndarray, np.ndarray]:
        """Row and column of each theta element in ``lambda`` (lower triangle, column-major,
        unless :attr:`positions` says otherwise)."""
        if self.positions is not None:
            return self.positions
        s = self.n_columns
        rows, cols = [], []
        for j in range(s):
            for i in range(j, s):
                rows.append(i)
                cols.append(j)
        return np.array(rows, dtype=int), np.array(cols, dtype=int)

    def lower_bounds(self) -> np.ndarray:
        """0 for diagonal elements of ``lambda``, ``-inf`` for off-diagonal ones."""
        rows, cols = self.theta_positions()
        return np.where(rows == cols, 0.0, -np.inf)

    def initial_theta(self) -> np.ndarray:
        """lme4's start: 1 on the diagonal, 0 elsewhere."""
        rows, cols = self.theta_positions()
        return np.where(rows == cols, 1.0, 0.0)

    def lambda_block(self, theta_k: np.ndarray) -> np.ndarray:
        """The ``S x S`` lower-triangular factor for this term's slice of theta."""
        s = self.n_columns
        lam = np.zeros((s, s))
        rows, cols = self.theta_positions()
        lam[rows, cols] = theta_k
        return lam

    def theta_names(self) -> list[str]:
        """lme4-style names: ``Subject.(Intercept)``, ``Subject.Days.(Intercept)``, ..."""
        rows, cols = self.theta_positions()
        names = []
        for i, j in zip(rows, cols, strict=True):
            if i == j:
                names.append(f"{self.group}.{self.cnames[i]}")
            else:
                names.append(f"{self.group}.{self.cnames[i]}.{self.cnames[j]}")
        return names


def amalgamate(
    terms: tuple[ReTerm, ...],
) -> tuple[tuple[ReTerm, ...], np.ndarray, list[list[tuple[int, slice]]]]:
    """Merge the terms that share a grouping factor into one term each (MixedModels.jl).

    ``(1 | g) + (0 + t | g)``, which ``(t || g)`` expands to, becomes one term with
    ``z = [1, t]`` and a diagonal ``lambda``: the same model, but its random effects form one
    ``2 x 2`` block per level instead of a dense block of all levels of the second term.

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
            rows, cols, pieces, start = [], [], [], 0
            for k in ks:
                r, c = terms[k].theta_positions()
                rows.append(r + start)
                cols.append(c + start)
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
                    positions=(np.concatenate(rows), np.concatenate(cols)),
                )
            )
            parts.append(pieces)
    perm_arr = np.concatenate(perm) if perm else np.zeros(0, dtype=int)
    return tuple(merged), perm_arr.astype(int), parts


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
    triangular with the same bounds). ``phi = theta * theta_scale(terms)`` therefore does not
    change when a covariate changes its unit (time in seconds or in years): the optimizer,
    its stopping rules, derivative steps and the singularity test work on ``phi``.
    """
    out = [column_rms(t)[t.theta_positions()[0]] for t in terms]
    return np.concatenate(out) if out else np.zeros(0)
