"""Simulating responses from a fitted model or from given parameters.

Draws ``y* = X beta + Z Lambda(theta) u* + e*`` with ``u* ~ N(0, sigma^2 I)`` and
``e* ~ N(0, sigma^2 I)`` (new random effects at each draw, as lme4's ``simulate()`` with
``use.u = FALSE`` and MixedModels' ``simulate!``). Seeded through ``numpy.random.Generator``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from lmm_core.design.build import build_design
from lmm_core.design.covariance import CovarianceStructure, GeneralCovariance
from lmm_core.design.reterms import term_factors
from lmm_core.errors import ModelError
from lmm_core.model.results import LMMResult


def simulate(
    model,
    n_sim: int = 1,
    *,
    seed: int | np.random.Generator | None = None,
    beta: np.ndarray | None = None,
    theta: np.ndarray | None = None,
    sigma: float | None = None,
) -> np.ndarray:
    """Simulate responses on the rows of a fit (or of a design).

    Parameters
    ----------
    model
        An :class:`LMMResult` (its estimates are the defaults) or a
        :class:`lmm_core.design.build.Design` (then ``beta``, ``theta`` and ``sigma`` are required).
    n_sim
        Number of simulated response vectors.
    seed
        Seed or generator.
    beta, theta, sigma
        Parameters to simulate from instead of the fitted ones.

    Returns
    -------
    np.ndarray
        ``(n_sim, n)`` simulated responses, one row per draw.
    """
    rng = np.random.default_rng(seed)
    design = model.design if isinstance(model, LMMResult) else model
    if isinstance(model, LMMResult):
        beta = model.beta if beta is None else beta
        theta = model.theta if theta is None else theta
        sigma = model.sigma if sigma is None else sigma
    if beta is None or theta is None or sigma is None:
        raise ModelError("Give beta, theta and sigma to simulate from a design.")
    beta = np.asarray(beta, float)
    theta = np.asarray(theta, float)
    n = design.X.shape[0]
    mean = design.X @ beta
    out = np.empty((n_sim, n))
    lams = term_factors(design.reterms, theta)
    for i in range(n_sim):
        y = mean + sigma * rng.standard_normal(n)
        for term, lam in zip(design.reterms, lams, strict=True):
            u = sigma * rng.standard_normal((term.n_levels, term.n_columns))
            b = u @ lam.T
            y += np.einsum("ij,ij->i", term.z, b[term.codes])
        out[i] = y
    return out


def theta_from_covariances(
    covariances: list[np.ndarray],
    sigma: float,
    structures: Sequence[CovarianceStructure] | None = None,
) -> np.ndarray:
    """``theta`` for given random-effects covariance matrices and residual SD.

    Each term's ``lambda`` is the lower Cholesky factor of ``Sigma_k / sigma^2`` (a zero
    variance gives a zero column), in the parameters of the term's structure
    (:meth:`~lmm_core.design.covariance.CovarianceStructure.theta_from_factor`; unstructured
    if ``structures`` is omitted: the lower triangle, column-major), one term after the other.
    """
    if structures is None:
        structures = [GeneralCovariance(np.atleast_2d(c).shape[0]) for c in covariances]
    parts = []
    for cov, structure in zip(covariances, structures, strict=True):
        cov = np.atleast_2d(np.asarray(cov, float)) / sigma**2
        s = cov.shape[0]
        lam = np.zeros((s, s))
        for j in range(s):
            d = cov[j, j] - lam[j, :j] @ lam[j, :j]
            lam[j, j] = np.sqrt(d) if d > 1e-14 else 0.0
            for i in range(j + 1, s):
                num = cov[i, j] - lam[i, :j] @ lam[j, :j]
                lam[i, j] = num / lam[j, j] if lam[j, j] > 0 else 0.0
        parts.append(structure.theta_from_factor(lam))
    return np.concatenate(parts)


def simulate_from_formula(
    formula: str,
    data: pd.DataFrame,
    *,
    beta: np.ndarray,
    covariances: list[np.ndarray],
    sigma: float,
    n_sim: int = 1,
    seed: int | np.random.Generator | None = None,
) -> np.ndarray:
    """Simulate the response of ``formula`` on ``data`` from given parameters.

    The response column need not exist in ``data`` (it is filled with zeros to build the
    design). ``covariances`` lists one covariance matrix per random-effects term, in lme4's
    term order (terms sorted by decreasing number of levels).
    """
    response = formula.split("~", 1)[0].strip()
    frame = data
    if response and response not in data.columns:
        frame = data.assign(**{response: 0.0})
    design = build_design(formula, frame)
    theta = theta_from_covariances(covariances, sigma, [t.structure for t in design.reterms])
    return simulate(design, n_sim, seed=seed, beta=beta, theta=theta, sigma=sigma)
