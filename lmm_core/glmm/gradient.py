"""The analytic gradient of a GLMM's Laplace deviance in ``(theta, beta)``.

lme4's Laplace deviance (:mod:`lmm_core.glmm.pirls`) at ``(theta, beta)`` is::

    F(theta, beta) = f(u~) + log |A|,    f(u) = sum_i d_i(eta_i) + u'u,
    A = Lambda' Z' W Z Lambda + I = L_Z L_Z',

with ``eta = offset + X beta + Z Lambda u``, the conditional mode ``u~`` minimising ``f`` and the
working weights ``W = W(eta(u~))``. Write, per observation (:func:`~lmm_core.glmm.family.
eta_derivatives`), ``s_i = (1/2) dd_i/deta``, ``W_i``, the observed information
``O_i = (1/2) d^2 d_i / deta^2`` (``= W_i`` for a canonical link) and ``W'_i = dW_i/deta``: the
third derivative of the log-likelihood enters through ``W'``.

*The mode.* ``u~`` solves ``Lambda' Z' s + u = 0``; differentiating (implicit function theorem)
with ``H = Lambda' Z' O Z Lambda + I`` (the Hessian of ``f / 2`` in ``u``)::

    H du~ = -(dLambda' Z' s + Lambda' Z' O deta_0),   deta_0 = X dbeta + Z dLambda u~,

and ``deta = deta_0 + Z Lambda du~``. Since ``df/du = 0`` at the mode, ``f`` contributes only its
partial derivative ``2 s' deta_0``.

*The log-determinant.* ``d log |A| = 2 tr(A^-1 Lambda' Z' W Z dLambda) + sum_i W'_i h_i deta_i``
with the leverages ``h_i = zl_i' A^-1 zl_i`` (``zl_i`` row ``i`` of ``Z Lambda``). With
``c = W' h``, one adjoint solve ``v = H^-1 Lambda' Z' c`` and ``zeta = Z Lambda v`` remove ``du~``::

    c' deta = c' deta_0 - v' dLambda' Z' s - zeta' O deta_0.

*lme4's first stage* (``beta`` optimised with ``u`` at each ``theta``, ``nAGQ = 0``): the same
with the joint Hessian in ``(u, beta)`` for ``H``, ``v = H^-1 (Lambda' Z' c, X' c)`` and
``zeta = Z Lambda v_u + X v_beta``; only the ``theta`` part is returned (``X' e = 0`` there).

*The gradient.* With ``e = 2 s + c - O zeta``::

    dF/dbeta = X' e,
    dF/dtheta_k = sum_i (z_i dLambda_k) . (e_i u~_i + 2 W_i K_i - s_i v_i)
                = sum(D_k * Q_t),   Q_t = sum_i z_i (e_i u~_i + 2 W_i K_i - s_i v_i)',

for a parameter of term ``t`` (``D_k = dlambda_t / dtheta_k``, the same for all its levels;
``z_i`` the row of the term's ``Z``, ``u~_i`` and ``v_i`` the term's block at row ``i``'s level,
``K_i`` that block of ``A^-1 zl_i``). Every structure of :mod:`lmm_core.design.covariance` is
linear in ``theta``, so ``D_k`` is a constant matrix.

``A^-1`` is needed only at the pairs of random effects that share a row: the first term's
diagonal blocks and, with further terms, the dense ``q2 x q1`` and ``q2 x q2`` blocks of
``A^-1`` from the blocked factor (:class:`~lmm_core.glmm.factor.Factor`); when those would be
too large (:data:`MAX_DENSE`) the gradient is not available and the fit uses differences.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.linalg import lapack

from lmm_core.glmm.factor import Factor, WeightedSystem
from lmm_core.glmm.family import eta_derivatives
from lmm_core.glmm.pirls import GLMMCriterion, PIRLSState

#: largest ``q1 * q2`` (entries of the dense off-diagonal block of ``A^-1``) for the gradient
MAX_DENSE = 20_000_000


class LaplaceGradient:
    """The gradient of lme4's Laplace deviance (``-2 log L`` up to a constant) at a mode.

    Parameters
    ----------
    crit
        The criterion; ``available`` is False when the model is too large for the dense
        blocks of ``A^-1`` (crossed terms with many levels).
    """

    def __init__(self, crit: GLMMCriterion) -> None:
        self.crit = crit
        sys = crit.system
        self.available = sys.q2 == 0 or sys.q1 * sys.q2 <= MAX_DENSE
        self.bases = [_factor_basis(t.structure) for t in sys.merged]
        offsets = np.cumsum([0] + [t.n_columns for t in sys.merged[1:]])
        self.cols = [None] + [slice(a, b) for a, b in zip(offsets[:-1], offsets[1:], strict=True)]

    def __call__(self, state: PIRLSState, free_beta: bool = False) -> np.ndarray | None:
        """``dF/d(theta, beta)`` in the units of ``theta`` and ``beta``; None if the
        observed-information factor fails (not positive definite).

        ``free_beta``: the state is lme4's first-stage mode (``beta`` optimised with ``u``);
        the gradient of that profiled criterion in ``theta`` alone, the adjoint system then
        being the joint one in ``(u, beta)``: ``zeta = Z Lambda v_u + X v_beta``.
        """
        crit, sys = self.crit, self.crit.system
        d = eta_derivatives(crit.family, crit.y, crit.w, state.eta, state.mu)
        zl = state.zl
        reuse = crit.family.canonical and (state.factor.l_x is not None or not free_beta)
        try:
            hfac = state.factor if reuse else sys.factor(zl, d.observed, with_x=free_beta)
        except np.linalg.LinAlgError:
            return None
        k_rows = self._split(row_solves(state.factor, sys, zl))
        lev = sum(np.einsum("ij,ij->i", a, k) for a, k in zip(zl, k_rows, strict=True))
        c = d.dweights * lev
        if free_beta:
            v, v_beta = hfac.solve_joint(sys.t_times(zl, c), crit.X.T @ c)
            zeta = sys.times_u(zl, v) + crit.X @ v_beta
        else:
            v = hfac.backward(hfac.forward(sys.t_times(zl, c)))
            zeta = sys.times_u(zl, v)
        e = 2.0 * d.half_score + c - d.observed * zeta
        u_rows, v_rows = self._term_rows(state.u), self._term_rows(v)
        g_merged = []
        for t, term in enumerate(sys.merged):
            r = e[:, None] * u_rows[t] + 2.0 * d.weights[:, None] * k_rows[t]
            r -= d.half_score[:, None] * v_rows[t]
            q = term.z.T @ r
            g_merged.extend(float(np.sum(dk * q)) for dk in self.bases[t])
        g_theta = np.empty(len(g_merged))
        g_theta[sys.perm] = g_merged
        return g_theta if free_beta else np.concatenate([g_theta, crit.X.T @ e])

    def _split(self, rows: list[np.ndarray]) -> list[np.ndarray]:
        """``[first, rest]`` of :func:`row_solves` as one ``(n, S_t)`` array per merged term."""
        if len(rows) == 1:
            return rows
        return [rows[0]] + [rows[1][:, c] for c in self.cols[1:]]

    def _term_rows(self, u: np.ndarray) -> list[np.ndarray]:
        """Each merged term's block of ``u`` at each row's level, ``(n, S_t)``."""
        sys = self.crit.system
        out = [u[: sys.q1][sys.z1_idx]]
        if sys.q2:
            rest = u[sys.q1 :][sys.cols2]
            out += [rest[:, c] for c in self.cols[1:]]
        return out


def _factor_basis(structure) -> list[np.ndarray]:
    """``d lambda / d theta_k`` for each parameter of a (linear) covariance structure."""
    out = []
    for k in range(structure.n_theta):
        e = np.zeros(structure.n_theta)
        e[k] = 1.0
        out.append(0.5 * (structure.factor(e) - structure.factor(-e)))
    return out


def row_solves(fac: Factor, sys: WeightedSystem, zl: list[np.ndarray]) -> list[np.ndarray]:
    """For every row ``i``, ``A^-1 zl_i`` at the random effects of that row: ``[K1]`` with
    ``K1`` ``(n, S1)`` (first term), and ``K2`` ``(n, sum S_k)`` for the other terms (in the
    column order of ``sys.cols2``).

    With ``L^-1 = [[W, 0], [-M, L22^-1]]`` (``W = L11^-1``, ``M = L22^-1 B``, ``B = L21 W``),
    the blocks of ``A^-1 = L^-T L^-1`` are ``C22 = (L22 L22')^-1`` (LAPACK ``potri``),
    ``C21 = -C22 B`` and ``C11 = W'W + B' C22 B = W'W - B' C21`` (only its diagonal blocks
    are needed). ``B`` is sparse when ``L21`` is: then ``C21`` costs ``nnz(B) q2``, not
    ``q1 q2^2``.
    """
    codes = sys.codes1
    linv = fac.l11_inv
    zl1 = zl[0]
    if fac.l22 is None:
        rows = linv[codes]
        y = np.einsum("nst,nt->ns", rows, zl1)
        return [np.einsum("nst,ns->nt", rows, y)]
    m1, s1, _ = linv.shape
    q2 = fac.l22.shape[0]
    c22 = _cholesky_inverse(fac.l22)
    if sparse.issparse(fac.l21):
        blocks = sparse.csr_matrix(
            (linv.reshape(-1), sys.l11t_indices, sys.l11t_indptr), shape=(sys.q1, sys.q1)
        )
        b = fac.l21 @ blocks
        c21 = -np.asarray(b.T @ c22).T
        b = b.toarray()
    else:
        b = np.einsum("qis,ist->qit", fac.l21.reshape(q2, m1, s1), linv).reshape(q2, -1)
        c21 = -(c22 @ b)
    b, c21 = b.reshape(q2, m1, s1), c21.reshape(q2, m1, s1)
    c11 = np.einsum("ist,isu->itu", linv, linv) - np.einsum("qit,qiu->itu", b, c21)
    cols2 = sys.cols2
    zl2 = np.hstack(zl[1:])
    g = c21[cols2, codes[:, None], :]  # (n, k2, S1)
    k1 = np.einsum("nst,nt->ns", c11[codes], zl1) + np.einsum("nas,na->ns", g, zl2)
    k2 = np.einsum("nas,ns->na", g, zl1)
    k2 += np.einsum("nab,nb->na", c22[cols2[:, :, None], cols2[:, None, :]], zl2)
    return [k1, k2]


def _cholesky_inverse(low: np.ndarray) -> np.ndarray:
    """``(L L')^-1`` from the lower Cholesky factor ``L`` (LAPACK ``dpotri``), symmetric."""
    inv, info = lapack.dpotri(low, lower=1)
    if info != 0:
        raise np.linalg.LinAlgError("singular Cholesky factor")
    lower = np.tril(inv)
    return lower + np.tril(lower, -1).T


__all__ = ["MAX_DENSE", "LaplaceGradient", "row_solves"]
