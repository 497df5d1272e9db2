"""Random-effects terms: one ``(lhs | group)`` of the formula, evaluated on the data.

For a term with grouping factor ``g`` (``m`` levels) and ``S`` columns in its left-hand side,
the model matrix block is ``Z_k = [z_r e_{g(r)}']`` (a Khatri-Rao product): row ``r`` holds
``z_r`` (length ``S``) in the columns of its level ``g(r)``. Columns are level-major: level
``i``, column ``j`` sits at ``i * S + j``.

The relative covariance factor of the term is a lower-triangular ``S x S`` matrix ``lambda``,
the same for every level; ``theta`` holds its lower triangle column-major (lme4's ``Lind``
order). Diagonal entries are bounded below by 0, off-diagonal ones are free.
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
        Opaque recipe that :func:`lmm_core.design.term_matrix` uses to evaluate ``z`` on new
        data with the same columns (factor levels, centring constants, ...).
    """

    group: str
    levels: tuple[str, ...]
    codes: np.ndarray
    z: np.ndarray
    cnames: tuple[str, ...]
    rebuild: object = field(default=None, repr=False, compare=False)

    @property
    def n_levels(self) -> int:
        return len(self.levels)

    @property
    def n_columns(self) -> int:
        """``S``, the number of random effects per level."""
        return self.z.shape[1]

    @property
    def n_theta(self) -> int:
        s = self.n_columns
        return s * (s + 1) // 2

    def theta_positions(self) -> tuple[np.ndarray, np.ndarray]:
        """Row and column of each theta element in ``lambda`` (lower triangle, column-major)."""
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
