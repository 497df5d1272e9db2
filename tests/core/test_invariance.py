"""Invariances of a fit: row order, labels of grouping levels, scale of the response.

Models: sleepstudy ``Reaction ~ Days + (Days | Subject)`` and a small simulated trial with two
random-effects terms, ``y ~ time * arm + (time | patient) + (1 | hospital)`` (120 patients in
10 hospitals, 744 rows).

* Row order and relabeling change nothing mathematically (they permute the rows of ``y``,
  ``X`` and ``Z`` and the columns of ``Z``); only rounding in the cross-products differs, and
  the optimizer carries that along its path.
* Response scaled by ``c``: ``theta`` is relative to ``sigma``, so it is unchanged; ``beta``,
  ``sigma`` and the conditional modes scale by ``c``; the penalized residual sum of squares
  scales by ``c^2``, so the criterion shifts by ``2 n log c`` (ML) or ``2 (n - p) log c``
  (REML).

Two tiers of tolerance:

``exact``
    objective within 1e-8 absolute; ``fixef``, ``theta``, ``sigma`` and conditional modes
    within 1e-6 relative (1e-5 for the scaling test, with 1e-6 absolute on the shift). This is
    what an optimizer that stops AT the optimum delivers. The two-term trial (hospital
    ``theta`` on a flat criterion) reaches it thanks to the optimizer's final Newton step
    from the convergence check's own gradient and Hessian; before that step, BOBYQA's stopping
    point moved by 5e-6 to 1e-5 relative when rows or levels were permuted.
``lme4``
    the accuracy contract of the lme4 reference tests: objective within 1e-6 absolute,
    estimates within 1e-4 relative. Always enforced.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lmm_core import fit_lmm
from lmm_core.simulation.trial import simulate_trial

ROOT = Path(__file__).resolve().parents[2]
SLEEP = "Reaction ~ Days + (Days | Subject)"
TRIAL = "y ~ time * arm + (time | patient) + (1 | hospital)"


def load_sleepstudy() -> pd.DataFrame:
    for path in (
        ROOT / "data" / "sleepstudy.csv",
        ROOT / "tests" / "fixtures" / "reference" / "data" / "sleepstudy.csv",
    ):
        if path.exists():
            return pd.read_csv(path, dtype={"Subject": str})
    raise FileNotFoundError("sleepstudy.csv")


def small_trial() -> pd.DataFrame:
    return simulate_trial(n_hospitals=10, patients_per_hospital=12, seed=7).data


MODELS = {
    "sleepstudy": (SLEEP, load_sleepstudy, ("Subject",)),
    "trial": (TRIAL, small_trial, ("patient", "hospital")),
}

# tier -> (objective abs, estimates rel for row order / relabeling, estimates rel for scaling)
TIERS = {"exact": (1e-8, 1e-6, 1e-5), "lme4": (1e-6, 1e-4, 1e-4)}
CASES = [pytest.param(name, tier, id=f"{name}-{tier}") for name in MODELS for tier in TIERS]


@cache
def data_for(name: str, variant: str) -> pd.DataFrame:
    """The model's data: ``base``, ``shuffle<seed>``, ``relabel`` or ``scale<c>``."""
    formula, load, _ = MODELS[name]
    df = load()
    if variant.startswith("shuffle"):
        perm = np.random.default_rng(int(variant[7:])).permutation(len(df))
        return df.iloc[perm].reset_index(drop=True)
    if variant == "relabel":
        out = df.copy()
        for g, mapping in label_maps(name).items():
            out[g] = df[g].astype(str).map(mapping)
        return out
    if variant.startswith("scale"):
        out = df.copy()
        response = formula.split("~")[0].strip()
        out[response] = df[response] * float(variant[5:])
        return out
    return df


@cache
def label_maps(name: str) -> dict[str, dict[str, str]]:
    """Old label -> new label per grouping factor; the new labels sort in another order."""
    _, load, groups = MODELS[name]
    df = load()
    rng = np.random.default_rng(3)
    maps = {}
    for g in groups:
        old = pd.unique(df[g].astype(str))
        new = [f"id{k:05d}" for k in rng.permutation(len(old))]
        maps[g] = dict(zip(old, new, strict=True))
    return maps


@cache
def fit(name: str, variant: str, reml: bool = True):
    """Fits are deterministic; both tiers of a test share them."""
    return fit_lmm(MODELS[name][0], data_for(name, variant), reml=reml)


def assert_same_fit(a, b, obj_tol, rtol, label_map=None):
    """Same optimum; conditional modes compared level by level (through ``label_map``)."""
    assert a.converged and b.converged
    assert b.objective == pytest.approx(a.objective, abs=obj_tol)
    assert list(b.fixef.index) == list(a.fixef.index)
    np.testing.assert_allclose(b.fixef.to_numpy(), a.fixef.to_numpy(), rtol=rtol)
    np.testing.assert_allclose(b.theta, a.theta, rtol=rtol, atol=rtol * np.abs(a.theta).max())
    assert b.sigma == pytest.approx(a.sigma, rel=rtol)
    for group, ra in a.ranef.items():
        index = ra.index if label_map is None else ra.index.map(label_map[group])
        rb = b.ranef[group].loc[index]
        atol = rtol * np.abs(ra.to_numpy()).max()
        np.testing.assert_allclose(rb.to_numpy(), ra.to_numpy(), rtol=rtol, atol=atol)


@pytest.mark.parametrize("name, tier", CASES)
@pytest.mark.parametrize("reml", [True, False], ids=["REML", "ML"])
def test_row_order(name, tier, reml):
    obj_tol, rtol, _ = TIERS[tier]
    base = fit(name, "base", reml)
    for seed in (1, 2):
        assert_same_fit(base, fit(name, f"shuffle{seed}", reml), obj_tol, rtol)


@pytest.mark.parametrize("name, tier", CASES)
def test_relabel_grouping_levels(name, tier):
    """New labels in a different sort order (categorical columns become plain strings)."""
    obj_tol, rtol, _ = TIERS[tier]
    relabeled = fit(name, "relabel")
    assert_same_fit(fit(name, "base"), relabeled, obj_tol, rtol, label_map=label_maps(name))


@pytest.mark.parametrize("name, tier", CASES)
@pytest.mark.parametrize("reml", [True, False], ids=["REML", "ML"])
@pytest.mark.parametrize("c", [10.0, 0.03])
def test_response_scaling(name, tier, reml, c):
    _, _, rtol = TIERS[tier]
    shift_tol = 1e-6 if tier == "exact" else 1e-5
    base = fit(name, "base", reml)
    scaled = fit(name, f"scale{c}", reml)
    assert base.converged and scaled.converged
    n, p = base.nobs, len(base.fixef)
    dof = n - p if reml else n
    assert scaled.objective - base.objective == pytest.approx(2 * dof * np.log(c), abs=shift_tol)
    np.testing.assert_allclose(
        scaled.theta, base.theta, rtol=rtol, atol=rtol * np.abs(base.theta).max()
    )
    np.testing.assert_allclose(scaled.fixef.to_numpy(), c * base.fixef.to_numpy(), rtol=rtol)
    assert scaled.sigma == pytest.approx(c * base.sigma, rel=rtol)
    for group, rb in base.ranef.items():
        rs = scaled.ranef[group].loc[rb.index].to_numpy()
        atol = rtol * np.abs(c * rb.to_numpy()).max()
        np.testing.assert_allclose(rs, c * rb.to_numpy(), rtol=rtol, atol=atol)
