"""Response distributions and link functions of a generalized linear mixed model.

Conditional on the random effects, each response ``y_i`` has mean ``mu_i = g^-1(eta_i)``, where
``eta = offset + X beta + Z b`` is the linear predictor and ``g`` the link, and a distribution
from the exponential family with variance function ``V(mu)`` and prior weight ``w_i``:

* binomial: ``y_i`` is a proportion of ``w_i`` trials (0/1 when ``w_i = 1``), ``V = mu (1 - mu)``,
  ``log p(y_i) = log C(w_i, w_i y_i) + w_i [y_i log mu_i + (1 - y_i) log(1 - mu_i)]``;
* Poisson: ``V = mu``, ``log p(y_i) = w_i [y_i log mu_i - mu_i - log y_i!]``.

The deviance residual is ``d_i = 2 [log p(y_i | mu = y_i) - log p(y_i | mu_i)]`` (the saturated
model has ``mu_i = y_i``). Penalized iteratively reweighted least squares uses the working
weights ``w_i (dmu/deta)^2 / V(mu_i)`` (the expected information), as R's ``glm`` and lme4 do.

Links (R's ``make.link``, with its clamping so that ``mu`` stays strictly inside the range):
``logit``, ``probit``, ``cloglog`` (``log(-log(1 - mu))``) and ``log``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit, gammaln, ndtr, ndtri, xlogy

from lmm_core.errors import ModelError

EPS = float(np.finfo(float).eps)
_LOGIT_THRESH = -np.log(EPS)  # R's logit_linkinv threshold (about 36)
_PROBIT_THRESH = 8.125890664701906  # -qnorm(.Machine$double.eps)


def _logit_inv(eta: np.ndarray) -> np.ndarray:
    return expit(np.clip(eta, -_LOGIT_THRESH, _LOGIT_THRESH))


def _logit_mu_eta(eta: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(eta))
    return np.maximum(e / (1.0 + e) ** 2, EPS)


def _probit_inv(eta: np.ndarray) -> np.ndarray:
    return ndtr(np.clip(eta, -_PROBIT_THRESH, _PROBIT_THRESH))


def _probit_mu_eta(eta: np.ndarray) -> np.ndarray:
    return np.maximum(np.exp(-0.5 * eta * eta) / np.sqrt(2.0 * np.pi), EPS)


def _cloglog_inv(eta: np.ndarray) -> np.ndarray:
    return np.clip(-np.expm1(-np.exp(np.minimum(eta, 700.0))), EPS, 1.0 - EPS)


def _cloglog_mu_eta(eta: np.ndarray) -> np.ndarray:
    e = np.minimum(eta, 700.0)
    return np.maximum(np.exp(e - np.exp(e)), EPS)


def _log_inv(eta: np.ndarray) -> np.ndarray:
    return np.maximum(np.exp(np.minimum(eta, 700.0)), EPS)


def _logit_mu_eta2(eta: np.ndarray) -> np.ndarray:
    mu = _logit_inv(eta)
    return _logit_mu_eta(eta) * (1.0 - 2.0 * mu)


def _probit_mu_eta2(eta: np.ndarray) -> np.ndarray:
    e = np.clip(eta, -_PROBIT_THRESH, _PROBIT_THRESH)
    return -e * np.exp(-0.5 * e * e) / np.sqrt(2.0 * np.pi)


def _cloglog_mu_eta2(eta: np.ndarray) -> np.ndarray:
    e = np.minimum(eta, 700.0)
    return np.exp(e - np.exp(e)) * (1.0 - np.exp(e))


@dataclass(frozen=True)
class Link:
    """A link function ``eta = g(mu)``: its name, inverse and derivative ``dmu/deta``."""

    name: str

    def linkinv(self, eta: np.ndarray) -> np.ndarray:
        """``mu = g^-1(eta)``."""
        return _INV[self.name](eta)

    def mu_eta(self, eta: np.ndarray) -> np.ndarray:
        """``dmu/deta`` at ``eta`` (at least machine epsilon)."""
        if self.name == "log":
            return _log_inv(eta)
        return _MU_ETA[self.name](eta)

    def mu_eta2(self, eta: np.ndarray) -> np.ndarray:
        """``d^2 mu / deta^2``: ``mu' (1 - 2 mu)`` (logit), ``-eta phi(eta)`` (probit),
        ``mu' (1 - e^eta)`` (cloglog), ``e^eta`` (log)."""
        if self.name == "log":
            return _log_inv(eta)
        return _MU_ETA2[self.name](eta)

    def link(self, mu: np.ndarray) -> np.ndarray:
        """``eta = g(mu)``."""
        mu = np.asarray(mu, float)
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.name == "logit":
                return np.log(mu) - np.log1p(-mu)
            if self.name == "probit":
                return ndtri(mu)
            if self.name == "cloglog":
                return np.log(-np.log1p(-mu))
            return np.log(mu)


_INV = {"logit": _logit_inv, "probit": _probit_inv, "cloglog": _cloglog_inv, "log": _log_inv}
_MU_ETA = {"logit": _logit_mu_eta, "probit": _probit_mu_eta, "cloglog": _cloglog_mu_eta}
_MU_ETA2 = {"logit": _logit_mu_eta2, "probit": _probit_mu_eta2, "cloglog": _cloglog_mu_eta2}

LINKS = {"binomial": ("logit", "probit", "cloglog", "log"), "poisson": ("log",)}
DEFAULT_LINK = {"binomial": "logit", "poisson": "log"}


@dataclass(frozen=True)
class Family:
    """A response distribution with its link (R's ``family`` object)."""

    name: str
    link: Link

    def variance(self, mu: np.ndarray) -> np.ndarray:
        """``V(mu)``: ``mu (1 - mu)`` (binomial) or ``mu`` (Poisson)."""
        if self.name == "binomial":
            return np.maximum(mu * (1.0 - mu), EPS * EPS)
        return np.maximum(mu, EPS * EPS)

    def variance_deriv(self, mu: np.ndarray) -> np.ndarray:
        """``dV/dmu``: ``1 - 2 mu`` (binomial) or 1 (Poisson)."""
        if self.name == "binomial":
            return 1.0 - 2.0 * mu
        return np.ones_like(mu)

    @property
    def canonical(self) -> bool:
        """Whether the link is canonical (logit binomial, log Poisson): then the observed and
        expected information of ``eta`` agree."""
        return (self.name, self.link.name) in (("binomial", "logit"), ("poisson", "log"))

    def loglik_terms(self, y: np.ndarray, mu: np.ndarray, w: np.ndarray) -> np.ndarray:
        """``log p(y_i | mu_i)`` per observation, with every constant (R's ``dbinom`` with
        ``round(w y)`` successes of ``round(w)`` trials, ``dpois``)."""
        return self.loglik_constants(y, w) + self.loglik_kernel(y, mu, w)

    def loglik_constants(self, y: np.ndarray, w: np.ndarray) -> np.ndarray:
        """The part of ``log p(y_i | mu_i)`` free of ``mu``: ``log C(m, k)`` or
        ``-w log y!``."""
        if self.name == "binomial":
            m, k = np.round(w), np.round(w * y)
            return gammaln(m + 1.0) - gammaln(k + 1.0) - gammaln(m - k + 1.0)
        return -w * gammaln(y + 1.0)

    def loglik_kernel(self, y: np.ndarray, mu: np.ndarray, w: np.ndarray) -> np.ndarray:
        """``log p(y_i | mu_i)`` minus :meth:`loglik_constants`."""
        if self.name == "binomial":
            m, k = np.round(w), np.round(w * y)
            return xlogy(k, mu) + xlogy(m - k, 1.0 - mu)
        return w * (xlogy(y, mu) - mu)

    def dev_resids(self, y: np.ndarray, mu: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Squared deviance residuals ``d_i = 2 [log p(y_i | y_i) - log p(y_i | mu_i)]``."""
        if self.name == "binomial":
            return 2.0 * w * (xlogy(y, y / mu) + xlogy(1.0 - y, (1.0 - y) / (1.0 - mu)))
        return 2.0 * w * (xlogy(y, y / mu) - (y - mu))

    def saturated_loglik(self, y: np.ndarray, w: np.ndarray) -> float:
        """``sum_i log p(y_i | mu_i = y_i)``: the log-likelihood of the saturated model."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(np.sum(self.loglik_terms(y, y, w)))


@dataclass(frozen=True)
class EtaDerivatives:
    """Derivatives in ``eta_i`` of one observation's deviance ``d_i`` and working weight.

    With ``mu' = dmu/deta``, ``mu''``, ``V`` and ``V' = dV/dmu``:

    * ``half_score``: ``(1/2) dd_i/deta = -w (y - mu) mu' / V``;
    * ``weights``: the working (expected-information) weight ``W = w mu'^2 / V``;
    * ``observed``: ``(1/2) d^2 d_i / deta^2 = W - w (y - mu) (mu'' / V - mu'^2 V' / V^2)``
      (equal to ``W`` for a canonical link);
    * ``dweights``: ``dW/deta = w (2 mu' mu'' / V - mu'^3 V' / V^2)``.
    """

    half_score: np.ndarray
    weights: np.ndarray
    observed: np.ndarray
    dweights: np.ndarray


def eta_derivatives(
    family: Family, y: np.ndarray, w: np.ndarray, eta: np.ndarray, mu: np.ndarray
) -> EtaDerivatives:
    """:class:`EtaDerivatives` at ``eta`` (``mu = g^-1(eta)``)."""
    link = family.link
    m1, m2 = link.mu_eta(eta), link.mu_eta2(eta)
    v, vp = family.variance(mu), family.variance_deriv(mu)
    resid = w * (y - mu)
    weights = w * m1 * m1 / v
    curv = m2 / v - m1 * m1 * vp / (v * v)
    observed = weights if family.canonical else weights - resid * curv
    dweights = w * m1 * (2.0 * m2 / v - m1 * m1 * vp / (v * v))
    return EtaDerivatives(-resid * m1 / v, weights, observed, dweights)


class DevianceSum:
    """``sum_i d_i(y_i, mu_i)`` with the ``mu``-free parts summed once.

    Binomial: ``sum d_i = c - 2 [a' log mu + b' log(1 - mu)]`` with ``a = w y``,
    ``b = w (1 - y)``, ``c = 2 sum (a log y + b log(1 - y))``; Poisson:
    ``sum d_i = c - 2 [a' log mu - w' mu]`` with ``c = 2 sum w (y log y - y)``. Two dot products
    per evaluation; the elementwise :meth:`Family.dev_resids` is the fallback when a value is
    not finite (``mu`` at 0 or 1).
    """

    def __init__(self, family: Family, y: np.ndarray, w: np.ndarray) -> None:
        self.family, self.y, self.w = family, y, w
        self.a = w * y
        if family.name == "binomial":
            self.b = w * (1.0 - y)
            self.c = 2.0 * float(np.sum(xlogy(self.a, y) + xlogy(self.b, 1.0 - y)))
        else:
            self.b = None
            self.c = 2.0 * float(np.sum(w * (xlogy(y, y) - y)))

    def __call__(self, mu: np.ndarray) -> float:
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.b is not None:
                value = self.c - 2.0 * (self.a @ np.log(mu) + self.b @ np.log1p(-mu))
            else:
                value = self.c - 2.0 * (self.a @ np.log(mu) - self.w @ mu)
        if np.isfinite(value):
            return float(value)
        return float(np.sum(self.family.dev_resids(self.y, mu, self.w)))


def make_family(family: str, link: str | None = None) -> Family:
    """The family object for ``family`` (``"binomial"`` or ``"poisson"``) and ``link``.

    Raises
    ------
    ModelError
        For an unknown family or a link the family does not offer.
    """
    if not isinstance(family, str) or family.lower() not in LINKS:
        raise ModelError(
            f"Unknown family {family!r}: choose 'binomial' (0/1 outcomes, proportions, "
            "cbind(successes, failures)) or 'poisson' (counts)."
        )
    name = family.lower()
    chosen = DEFAULT_LINK[name] if link is None else str(link).lower()
    if chosen not in LINKS[name]:
        raise ModelError(
            f"The {name} family has no {link!r} link here; choose one of {', '.join(LINKS[name])}."
        )
    return Family(name, Link(chosen))


__all__ = [
    "DEFAULT_LINK",
    "LINKS",
    "DevianceSum",
    "EtaDerivatives",
    "Family",
    "Link",
    "eta_derivatives",
    "make_family",
]
