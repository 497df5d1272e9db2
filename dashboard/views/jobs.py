"""Long work in the app: the server's job runner, this session's jobs, progress and Cancel.

The Streamlit side of :mod:`dashboard.state.jobs`. A page starts work with :func:`start` (a key, a
work function, and a ``store`` function that puts the result into the session state); the
work runs in the runner's pool, so it goes on when the user switches pages. Every script run
first calls :func:`collect` (``app.py``): finished jobs of this session are stored on whatever
page the user is, with a toast. While a job runs, :func:`show_progress` (on its page) and
:func:`sidebar_status` (on every page) show a self-refreshing progress bar with a Cancel
button; when the job ends they rerun the app, which collects it.

* **One runner per server process**, held with ``st.cache_resource``: it survives reruns,
  page switches and module reloads (the cache is keyed by the source of :func:`runner`, not by
  the module object). Its number of workers follows the machine's cores
  (:func:`dashboard.state.jobs.worker_count`).
* **Sessions are isolated**: jobs are registered under this session's token (:func:`owner`)
  and the work key; the session also keeps the handles of its jobs in its state, so a job
  is collected even if the runner is replaced meanwhile (its cache entry expires after a day).
* **Errors are messages**: an engine error (:class:`lmm_core.LMMError`) shows its text;
  anything else says the work failed unexpectedly, without a traceback. A cancelled job
  stores nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Hashable
from typing import Any

import streamlit as st
from streamlit.runtime import Runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

from dashboard.base.markup import escape_message, escape_text
from dashboard.state import events, limits
from dashboard.state.isolation import start_fork_server
from dashboard.state.jobs import CANCELLED, DONE, Job, JobRunner, worker_count
from dashboard.state.session import Keys
from dashboard.views.layout import lost_session_notice
from lmm_core import LMMError

__all__ = [
    "POLL_SECONDS",
    "QUICK_WAIT_SECONDS",
    "active",
    "collect",
    "error_message",
    "get",
    "is_engine_error",
    "launch",
    "owner",
    "runner",
    "show_notice",
    "show_progress",
    "sidebar_status",
    "start",
    "stop_notice",
    "wait_briefly",
]

POLL_SECONDS = 0.5  # how often a progress display refreshes itself
QUICK_WAIT_SECONDS = 1.5  # work done within this looks synchronous (no progress display)
RUNNER_TTL_SECONDS = 24 * 3600

#: ``store(result) -> toast text or None``: puts a finished job's result into the state
Store = Callable[[Any], "str | None"]
#: ``fail(job)``: shows why a job stopped (it failed or was cancelled)
Fail = Callable[[Job], None]


def _session_alive(job: Job) -> bool:
    """Whether the browser session that started ``job`` still exists (always True outside a
    server, e.g. in AppTest)."""
    session = job.meta.get("session_id")
    if not session or not Runtime.exists():
        return True
    return Runtime.instance().is_active_session(session)


def _release(old: JobRunner) -> None:
    old.shutdown(cancel=False)  # running jobs finish; their sessions still hold them


@st.cache_resource(max_entries=1, ttl=RUNNER_TTL_SECONDS, show_spinner=False, on_release=_release)
def runner() -> JobRunner:
    """The job runner of this server process (shared by all sessions); the jobs' fork server
    starts in the background with it (:mod:`dashboard.state.isolation`)."""
    start_fork_server()
    return JobRunner(limits.current().job_workers or worker_count(), alive=_session_alive)


def owner() -> str:
    """This session's token: the owner of its jobs in the runner."""
    token = st.session_state.get(Keys.JOB_OWNER)
    if token is None:
        token = st.session_state[Keys.JOB_OWNER] = uuid.uuid4().hex
    return token


def _handles() -> dict[Hashable, Job]:
    """This session's jobs that have not been collected, by key."""
    if Keys.JOBS not in st.session_state:
        st.session_state[Keys.JOBS] = {}
    return st.session_state[Keys.JOBS]


def get(key: Hashable) -> Job | None:
    """This session's job with ``key`` (running, or finished and not yet collected)."""
    return _handles().get(key)


def active(kind: str | None = None) -> list[Job]:
    """This session's jobs that are waiting or running (of ``kind``, when given)."""
    return [j for j in _handles().values() if not j.done() and kind in (None, j.kind)]


def _notices() -> dict[str, tuple[str, str]]:
    if Keys.JOB_NOTICES not in st.session_state:
        st.session_state[Keys.JOB_NOTICES] = {}
    return st.session_state[Keys.JOB_NOTICES]


def stop_notice(job: Job) -> tuple[str, str]:
    """``(level, Markdown)`` saying why ``job`` stopped: cancelled, or failed and why."""
    if job.state == CANCELLED:
        return "info", f"Cancelled: {job.label}. Nothing was stored."
    return "error", f"{job.label}: could not be completed. {error_message(job.error)}"


def _keep_notice(job: Job) -> None:
    _notices()[job.kind] = stop_notice(job)


def start(
    key: Hashable,
    work: Callable[[Job], Any],
    *,
    kind: str,
    label: str,
    store: Store,
    fail: Fail | None = None,
    meta: dict[str, Any] | None = None,
) -> Job:
    """Start ``work(job)`` for this session, or return its job already started with ``key``.

    Parameters
    ----------
    key
        What the work computes (hashable): the same key is never started twice at once.
    work
        Runs in a worker thread: no Streamlit calls; report progress with ``job.report``.
    kind
        ``"fit"``, ``"ladder"``, ``"bootstrap"``, ``"profile"`` or ``"teach"``.
    label
        What it is, as Markdown (user text escaped), for the progress displays.
    store
        Called in the script thread with the result when the job is collected; puts it into
        ``st.session_state`` and returns a toast text (or ``None``).
    fail
        Called with the job when it failed or was cancelled (script thread); by default its
        :func:`stop_notice` waits for :func:`show_notice` of ``kind``.
    meta
        More about the work, for the submitter (``job.meta``).
    """
    cap = limits.current().jobs_per_session  # deploy/limits.toml; 0: one of each kind
    if cap and key not in _handles() and len(active()) >= cap:
        st.warning(f"This session already runs {cap} jobs, the server's limit: wait for one.")
        st.stop()
    ctx = get_script_run_ctx()
    meta = {
        **(meta or {}),
        "store": store,
        "fail": fail or _keep_notice,
        "session_id": ctx.session_id if ctx is not None else None,
    }
    job = runner().submit(owner(), key, work, kind=kind, label=label, meta=meta)
    _handles()[key] = job
    return job


def launch(
    key: Hashable,
    work: Callable[[Job], Any],
    *,
    kind: str,
    label: str,
    store: Store,
    fail: Fail | None = None,
) -> Job | None:
    """Start the work (:func:`start`), wait a moment for it, then rerun the app: quick work
    is stored at once, longer work shows its progress. When this session already runs other
    work of this ``kind``, only say so (a warning) and return ``None``."""
    busy = [job for job in active(kind) if job.key != key]
    if busy:
        st.warning(f"{busy[0].label} is still running: wait for it, or cancel it first.")
        return None
    job = start(key, work, kind=kind, label=label, store=store, fail=fail)
    if wait_briefly(job, f"{label}..."):
        collect(toast=False)
    st.rerun()
    return job  # not reached: st.rerun stops the script


def wait_briefly(job: Job, text: str, timeout: float | None = None) -> bool:
    """Wait up to ``timeout`` (default :data:`QUICK_WAIT_SECONDS`) seconds under a spinner
    showing ``text`` (Markdown); True when the job has ended."""
    with st.spinner(text, show_time=True):
        return job.wait(QUICK_WAIT_SECONDS if timeout is None else timeout)


def is_engine_error(error: BaseException) -> bool:
    """An :class:`lmm_core.LMMError`, also one raised by a copy of the engine loaded before a
    module reload (compared by class name along the MRO)."""
    return isinstance(error, LMMError) or any(
        c.__name__ == "LMMError" and c.__module__.startswith("lmm_core")
        for c in type(error).__mro__
    )


def error_message(error: BaseException) -> str:
    """Why the work stopped, in words (Markdown, no traceback)."""
    if is_engine_error(error):
        text = str(error).rstrip()
        return escape_message(text) + ("" if text.endswith(".") else ".")
    return (
        f"It failed unexpectedly ({type(error).__name__}); nothing was stored. Please report "
        "this with what you were doing and the data's shape."
    )


def _settle(job: Job, toast: bool) -> None:
    """Store a finished job's result, or say why it stopped (script thread)."""
    if job.state == DONE:
        try:
            text = job.meta["store"](job.result)
        except Exception as error:  # noqa: BLE001 (a bug in storing: say so, keep the app up)
            _notices()[job.kind] = (
                "error",
                f"{job.label}: the result could not be stored. {error_message(error)}",
            )
            return
        if toast and text:
            st.toast(text)
        return
    (job.meta.get("fail") or _keep_notice)(job)
    if toast and job.state != CANCELLED:
        st.toast(f"{job.label}: could not be completed (see its page).")


def collect(*, toast: bool = True) -> list[Job]:
    """Store this session's finished jobs (see :func:`start`); returns them."""
    if events.track_page(st.session_state.get(Keys.CURRENT_PAGE)):  # app.py calls it per run
        lost_session_notice(True)  # a page run alone after a reconnect to another replica
    handles = _handles()
    finished = [(key, job) for key, job in list(handles.items()) if job.done()]
    if not finished:
        return []
    run, who = runner(), owner()
    for key, job in finished:
        handles.pop(key, None)
        if run.get(who, key) is job:
            run.pop(who, key)
        _settle(job, toast)
    return [job for _, job in finished]


def show_notice(kind: str) -> None:
    """Show (once) why the last job of ``kind`` stopped, if it failed or was cancelled."""
    notice = _notices().pop(kind, None)
    if notice is not None:
        level, text = notice
        {"info": st.info, "warning": st.warning}.get(level, st.error)(text)


# --------------------------------------------------------------------------- progress
def _status_text(job: Job) -> str:
    if job.cancel_requested:
        return "Stopping..."
    if job.state == "queued":
        return "Waiting for a free worker..."
    return f"{escape_text(job.text) or 'Working...'} ({job.elapsed():.0f} s)"  # fixed: timing


def _render(job: Job, where: str) -> None:
    """The progress bar (or the elapsed time), its text and the Cancel button of one job."""
    text = _status_text(job)
    if job.fraction is not None:
        st.progress(job.fraction, text=text)
    else:
        st.caption(text)
    st.button(
        "Cancel",
        key=f"{where}_cancel_{job.kind}",
        on_click=job.cancel,
        disabled=job.cancel_requested,
        help="Stop this work. Nothing of it is kept; what was stored before stays.",
    )


@st.fragment(run_every=POLL_SECONDS)
def _inline(key: Hashable) -> None:
    job = get(key)
    if job is None:
        return
    if job.done():
        st.rerun()  # the whole app: collect() stores it and the page shows the result
    with st.container(border=True, key=f"job_inline_{job.kind}"):
        st.markdown(job.label)
        _render(job, "inline")


def show_progress(key: Hashable) -> bool:
    """While this session's job ``key`` runs: its label, progress and Cancel button,
    refreshed every :data:`POLL_SECONDS` (the app reruns when it ends). True if there is one."""
    if get(key) is None:
        return False
    _inline(key)
    return True


@st.fragment(run_every=2 * POLL_SECONDS)
def _sidebar() -> None:
    jobs = list(_handles().values())
    if any(job.done() for job in jobs):
        st.rerun()
    for job in jobs:
        with st.container(key=f"job_sidebar_{job.kind}"):
            st.caption(job.label)
            _render(job, "sidebar")


def sidebar_status() -> None:
    """This session's running jobs with their progress and Cancel buttons (in the sidebar,
    on every page), while there are any."""
    if _handles():
        st.markdown("**Running**")
        _sidebar()
