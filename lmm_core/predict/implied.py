"""The covariance between repeated measurements that a fitted mixed model implies.

For one subject measured at times ``t_1, ..., t_m`` the model ``y = X beta + Z b + e`` says::

    Cov(y) = V = sum_k  Z_k G_k Z_k'  +  sigma^2 I                                  (1)

where, for random-effects term ``k`` (``(1 + time | patient)``, ``(1 | hospital)``, ...),
``Z_k`` is the ``m x S_k`` matrix of its left-hand-side columns evaluated at the ``m`` times
(row ``j`` is ``z_k(t_j)'``, e.g. ``(1, t_j)``) and ``G_k = sigma^2 lambda_k lambda_k'`` is the
``S_k x S_k`` covariance matrix of that term's random effects. A term counts in full in (1)
when the subject's measurements share one level of its grouping factor: the subject's own
term, and the term of every factor the subject is nested in (two visits of one patient also
share the hospital). A term of a factor that is *not* shared by the visits (a crossed factor,
say a rater who changes between visits) adds its variance to the diagonal only::

    V = sum_{k shared} Z_k G_k Z_k' + sum_{k not shared} diag(Z_k G_k Z_k') + sigma^2 I   (2)

The implied correlation is ``R = D^{-1/2} V D^{-1/2}`` with ``D = diag(V)``, and the
intra-class correlation at time ``t`` (the correlation of two measurements of one subject
taken at the same time, equivalently the share of the variance at ``t`` that lies between
subjects) is::

    icc(t) = (V(t, t) - sigma^2 - sum_{k not shared} z_k(t)' G_k z_k(t)) / V(t, t)

which is :func:`lmm_core.inference.variance_explained.icc_curve` for a model with one grouping
factor.
A random intercept alone gives compound symmetry (equal correlation between all visits); a
random slope makes the variance and the correlations change with time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lmm_core.design.build import term_matrix
from lmm_core.errors import DataError, FormulaError, ModelError
from lmm_core.model.results import LMMResult, term_labels

__all__ = ["ImpliedCovariance", "covariance_at_times", "implied_covariance"]

INTERCEPT = "(Intercept)"


def covariance_at_times(
    z: Sequence[np.ndarray],
    covariances: Sequence[np.ndarray],
    sigma: float,
    shared: Sequence[bool] | None = None,
) -> np.ndarray:
    """``V`` of equation (2): the covariance of one subject's measurements.

    Parameters
    ----------
    z
        Per random-effects term, the ``m x S_k`` matrix ``Z_k`` of its columns at the ``m``
        times.
    covariances
        Per term, the ``S_k x S_k`` covariance ``G_k`` of its random effects.
    sigma
        Residual standard deviation.
    shared
        Per term, whether the measurements share one level of its grouping factor (all True
        when omitted).

    Returns
    -------
    np.ndarray
        ``m x m`` symmetric covariance matrix.
    """
    if len(z) != len(covariances):
        raise ModelError("Give one z matrix per covariance matrix.")
    if not z:
        raise ModelError("The model has no random-effects terms.")
    shared = [True] * len(z) if shared is None else list(shared)
    m = np.atleast_2d(np.asarray(z[0], float)).shape[0]
    v = sigma**2 * np.eye(m)
    for zk, gk, share in zip(z, covariances, shared, strict=True):
        zk = np.asarray(zk, float).reshape(m, -1)
        part = zk @ np.atleast_2d(np.asarray(gk, float)) @ zk.T
        v += part if share else np.diag(np.diag(part))
    return 0.5 * (v + v.T)


@dataclass(frozen=True)
class ImpliedCovariance:
    """Model-implied covariance of one subject's measurements at given times.

    Attributes
    ----------
    times
        The ``m`` times.
    covariance
        ``V`` (``m x m``), equation (2) of the module docstring.
    term_variances
        One column per random-effects term (lme4's VarCorr labels): ``z_k(t)' G_k z_k(t)``,
        the variance that term adds at each time.
    shared
        Per term label, whether the subject's measurements share it.
    residual_variance
        ``sigma^2``.
    """

    times: np.ndarray
    covariance: np.ndarray
    term_variances: pd.DataFrame
    shared: dict[str, bool]
    residual_variance: float

    @property
    def variance(self) -> np.ndarray:
        """Total variance ``V(t, t)`` at each time."""
        return np.diag(self.covariance).copy()

    @property
    def correlation(self) -> np.ndarray:
        """``D^{-1/2} V D^{-1/2}``: the implied correlation between the times."""
        sd = np.sqrt(self.variance)
        return self.covariance / np.outer(sd, sd)

    def variance_table(self) -> pd.DataFrame:
        """Variance over time, split by source, and the intra-class correlation.

        Returns
        -------
        pd.DataFrame
            Columns ``time``, one per term (its variance at ``t``), ``residual``, ``total``
            and ``icc`` (the share of the variance at ``t`` from terms the subject's
            measurements share: the correlation of two measurements of one subject at ``t``).
        """
        out = pd.DataFrame({"time": self.times})
        for label in self.term_variances.columns:
            out[label] = self.term_variances[label].to_numpy()
        out["residual"] = self.residual_variance
        out["total"] = self.variance
        between = sum(
            (self.term_variances[k].to_numpy() for k, s in self.shared.items() if s),
            start=np.zeros(len(self.times)),
        )
        out["icc"] = between / out["total"].to_numpy()
        return out


def _term_z(term, times: np.ndarray, time: str | None) -> np.ndarray:
    """The term's columns at ``times``: intercept and time directly, others by its recipe."""
    z = np.empty((times.size, term.n_columns))
    simple = True
    for j, name in enumerate(term.cnames):
        if name == INTERCEPT:
            z[:, j] = 1.0
        elif time is not None and name == time:
            z[:, j] = times
        else:
            simple = False
    if simple:
        return z
    recipe = term.rebuild
    others = [c for c in term.cnames if c not in (INTERCEPT, time)]
    if recipe is None or time is None:
        raise ModelError(
            f"The random effects of {term.group} include `{others[0]}`: name the time column "
            "so that it can be evaluated at the chosen times."
        )
    frame = pd.DataFrame({time: times})
    for group_var in recipe.group_vars:
        frame[group_var.name] = "_"
    try:
        _, values = term_matrix(term, frame)
    except (DataError, FormulaError, ModelError, KeyError) as error:
        raise ModelError(
            f"The random effects of {term.group} include `{others[0]}`, which depends on "
            f"more than the time `{time}` ({error}): the implied correlation between visits "
            "would depend on it too."
        ) from None
    return np.asarray(values, float)


def _subject_nested_in(subject_codes: np.ndarray, codes: np.ndarray) -> bool:
    """Every subject level lies within a single level of ``codes``."""
    pairs = pd.DataFrame({"s": subject_codes, "g": codes}).drop_duplicates()
    return bool(not pairs["s"].duplicated().any())


def _default_time(result: LMMResult, subject: str | None) -> str | None:
    terms = [t for t in result.reterms if subject is None or t.group == subject]
    slopes = {c for t in terms for c in t.cnames if c != INTERCEPT}
    by_basis = result.design.basis_columns()  # ns(time, 2)1, ns(time, 2)2 -> time
    for label, cols in by_basis.items():
        if len(cols) == 1 and any(c.startswith(label) for c in slopes):
            slopes = {c for c in slopes if not c.startswith(label)} | {cols[0]}
    if len(slopes) > 1:
        raise ModelError(
            f"The random effects have several slopes ({', '.join(sorted(slopes))}): name the "
            "time column."
        )
    return slopes.pop() if slopes else None


def implied_covariance(
    result: LMMResult,
    times: Sequence[float] | np.ndarray,
    *,
    time: str | None = None,
    subject: str | None = None,
) -> ImpliedCovariance:
    """The covariance and correlation a fit implies between measurements at ``times``.

    Computes equation (2) of the module docstring with the fitted ``G_k`` and ``sigma``.

    Parameters
    ----------
    result
        The fit.
    times
        Times of the measurements (values of the time covariate).
    time
        Name of the time column in the random effects (``"Days"``); by default the one
        non-intercept column of the subject's terms (or of all terms).
    subject
        lme4 group name of the subject (``"Subject"``, ``"patient"``). Terms of this group and
        of every grouping factor the subject is nested in are shared by the subject's
        measurements; other terms (crossed factors) add to the variance only. By default every
        term is shared.

    Returns
    -------
    ImpliedCovariance

    Raises
    ------
    ModelError
        If ``subject`` is not a grouping factor, or a random-effects column depends on more
        than the time (then the correlation between visits is not a function of time alone).
    """
    t = np.atleast_1d(np.asarray(times, float))
    terms = result.reterms
    subject_term = None
    if subject is not None:
        subject_term = next((term for term in terms if term.group == subject), None)
        if subject_term is None:
            groups = ", ".join(dict.fromkeys(term.group for term in terms))
            raise ModelError(f"`{subject}` is not a grouping factor of the model ({groups}).")
    if time is None:
        time = _default_time(result, subject)
    labels = term_labels(result.reterms)
    z = [_term_z(term, t, time) for term in terms]
    covs = result.covariance_matrices()
    shared = [
        subject_term is None
        or term.group == subject
        or _subject_nested_in(subject_term.codes, term.codes)
        for term in terms
    ]
    v = covariance_at_times(z, covs, result.sigma, shared)
    variances = pd.DataFrame(
        {
            label: np.einsum("ti,ij,tj->t", zk, gk, zk)
            for label, zk, gk in zip(labels, z, covs, strict=True)
        }
    )
    return ImpliedCovariance(
        times=t,
        covariance=v,
        term_variances=variances,
        shared=dict(zip(labels, shared, strict=True)),
        residual_variance=float(result.sigma**2),
    )
