"""The benchmark of streamed MMRMs (``benchmarks/bench_stream_mmrm.py``) on a small trial, in
CI: its generated trial has the design it says (six visits, drop-out, rows in no order) and
its two timed configurations (streamed, in memory; each in a fresh process) reach the same
fit. No timing is asserted."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCH))
    try:
        import bench_stream_mmrm
    finally:
        sys.path.remove(str(BENCH))
    return bench_stream_mmrm


def test_the_benchmark_trial_and_its_fits_agree(bench, tmp_path):
    path = str(tmp_path / "trial.parquet")
    n = bench.write_trial(path, 20_000)
    frame = pd.read_parquet(path)
    assert len(frame) == n and frame["visit"].nunique() == bench.VISITS
    per_patient = frame.groupby("patient").size()
    assert per_patient.min() >= 1 and per_patient.max() == bench.VISITS
    assert not frame["patient"].is_monotonic_increasing  # the pass has to sort
    streamed = bench.child(path, "stream", 4_000)
    memory = bench.child(path, "memory", 4_000)
    assert streamed["nobs"] == memory["nobs"] == n
    assert streamed["subjects"] == memory["subjects"] == per_patient.size
    assert streamed["names"] == memory["names"]
    assert streamed["objective"] == pytest.approx(memory["objective"], rel=1e-10)
    np.testing.assert_allclose(streamed["beta"], memory["beta"], rtol=1e-6, atol=1e-8)
