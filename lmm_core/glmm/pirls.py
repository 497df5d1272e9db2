"""Penalized iteratively reweighted least squares and the Laplace criterion of a GLMM.

Model (Bates et al. 2015; lme4's ``glmer``): ``b = Lambda(theta) u`` with spherical
``u ~ N(0, I_q)``, ``eta = offset + X beta + Z Lambda u``, ``mu = g^-1(eta)``. The marginal
likelihood ``L(theta, beta) = int p(y | u) phi(u) du`` has no closed form. Its Laplace
approximation expands the log of the integrand around its maximum, the conditional mode
``u~``::

    -2 log L ~= sum_i d_i(y_i, mu_i) + ||u~||^2 + log |L_Z|^2 - 2 l_sat

where ``d_i`` are the deviance residuals at ``u~``, ``L_Z L_Z' = Lambda' Z' W Z Lambda + I``
with the working weights ``W = w (dmu/deta)^2 / V(mu)`` at ``u~`` (the expected information,
as lme4: for the canonical links logit and log it is also the observed one; for probit and
cloglog it is lme4's choice) and ``l_sat`` the saturated log-likelihood (the constant that makes
the value a log-likelihood). lme4 minimises the first three terms (its "deviance").

The mode solves ``min_u sum_i d_i + ||u||^2`` (the penalized deviance) by Newton's method:
each iteration solves the weighted penalized least-squares problem of the working response
``z = eta - offset - s / O`` with weights ``O`` (``s = (1/2) dd/deta``, ``O = (1/2) d^2 d /
deta^2`` the observed information, :func:`~lmm_core.glmm.family.eta_derivatives`) through
:class:`~lmm_core.glmm.factor.Factor`, and halves the step until the penalized deviance
decreases (lme4's ``pwrssUpdate``). For the canonical logit and log links ``O = W`` and this is
lme4's Fisher scoring; for probit and cloglog it converges quadratically where Fisher scoring
(lme4's) is linear; when some ``O_i <= 0`` the step is Fisher's. With ``beta`` free (lme4's first
stage, ``nAGQ = 0``), ``beta`` is updated jointly with ``u``.

Iterations stop when a full step lowers the penalized deviance by less than ``1e-11`` (relative
to its size, at least ``1e-10`` absolute) and changes no element of ``u`` by more than
``1e-6`` after a Newton step (the next error is about its square) or ``1e-9`` after a Fisher
step of a non-canonical link (linear convergence); the factor is then recomputed with the
working weights ``W`` at the final ``u`` so that ``log |L_Z|^2`` belongs to the mode. glmer's
default tolerance (``tolPwrss = 1e-7`` on a relative step) stops earlier, which leaves its
Laplace log-likelihood up to 5e-3 low.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmm_core.design.reterms import theta_scale
from lmm_core.glmm.factor import Factor, WeightedSystem
from lmm_core.glmm.family import DevianceSum, Family, eta_derivatives
from lmm_core.glmm.response import GLMMData

MAX_ITER = 60
MAX_HALVINGS = 30
#: largest change of the spherical random effects u at convergence after a Fisher step of a
#: non-canonical link (u is unit-free)
STEP_TOL = 1e-9
#: the same after a Newton step (the next error is about the square)
CANONICAL_STEP_TOL = 1e-6


class PIRLSFailure(np.linalg.LinAlgError):
    """Penalized IRLS could not lower the penalized deviance (a failed evaluation)."""


@dataclass(frozen=True)
class PIRLSState:
    """The conditional mode at one ``(theta, beta)`` and what the criteria need there."""

    theta: np.ndarray
    beta: np.ndarray
    u: np.ndarray
    eta: np.ndarray
    mu: np.ndarray
    zl: list
    factor: Factor
    drsum: float
    iterations: int

    @property
    def ussq(self) -> float:
        return float(self.u @ self.u)

    @property
    def lme4_deviance(self) -> float:
        """lme4's Laplace "deviance": ``sum d_i + ||u||^2 + log |L_Z|^2``."""
        return self.drsum + self.ussq + self.factor.ldl2


class GLMMCriterion:
    """The Laplace (and, through :mod:`lmm_core.glmm.agq`, quadrature) criterion of a GLMM.

    Parameters
    ----------
    data
        The evaluated model (:func:`lmm_core.glmm.response.build_glmm_data`).
    family
        Response distribution and link.
    """

    def __init__(self, data: GLMMData, family: Family) -> None:
        self.data = data
        self.family = family
        design = data.design
        self.X = design.X
        self.y, self.w, self.offset = data.y, data.weights, data.offset
        self.system = WeightedSystem(design.X, design.reterms)
        self.reterms = design.reterms
        self.lower = np.concatenate([t.structure.lower for t in self.reterms])
        self.theta_scale = theta_scale(self.reterms)
        # the structures' start (e.g. lambda = I) holds in unit-free phi = theta * scale, so
        # time in minutes or in weeks starts from the same model (theta0 = start / scale)
        start = np.concatenate([t.structure.start for t in self.reterms])
        safe = np.where(self.theta_scale > 0, self.theta_scale, 1.0)
        self.theta0 = start / safe
        self.llsat = family.saturated_loglik(self.y, self.w)
        self.deviance_sum = DevianceSum(family, self.y, self.w)
        self.step_tol = CANONICAL_STEP_TOL if family.canonical else STEP_TOL
        self.n_pirls = 0
        self._warm_u: np.ndarray | None = None
        self._warm_beta: np.ndarray | None = None

    # ------------------------------------------------------------------ pieces
    def start_eta(self) -> np.ndarray:
        """R's ``mustart`` on the link scale: ``(w y + 0.5) / (w + 1)`` (binomial),
        ``y + 0.1`` (Poisson), minus the offset."""
        if self.family.name == "binomial":
            mu = (self.w * self.y + 0.5) / (self.w + 1.0)
        else:
            mu = self.y + 0.1
        return self.family.link.link(mu)

    def penalized_deviance(self, eta: np.ndarray, u: np.ndarray) -> tuple[float, np.ndarray]:
        mu = self.family.link.linkinv(eta)
        return self.deviance_sum(mu) + float(u @ u), mu

    def working_weights(self, eta: np.ndarray, mu: np.ndarray) -> np.ndarray:
        """``w (dmu/deta)^2 / V(mu)``: the working weights of penalized IRLS."""
        return self._weights(eta, mu)[0]

    def _step_weights(self, eta: np.ndarray, mu: np.ndarray):
        """Weights and working residual of one step, and whether it is Newton's: the
        observed information ``O`` and ``-s / O`` (``s = (1/2) dd/deta``) for a non-canonical
        link when every ``O_i > 0`` (Newton's method on the penalized deviance: quadratic
        convergence), else the working weights (Fisher scoring; Newton's for a canonical
        link)."""
        if not self.family.canonical:
            d = eta_derivatives(self.family, self.y, self.w, eta, mu)
            if np.all(d.observed > 0):
                return d.observed, -d.half_score / d.observed, True
        wts, resid = self._weights(eta, mu)
        return wts, resid, self.family.canonical

    def _weights(self, eta: np.ndarray, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Working weights and working residual ``(y - mu) / (dmu/deta)``."""
        mu_eta = self.family.link.mu_eta(eta)
        wts = self.w * mu_eta * mu_eta / self.family.variance(mu)
        return wts, (self.y - mu) / mu_eta

    # ------------------------------------------------------------------ PIRLS
    def pirls(
        self,
        theta: np.ndarray,
        beta: np.ndarray | None,
        u0: np.ndarray | None = None,
    ) -> PIRLSState:
        """The conditional mode at ``theta`` and ``beta`` (``beta=None``: ``beta`` free too,
        lme4's first stage, started from the warm start or from ``mustart``).

        Raises
        ------
        PIRLSFailure
            If no step lowers the penalized deviance (or a factorization fails).
        """
        sys = self.system
        zl = sys.zl(theta)
        free = beta is None
        if free:
            if self._warm_beta is None:
                u, b = self._first_step(zl)
            else:
                u, b = self._warm_u.copy(), self._warm_beta.copy()
        else:
            b = np.asarray(beta, float)
            u = np.zeros(sys.q) if u0 is None else np.array(u0, float)
        # offset + X beta, fixed during the iterations when beta is given
        fixed = None if free else self.offset + self.X @ b
        eta = (self.offset + self.X @ b if free else fixed) + sys.times_u(zl, u)
        pdev, mu = self.penalized_deviance(eta, u)
        tol = 1e-11 * max(pdev, 10.0)
        done = False
        for it in range(MAX_ITER):  # noqa: B007  (it: the iteration count reported)
            if done:
                break
            wts, resid, newton = self._step_weights(eta, mu)
            fac = sys.factor(zl, wts, with_x=free)
            if free:
                work = eta - self.offset + resid  # working response (offset removed)
                u_new, b_new = fac.solve_joint(sys.t_times(zl, wts * work), self.X.T @ (wts * work))
            else:
                rhs = sys.t_times(zl, wts * (eta - fixed + resid))
                u_new, b_new = fac.backward(fac.forward(rhs)), b
            u_old = u
            u, b, eta, mu, new, step = self._halve(zl, u, b, u_new, b_new, pdev, fixed)
            moved = float(np.max(np.abs(u_new - u_old))) if u.size else 0.0
            step_tol = CANONICAL_STEP_TOL if newton else self.step_tol
            done = step == 1.0 and pdev - new < tol and moved < step_tol
            pdev = new
        else:
            raise PIRLSFailure("penalized IRLS did not converge")
        fac = sys.factor(zl, self.working_weights(eta, mu), with_x=free)
        self.n_pirls += 1
        if free:
            self._warm_u, self._warm_beta = u.copy(), b.copy()
        drsum = pdev - float(u @ u)
        return PIRLSState(theta, b, u, eta, mu, zl, fac, drsum, it)

    def _first_step(self, zl: list) -> tuple[np.ndarray, np.ndarray]:
        """One weighted least-squares step from ``mustart`` (u = 0): the starting point."""
        eta = self.start_eta()
        mu = self.family.link.linkinv(eta)
        wts, resid = self._weights(eta, mu)
        fac = self.system.factor(zl, wts, with_x=True)
        work = eta - self.offset + resid
        return fac.solve_joint(self.system.t_times(zl, wts * work), self.X.T @ (wts * work))

    def _halve(self, zl, u, b, u_new, b_new, pdev, fixed=None):
        """Step-halving towards ``(u_new, b_new)`` until the penalized deviance decreases
        (``fixed``: ``offset + X beta`` when ``beta`` is held fixed)."""
        du, db = u_new - u, b_new - b
        step = 1.0
        for _ in range(MAX_HALVINGS):
            uu, bb = u + step * du, b + step * db
            lin = self.offset + self.X @ bb if fixed is None else fixed
            eta = lin + self.system.times_u(zl, uu)
            new, mu = self.penalized_deviance(eta, uu)
            if np.isfinite(new) and new <= pdev + 1e-13 * abs(pdev):
                return uu, bb, eta, mu, new, step
            step *= 0.5
        if np.isfinite(pdev) and np.max(np.abs(du)) < 1e-6:
            eta = self.offset + self.X @ b + self.system.times_u(zl, u)
            new, mu = self.penalized_deviance(eta, u)
            return u, b, eta, mu, new, 1.0  # at the mode within rounding
        raise PIRLSFailure("PIRLS step-halvings failed to reduce the penalized deviance")

    # ------------------------------------------------------------------ criteria
    def profiled(self, theta: np.ndarray) -> float:
        """lme4's first-stage criterion at ``theta`` (``beta`` from PIRLS): ``sum d_i +
        ||u||^2 + log |L_Z|^2``."""
        return self.pirls(theta, None).lme4_deviance

    def laplace_state(self, theta: np.ndarray, beta: np.ndarray) -> PIRLSState:
        """The mode at ``(theta, beta)``, warm-started from the previous one."""
        try:
            state = self.pirls(theta, beta, self._warm_u)
        except PIRLSFailure:
            state = self.pirls(theta, beta, None)
        self._warm_u = state.u.copy()
        return state

    def minus2_loglik(self, state: PIRLSState) -> float:
        """``-2 log L`` (Laplace) with every constant: lme4's deviance ``- 2 l_sat``."""
        return state.lme4_deviance - 2.0 * self.llsat

    def laplace(self, theta: np.ndarray, beta: np.ndarray) -> float:
        """``-2 log L`` by the Laplace approximation at ``(theta, beta)``."""
        return self.minus2_loglik(self.laplace_state(theta, beta))


__all__ = ["GLMMCriterion", "PIRLSFailure", "PIRLSState"]
