"""The marginal covariance ``V`` of a combined fit (random effects plus a covariance of the
visits, :mod:`lmm_core.model.mmrm_random`) at its optimum, as sparse operators.

    V = Z G Z' + blockdiag_i Sigma_i = W^-1 + (Z Lam)(Z Lam)',    W = blockdiag_i Sigma_i^-1,

``Lam = blockdiag_k (I_{L_k} (x) s0 lambda_k)``. ``V^-1 M`` for an ``n x m`` matrix ``M`` is
applied by Woodbury, never forming ``V``::

    V^-1 M = W M - W Z Lam C^-1 Lam' Z' W M,    C = I + Lam' Z' W Z Lam,

with ``W`` and ``Z`` sparse and ``C`` factored once (sparse LU; block diagonal for one grouping
factor): ``O(n t m)`` per application. The covariance parameters ``gamma`` of Kenward-Roger
(:mod:`lmm_core.inference.mmrm_random_kr`) are

- per group of the structure, R mmrm's ``psi`` of ``Sigma`` (:mod:`lmm_core.inference.
  mmrm_theta`, as the MMRM's Kenward-Roger): ``dV = blockdiag_i dSigma_i`` over the subjects of
  that group, second derivatives ``blockdiag_i d2Sigma_i`` within one group;
- per random-effects term, its covariance parameters in outcome units, ``G_k = sum_l gamma_l
  E_l`` (:meth:`~lmm_core.design.covariance.CovarianceStructure.covariance_basis`: the
  variances and covariances, as lme4/pbkrtest and SAS): ``dV = Z (I_{L_k} (x) E_l) Z'``, linear,
  second derivatives zero.

Derivatives are never stored as ``n x n`` matrices: :meth:`Marginal.derivative` applies
``dV(u) = sum_k u_k dV_k`` in one direction ``u`` (subject by subject and level by level), and
:meth:`Marginal.forms` gives ``B' dV_k B`` for every ``k`` from per-pattern cross-products
``sum_i B_i (x) B_i`` (:mod:`lmm_core.inference.mmrm_subjects`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse import linalg as splinalg

from lmm_core.inference.mmrm_subjects import SubjectPattern, subject_patterns
from lmm_core.inference.mmrm_theta import psi_from_sigma, sigma_derivatives
from lmm_core.model.mmrm_random_results import MMRMRandomResult


def _block_diagonal(n: int, patterns: list[SubjectPattern], blocks: list[np.ndarray]):
    """Sparse ``n x n`` matrix with ``blocks[j]`` (``t x t``) at every subject of pattern
    ``j`` (rows and columns: the subject's rows in visit order)."""
    rows, cols, vals = [], [], []
    for pat, block in zip(patterns, blocks, strict=True):
        r = pat.rows
        t = r.shape[1]
        rows.append(np.repeat(r, t, axis=1).ravel())
        cols.append(np.tile(r, (1, t)).ravel())
        vals.append(np.broadcast_to(block.ravel(), (len(r), t * t)).ravel())
    return sparse.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
    )


def _cross(b: np.ndarray) -> np.ndarray:
    """``sum_i B_i (x) B_i`` of ``(subjects, t, p)`` as ``(t*t, p*p)``."""
    n, t, p = b.shape
    flat = b.reshape(n, t * p)
    return (flat.T @ flat).reshape(t, p, t, p).transpose(0, 2, 1, 3).reshape(t * t, p * p)


@dataclass
class _Term:
    """One merged random-effects term: its columns in ``Z`` and covariance basis."""

    offset: int
    levels: int
    size: int
    basis: np.ndarray  # (k, S, S)

    def block(self, M: np.ndarray) -> np.ndarray:
        """The term's rows of a ``(q, m)`` matrix as ``(levels, S, m)``."""
        return M[self.offset : self.offset + self.levels * self.size].reshape(
            self.levels, self.size, -1
        )


@dataclass
class Marginal:
    """``V^-1`` and the derivatives of ``V`` at a combined fit's optimum (module docstring).

    ``n_gamma`` parameters: the structure's (``n_structure``, group by group) then the terms'.
    """

    W: sparse.csr_matrix
    Z: sparse.csr_matrix
    WZL: sparse.csr_matrix
    lu: splinalg.SuperLU
    patterns: list[SubjectPattern]
    d1: list[np.ndarray]  # per group: dSigma/dpsi (kg, m, m)
    d2: list[np.ndarray]  # per group: d2Sigma (kg, kg, m, m)
    terms: list[_Term]

    @property
    def n_structure(self) -> int:
        return sum(len(d) for d in self.d1)

    @property
    def n_gamma(self) -> int:
        return self.n_structure + sum(len(t.basis) for t in self.terms)

    def solve(self, M: np.ndarray) -> np.ndarray:
        """``V^-1 M`` by Woodbury."""
        inner = self.lu.solve(np.asarray(self.WZL.T @ M))
        return self.W @ M - self.WZL @ inner

    def derivative(self, u: np.ndarray, M: np.ndarray) -> np.ndarray:
        """``dV(u) M = sum_k u_k dV_k M`` for ``M`` ``(n, m)``."""
        out = np.zeros_like(M)
        kg = len(self.d1[0])
        for pat in self.patterns:
            g, v = pat.group, pat.visits
            dsig = np.einsum("k,kab->ab", u[g * kg : (g + 1) * kg], self.d1[g][:, v][:, :, v])
            out[pat.rows] += np.einsum("ab,nbm->nam", dsig, M[pat.rows])
        zm = np.asarray(self.Z.T @ M)
        inner = np.zeros_like(zm)
        k = self.n_structure
        for t in self.terms:
            E = np.einsum("l,lab->ab", u[k : k + len(t.basis)], t.basis)
            k += len(t.basis)
            t.block(inner)[:] = np.einsum("ab,lbm->lam", E, t.block(zm))
        return out + self.Z @ inner

    def forms(self, B: np.ndarray, w: np.ndarray | None = None):
        """``B' dV_k B`` for every parameter ``(n_gamma, p, p)`` and, when ``w`` is given,
        ``sum_kl w_kl B' d2V_kl B`` (``(p, p)``)."""
        p = B.shape[1]
        kg = len(self.d1[0])
        out = np.zeros((self.n_gamma, p, p))
        second = np.zeros((p, p))
        for pat in self.patterns:
            g, v = pat.group, pat.visits
            t = len(v)
            cross = _cross(B[pat.rows])
            d1 = self.d1[g][:, v][:, :, v].reshape(kg, t * t)
            out[g * kg : (g + 1) * kg] += (d1 @ cross).reshape(kg, p, p)
            if w is not None:
                wg = w[g * kg : (g + 1) * kg, g * kg : (g + 1) * kg]
                s2 = np.einsum("kl,klab->ab", wg, self.d2[g][:, :, v][:, :, :, v])
                second += (s2.reshape(t * t) @ cross).reshape(p, p)
        zb = np.asarray(self.Z.T @ B)
        k = self.n_structure
        for term in self.terms:
            blk = term.block(zb)
            out[k : k + len(term.basis)] = np.einsum("lap,kab,lbq->kpq", blk, term.basis, blk)
            k += len(term.basis)
        return out, second


def random_design(result: MMRMRandomResult) -> tuple[sparse.csr_matrix, list[int]]:
    """``Z`` (sparse ``n x q``, the merged terms' columns level by level) and each term's
    first column."""
    n = result.design.n
    rows, cols, vals, offsets, start = [], [], [], [], 0
    for t in result.criterion.terms:
        S = t.n_columns
        rows.append(np.repeat(np.arange(n), S))
        cols.append((start + t.codes[:, None] * S + np.arange(S)).ravel())
        vals.append(t.z.ravel())
        offsets.append(start)
        start += t.n_levels * S
    Z = sparse.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, start)
    )
    return Z, offsets


def marginal(result: MMRMRandomResult) -> Marginal:
    """The operators of the module docstring at the fit's optimum."""
    design, crit = result.design, result.criterion
    res = design.residual
    assert res is not None
    theta_r, thetas = crit.split(result.opt.theta)
    sigmas = res.matrices(theta_r)
    patterns = subject_patterns(design)
    inv = [np.linalg.inv(sigmas[p.group][p.visits[:, None], p.visits]) for p in patterns]
    W = _block_diagonal(design.n, patterns, inv)
    Z, offsets = random_design(result)
    lam = sparse.block_diag(
        [
            sparse.kron(sparse.eye(t.n_levels), crit.s0 * t.structure.factor(th))
            for t, th in zip(crit.terms, thetas, strict=True)
        ],
        format="csr",
    )
    ZL = (Z @ lam).tocsr()
    WZL = (W @ ZL).tocsr()
    lu = splinalg.splu(sparse.csc_matrix(sparse.eye(ZL.shape[1]) + ZL.T @ WZL))
    derivs = [sigma_derivatives(res.structure, psi_from_sigma(res.structure, s)) for s in sigmas]
    terms = [
        _Term(off, t.n_levels, t.n_columns, t.structure.covariance_basis())
        for t, off in zip(crit.terms, offsets, strict=True)
    ]
    return Marginal(W, Z, WZL, lu, patterns, [d[0] for d in derivs], [d[1] for d in derivs], terms)


def _term_gamma(structure, cov: np.ndarray) -> np.ndarray:
    """``gamma`` with ``cov = sum_l gamma_l E_l`` (least squares; exact for the structure's
    own covariances)."""
    basis = structure.covariance_basis()
    return np.linalg.lstsq(basis.reshape(len(basis), -1).T, cov.ravel(), rcond=None)[0]


def kr_parameters(result: MMRMRandomResult, psi: np.ndarray) -> np.ndarray:
    """``gamma`` at the optimizer's ``psi``: mmrm's ``psi`` of each group's ``Sigma``, then
    each term's covariance parameters (outcome units)."""
    crit = result.criterion
    res = result.design.residual
    assert res is not None
    theta_r, _ = crit.split(psi)
    parts = [psi_from_sigma(res.structure, s) for s in res.matrices(theta_r)]
    for t, cov in zip(crit.terms, crit.covariances(psi), strict=True):
        parts.append(_term_gamma(t.structure, cov))
    return np.concatenate(parts)
