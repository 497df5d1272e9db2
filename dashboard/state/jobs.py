"""The job runner: one way to run work that takes more than a second (no Streamlit).

Streamlit stops a script run when the user clicks another page, so anything computed in the
script is lost on a page switch. Long work (fits, the random-effects ladder, the parametric
bootstrap, profile intervals, the Teach page's repeated studies) is therefore handed to a
:class:`JobRunner`: a bounded thread pool with a registry of jobs. The Streamlit side
(:mod:`dashboard.views.jobs`) holds one runner per server process with ``st.cache_resource``,
shows progress, offers a Cancel button and stores finished results into the session.

Each :class:`Job` has

* an **owner** (the session's token) and a **key** (what the work is, e.g. ``("bootstrap",
  data key, formula, reml, 500, 1)``): the registry is keyed by ``(owner, key)``, so the same
  work is not started twice by one session, and one session never sees another's jobs;
* **progress**: a fraction in ``[0, 1]`` and a short text, reported by the work through
  :meth:`Job.report` (the engine's progress callbacks call it);
* **cancellation**: :meth:`Job.cancel` sets a flag; the next :meth:`Job.report` (or
  :meth:`Job.check`) raises :class:`Cancelled` inside the work, which unwinds it. Work without
  progress reports (a single fit) cannot be interrupted; its result is discarded when it ends.
  A job still waiting for a worker is cancelled at once;
* a **result or an error**: the work's return value, or the exception it raised (shown as a
  message by the view, never as a traceback).

Finished jobs wait in the registry until their session collects them (:meth:`JobRunner.pop`);
a finished job nobody collects (its session ended) is dropped after :data:`KEEP_SECONDS`, and
a running job whose session has ended is cancelled (``alive`` hook), so results do not
accumulate in memory.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from dashboard.state import events

__all__ = [
    "CANCELLED",
    "DONE",
    "FAILED",
    "KEEP_SECONDS",
    "MAX_WORKERS",
    "QUEUED",
    "RUNNING",
    "Cancelled",
    "Job",
    "JobRunner",
    "worker_count",
]

#: job states
QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)
#: most workers a runner starts, however many cores the machine has: the work is numpy on
#: small matrices driven from Python, so threads beyond a few mostly wait for each other
MAX_WORKERS = 4
#: seconds a finished job waits for its session to collect it before it is dropped
KEEP_SECONDS = 3600.0


class Cancelled(Exception):  # noqa: N818 (a signal, not an error)
    """Raised inside a job's work when the user cancelled it (from :meth:`Job.report`).

    Deliberately not an :class:`lmm_core.LMMError` nor an ``ArithmeticError``/``ValueError``,
    so that no ``except`` around a single refit in the engine swallows it.
    """


def worker_count(cpus: int | None = None, cap: int = MAX_WORKERS) -> int:
    """Workers for this machine: the cores this process may use, at least 1, at most ``cap``."""
    if cpus is None:
        try:
            cpus = len(os.sched_getaffinity(0))  # honours CPU limits of a container
        except (AttributeError, OSError):
            cpus = os.cpu_count() or 1
    return max(1, min(int(cap), int(cpus or 1)))


@dataclass(eq=False)
class Job:
    """One piece of long work, its progress and its outcome.

    Attributes
    ----------
    owner, key
        The session it belongs to and what it computes (see the module docstring).
    kind
        What sort of work (``"fit"``, ``"ladder"``, ``"bootstrap"``...): a session runs at most
        one job of each kind at a time (the view checks :meth:`JobRunner.active`).
    label
        What it is, in a few words, for the progress display.
    meta
        Whatever the submitter needs when the job is collected (the view keeps the function
        that stores the result here).
    """

    owner: str
    key: Hashable
    kind: str
    label: str
    meta: dict[str, Any] = field(default_factory=dict)
    submitted: float = field(default_factory=time.monotonic)
    started: float | None = None
    finished: float | None = None
    _fraction: float | None = None
    _text: str = ""
    _state: str = QUEUED
    _result: Any = None
    _error: BaseException | None = None
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _done: threading.Event = field(default_factory=threading.Event, repr=False)
    _future: Future | None = field(default=None, repr=False)

    # ------------------------------------------------------------------ from the work
    def report(self, fraction: float | None, text: str = "") -> None:
        """Progress from the work: ``fraction`` of it done (``None``: unknown), and a short
        text. Raises :class:`Cancelled` when the user has cancelled the job."""
        self.check()
        if fraction is not None:
            self._fraction = min(max(float(fraction), 0.0), 1.0)
        if text:
            self._text = text

    def check(self) -> None:
        """Raise :class:`Cancelled` when the user has cancelled the job (between units of work)."""
        if self._cancel.is_set():
            raise Cancelled

    # ------------------------------------------------------------------ from the page
    def cancel(self) -> None:
        """Ask the work to stop; a job still waiting for a worker ends at once."""
        self._cancel.set()
        if self._future is not None and self._future.cancel():  # not started yet
            self._finish(CANCELLED)

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    @property
    def state(self) -> str:
        """``queued``, ``running``, ``done``, ``failed`` or ``cancelled``."""
        return self._state

    @property
    def finished_ok(self) -> bool:
        return self._state == DONE

    def done(self) -> bool:
        """Whether the job has ended (done, failed or cancelled)."""
        return self._state in FINISHED

    def wait(self, timeout: float | None = None) -> bool:
        """Block up to ``timeout`` seconds for the job to end; True when it has."""
        return self._done.wait(timeout)

    @property
    def fraction(self) -> float | None:
        """Share of the work done, or ``None`` when the work does not report it."""
        return self._fraction

    @property
    def text(self) -> str:
        """The work's last progress text (``"Replicate 120 of 500"``)."""
        return self._text

    @property
    def result(self) -> Any:
        """The work's return value (``None`` unless the job is done)."""
        return self._result

    @property
    def error(self) -> BaseException | None:
        """The exception the work raised (a failed job), else ``None``."""
        return self._error

    def elapsed(self, now: float | None = None) -> float:
        """Seconds since the job started (0 while it waits), until it finished."""
        if self.started is None:
            return 0.0
        end = self.finished if self.finished is not None else (now or time.monotonic())
        return max(0.0, end - self.started)

    # ------------------------------------------------------------------ internal
    def _finish(self, state: str, result: Any = None, error: BaseException | None = None) -> None:
        if self._done.is_set():
            return
        self._result, self._error = result, error
        self.finished = time.monotonic()
        self._state = state
        self._done.set()
        events.job_finished(self)  # operator's log: kind, status, durations (no data)

    def _run(self, work: Callable[[Job], Any]) -> None:
        """Executed by a pool thread: run the work, record its outcome (never raises)."""
        if self._cancel.is_set():
            self._finish(CANCELLED)
            return
        self.started = time.monotonic()
        self._state = RUNNING
        events.job_started(self)
        try:
            result = work(self)
            self.check()  # cancelled while the work could not listen: discard the result
        except Cancelled:
            self._finish(CANCELLED)
        except Exception as error:  # noqa: BLE001 (reported to the user as a message)
            self._finish(FAILED, error=error)
        else:
            self._finish(DONE, result=result)


class JobRunner:
    """A bounded thread pool and the registry of its jobs, keyed by ``(owner, key)``.

    Parameters
    ----------
    workers
        Number of worker threads (see :func:`worker_count`). Jobs beyond that wait in a queue
        (their state is ``queued``).
    alive
        Optional test ``alive(job) -> bool``: whether the session that started the job still
        exists. Jobs of ended sessions are cancelled (running) or dropped (finished) whenever
        the registry is pruned.
    keep_seconds
        How long a finished job waits to be collected.
    """

    def __init__(
        self,
        workers: int,
        *,
        alive: Callable[[Job], bool] | None = None,
        keep_seconds: float = KEEP_SECONDS,
    ) -> None:
        self.workers = max(1, int(workers))
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="lmm-job")
        self._jobs: dict[tuple[str, Hashable], Job] = {}
        self._lock = threading.Lock()
        self._alive = alive
        self.keep_seconds = float(keep_seconds)

    def submit(
        self,
        owner: str,
        key: Hashable,
        work: Callable[[Job], Any],
        *,
        kind: str,
        label: str,
        meta: dict[str, Any] | None = None,
    ) -> Job:
        """Start ``work(job)`` for ``owner``; when this owner already has a job with this
        ``key`` (running, waiting or finished and not yet collected), return that job instead
        of starting the work twice."""
        self.prune()
        with self._lock:
            existing = self._jobs.get((owner, key))
            if existing is not None:
                return existing
            job = Job(owner, key, kind, label, dict(meta or {}))
            self._jobs[(owner, key)] = job
        job._future = self._pool.submit(job._run, work)
        return job

    def get(self, owner: str, key: Hashable) -> Job | None:
        """This owner's job with ``key``, or ``None``."""
        with self._lock:
            return self._jobs.get((owner, key))

    def jobs(self, owner: str) -> list[Job]:
        """This owner's jobs (any state), oldest first."""
        with self._lock:
            return [job for (who, _), job in self._jobs.items() if who == owner]

    def active(self, owner: str, kind: str | None = None) -> list[Job]:
        """This owner's jobs that are waiting or running (of ``kind``, when given)."""
        return [
            job for job in self.jobs(owner) if not job.done() and (kind is None or job.kind == kind)
        ]

    def finished(self, owner: str) -> list[Job]:
        """This owner's jobs that have ended and wait to be collected."""
        return [job for job in self.jobs(owner) if job.done()]

    def pop(self, owner: str, key: Hashable) -> Job | None:
        """Remove and return this owner's job with ``key`` (collecting it)."""
        with self._lock:
            return self._jobs.pop((owner, key), None)

    def cancel(self, owner: str, key: Hashable) -> bool:
        """Cancel this owner's job with ``key``; False when there is none."""
        job = self.get(owner, key)
        if job is None:
            return False
        job.cancel()
        return True

    def prune(self, now: float | None = None) -> None:
        """Drop finished jobs older than ``keep_seconds``; cancel or drop the jobs of
        sessions that have ended."""
        now = time.monotonic() if now is None else now
        with self._lock:
            items = list(self._jobs.items())
        for pair, job in items:
            gone = self._alive is not None and not self._alive(job)
            if job.done() and (gone or now - (job.finished or now) > self.keep_seconds):
                with self._lock:
                    if self._jobs.get(pair) is job:
                        del self._jobs[pair]
            elif gone:
                job.cancel()

    def wait(self, jobs: list[Job], timeout: float | None = None) -> bool:
        """Block until every job in ``jobs`` has ended (or ``timeout``); True when they have."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for job in jobs:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not job.wait(left):
                return False
        return True

    def shutdown(self, *, cancel: bool = True) -> None:
        """Stop taking work; with ``cancel``, ask every job to stop (does not wait)."""
        if cancel:
            with self._lock:
                jobs = list(self._jobs.values())
            for job in jobs:
                job.cancel()
        self._pool.shutdown(wait=False, cancel_futures=cancel)
