"""The correctness part of ``benchmarks/bench_speed.py --quick`` (no timing asserted).

The benchmark's timed fits must be the fits users get: for the quick reference models the
criterion reaches lme4's (within the exactness bar of ``test_reference_lme4.py``: 1e-6,
never meaningfully worse), the fixed effects match to 1e-4 relative, and the timed fit
equals an ordinary ``fit_lmm`` call exactly.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def rows():
    sys.path.insert(0, str(BENCH))
    try:
        import bench_speed
    finally:
        sys.path.remove(str(BENCH))
    return bench_speed.quick_correctness()


def test_quick_cases_all_checked(rows):
    assert {r["case"] for r in rows} == {
        "dyestuff_reml",
        "penicillin_crossed_reml",
        "pastes_nested_ml",
    }


def test_quick_fits_reach_lme4(rows):
    for r in rows:
        assert abs(r["d_objective"]) <= 1e-6, r
        assert r["beta_rel"] <= 1e-4, r
        assert r["theta_rel"] <= 1e-3, r


def test_timed_fit_is_the_plain_fit(rows):
    assert all(r["same_as_plain_fit"] for r in rows)
