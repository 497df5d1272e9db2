"""Jobs in a child process (dashboard.state.isolation): results, progress, errors, and a
runaway job stopped alone by its memory or time limit, or at once by a cancel."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

from dashboard.state import work
from dashboard.state.isolation import NICENESS, Isolation, JobLimitExceeded, run_isolated
from dashboard.state.jobs import Cancelled, Job
from lmm_core import DataError, datasets

LIMITS = Isolation(enabled=True, memory_mb=6144, seconds=120)


def _job() -> Job:
    return Job(owner="test", key="k", kind="fit", label="test")


# Work functions live at module level: the child unpickles them by name.
def _square_with_progress(x: float, report) -> float:
    for i in range(3):
        report(i / 3, f"step {i + 1}")
    return x * x


def _raise_data_error(report) -> None:
    raise DataError("The outcome column is empty.")


def _allocate(gib: float, report) -> int:
    block = np.ones(int(gib * 2**30 / 8))  # touches every page
    return int(block.size)


def _sleep(seconds: float, report) -> None:
    for _ in range(int(seconds * 10)):
        time.sleep(0.1)
    report(1.0, "slept")


def test_result_and_progress_come_back_from_the_child():
    job = _job()
    assert run_isolated(job, _square_with_progress, 3.0, limits=LIMITS) == 9.0
    assert job.text == "step 3"
    assert job.fraction == pytest.approx(2 / 3)


def test_a_fit_in_the_child_equals_the_fit_in_this_process():
    data, _ = datasets.load_example("sleepstudy")
    formula = "Reaction ~ Days + (Days | Subject)"
    args = (formula, data, True, "gaussian", None, 1)
    inside = run_isolated(_job(), work.fit, *args, limits=LIMITS)
    here = work.fit(*args, lambda *a: None)
    np.testing.assert_allclose(inside.fixef, here.fixef, rtol=1e-12)
    assert inside.objective == pytest.approx(here.objective, rel=1e-12)


def test_an_engine_error_keeps_its_class_and_message():
    with pytest.raises(DataError, match="outcome column is empty"):
        run_isolated(_job(), _raise_data_error, limits=LIMITS)


def test_a_job_over_its_memory_limit_is_stopped_with_a_message():
    limits = Isolation(enabled=True, memory_mb=1024, seconds=120)
    assert run_isolated(_job(), _allocate, 0.5, limits=limits) > 0  # under the limit: runs
    with pytest.raises(JobLimitExceeded, match="more memory than the server allows"):
        run_isolated(_job(), _allocate, 1.5, limits=limits)
    # the next job runs normally
    assert run_isolated(_job(), _square_with_progress, 2.0, limits=limits) == 4.0


def test_a_job_over_its_time_limit_is_stopped_quickly():
    limits = Isolation(enabled=True, memory_mb=6144, seconds=1)
    start = time.monotonic()
    with pytest.raises(JobLimitExceeded, match="longer than the server allows"):
        run_isolated(_job(), _sleep, 30.0, limits=limits)
    assert time.monotonic() - start < 15  # not the 30 s of the work


def test_a_cancel_kills_the_child_at_once():
    job = _job()
    threading.Timer(0.5, job.cancel).start()
    start = time.monotonic()
    with pytest.raises(Cancelled):
        run_isolated(job, _sleep, 30.0, limits=LIMITS)
    assert time.monotonic() - start < 15


def test_disabled_isolation_runs_in_this_thread():
    job = _job()
    limits = Isolation(enabled=False)
    assert run_isolated(job, _square_with_progress, 4.0, limits=limits) == 16.0
    assert job.text == "step 3"


def _niceness(report) -> int:
    return os.nice(0)


def test_the_child_runs_at_a_lower_cpu_priority():
    assert run_isolated(_job(), _niceness, limits=LIMITS) == min(19, os.nice(0) + NICENESS)
