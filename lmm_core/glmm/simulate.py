"""Simulating responses from a fitted GLMM, as lme4's ``simulate.merMod``.

Each draw takes new spherical random effects ``u* ~ N(0, I_q)`` (``b* = Lambda(theta) u*``, so
that each term's effects are ``N(0, lambda lambda')``; lme4's default ``re.form = ~0``) or, with
``use_u=True``, keeps the conditional modes ``b~`` of the fit (lme4's ``re.form = NULL``), then

    eta* = offset + X beta + Z b*,   mu* = g^-1(eta*),

and draws the response given ``mu*``:

* binomial: ``s* ~ Binomial(w_i, mu*_i)`` successes of the ``w_i`` trials of the row (its prior
  weight; 1 for a 0/1 outcome), returned as the proportion ``y* = s* / w_i`` (the scale the
  fit uses; 0 where ``w_i = 0``);
* Poisson: ``y* ~ Poisson(mu*_i)``, where ``mu*`` includes the offset (``exposure`` of
  ``offset(log(exposure))``).

Draws come from one ``numpy.random.Generator``: a seed reproduces them all.
"""

from __future__ import annotations

import numpy as np

from lmm_core.design.reterms import term_factors
from lmm_core.errors import ModelError
from lmm_core.glmm.family import Family
from lmm_core.glmm.response import GLMMData


def linear_predictor(
    data: GLMMData, beta: np.ndarray, effects: tuple[np.ndarray, ...] | list[np.ndarray]
) -> np.ndarray:
    """``offset + X beta + sum_k z_k' b_k[level]``: ``effects`` holds one ``(levels, S)`` array
    of random effects per term (the design's term order)."""
    design = data.design
    eta = data.offset + design.X @ np.asarray(beta, float)
    for term, b in zip(design.reterms, effects, strict=True):
        eta = eta + np.einsum("ij,ij->i", term.z, b[term.codes])
    return eta


def draw_effects(data: GLMMData, theta: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """New random effects ``b_k = u_k lambda_k'`` with ``u_k ~ N(0, I)``, one array per term."""
    lams = term_factors(data.design.reterms, np.asarray(theta, float))
    return [
        rng.standard_normal((term.n_levels, term.n_columns)) @ lam.T
        for term, lam in zip(data.design.reterms, lams, strict=True)
    ]


def draw_response(
    family: Family, mu: np.ndarray, weights: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """One response given the conditional means (module docstring)."""
    if family.name == "poisson":
        return rng.poisson(mu).astype(float)
    trials = np.round(weights)
    if not np.allclose(weights, trials, rtol=0, atol=1e-8):
        raise ModelError(
            "The binomial weights are not whole numbers of trials: responses cannot be "
            "simulated (give the number of trials per row)."
        )
    successes = rng.binomial(trials.astype(np.int64), np.clip(mu, 0.0, 1.0))
    return np.divide(successes, trials, out=np.zeros(mu.size), where=trials > 0)


def simulate_glmm(
    result,
    n_sim: int = 1,
    *,
    seed: int | np.random.Generator | None = None,
    use_u: bool = False,
    beta: np.ndarray | None = None,
    theta: np.ndarray | None = None,
) -> np.ndarray:
    """Simulate responses on the rows of a GLMM fit (module docstring).

    Parameters
    ----------
    result
        A :class:`~lmm_core.glmm.results.GLMMResult`; its estimates are the defaults.
    n_sim
        Number of simulated response vectors.
    seed
        Seed or generator.
    use_u
        Keep the fit's conditional modes instead of drawing new random effects (lme4's
        ``use.u = TRUE``, ``re.form = NULL``); ``theta`` is then not used.
    beta, theta
        Parameters to simulate from instead of the fitted ones.

    Returns
    -------
    np.ndarray
        ``(n_sim, n)``: proportions of the trials (binomial; 0/1 for a binary outcome) or
        counts (Poisson), one row per draw, on the fit's rows.
    """
    if isinstance(n_sim, bool) or not isinstance(n_sim, (int, np.integer)) or n_sim < 1:
        raise ModelError(f"n_sim must be a whole number >= 1, not {n_sim!r}.")
    rng = np.random.default_rng(seed)
    data = result.data
    beta = result.beta if beta is None else np.asarray(beta, float)
    theta = result.theta if theta is None else np.asarray(theta, float)
    if beta.shape != result.beta.shape or theta.shape != result.theta.shape:
        raise ModelError(
            f"beta needs {result.beta.size} values and theta {result.theta.size} for this model."
        )
    link = result.family.link
    out = np.empty((int(n_sim), data.y.size))
    fixed_eta = linear_predictor(data, beta, list(result.b)) if use_u else None
    for i in range(int(n_sim)):
        eta = fixed_eta if use_u else linear_predictor(data, beta, draw_effects(data, theta, rng))
        out[i] = draw_response(result.family, link.linkinv(eta), data.weights, rng)
    return out


__all__ = ["draw_effects", "draw_response", "linear_predictor", "simulate_glmm"]
