"""Kenward-Roger level by level (one grouping factor) against the dense ``q x q`` form.

Oracle: :func:`~lmm_core.inference.kenward_roger.kr_adjustment` with ``dense=True``, the dense
Woodbury computation that the pbkrtest reference tests (``test_inference.py``) check. The two
are the same algebra arranged differently, so they agree to rounding: ``Phi_A``, ``W`` and the
df within 1e-10 relative (measured: about 1e-14). The trial of 12,500 patients (``q = 25,000``)
is beyond the dense form's limit; its Kenward-Roger df must be close to Satterthwaite's (within
1 %; measured 0.3 %) as they are for large samples.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_reference_lme4 import fitted

from lmm_core import fit_lmm, fixef_inference
from lmm_core.inference.kenward_roger import (
    MAX_RANDOM_EFFECTS,
    KenwardRogerTooLarge,
    kr_adjustment,
    kr_ddf,
)
from lmm_core.inference.kenward_roger_blocks import single_factor_term
from lmm_core.simulation.trial import simulate_trial

TRIAL = "y ~ time * arm + (time | patient)"
SEED = 20240601  # benchmarks/bench_fit.py's load_trial

SLEEP = [
    ("Reaction ~ Days + (Days | Subject)", True),
    ("Reaction ~ Days + (Days | Subject)", False),
    ("Reaction ~ Days + (1 | Subject)", True),
    ("Reaction ~ Days + (1 | Subject)", False),
    ("Reaction ~ Days + (Days || Subject)", True),
    ("Reaction ~ Days + (Days || Subject)", False),
    ("Reaction ~ Days + (0 + Days | Subject) + (1 | Subject)", True),
]


def _trial(n_hospitals: int, per_hospital: int):
    return simulate_trial(
        n_hospitals=n_hospitals, patients_per_hospital=per_hospital, seed=SEED
    ).data


def _assert_same(res) -> None:
    blocks, dense = kr_adjustment(res), kr_adjustment(res, dense=True)
    assert blocks.refitted_reml == dense.refitted_reml == (not res.reml)
    scale = np.max(np.abs(dense.vcov_adj))
    assert np.max(np.abs(blocks.vcov_adj - dense.vcov_adj)) <= 1e-10 * scale
    np.testing.assert_allclose(np.diag(blocks.vcov_adj), np.diag(dense.vcov_adj), rtol=1e-10)
    np.testing.assert_allclose(blocks.W, dense.W, rtol=1e-10, atol=1e-10 * np.max(abs(dense.W)))
    p = dense.vcov.shape[0]
    contrasts = [np.eye(p)[[j]] for j in range(p)] + [np.eye(p)[1:]] * (p > 1)
    for L in contrasts:
        np.testing.assert_allclose(kr_ddf(blocks, L), kr_ddf(dense, L), rtol=1e-10)


@pytest.mark.parametrize(("formula", "reml"), SLEEP)
def test_blocks_equal_dense_on_sleepstudy(formula, reml):
    res = fitted("sleepstudy.csv", formula, reml)
    assert single_factor_term(res.design.reterms) is not None
    _assert_same(res)


@pytest.mark.parametrize(("hospitals", "per"), [(10, 10), (20, 25)])
def test_blocks_equal_dense_on_the_trial(hospitals, per):
    res = fit_lmm(TRIAL, _trial(hospitals, per))
    assert res.design.reterms[0].n_levels == hospitals * per
    _assert_same(res)


def test_several_factors_stay_dense_and_refused_above_the_limit(monkeypatch):
    nested = fitted("Pastes.csv", "strength ~ 1 + (1 | batch/cask)", True)
    crossed = fitted("Penicillin.csv", "diameter ~ 1 + (1 | plate) + (1 | sample)", True)
    sleep = fitted("sleepstudy.csv", "Reaction ~ Days + (1 | Subject)", True)
    assert single_factor_term(nested.design.reterms) is None
    assert single_factor_term(crossed.design.reterms) is None
    monkeypatch.setattr("lmm_core.inference.kenward_roger.MAX_RANDOM_EFFECTS", 10)
    for res in (nested, crossed):
        with pytest.raises(KenwardRogerTooLarge, match="several grouping factors"):
            kr_adjustment(res)
    kr_adjustment(sleep)  # one factor: no limit
    with pytest.raises(KenwardRogerTooLarge):
        kr_adjustment(sleep, dense=True)


def test_large_trial_is_computed_and_close_to_satterthwaite():
    res = fit_lmm(TRIAL, _trial(100, 125))
    q = res.design.reterms[0].n_levels * 2
    assert q == 25_000 > MAX_RANDOM_EFFECTS
    with pytest.raises(KenwardRogerTooLarge):
        kr_adjustment(res, dense=True)
    kr = fixef_inference(res, "kenward-roger")
    satt = fixef_inference(res, "satterthwaite")
    np.testing.assert_allclose(kr["df"], satt["df"], rtol=1e-2)
    assert np.all(kr["std_error"] >= satt["std_error"])
    np.testing.assert_allclose(kr["std_error"], satt["std_error"], rtol=1e-3)
