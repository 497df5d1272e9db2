"""The job runner (dashboard.state.jobs): progress, cancellation, errors, dedupe, isolation,
workers."""

from __future__ import annotations

import threading
import time

import pytest

from dashboard.state import jobs
from dashboard.state.jobs import Cancelled, JobRunner, worker_count
from lmm_core import ModelError


@pytest.fixture
def runner():
    r = JobRunner(2)
    yield r
    r.shutdown()


def _steps(n: int, gate: threading.Event | None = None, pause: float = 0.0):
    """Work of ``n`` units reporting after each; waits for ``gate`` before the first."""

    def work(job):
        if gate is not None:
            assert gate.wait(10)
        for i in range(n):
            time.sleep(pause)
            job.report((i + 1) / n, f"step {i + 1} of {n}")
        return n

    return work


def _until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_worker_count_follows_the_cores_with_a_floor_and_a_cap():
    assert worker_count(1) == 1
    assert worker_count(2) == 2
    assert worker_count(64) == jobs.MAX_WORKERS
    assert worker_count(0) == 1 and worker_count(None) >= 1
    assert worker_count(3, cap=2) == 2
    assert JobRunner(worker_count(2)).workers == 2


def test_progress_and_result(runner):
    gate = threading.Event()
    job = runner.submit("s1", "k", _steps(4, gate), kind="test", label="four steps")
    assert job.state in (jobs.QUEUED, jobs.RUNNING) and job.fraction is None
    gate.set()
    assert job.wait(10)
    assert job.state == jobs.DONE and job.finished_ok and job.result == 4
    assert job.fraction == 1.0 and job.text == "step 4 of 4"
    assert job.error is None and job.elapsed() >= 0


def test_progress_is_seen_while_the_work_runs(runner):
    release = threading.Event()

    def work(job):
        job.report(0.25, "a quarter")
        assert release.wait(10)
        return "ok"

    job = runner.submit("s1", "k", work, kind="test", label="x")
    _until(lambda: job.fraction == 0.25)
    assert job.state == jobs.RUNNING and job.text == "a quarter" and not job.done()
    release.set()
    assert job.wait(10) and job.result == "ok"


def test_cancel_stops_the_work_at_its_next_report(runner):
    seen = []

    def work(job):
        for i in range(10_000):
            job.report(i / 10_000, f"unit {i}")
            seen.append(i)
            time.sleep(0.001)
        return "finished"

    job = runner.submit("s1", "k", work, kind="test", label="long")
    _until(lambda: len(seen) >= 5)
    job.cancel()
    assert job.wait(10)
    assert job.state == jobs.CANCELLED and job.result is None and job.error is None
    assert len(seen) < 10_000


def test_cancel_of_work_without_reports_discards_its_result(runner):
    release = threading.Event()
    job = runner.submit("s1", "k", lambda job: release.wait(10) and "fit", kind="fit", label="x")
    _until(lambda: job.state == jobs.RUNNING)
    job.cancel()
    assert job.cancel_requested and not job.done()  # a single fit cannot be interrupted
    release.set()
    assert job.wait(10) and job.state == jobs.CANCELLED and job.result is None


def test_a_waiting_job_is_cancelled_at_once():
    runner = JobRunner(1)
    gate = threading.Event()
    first = runner.submit("s1", "a", _steps(1, gate), kind="test", label="a")
    second = runner.submit("s1", "b", _steps(1), kind="test", label="b")
    _until(lambda: first.state == jobs.RUNNING)
    assert second.state == jobs.QUEUED and second.elapsed() == 0.0
    second.cancel()
    assert second.done() and second.state == jobs.CANCELLED
    gate.set()
    assert runner.wait([first, second], timeout=10)
    assert first.result == 1 and second.result is None
    runner.shutdown()


def test_errors_are_kept_not_raised(runner):
    def bad(job):
        raise ModelError("The model needs a grouping factor.")

    def bug(job):
        return 1 / 0

    a = runner.submit("s1", "a", bad, kind="test", label="a")
    b = runner.submit("s1", "b", bug, kind="test", label="b")
    assert runner.wait([a, b], timeout=10)
    assert a.state == jobs.FAILED and isinstance(a.error, ModelError)
    assert "grouping factor" in str(a.error)
    assert b.state == jobs.FAILED and isinstance(b.error, ZeroDivisionError)


def test_the_same_key_is_not_started_twice(runner):
    calls = []
    gate = threading.Event()

    def work(job):
        calls.append(1)
        assert gate.wait(10)
        return len(calls)

    first = runner.submit("s1", ("boot", 500, 1), work, kind="test", label="x")
    again = runner.submit("s1", ("boot", 500, 1), work, kind="test", label="x")
    assert again is first
    gate.set()
    assert first.wait(10)
    assert runner.submit("s1", ("boot", 500, 1), work, kind="test", label="x") is first
    assert calls == [1]  # finished and not collected: still the same job
    assert runner.pop("s1", ("boot", 500, 1)) is first
    fresh = runner.submit("s1", ("boot", 500, 1), work, kind="test", label="x")
    assert fresh is not first and fresh.wait(10) and calls == [1, 1]


def test_sessions_are_isolated(runner):
    gate = threading.Event()
    mine = runner.submit("s1", "k", _steps(1, gate), kind="test", label="mine")
    theirs = runner.submit("s2", "k", _steps(1, gate), kind="test", label="theirs")
    assert mine is not theirs  # the same work key in two sessions: two jobs
    assert runner.jobs("s1") == [mine] and runner.jobs("s2") == [theirs]
    assert runner.get("s3", "k") is None and runner.jobs("s3") == []
    assert runner.pop("s3", "k") is None and not runner.cancel("s3", "k")
    assert not mine.cancel_requested and not theirs.cancel_requested
    assert runner.cancel("s2", "k")
    gate.set()
    assert runner.wait([mine, theirs], timeout=10)
    assert mine.state == jobs.DONE and theirs.state == jobs.CANCELLED
    assert runner.finished("s1") == [mine] and runner.active("s1") == []


def test_active_by_kind(runner):
    gate = threading.Event()
    fit = runner.submit("s1", "f", _steps(1, gate), kind="fit", label="fit")
    boot = runner.submit("s1", "b", _steps(1, gate), kind="bootstrap", label="boot")
    assert runner.active("s1") == [fit, boot]
    assert runner.active("s1", "fit") == [fit] and runner.active("s1", "ladder") == []
    gate.set()
    assert runner.wait([fit, boot], timeout=10) and runner.active("s1") == []


def test_more_jobs_than_workers_wait_their_turn():
    runner = JobRunner(2)
    running = []
    lock = threading.Lock()
    peak = []

    def work(job):
        with lock:
            running.append(1)
            peak.append(len(running))
        time.sleep(0.05)
        with lock:
            running.pop()
        return True

    batch = [runner.submit("s1", i, work, kind="test", label=str(i)) for i in range(6)]
    assert runner.wait(batch, timeout=20)
    assert all(job.result for job in batch) and max(peak) <= 2
    runner.shutdown()


def test_prune_drops_old_results_and_jobs_of_ended_sessions():
    ended = set()
    runner = JobRunner(1, alive=lambda job: job.owner not in ended, keep_seconds=60)
    old = runner.submit("s1", "old", lambda job: 1, kind="test", label="old")
    assert old.wait(10)
    runner.prune(now=old.finished + 30)
    assert runner.get("s1", "old") is old  # within keep_seconds
    runner.prune(now=old.finished + 61)
    assert runner.get("s1", "old") is None

    release = threading.Event()
    left = runner.submit("s2", "k", lambda job: (release.wait(10), job.check()), kind="t", label="")
    _until(lambda: left.state == jobs.RUNNING)
    ended.add("s2")
    runner.prune()
    assert left.cancel_requested  # the session is gone: stop its work
    release.set()
    assert left.wait(10) and left.state == jobs.CANCELLED
    runner.prune()
    assert runner.jobs("s2") == []
    runner.shutdown()


def test_cancelled_is_not_swallowed_by_the_engine_error_handlers():
    from lmm_core import LMMError

    assert not issubclass(Cancelled, LMMError | ArithmeticError | ValueError | RuntimeError)


def _loaded_after(code: str, modules: tuple[str, ...]) -> list[str]:
    import subprocess
    import sys

    from tests.app.conftest import ROOT

    probe = f"import sys; {code}; print(','.join(m for m in {modules!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return [m for m in out.stdout.strip().split(",") if m]


def test_the_runner_and_the_work_import_no_streamlit():
    assert _loaded_after("import dashboard.state.jobs, dashboard.state.work", ("streamlit",)) == []


def test_app_imports_only_light_modules_before_drawing_the_menu():
    """app.py's module-level imports (run before the menu is sent) leave the heavy ones out:
    they are imported in run() after the menu (first paint)."""
    heavy = ("pandas", "scipy", "lmm_core", "dashboard.state.session")
    assert _loaded_after("import app", heavy) == []
