"""Own-data, mixed-model and population estimates of a GLMM's patients, on the link scale.
No Streamlit.

For patient ``i`` with rows ``r``, random-effects columns ``Z_i`` and the fixed part
``f_r = offset_r + x_r'beta``:

- *own estimate*: the patient's own logistic (or Poisson) fit of the random-effects columns
  with the fixed part as an offset, ``b_own = argmax sum_r log p(y_r | h(f_r + z_r'b))`` (by
  Fisher scoring), shown as ``population + b_own``;
- *mixed model*: ``population + b_i`` with ``b_i`` the GLMM's conditional mode;
- *population*: the least-squares coefficients of ``x_r'beta`` on ``Z_i`` (the typical
  patient's intercept and slope on the link scale), as
  :func:`lmm_core.predict.per_group.shrinkage_estimates` for a linear model.

A patient whose outcomes are all 0 or all 1 (binary), or all 0 (counts), has no finite own
estimate: its likelihood keeps growing as ``b -> -inf`` (or ``+inf``). Such patients (and any
whose scoring does not settle) are listed as left out, with the reason; their mixed-model
estimate is finite, pulled toward the population: the GLMM's shrinkage at its most visible.
Returns a :class:`lmm_core.predict.per_group.ShrinkageEstimates` so the Shrinkage page's
figures draw it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lmm_core.predict.per_group import ShrinkageEstimates, group_effects

__all__ = ["EDGE", "MAX_STEPS", "glmm_shrinkage", "own_fit"]

#: own estimates beyond this on the link scale (odds ratio e^12) count as infinite
EDGE = 12.0
MAX_STEPS = 50


def _deviance(family, y: np.ndarray, w: np.ndarray, eta: np.ndarray) -> float:
    """``sum_r d_r``: the patient's deviance at linear predictor ``eta`` (``inf`` off range)."""
    with np.errstate(all="ignore"):
        total = float(np.sum(family.dev_resids(y, family.link.linkinv(eta), w)))
    return total if np.isfinite(total) else np.inf


def own_fit(family, z: np.ndarray, y: np.ndarray, w: np.ndarray, f: np.ndarray):
    """One patient's own GLM fit of the columns ``z`` with offset ``f``.

    Fisher scoring, ``b <- b + t (Z'WZ)^-1 Z'W (y - mu) / mu'(eta)``, with the step ``t``
    halved (from 1) until the deviance ``sum_r d_r(b)`` decreases: an undamped step can
    overshoot and diverge when the offset is far from the patient's own level.

    Returns
    -------
    b, ok
        The coefficients (``NaN`` when not ``ok``) and whether a finite maximum was found.
    """
    b = np.zeros(z.shape[1])
    link = family.link
    dev = _deviance(family, y, w, f)
    for _ in range(MAX_STEPS):
        eta = f + z @ b
        mu = link.linkinv(eta)
        d = link.mu_eta(eta)
        var = np.maximum(family.variance(mu), 1e-300)
        info = z.T @ ((w * d**2 / var)[:, None] * z)
        score = z.T @ (w * (y - mu) * d / var)
        try:
            step = np.linalg.solve(info, score)
        except np.linalg.LinAlgError:
            return np.full_like(b, np.nan), False
        for _ in range(30):  # step-halving
            new_dev = _deviance(family, y, w, f + z @ (b + step))
            if new_dev <= dev + 1e-10 * (1.0 + abs(dev)):
                break
            step = step / 2.0
        b, dev = b + step, new_dev
        if not np.all(np.isfinite(b)) or np.max(np.abs(b)) > 2 * EDGE:
            return np.full_like(b, np.nan), False
        if np.max(np.abs(step)) < 1e-8:
            return b, bool(np.max(np.abs(b)) < EDGE)
    return np.full_like(b, np.nan), False


def _reason(family_name: str, y: np.ndarray, s: int, n: int, columns) -> str:
    if n < s:
        return f"{n} observation{'s' if n != 1 else ''}: fewer than the {s} coefficients"
    if family_name == "binomial" and np.all(y == 0):
        return "every outcome 0 (own estimate: minus infinity)"
    if family_name == "binomial" and np.all(y == 1):
        return "every outcome 1 (own estimate: plus infinity)"
    if family_name == "poisson" and np.all(y == 0):
        return "every count 0 (own estimate: minus infinity)"
    return (
        "an own fit without a finite maximum (the outcomes separate perfectly along "
        + " and ".join(columns)
        + ")"
    )


def glmm_shrinkage(result, data: pd.DataFrame | None = None, group: str | None = None):
    """Own, mixed-model and population coefficients per level of ``group`` (link scale).

    Parameters
    ----------
    result
        A :class:`lmm_core.glmm.results.GLMMResult`.
    data
        Unused (kept for the cached call's signature).
    group
        A grouping factor of the model (default: the one with most levels).

    Returns
    -------
    lmm_core.predict.per_group.ShrinkageEstimates
    """
    g = group_effects(result, group)
    group, levels, codes, z, columns = g.group, g.levels, g.codes, g.z, g.columns
    b, b_sd, cov, m, s = g.b, g.b_sd, g.cov, len(g.levels), g.z.shape[1]
    offset = np.asarray(result.data.offset, dtype=float)
    weights = np.asarray(getattr(result.data, "weights", np.ones(result.nobs)), dtype=float)
    xb = result.design.X @ result.beta
    f = offset + xb  # the fixed part of the linear predictor
    y = np.asarray(result.y, dtype=float)
    own, pop = np.full((m, s), np.nan), np.full((m, s), np.nan)
    ok = np.zeros(m, dtype=bool)
    n = np.bincount(codes, minlength=m)
    reasons = {}
    for i in range(m):
        rows = np.flatnonzero(codes == i)
        zi = z[rows]
        if rows.size >= s and np.linalg.matrix_rank(zi) == s:
            pop[i] = np.linalg.lstsq(zi, xb[rows], rcond=None)[0]
            bi, ok[i] = own_fit(result.family, zi, y[rows], weights[rows], f[rows])
            if ok[i]:
                own[i] = pop[i] + bi
        if not ok[i]:
            reasons[i] = _reason(result.family.name, y[rows], s, rows.size, columns)
    mixed = pop + b
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = (mixed - pop) / (own - pop)
    table = pd.DataFrame({"n": n, "fitted_own": ok}, index=pd.Index(levels, name=group))
    for j, c in enumerate(columns):
        table[f"own:{c}"] = own[:, j]
        table[f"mixed:{c}"] = mixed[:, j]
        table[f"population:{c}"] = pop[:, j]
        table[f"blup:{c}"] = b[:, j]
        table[f"blup_sd:{c}"] = b_sd[:, j]
        table[f"shrinkage:{c}"] = factor[:, j]
    out = sorted(reasons)
    left_out = pd.DataFrame(
        {"n": n[out], "reason": [reasons[i] for i in out]},
        index=pd.Index([levels[i] for i in out], name=group),
    )
    return ShrinkageEstimates(group, columns, table, left_out, cov)
