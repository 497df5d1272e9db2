"""Adaptive Gauss-Hermite quadrature for a GLMM with one scalar random effect (glmer's nAGQ).

With one random-effects term of one column, the groups are independent and the marginal
log-likelihood is a sum of one-dimensional integrals over the spherical effect ``u_i``::

    log L = sum_i log int exp(l_i(u)) phi(u) du,    l_i(u) = sum_{r in i} log p(y_r | u).

Centring each integral at the conditional mode ``u~_i`` and scaling it by the conditional
standard deviation ``s_i = 1 / L_ii`` (``L`` the factor of penalized IRLS at the mode), and
using the ``K``-point Gauss-Hermite rule for the weight ``exp(-t^2 / 2)`` (nodes ``t_k``,
weights ``omega_k`` normalised to sum to 1)::

    log int ... du ~= log s_i + log sum_k omega_k exp(t_k^2 / 2 + l_i(u~_i + s_i t_k)
                      - (u~_i + s_i t_k)^2 / 2)

(Pinheiro & Bates 1995; lme4's ``GQdk``). ``K = 1`` is the Laplace approximation; the rule is
exact for integrands ``exp(poly of degree < 2K) phi``, so it converges quickly to the integral.
The value has every constant (lme4 1.1 reports it without the saturated log-likelihood).
"""

from __future__ import annotations

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from scipy.special import logsumexp

from lmm_core.glmm.pirls import GLMMCriterion, PIRLSState

MAX_NODES = 25


def gh_rule(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and log weights (normalised to sum 1) of the ``k``-point rule for
    ``exp(-t^2/2)``."""
    nodes, weights = hermegauss(k)
    return nodes, np.log(weights / weights.sum())


def agq_loglik(crit: GLMMCriterion, state: PIRLSState, nagq: int) -> float:
    """``log L`` by ``nagq``-point adaptive Gauss-Hermite quadrature at the state's
    ``(theta, beta)`` (one scalar random-effects term)."""
    sys = crit.system
    codes = sys.merged[0].codes
    m = sys.m1
    zl = state.zl[0][:, 0]
    sd = state.factor.l11_inv[:, 0, 0]
    base = crit.offset + crit.X @ state.beta
    nodes, logw = gh_rule(nagq)
    u = state.u[None, :] + sd[None, :] * nodes[:, None]  # (nagq, m)
    mu = crit.family.link.linkinv(base[None, :] + zl[None, :] * u[:, codes])
    ll = crit.family.loglik_kernel(crit.y[None, :], mu, crit.w[None, :])
    per_group = np.stack([np.bincount(codes, row, minlength=m) for row in ll])
    terms = logw[:, None] + 0.5 * (nodes * nodes)[:, None] + per_group - 0.5 * u * u
    const = float(np.sum(crit.family.loglik_constants(crit.y, crit.w)))
    return const + float(np.sum(np.log(sd)) + np.sum(logsumexp(terms, axis=0)))


def agq_minus2(crit: GLMMCriterion, theta: np.ndarray, beta: np.ndarray, nagq: int) -> float:
    """``-2 log L`` by adaptive quadrature at ``(theta, beta)``."""
    return -2.0 * agq_loglik(crit, crit.laplace_state(theta, beta), nagq)


__all__ = ["MAX_NODES", "agq_loglik", "agq_minus2", "gh_rule"]
