"""Heavy work in a child process, stopped alone when it exceeds its memory or its time.

A fit, a bootstrap or a Teach repeat run in a thread of the web server would share its memory
and its interpreter with every session: a runaway job (a crossed model on a huge upload)
could exhaust the server's memory or hold the interpreter for minutes. :func:`run_isolated`
runs ``fn(*args, report)`` in a child process instead, while the job's worker thread
(:mod:`dashboard.state.jobs`) supervises it:

* the child's address space is capped (``RLIMIT_AS``) at what it holds when it starts plus
  :attr:`Isolation.memory_mb`: an allocation beyond it raises ``MemoryError`` in the child,
  which ends the job with :class:`JobLimitExceeded`; a child killed from outside (the
  kernel's OOM killer) ends it the same way;
* the job has :attr:`Isolation.seconds` of wall time; after that the child is killed;
* the child runs at a lower CPU priority (:data:`NICENESS`), so that on busy cores the
  pages of every session are drawn first;
* ``report(fraction, text)`` calls of the work travel through a pipe to
  :meth:`~dashboard.state.jobs.Job.report`, which raises
  :class:`~dashboard.state.jobs.Cancelled` when the user cancelled: the child is then killed
  at once (no need to wait for the work's next unit);
* the result, or the exception the work raised, comes back pickled.

The limits come from the server's limits file (:func:`configured`); :func:`in_child` turns
``fn`` and its arguments into the work a job runs.

Children are forked from a *fork server* started once per server process, which imports the
engine and runs one small fit before it forks (:data:`PRELOAD`): a child starts in a few
milliseconds, with a clean interpreter (no copy of the web server's threads or sessions), and
without re-running the server's main script (:func:`_without_main`). Nothing is written to disk;
the data travel through the pipe. With :attr:`Isolation.enabled` false the work runs in the
calling thread (the same results; used where processes are not wanted).

No Streamlit here.
"""

from __future__ import annotations

import multiprocessing as mp
import multiprocessing.spawn as mp_spawn
import os
import resource
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Protocol

from dashboard.state import limits as server_limits
from lmm_core import LMMError

__all__ = [
    "PRELOAD",
    "Isolation",
    "JobLimitExceeded",
    "Supervised",
    "configured",
    "in_child",
    "run_configured",
    "run_isolated",
    "start_fork_server",
]

#: modules the fork server imports once, so that children start with them loaded and warm
#: (:mod:`dashboard.state.warm` runs one small fit)
PRELOAD = ["dashboard.state.warm"]
#: how much lower a job's CPU priority is than the web server's (``nice``): when the cores
#: are busy, page runs go first and a heavy job takes what is left
NICENESS = 10
#: seconds between two looks at the child while it sends nothing
POLL_SECONDS = 0.05


class JobLimitExceeded(LMMError):
    """The job was stopped because it needed more memory or time than the server allows
    (the message says which limit and how to stay under it)."""


@dataclass(frozen=True)
class Isolation:
    """How jobs run: in a child process (``enabled``), with its memory and time limits.

    Attributes
    ----------
    enabled
        Run each job in a child process; otherwise in the calling thread, without limits.
    memory_mb
        Address space a child may add to what the loaded engine holds, MB (0: no limit).
    seconds
        Longest wall time of a job, seconds (0: no limit).
    """

    enabled: bool = True
    memory_mb: int = 4096
    seconds: int = 3600


class Supervised(Protocol):
    """What the parent needs of a job (a :class:`~dashboard.state.jobs.Job`): ``report`` and
    ``check``, both raising to stop the work."""

    def report(self, fraction: float | None, text: str = "") -> None: ...

    def check(self) -> None: ...


_context_lock = threading.Lock()
_context: Any = None


def _without_main(get_preparation_data: Callable[[str], dict]) -> Callable[[str], dict]:
    """``multiprocessing``'s preparation of a child, minus the re-import of ``__main__``.

    A child normally runs the parent's main script again (as ``__mp_main__``). In the web
    server that "script" is whatever Streamlit runs at that moment as ``__main__``: ``app.py``,
    a page, or a test's temporary file that no longer exists. Job work is pickled by module
    name and never needs ``__main__``, so the children skip it.
    """

    def prepare(name: str) -> dict:
        data = get_preparation_data(name)
        data.pop("init_main_from_path", None)
        data.pop("init_main_from_name", None)
        return data

    prepare.without_main = True  # type: ignore[attr-defined]
    return prepare


def _forkserver() -> Any:
    """The fork-server context, created once (its server starts at the first child)."""
    global _context
    with _context_lock:
        if _context is None:
            if not getattr(mp_spawn.get_preparation_data, "without_main", False):
                mp_spawn.get_preparation_data = _without_main(mp_spawn.get_preparation_data)
            ctx = mp.get_context("forkserver")
            ctx.set_forkserver_preload(PRELOAD)
            _context = ctx
        return _context


def _noop() -> None:
    """The first child of :func:`start_fork_server`: nothing to do."""


def start_fork_server() -> None:
    """Start the fork server in the background (it imports and warms the engine, a few
    seconds), so that the first job does not wait for it. Does nothing when jobs run in
    threads."""
    if not configured().enabled:
        return

    def first_child() -> None:
        ctx = _forkserver()
        process = ctx.Process(target=_noop, daemon=True)
        process.start()
        process.join(timeout=120)

    threading.Thread(target=first_child, name="lmm-fork-server", daemon=True).start()


def _address_space() -> int:
    """This process's address space in bytes (Linux ``/proc/self/statm``; 0 elsewhere)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[0]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return 0


def _child(conn: Connection, fn: Callable, args: tuple, memory_bytes: int) -> None:
    """The child process: cap the memory, run ``fn(*args, report)``, send the outcome."""
    os.nice(NICENESS)  # the pages of every session come before heavy work on the cores
    if memory_bytes > 0:  # on top of what the loaded engine already holds (about 1.7 GB of
        limit = _address_space() + memory_bytes  # address space, mostly BLAS reservations)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    def report(fraction: float | None, text: str = "") -> None:
        conn.send(("progress", fraction, text))

    try:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):  # one BLAS thread per job: jobs, not threads, share cores
            result = fn(*args, report)
    except MemoryError:
        conn.send(("memory", None))
    except BaseException as error:  # noqa: BLE001 (sent to the parent, which raises it)
        try:
            conn.send(("error", error))
        except Exception:  # noqa: BLE001 (an exception that does not pickle)
            conn.send(("error", RuntimeError(f"{type(error).__name__}: {error}")))
    else:
        try:
            conn.send(("done", result))
        except MemoryError:
            conn.send(("memory", None))
    finally:
        conn.close()


def _memory_message(limits: Isolation) -> str:
    return (
        f"The work needed more memory than the server allows one job ({limits.memory_mb:,} "
        "MB) and was stopped; nothing else was affected. Fit a simpler model (fewer random "
        "effects or levels), a smaller subset of the data, or ask the operator to raise "
        "job_memory_mb in the limits file."
    )


def _time_message(limits: Isolation) -> str:
    return (
        f"The work ran longer than the server allows one job ({limits.seconds:,} s) and was "
        "stopped; nothing else was affected. Fewer replicates or a simpler model finish "
        "sooner, or ask the operator to raise job_seconds in the limits file."
    )


def _handle(message: tuple, job: Supervised, limits: Isolation) -> None:
    """Act on a message of the child other than its result: progress, or how it failed."""
    if message[0] == "progress":
        job.report(message[1], message[2])
    elif message[0] == "memory":
        raise JobLimitExceeded(_memory_message(limits))
    else:
        raise message[1]


def _death(exitcode: int | None, limits: Isolation) -> JobLimitExceeded:
    """Why a child ended without an answer: killed (the kernel's OOM killer), or crashed."""
    if exitcode == -signal.SIGKILL:
        return JobLimitExceeded(_memory_message(limits))
    return JobLimitExceeded(
        f"The work stopped unexpectedly (exit code {exitcode}); nothing was stored and "
        "nothing else was affected."
    )


def run_isolated(job: Supervised, fn: Callable[..., Any], *args: Any, limits: Isolation) -> Any:
    """``fn(*args, report)`` in a child process under ``limits``; its return value.

    Parameters
    ----------
    job
        The job (:class:`~dashboard.state.jobs.Job`): progress goes to ``job.report``, which
        raises when the user cancelled; ``job.check`` is called while the child is silent.
    fn
        A module-level function (it is pickled by name), taking ``report(fraction, text)``
        as its last argument.
    *args
        Its arguments (pickled: data frames and fitted models travel through the pipe).
    limits
        Memory and time limits, or ``enabled=False`` to run ``fn`` in this thread.

    Raises
    ------
    JobLimitExceeded
        The child needed more memory than ``limits.memory_mb``, ran longer than
        ``limits.seconds``, or died without an answer.
    Exception
        Whatever ``fn`` raised (an :class:`lmm_core.LMMError` with its message), or what
        ``job.report``/``job.check`` raised (cancellation); the child is killed then.
    """
    if not limits.enabled:
        return fn(*args, job.report)
    ctx = _forkserver()
    receive, send = ctx.Pipe(duplex=False)
    memory = int(limits.memory_mb) * 2**20
    process = ctx.Process(target=_child, args=(send, fn, args, memory), daemon=True)
    process.start()
    send.close()
    deadline = time.monotonic() + limits.seconds if limits.seconds > 0 else float("inf")
    try:
        while True:
            if receive.poll(POLL_SECONDS):
                try:
                    message = receive.recv()
                except EOFError:  # the child ended without a word
                    break
                if message[0] == "done":
                    return message[1]
                _handle(message, job, limits)
            else:
                job.check()
                if not process.is_alive() and not receive.poll():
                    break
            if time.monotonic() > deadline:
                raise JobLimitExceeded(_time_message(limits))
        process.join(timeout=5)
        raise _death(process.exitcode, limits)
    finally:
        if process.is_alive():
            process.kill()
        process.join(timeout=5)
        receive.close()


def configured() -> Isolation:
    """The isolation of the limits file (:mod:`dashboard.state.limits`: ``job_processes``,
    ``job_memory_mb``, ``job_seconds``)."""
    lim = server_limits.current()
    return Isolation(bool(lim.job_processes), lim.job_memory_mb, lim.job_seconds)


def run_configured(job: Supervised | None, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args, report)`` for ``job`` under :func:`configured` isolation; without a job
    (work outside the job runner) in this thread, its reports ignored."""
    if job is None:
        return fn(*args, lambda fraction, text="": None)
    return run_isolated(job, fn, *args, limits=configured())


def in_child(fn: Callable[..., Any], *args: Any) -> Callable[[Supervised], Any]:
    """Job work ``job -> fn(*args, job.report)``, run under :func:`configured` isolation
    (what :func:`dashboard.views.jobs.launch` takes as ``work``)."""
    return lambda job: run_configured(job, fn, *args)
