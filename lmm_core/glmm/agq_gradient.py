"""The adaptive Gauss-Hermite log-likelihood of a GLMM and its gradient in ``(theta, beta)``.

With one scalar random effect (:mod:`lmm_core.glmm.agq`), group ``i`` contributes::

    F_i = log s_i + log sum_k omega_k exp(t_k^2 / 2 + g_i(a_ik)),   a_ik = u~_i + s_i t_k,
    g_i(a) = sum_{r in i} log p(y_r | eta_r(a)) - a^2 / 2,   eta_r(a) = o_r + x_r' beta + zl_r a,

``zl_r = z_r lambda(theta)``, the conditional mode ``u~_i`` (``g_i'(u~_i) = 0``) and the node
scale ``s_i = D_i^-1/2``, ``D_i = 1 + sum_r W_r zl_r^2`` (working weights ``W`` at the mode, as
lme4). Both the nodes' centre and their scale move with the parameters, so the total derivative
of ``F_i`` in a parameter ``psi`` (``theta`` or an element of ``beta``) is, with the posterior
node weights ``p_ik = softmax_k(log omega_k + t_k^2 / 2 + g_i(a_ik))``::

    dF_i/dpsi = s_i^-1 ds_i/dpsi
                + sum_k p_ik [ dg_i/dpsi(a_ik) + g_i'(a_ik) (du~_i/dpsi + t_k ds_i/dpsi) ],

where ``dg_i/dpsi`` is the partial derivative at fixed ``a``: ``sum_r sc_rk x_r`` for ``beta``
and ``sum_r sc_rk z_r lambda' a_ik`` for ``theta`` (``sc_rk = d log p / d eta`` at node ``k``,
``lambda' = d lambda / d theta``), and ``g_i'(a) = sum_r sc_r(a) zl_r - a``.

*The mode* (implicit function theorem on ``g_i'(u~_i) = 0``), with the observed information
``O_r = -d^2 log p / d eta^2`` and the score ``sc_r`` at the mode, ``H_i = 1 + sum_r O_r zl_r^2``::

    du~_i/dbeta = -sum_r O_r zl_r x_r / H_i,
    du~_i/dtheta = lambda' sum_r (sc_r - O_r zl_r u~_i) z_r / H_i.

*The scale*: ``ds_i = -(1/2) s_i^3 dD_i`` with ``dD_i = sum_r W'_r zl_r^2 deta_r + 2 lambda'
sum_r W_r zl_r z_r dtheta`` (``W' = dW / deta``) and the total change of the linear predictor
at the mode ``deta_r = x_r' dbeta + z_r lambda' u~_i dtheta + zl_r du~_i``.

For ``K = 1`` (``t = 0``, ``p = 1``) this is the gradient of the Laplace approximation. The
quadrature integrand uses the binomial kernel with ``round(w)`` trials and ``round(w y)``
successes (as :meth:`~lmm_core.glmm.family.Family.loglik_kernel`), the mode and scale the prior
weights as given (the same for whole counts).
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from lmm_core.glmm.agq import gh_rule
from lmm_core.glmm.family import eta_derivatives
from lmm_core.glmm.pirls import GLMMCriterion, PIRLSState


class AGQGradient:
    """``-2 log L`` by ``nagq``-point adaptive quadrature and its gradient in ``(theta,
    beta)`` (one scalar random-effects term).

    Parameters
    ----------
    crit
        The criterion (one random-effects term of one column).
    nagq
        Number of quadrature points.
    """

    available = True

    def __init__(self, crit: GLMMCriterion, nagq: int) -> None:
        sys = crit.system
        if sys.q2 or sys.s1 != 1:
            raise ValueError("adaptive quadrature needs one scalar random-effects term")
        self.crit = crit
        term = sys.merged[0]
        self.z = np.asarray(term.z, float)[:, 0]
        self.codes, self.m = sys.codes1, sys.m1
        self.sums = sys.sums1
        self.nodes, self.logw = gh_rule(nagq)
        self.node_const = self.logw + 0.5 * self.nodes**2
        one = np.ones(term.structure.n_theta)
        self.dlam = float(0.5 * (term.structure.factor(one) - term.structure.factor(-one))[0, 0])
        fam, y, w = crit.family, crit.y, crit.w
        if fam.name == "binomial":
            trials, succ = np.round(w), np.round(w * y)
            self.w_int = trials
            self.y_int = np.divide(succ, trials, out=np.zeros_like(succ), where=trials > 0)
        else:
            self.w_int, self.y_int = w, y
        self.const = float(np.sum(fam.loglik_constants(y, w)))

    def _group(self, values: np.ndarray) -> np.ndarray:
        """Group sums of ``(k, n)`` rows: ``(k, m)``."""
        return self.sums(values.T).T

    def __call__(self, state: PIRLSState) -> tuple[float, np.ndarray]:
        """``(-2 log L, its gradient in (theta, beta))`` at a mode of :meth:`GLMMCriterion.
        laplace_state`."""
        crit, fam = self.crit, self.crit.family
        codes, z, t = self.codes, self.z, self.nodes
        zl = state.zl[0][:, 0]
        u = state.u
        s = state.factor.l11_inv[:, 0, 0]
        u_rows = u[codes]
        base = state.eta - zl * u_rows
        a = u[None, :] + s[None, :] * t[:, None]  # (K, m)
        a_rows = a[:, codes]
        eta = base[None, :] + zl[None, :] * a_rows
        mu = fam.link.linkinv(eta)
        terms = self.node_const[:, None] - 0.5 * a * a
        terms += self._group(fam.loglik_kernel(self.y_int, mu, self.w_int))
        lse = logsumexp(terms, axis=0)
        value = self.const + float(np.sum(np.log(s)) + np.sum(lse))
        prob = np.exp(terms - lse[None, :])  # (K, m)
        # node scores d log p / d eta
        sc = self.w_int * (self.y_int - mu) * fam.link.mu_eta(eta) / fam.variance(mu)
        p_sc = prob[:, codes] * sc
        slope = self._group(sc * zl) - a  # g_i'(a_ik)
        c_mode = np.sum(prob * slope, axis=0)
        c_scale = t @ (prob * slope)
        # the mode and the scale
        d = eta_derivatives(fam, crit.y, crit.w, state.eta, state.mu)
        obs_zl = d.observed * zl
        hess = 1.0 + self.sums((obs_zl * zl)[:, None])[:, 0]
        X = crit.X
        du_b = -self.sums(obs_zl[:, None] * X) / hess[:, None]
        du_t = self.dlam * self.sums(((-d.half_score - obs_zl * u_rows) * z)[:, None])[:, 0] / hess
        wz2 = d.dweights * zl * zl
        deta_b = X + zl[:, None] * du_b[codes]
        deta_t = self.dlam * z * u_rows + zl * du_t[codes]
        ds_b = -0.5 * s[:, None] ** 3 * self.sums(wz2[:, None] * deta_b)
        dd_t = wz2 * deta_t + 2.0 * self.dlam * d.weights * zl * z
        ds_t = -0.5 * s**3 * self.sums(dd_t[:, None])[:, 0]
        coef_s = 1.0 / s + c_scale
        g_b = X.T @ np.sum(p_sc, axis=0) + c_mode @ du_b + coef_s @ ds_b
        g_t = self.dlam * float(z @ np.sum(p_sc * a_rows, axis=0))
        g_t += float(c_mode @ du_t + coef_s @ ds_t)
        return -2.0 * value, -2.0 * np.concatenate([[g_t], g_b])


__all__ = ["AGQGradient"]
