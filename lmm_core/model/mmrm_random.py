"""Random effects above the subject together with a covariance structure of its visits.

Model (``y ~ time * arm + (1 | hospital) + ar1(visit | patient)``): for every top-level group
(hospital) ``h``,

    y_h ~ N(X_h beta, V_h),    V_h = Z_h G Z_h' + blockdiag_i Sigma_i,

``Sigma_i`` the structure's covariance at subject ``i``'s visits
(:mod:`lmm_core.design.residual_structures`, parameters ``theta_R``) and ``G`` block diagonal
over the random-effects terms, ``I_{L_k} (x) G_k`` with ``G_k = s0^2 lambda_k lambda_k'``:
``lambda_k`` is the term's relative covariance factor (:mod:`lmm_core.design.covariance`) and
``s0`` the residual SD of the least-squares fit, a fixed unit of the outcome. Every subject lies
in one level of each grouping factor (checked).

Woodbury on ``W = blockdiag Sigma_i^-1``, with ``Lam = blockdiag(I (x) s0 lambda_k)``,
``T = Z'WZ`` and ``C = I + Lam' T Lam``::

    V^-1   = W - W Z Lam C^-1 Lam' Z' W,            log|V| = sum_i log|Sigma_i| + log|C|,
    X'V^-1X = X'WX - (Lam'Z'WX)' C^-1 (Lam'Z'WX)    (likewise X'V^-1y, y'V^-1y),

then ``beta`` is profiled out as in :mod:`lmm_core.model.mmrm`:
``-2 l_ML = log|V| + y'V^-1y - beta'X'V^-1y + n log(2 pi)``, REML adding
``log|X'V^-1X| - p log(2 pi)``.

Cost. Everything comes from the per-subject cross-products ``A_i' W_i A_i`` of
``A_i = [Zc_i, X_i, y_i]`` (``Zc_i``: the random-effects terms' columns of the subject's rows;
``d = q_z + p + 1`` columns), summed per *cell*: the subjects with the same group, the same
visits and the same levels of every grouping factor. A cell is kept either as its summed outer
products ``sum_i A_i (x) A_i`` (``t^2 d^2`` numbers: one contraction with ``W_p`` per
evaluation, whatever its number of subjects) or as its subjects' rows, whitened by ``L_p^-1``
at each evaluation (``t^2 d + t d^2`` flops per subject). The choice is by cost: outer
products when the cell has ``n_c >= t d / (t + d)`` subjects. In a trial, the complete-visit
pattern of each hospital (most patients) becomes one ``t^2 d^2`` block, and only the rarer
drop-out patterns cost per subject. Then ``T``, ``Z'WX`` and ``Z'Wy`` are scattered by level:
one ``S x S`` block per level for a single grouping factor (``C`` block diagonal), a dense
``q x q`` system for several factors.

Analytic gradient. With ``Q = V^-1 - u u' - V^-1 X M^-1 X' V^-1`` (ML: without the last term),
``u = V^-1 r``, ``M = X'V^-1X``, ``d(-2 l) = tr(Q dV)``. Writing ``b = Lam C^-1 Lam' Z'Wr`` (the
conditional modes), ``F = Lam C^-1 Lam' Z'WX``, ``K = Lam C^-1 Lam'``:

- the subject's diagonal block of ``Q`` is ``W_i - W_i A_i Phi A_i' W_i`` with
  ``Phi = c c' + E M^-1 E' + J K J'``, ``c = (-b_h, -beta, 1)``, ``E = (-F_h; I; 0)`` and ``J``
  placing ``K_h`` (the subject's levels) in the ``Zc`` rows: summed over a cell it is one
  contraction of the same outer products, so ``d(-2 l) / dSigma_p`` costs what the criterion
  costs, and goes to ``theta_R`` through the structure's analytic Jacobian;
- ``Z'QZ = T - T K T - z z' - D M^-1 D'`` with ``z = Z'Wr - T b`` and ``D = Z'WX - T F``; for
  term ``k``, ``d(-2 l) / d lambda_k = 2 s0^2 (sum_l (Z'QZ)_ll) lambda_k`` (diagonal blocks of
  its levels), and ``lambda_k`` is linear in its parameters.

Streamed (:meth:`RandomMMRMCriterion.from_sums`): a table that does not fit in memory gives
each cell as its summed outer products (:class:`CellSums`, :func:`cell_sums` per batch of
whole subjects, added over batches); all cells are then kept as outer products. What the
rows gave in memory comes from the cells: their row products ``sum_j cp[jj] = sum A'A`` give
the least-squares ``s0``, the columns' units of :func:`~lmm_core.design.reterms.theta_scale`
and the per-level sums of the start (:meth:`~RandomMMRMCriterion.level_sums`), and their
``X``/``y`` parts the MMRM's pattern sums for the moment covariances of the visits.

Parameters seen by the optimizer: ``psi = (theta_R, phi)`` with ``phi = theta_lambda *
theta_scale`` (:func:`lmm_core.design.reterms.theta_scale`): ``log sd`` shift and ``lambda``
relative to ``s0`` do not change when the outcome changes its unit, ``phi`` not when a
covariate does, so the optimizer and its stopping rules are unit-free.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg

from lmm_core.design.build import Design
from lmm_core.design.residual import ResidualTerm
from lmm_core.design.reterms import ReTerm, amalgamate, theta_scale
from lmm_core.errors import DataError, ModelError
from lmm_core.model.mmrm import (
    LOG_2PI,
    Evaluation,
    PatternSums,
    _summed_ols,
    moment_covariances,
    summed_moment_covariances,
)

#: Largest dense random-effects system (several grouping factors) accepted.
MAX_DENSE_Q = 3000


@dataclass
class _Cells:
    """Cells of one visit count ``t``, kept as outer products (``cp``) or as rows."""

    t: int
    groups: np.ndarray  # per pattern: group index
    visits: np.ndarray  # per pattern: (t,) visit indices
    counts: np.ndarray  # per pattern: subjects
    cell_pattern: np.ndarray  # per cell: pattern index (cells sorted by pattern)
    cp: np.ndarray | None = None  # (cells, t*t, d*d): sum_i A_i (x) A_i
    rows: np.ndarray | None = None  # (subjects, t, d)
    row_pattern: np.ndarray | None = None
    cell_starts: np.ndarray | None = None  # first subject of each cell
    pattern_starts: np.ndarray | None = None  # first subject of each pattern

    def blocks(self, sigmas: np.ndarray) -> np.ndarray:
        """``Sigma_p`` of every pattern: ``(patterns, t, t)``."""
        return sigmas[self.groups[:, None, None], self.visits[:, :, None], self.visits[:, None, :]]


def _subject_table(design: Design, terms: tuple[ReTerm, ...]):
    """Rows sorted by (subject, visit); per subject its first row, its visits and levels."""
    res = design.residual
    assert res is not None
    order = np.lexsort((res.visit_codes, res.subject_codes))
    subj = res.subject_codes[order]
    starts = np.flatnonzero(np.r_[True, subj[1:] != subj[:-1]])
    lengths = np.diff(np.r_[starts, len(subj)])
    levels = []
    for t in terms:
        codes = t.codes[order]
        first = np.repeat(codes[starts], lengths)
        bad = np.flatnonzero(codes != first)
        if bad.size:
            k = bad[0]
            i = starts[np.searchsorted(starts, k, side="right") - 1]
            rows = design.rows
            raise DataError(
                f"`{res.spec.subject.name}` in row {rows[order[i]] + 1} and row "
                f"{rows[order[k]] + 1} of the data is one subject in two levels of `{t.group}` "
                f"({t.levels[first[k]]} and {t.levels[codes[k]]}). Random effects with a "
                f"covariance of the visits need each subject within one level of every "
                "grouping factor (e.g. each patient in one hospital); check the ids."
            )
        levels.append(codes[starts])
    A = np.hstack([t.z for t in terms] + [design.X, design.y[:, None]])[order]
    return A, starts, lengths, res.group_codes[order][starts], res.visit_codes[order], levels


def _build_cells(design: Design, terms: tuple[ReTerm, ...], crossproducts: bool | None):
    """Group the subjects into cells; returns the batches and each cell's levels."""
    A, starts, lengths, groups, visits, levels = _subject_table(design, terms)
    d = A.shape[1]
    lev = np.column_stack(levels) if levels else np.zeros((len(starts), 0), dtype=int)
    batches, cell_levels = [], []
    for t in np.unique(lengths):
        sel = np.flatnonzero(lengths == t)
        vis = visits[starts[sel, None] + np.arange(t)]
        keys = np.column_stack([groups[sel], vis, lev[sel]])
        pat_keys, pat_of = np.unique(keys[:, : t + 1], axis=0, return_inverse=True)
        cell_keys, cell_of = np.unique(
            np.column_stack([pat_of, lev[sel]]), axis=0, return_inverse=True
        )
        n_c = np.bincount(cell_of, minlength=len(cell_keys))
        big = n_c >= t * d / (t + d) if crossproducts is None else np.full(len(n_c), crossproducts)
        rows = A[starts[sel, None] + np.arange(t)]  # (subjects, t, d)
        for keep in (big, ~big):
            cells = np.flatnonzero(keep)
            if not cells.size:
                continue
            members = np.flatnonzero(keep[cell_of])
            members = members[np.argsort(cell_of[members], kind="stable")]
            local = np.searchsorted(cells, cell_of[members])
            pats, cell_pat = np.unique(cell_keys[cells, 0], return_inverse=True)
            batch = _Cells(
                t=int(t),
                groups=pat_keys[pats, 0].astype(int),
                visits=pat_keys[pats, 1:].astype(int),
                counts=np.bincount(np.searchsorted(pats, pat_of[members]), minlength=len(pats)),
                cell_pattern=cell_pat,
            )
            cstarts = np.flatnonzero(np.r_[True, local[1:] != local[:-1]])
            if keep is big:
                ends = np.r_[cstarts[1:], len(members)]
                batch.cp = np.array(
                    [_outer(rows[members[a:b]]) for a, b in zip(cstarts, ends, strict=True)]
                )
            else:
                batch.rows = rows[members]
                batch.row_pattern = cell_pat[local]
                batch.cell_starts = cstarts
                batch.pattern_starts = np.flatnonzero(
                    np.r_[True, batch.row_pattern[1:] != batch.row_pattern[:-1]]
                )
            batches.append(batch)
            cell_levels.append(cell_keys[cells, 1:].astype(int))
    return batches, (np.vstack(cell_levels) if cell_levels else np.zeros((0, 0), int))


def _outer(rows: np.ndarray) -> np.ndarray:
    """``sum_i A_i (x) A_i`` as ``(t*t, d*d)``: entry ``(j k, a b) = sum_i A_ija A_ikb``."""
    n, t, d = rows.shape
    flat = rows.reshape(n, t * d)
    return (flat.T @ flat).reshape(t, d, t, d).transpose(0, 2, 1, 3).reshape(t * t, d * d)


class _Layout:
    """Where each cell's ``Zc`` columns go: one block per level (a single grouping factor) or
    one dense block of all ``q`` random effects (several)."""

    def __init__(self, terms: tuple[ReTerm, ...], cell_levels: np.ndarray, p: int):
        self.terms = terms
        sizes = [t.n_columns for t in terms]
        self.single = len(terms) == 1
        if self.single:
            self.n_blocks, self.s = terms[0].n_levels, sizes[0]
            blk = cell_levels[:, 0]
            cols = np.broadcast_to(np.arange(sizes[0]), (len(blk), sizes[0]))
        else:
            widths = [t.n_levels * s for t, s in zip(terms, sizes, strict=True)]
            self.offsets = np.r_[0, np.cumsum(widths)[:-1]].astype(int)
            self.n_blocks, self.s = 1, int(sum(widths))
            if self.s > MAX_DENSE_Q:
                raise ModelError(
                    f"The random-effects terms have {self.s} random effects together: too many "
                    f"for several grouping factors with a covariance of the visits (at most "
                    f"{MAX_DENSE_Q}); keep one grouping factor."
                )
            blk = np.zeros(len(cell_levels), dtype=int)
            cols = np.hstack([
                (o + cell_levels[:, k] * s)[:, None] + np.arange(s)
                for k, (o, s) in enumerate(zip(self.offsets, sizes, strict=True))
            ])  # fmt: skip
        self.blk, self.cols = blk, np.ascontiguousarray(cols)
        s, b = self.s, blk[:, None]
        self.zz = (b[:, :, None] * s * s + cols[:, :, None] * s + cols[:, None, :]).ravel()
        self.zx = (b[:, :, None] * s * p + cols[:, :, None] * p + np.arange(p)).ravel()
        self.zy = (b * s + cols).ravel()

    def scatter(self, values: np.ndarray, index: np.ndarray, shape: tuple) -> np.ndarray:
        size = int(np.prod(shape))
        return np.bincount(index, weights=values.ravel(), minlength=size).reshape(shape)

    def big_lambda(self, lams: list[np.ndarray]) -> np.ndarray:
        """``Lam`` per block: ``(1, s, s)`` (the same for every level, or the dense one)."""
        if self.single:
            return lams[0][None]
        return linalg.block_diag(
            *[np.kron(np.eye(t.n_levels), lam) for t, lam in zip(self.terms, lams, strict=True)]
        )[None]

    def term_sums(self, blocks: np.ndarray) -> list[np.ndarray]:
        """``sum_l`` of each term's diagonal ``S x S`` blocks of a ``(blocks, s, s)`` array."""
        if self.single:
            return [blocks.sum(0)]
        out = []
        for t, o in zip(self.terms, self.offsets, strict=True):
            L, S = t.n_levels, t.n_columns
            sub = blocks[0, o : o + L * S, o : o + L * S].reshape(L, S, L, S)
            out.append(np.einsum("iaib->ab", sub))
        return out


@dataclass
class _State:
    """One forward pass, kept for the gradient."""

    evaluation: Evaluation
    theta_r: np.ndarray
    sigmas: np.ndarray
    parts: list[tuple]  # per batch: (W_p, L_p^-1 or None, whitened rows or None)
    lams: list[np.ndarray]  # s0 lambda_k
    big: np.ndarray  # Lam, (1, s, s)
    T: np.ndarray
    ZX: np.ndarray
    Zy: np.ndarray
    C: np.ndarray
    Ft: np.ndarray  # C^-1 Lam' Z'WX
    ut: np.ndarray  # C^-1 Lam' Z'Wy


class RandomMMRMCriterion:
    """``-2`` times the (REML or ML) log-likelihood of random effects plus a covariance of
    the visits, as a function of ``psi = (theta_R, phi)`` (module docstring).

    ``crossproducts``: keep every cell as outer products (True), as rows (False), or choose
    by cost (None).
    """

    def __init__(self, design: Design, reml: bool, crossproducts: bool | None = None):
        self.design = design
        self.reml = bool(reml)
        self.n, self.p = design.X.shape
        self.residual = design.residual
        assert self.residual is not None
        self.terms, _, self.parts = amalgamate(design.reterms)
        self.n_r = self.residual.n_theta
        self.scale = theta_scale(self.terms)
        X, y = design.X, design.y
        resid = y - X @ np.linalg.lstsq(X, y, rcond=None)[0]
        self.s0 = float(np.sqrt(resid @ resid / max(self.n - self.p, 1))) or 1.0
        self.batches, cell_levels = _build_cells(design, self.terms, crossproducts)
        self.q_z = sum(t.n_columns for t in self.terms)
        self._finish(cell_levels)

    @classmethod
    def from_sums(
        cls,
        residual: ResidualTerm,
        reterms: tuple[ReTerm, ...],
        cells: list[CellSums],
        n: int,
        reml: bool,
    ) -> RandomMMRMCriterion:
        """The criterion of ``n`` rows known only through their cells' summed outer products
        (a streamed fit: :mod:`lmm_core.stream.mmrm_random`); every cell is kept as outer
        products, so an evaluation costs the same whatever the number of subjects.

        ``reterms`` are the design's terms (levels of the whole table; their rows are not
        used): the cells' ``Zc`` columns are those of the terms merged by grouping factor
        (:func:`~lmm_core.design.reterms.amalgamate`). What the rows gave in memory comes
        from the cells' row products ``A'A = sum_j cp[jj]`` (:meth:`row_products`): ``s0`` is
        the least-squares residual SD of ``X'X``, ``X'y``, ``y'y`` and the unit of each
        ``z`` column (:func:`~lmm_core.design.reterms.theta_scale`) is
        ``sqrt(sum z^2 / n)``, equal to the in-memory values up to rounding.
        """
        self = cls.__new__(cls)
        self.design = None  # type: ignore[assignment]
        self.reml = bool(reml)
        self.residual = residual
        self.terms, _, self.parts = amalgamate(tuple(reterms))
        self.q_z = sum(t.n_columns for t in self.terms)
        d = int(round(np.sqrt(cells[0].cp.shape[1])))
        self.n, self.p = int(n), d - self.q_z - 1
        self.n_r = residual.n_theta
        self.cells = cells
        _, rss = _summed_ols(self.pattern_sums())
        self.s0 = float(np.sqrt(rss / max(self.n - self.p, 1))) or 1.0
        self.scale = np.concatenate([
            t.structure.theta_units(rms) for t, rms in zip(self.terms, self.column_rms(),
                                                           strict=True)
        ])  # fmt: skip
        self.batches, cell_levels = _cells_from_sums(cells)
        self._finish(cell_levels)
        return self

    def _finish(self, cell_levels: np.ndarray) -> None:
        """The layout, bounds and factor Jacobians (both constructors)."""
        self.layout = _Layout(self.terms, cell_levels, self.p)
        self.lower = np.concatenate(
            [np.full(self.n_r, -np.inf)] + [t.structure.lower for t in self.terms]
        )
        self.is_variance = np.concatenate(
            [np.zeros(self.n_r, bool)] + [t.structure.is_variance for t in self.terms]
        )
        self._dlam = [_factor_jacobian(t) for t in self.terms]

    @property
    def n_theta(self) -> int:
        return len(self.lower)

    def split(self, psi: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """``theta_R`` and each term's parameters ``theta_k`` (``phi / theta_scale``)."""
        psi = np.asarray(psi, float)
        lam = psi[self.n_r :] / self.scale
        bounds = np.cumsum([0] + [t.n_theta for t in self.terms])
        return psi[: self.n_r], [lam[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

    def covariances(self, psi: np.ndarray) -> list[np.ndarray]:
        """``G_k = s0^2 lambda_k lambda_k'`` of each (merged) random-effects term."""
        _, thetas = self.split(psi)
        out = []
        for t, th in zip(self.terms, thetas, strict=True):
            lam = self.s0 * t.structure.factor(th)
            out.append(lam @ lam.T)
        return out

    # ------------------------------------------------------------------ from sums
    def row_products(self) -> np.ndarray:
        """Per cell of a summed criterion, ``sum_i A_i'A_i`` over its rows: ``(cells, d, d)``
        (the diagonal ``j = k`` of its outer products summed over the visits)."""
        d = self.q_z + self.p + 1
        return np.array([
            np.einsum("jjab->ab", c.cp.reshape(len(c.visits), len(c.visits), d, d))
            for c in self.cells
        ])  # fmt: skip

    def column_rms(self) -> list[np.ndarray]:
        """:func:`~lmm_core.design.reterms.column_rms` of each merged term of a summed
        criterion: ``sqrt(sum z^2 / n)`` per column (1 for a column of zeros)."""
        zz = np.diag(self.row_products().sum(0))[: self.q_z] / max(self.n, 1)
        rms = np.where(np.isfinite(zz) & (zz > 0), np.sqrt(np.abs(zz)), 1.0)
        bounds = np.cumsum([0] + [t.n_columns for t in self.terms])
        return [rms[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

    def pattern_sums(self) -> list[PatternSums]:
        """The MMRM's :class:`~lmm_core.model.mmrm.PatternSums` of a summed criterion: the
        ``X``/``y`` parts of its cells' outer products added per (group, visits)."""
        qz, d = self.q_z, self.q_z + self.p + 1
        out: dict[tuple, PatternSums] = {}
        for c in self.cells:
            t = len(c.visits)
            cp = c.cp.reshape(t, t, d, d)
            part = PatternSums(c.group, c.visits, c.n, cp[:, :, qz:-1, qz:-1].copy(),
                               cp[:, :, qz:-1, -1].copy(), cp[:, :, -1, -1].copy())  # fmt: skip
            key = (c.group, tuple(c.visits.tolist()))
            if key in out:
                out[key] += part
            else:
                out[key] = part
        return list(out.values())

    def start_covariances(self) -> list[np.ndarray]:
        """Each group's moment estimate of ``Sigma`` (:func:`~lmm_core.model.mmrm.
        moment_covariances` on the rows, or its summed form on the cells)."""
        if self.design is None:
            return summed_moment_covariances(self.residual, self.pattern_sums(), self.n)
        return moment_covariances(self.design)

    def level_sums(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """Per merged term of a summed criterion and per level ``l``, with ``r = y - X b``
        the least-squares residuals: rows ``n_l``, ``Z_l'Z_l``, ``Z_l'r_l`` and ``r_l'r_l``
        (what :func:`lmm_core.model.starts.moment_start` sums from the rows; a subject, so a
        cell, lies in one level of each term)."""
        beta, _ = _summed_ols(self.pattern_sums())
        aa = self.row_products()
        qz = self.q_z
        x = slice(qz, qz + self.p)
        resid = aa[:, :, -1] - aa[:, :, x] @ beta  # A'r without the y column's own terms
        rr = resid[:, -1] - resid[:, x] @ beta
        rows = np.array([c.n * len(c.visits) for c in self.cells], float)
        out, start = [], 0
        for k, t in enumerate(self.terms):
            z = slice(start, start + t.n_columns)
            codes = np.array([c.levels[k] for c in self.cells], dtype=np.int64)
            m = t.n_levels
            out.append((
                np.bincount(codes, weights=rows, minlength=m),
                _by_level(codes, aa[:, z, z], m),
                _by_level(codes, resid[:, z], m),
                np.bincount(codes, weights=rr, minlength=m),
            ))  # fmt: skip
            start += t.n_columns
        return out

    # ------------------------------------------------------------------ criterion
    def _cells(self, sigmas: np.ndarray) -> tuple[np.ndarray, float, list[tuple]]:
        """``A_i' W_i A_i`` summed per cell ``(cells, d, d)``, ``sum log|Sigma_i|``."""
        d = self.q_z + self.p + 1
        logdet, ms, parts = 0.0, [], []
        for b in self.batches:
            blocks = b.blocks(sigmas)
            chol = np.linalg.cholesky(blocks)
            logdet += 2.0 * float(b.counts @ np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(1))
            linv = np.linalg.inv(chol)
            inv = linv.transpose(0, 2, 1) @ linv
            if b.cp is not None:
                w = inv[b.cell_pattern].reshape(-1, 1, b.t * b.t)
                ms.append((w @ b.cp)[:, 0].reshape(-1, d, d))
                parts.append((inv, None, None))
            else:
                aw = linv[b.row_pattern] @ b.rows
                ms.append(np.add.reduceat(aw.transpose(0, 2, 1) @ aw, b.cell_starts, axis=0))
                parts.append((inv, linv, aw))
        return np.concatenate(ms), logdet, parts

    def _forward(self, psi: np.ndarray) -> _State:
        theta_r, thetas = self.split(psi)
        sigmas = np.array(self.residual.matrices(theta_r))
        M, logdet, parts = self._cells(sigmas)
        qz, p, lay = self.q_z, self.p, self.layout
        z, x = slice(0, qz), slice(qz, qz + p)
        tot = M.sum(0)
        shape = (lay.n_blocks, lay.s)
        T = lay.scatter(M[:, z, z], lay.zz, (*shape, lay.s))
        ZX = lay.scatter(M[:, z, x], lay.zx, (*shape, p))
        Zy = lay.scatter(M[:, z, -1], lay.zy, shape)
        lams = [self.s0 * t.structure.factor(th) for t, th in zip(self.terms, thetas, strict=True)]
        big = lay.big_lambda(lams)
        big_t = big.transpose(0, 2, 1)
        C = np.eye(lay.s) + big_t @ T @ big
        logdet += 2.0 * float(np.log(np.diagonal(np.linalg.cholesky(C), axis1=1, axis2=2)).sum())
        lzx, lzy = big_t @ ZX, (big_t @ Zy[..., None])[..., 0]
        Ft = np.linalg.solve(C, lzx)
        ut = np.linalg.solve(C, lzy[..., None])[..., 0]
        xtvx = tot[x, x] - np.einsum("bsp,bsq->pq", lzx, Ft)
        xtvx = (xtvx + xtvx.T) / 2.0
        xtvy = tot[x, -1] - np.einsum("bsp,bs->p", lzx, ut)
        ytvy = float(tot[-1, -1] - np.sum(lzy * ut))
        chol_x = linalg.cho_factor(xtvx, lower=True)
        beta = linalg.cho_solve(chol_x, xtvy)
        objective = logdet + ytvy - float(beta @ xtvy) + self.n * LOG_2PI
        if self.reml:
            objective += 2.0 * float(np.sum(np.log(np.diag(chol_x[0])))) - p * LOG_2PI
        ev = Evaluation(float(objective), beta, xtvx)
        return _State(ev, theta_r, sigmas, parts, lams, big, T, ZX, Zy, C, Ft, ut)

    def cluster_sums(self, psi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per level ``h`` of the single grouping factor (``V`` is block diagonal over them):
        ``S_h = X_h' V_h^-1 X_h`` and ``u_h = X_h' V_h^-1 r_h`` (``r = y - X beta``) at ``psi``,
        by Woodbury on the cells' ``A'WA`` summed per level, ``S_h = X'WX_h - F_h' C_h^-1 F_h``
        with ``F_h = Lam' Z'WX_h`` (no rows: what the cluster sandwich of a streamed fit
        needs, :mod:`lmm_core.inference.mmrm_random_sandwich`).

        Raises
        ------
        ModelError
            With several grouping factors (one dense system, not per cluster).
        """
        lay = self.layout
        if not lay.single:
            raise ModelError(
                "A sandwich covariance of a streamed fit is computed per level of a single "
                "grouping factor; with several, use vcov_method='model' or fit on a DataFrame."
            )
        st = self._forward(psi)
        M = self._cells(st.sigmas)[0]
        x = slice(self.q_z, self.q_z + self.p)
        xwx = _by_level(lay.blk, M[:, x, x], lay.n_blocks)
        xwy = _by_level(lay.blk, M[:, x, -1], lay.n_blocks)
        beta = st.evaluation.beta
        lzx = st.big.transpose(0, 2, 1) @ st.ZX  # (H, s, p)
        S = xwx - np.einsum("hsp,hsq->hpq", lzx, st.Ft)
        u = xwy - xwx @ beta - np.einsum("hsp,hs->hp", lzx, st.ut - st.Ft @ beta)
        return (S + S.transpose(0, 2, 1)) / 2.0, u

    def evaluate(self, psi: np.ndarray) -> Evaluation:
        """The criterion, ``beta`` and ``X'V^-1X`` at ``psi``."""
        return self._forward(psi).evaluation

    def __call__(self, psi: np.ndarray) -> float:
        try:
            return self.evaluate(psi).objective
        except _FAILURES:
            return float("inf")

    def modes(self, psi: np.ndarray) -> list[np.ndarray]:
        """Conditional modes ``b = G Z' V^-1 r`` of each term: ``(levels, S)``."""
        st = self._forward(psi)
        b = (st.big @ (st.ut - st.Ft @ st.evaluation.beta)[..., None])[..., 0]
        return self._per_term(b)

    def _per_term(self, b: np.ndarray) -> list[np.ndarray]:
        if self.layout.single:
            return [b]
        flat, out = b[0], []
        for t, o in zip(self.terms, self.layout.offsets, strict=True):
            out.append(flat[o : o + t.n_levels * t.n_columns].reshape(t.n_levels, t.n_columns))
        return out

    # ------------------------------------------------------------------ gradient
    def value_and_gradient(self, psi: np.ndarray) -> tuple[float, np.ndarray]:
        """The criterion and its analytic gradient in ``psi`` (module docstring)."""
        st = self._forward(psi)
        beta = st.evaluation.beta
        minv = np.linalg.inv(st.evaluation.xtvx) if self.reml else None
        big, big_t = st.big, st.big.transpose(0, 2, 1)
        b = (big @ (st.ut - st.Ft @ beta)[..., None])[..., 0]
        F = big @ st.Ft
        K = big @ np.linalg.solve(st.C, big_t)
        phi = self._phi(b, F, K, beta, minv)
        grad_r = self._residual_gradient(st, phi)
        zu = st.Zy - (st.ZX @ beta) - (st.T @ b[..., None])[..., 0]
        zqz = st.T - st.T @ K @ st.T - zu[:, :, None] * zu[:, None, :]
        if minv is not None:
            D = st.ZX - st.T @ F
            zqz = zqz - D @ minv @ D.transpose(0, 2, 1)
        grad_g = []
        for s_sum, lam, dlam in zip(self.layout.term_sums(zqz), st.lams, self._dlam, strict=True):
            g_lam = 2.0 * self.s0 * (s_sum @ lam)
            grad_g.append(np.einsum("lij,ij->l", dlam, g_lam))
        grad = np.concatenate([grad_r, *grad_g]) if grad_g else grad_r
        grad[self.n_r :] /= self.scale
        return st.evaluation.objective, grad

    def _phi(self, b, F, K, beta, minv) -> np.ndarray:
        """Per cell ``Phi = c c' + J K J' + E M^-1 E'`` (``(cells, d, d)``)."""
        lay, qz, p = self.layout, self.q_z, self.p
        blk, cols = lay.blk[:, None], lay.cols
        n_c = len(lay.blk)
        cvec = np.concatenate([-b[blk, cols], np.broadcast_to(-beta, (n_c, p)),
                               np.ones((n_c, 1))], axis=1)  # fmt: skip
        phi = cvec[:, :, None] * cvec[:, None, :]
        phi[:, :qz, :qz] += K[blk[:, :, None], cols[:, :, None], cols[:, None, :]]
        if minv is not None:
            E = np.zeros((n_c, qz + p + 1, p))
            E[:, :qz] = -F[blk, cols]
            E[:, qz : qz + p] = np.eye(p)
            phi += E @ minv @ E.transpose(0, 2, 1)
        return phi

    def _residual_gradient(self, st: _State, phi: np.ndarray) -> np.ndarray:
        """``d(-2 l) / dtheta_R`` through ``d(-2 l) / dSigma_p = n_p W_p - W_p S_p W_p``."""
        d = phi.shape[1]
        grad = np.zeros_like(st.sigmas)
        start = 0
        for b, (inv, linv, aw) in zip(self.batches, st.parts, strict=True):
            k = len(b.counts)
            if b.cp is not None:
                n_c = b.cp.shape[0]
                ph = phi[start : start + n_c].reshape(n_c, d * d, 1)
                tc = (b.cp @ ph)[:, :, 0].reshape(n_c, b.t, b.t)
                s = np.zeros((k, b.t, b.t))
                np.add.at(s, b.cell_pattern, tc)
                g = b.counts[:, None, None] * inv - inv @ s @ inv
            else:
                n_c = len(b.cell_starts)
                sizes = np.diff(np.r_[b.cell_starts, len(aw)])
                ph = np.repeat(phi[start : start + n_c], sizes, axis=0)
                s = np.add.reduceat(aw @ ph @ aw.transpose(0, 2, 1), b.pattern_starts, axis=0)
                g = b.counts[:, None, None] * inv - linv.transpose(0, 2, 1) @ s @ linv
            start += n_c
            np.add.at(grad, (b.groups[:, None, None], b.visits[:, :, None],
                             b.visits[:, None, :]), g)  # fmt: skip
        structure, k = self.residual.structure, self.residual.structure.n_theta
        jacs = [structure.jacobian(st.theta_r[g * k : (g + 1) * k]) for g in range(len(grad))]
        return np.concatenate(
            [np.einsum("lij,ij->l", j, gs) for j, gs in zip(jacs, grad, strict=True)]
        )


_FAILURES = (linalg.LinAlgError, np.linalg.LinAlgError, ValueError, FloatingPointError)


def _by_level(codes: np.ndarray, values: np.ndarray, m: int) -> np.ndarray:
    """``values`` (``(cells, ...)``) summed per level code: ``(m, ...)``."""
    out = np.zeros((m, *values.shape[1:]))
    np.add.at(out, codes, values)
    return out


@dataclass
class CellSums:
    """One cell's subjects kept only as their summed outer products (what a streamed fit
    accumulates): ``n`` subjects of group ``group`` with the visits ``visits`` and the level
    ``levels[k]`` of each merged term ``k``; ``cp = sum_i A_i (x) A_i`` as ``(t*t, d*d)``,
    ``A_i = [Zc_i, X_i, y_i]`` (:func:`_outer`)."""

    group: int
    visits: np.ndarray
    levels: np.ndarray
    n: int
    cp: np.ndarray

    @property
    def key(self) -> tuple:
        return (self.group, tuple(self.visits.tolist()), tuple(self.levels.tolist()))

    def __iadd__(self, other: CellSums) -> CellSums:
        self.n += other.n
        self.cp += other.cp
        return self


def cell_sums(A: np.ndarray, subjects: np.ndarray, visits: np.ndarray, groups: np.ndarray,
              levels: np.ndarray) -> list[CellSums]:  # fmt: skip
    """The cells of some whole subjects: rows ``A = [Zc, X, y]`` with their subject, visit and
    group codes and the level of each merged term (``(rows, terms)``; constant within a
    subject, checked by the caller)."""
    order = np.lexsort((visits, subjects))
    subj = subjects[order]
    starts = np.flatnonzero(np.r_[True, subj[1:] != subj[:-1]])
    lengths = np.diff(np.r_[starts, len(subj)])
    A, vis = A[order], visits[order]
    grp, lev = groups[order][starts], levels[order][starts]
    out = []
    for t in np.unique(lengths):
        sel = np.flatnonzero(lengths == t)
        idx = starts[sel, None] + np.arange(t)
        keys, of = np.unique(np.column_stack([grp[sel], vis[idx], lev[sel]]), axis=0,
                             return_inverse=True)  # fmt: skip
        of = np.ravel(of)
        members = np.argsort(of, kind="stable")
        bounds = np.r_[0, np.cumsum(np.bincount(of, minlength=len(keys)))]
        rows = A[idx]
        for key, a, b in zip(keys, bounds[:-1], bounds[1:], strict=True):
            out.append(CellSums(int(key[0]), key[1 : t + 1].astype(np.int64),
                                key[t + 1 :].astype(np.int64), int(b - a),
                                _outer(rows[members[a:b]])))  # fmt: skip
    return out


def _cells_from_sums(cells: list[CellSums]) -> tuple[list[_Cells], np.ndarray]:
    """:func:`_build_cells` for cells known by their sums: one outer-product batch per visit
    count, cells sorted by pattern; returns the batches and each cell's levels."""
    batches, cell_levels = [], []
    for t in sorted({len(c.visits) for c in cells}):
        mine = [c for c in cells if len(c.visits) == t]
        pats = np.array([[c.group, *c.visits.tolist()] for c in mine], dtype=np.int64)
        keys, of = np.unique(pats, axis=0, return_inverse=True)
        of = np.ravel(of)
        order = np.argsort(of, kind="stable")
        batches.append(
            _Cells(
                t=int(t),
                groups=keys[:, 0].astype(int),
                visits=keys[:, 1:].astype(int),
                counts=np.bincount(of, weights=[c.n for c in mine], minlength=len(keys)).astype(
                    int
                ),
                cell_pattern=of[order],
                cp=np.array([mine[i].cp for i in order]),
            )
        )
        cell_levels.append(np.array([mine[i].levels for i in order], dtype=int).reshape(
            len(mine), -1))  # fmt: skip
    return batches, np.vstack(cell_levels)


def _factor_jacobian(term: ReTerm) -> np.ndarray:
    """``d lambda / d theta_l`` (``(n_theta, S, S)``): every structure's factor is linear in its
    parameters, so central differences of unit steps are exact."""
    st, k = term.structure, term.n_theta
    base = np.zeros(k)
    out = []
    for i in range(k):
        e = np.zeros(k)
        e[i] = 1.0
        out.append((st.factor(base + e) - st.factor(base - e)) / 2.0)
    return np.array(out)
