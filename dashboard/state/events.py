"""Structured events for the operator: one JSON line per event, never any data.

An operator needs to know what the server does (sessions, page views, long jobs, their
durations and outcomes, failures) without the logs ever holding patient data. Each event is
one JSON object on one line of standard error (systemd's journal keeps it), for example::

    {"ts": "2026-11-27T10:02:13.512Z", "event": "job_end", "pid": 4121, "replica": "8501",
     "session": "3f9a0c1d22e4", "job": "fit", "status": "done", "seconds": 1.84,
     "wait_seconds": 0.0}

Events and their fields (besides ``ts``, ``event``, ``pid`` and ``replica``):

* ``session_start``: ``session``; ``lost_previous`` (true when the browser came back from a
  session this replica does not hold: its replica was stopped or restarted);
* ``session_end``: ``session``, ``seconds`` (from its start to the moment its browser went
  away); logged once the session has been gone for the idle timeout
  (:mod:`dashboard.state.limits`), after which Streamlit drops it;
* ``page_view``: ``session``, ``page`` (the page's URL path, one of the app's own pages);
* ``job_start``: ``session``, ``job`` (the kind: ``fit``, ``bootstrap``...), ``wait_seconds``
  (time queued for a worker);
* ``job_end``: ``session``, ``job``, ``status`` (``done``, ``failed``, ``cancelled``),
  ``seconds`` (run time), ``wait_seconds``, and ``error`` (the exception's class name) when
  it failed;
* ``error``: ``session``, ``where`` (a fixed word naming the code path), ``error`` (class).

**What is never logged**, by construction: no field carries user text. Only numbers,
booleans, fixed words of the code (:func:`_word`: at most 64 characters of ``[A-Za-z0-9_./-]``)
and exception *class names* are accepted; a job's label, key and result (which hold formulas,
hence column names), file names, data values and exception messages are never passed here.
Session ids are not logged either (a session id lets a browser take over a disconnected
session): ``session`` is a keyed hash of it, with a key drawn at process start.

Events are written when the environment variable :data:`ENV_VAR` is ``stderr`` (the replica
launcher ``deploy/replica.py`` sets it; a laptop run stays quiet). No Streamlit at import
(:mod:`dashboard.state.jobs` imports this module); the session helpers import it lazily.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any, TextIO

__all__ = [
    "ENV_VAR",
    "EVENTS",
    "LOGGER_NAME",
    "SWEEP_SECONDS",
    "configure",
    "emit",
    "enabled",
    "error",
    "job_finished",
    "job_started",
    "page_view",
    "previous_session_lost",
    "session_started",
    "session_tag",
    "start_sweeper",
    "sweep",
    "track_page",
    "track_session",
]

#: environment variable switching events on (``stderr``) or off (anything else)
ENV_VAR = "LMM_EVENTS"
LOGGER_NAME = "lmm_explorer.events"
EVENTS = ("session_start", "session_end", "page_view", "job_start", "job_end", "error")
#: seconds between two checks for sessions that have ended
SWEEP_SECONDS = 15.0

_KEY = secrets.token_bytes(16)  # per process: tags cannot be turned back into session ids
_WORD = re.compile(r"[A-Za-z0-9_./-]{0,64}")
_LOCK = threading.Lock()
#: sessions seen by this process: id -> [tag, start (monotonic), gone since, last page]
_SESSIONS: dict[str, list[Any]] = {}
_sweeper: threading.Thread | None = None


def enabled() -> bool:
    """Whether events are written (``$LMM_EVENTS`` is ``stderr``)."""
    return os.environ.get(ENV_VAR, "").strip().lower() == "stderr"


def configure(stream: TextIO | None = None) -> logging.Logger:
    """The events logger, writing bare lines to ``stream`` (default standard error).

    Idempotent; the logger does not propagate, so Streamlit's log format never wraps it.
    """
    logger = logging.getLogger(LOGGER_NAME)
    if stream is not None or not logger.handlers:
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


def session_tag(session_id: str | None) -> str:
    """A 12-hex-digit keyed hash (BLAKE2b) of a session id; ``"-"`` without one."""
    if not session_id:
        return "-"
    return hashlib.blake2b(str(session_id).encode(), key=_KEY, digest_size=6).hexdigest()


def _word(value: str) -> str:
    """``value`` when it is a short word of the code, else ``"?"`` (never user text)."""
    return value if _WORD.fullmatch(value) else "?"


def _clean(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return round(value, 3)  # fixed: durations in seconds, to the millisecond
    if isinstance(value, str):
        return _word(value)
    return "?"  # no containers, no objects: their repr could hold anything


def emit(event: str, **fields: Any) -> dict[str, Any]:
    """Build the event record (fields cleaned by :func:`_clean`) and write it when
    :func:`enabled`; returns the record."""
    if event not in EVENTS:
        raise ValueError(f"unknown event {event!r}; events are {', '.join(EVENTS)}")
    now = datetime.now(UTC)
    record: dict[str, Any] = {
        "ts": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
        "event": event,
        "pid": os.getpid(),
    }
    replica = os.environ.get("LMM_REPLICA")
    if replica:
        record["replica"] = _word(replica)
    record.update({name: _clean(value) for name, value in fields.items()})
    if enabled():
        configure().info(json.dumps(record, separators=(", ", ": ")))
    return record


def error(where: str, exception: BaseException, session_id: str | None = None) -> dict:
    """An ``error`` event: the code path ``where`` and the exception's class name only."""
    return emit(
        "error", session=session_tag(session_id), where=where, error=type(exception).__name__
    )


# --------------------------------------------------------------------------- jobs
def _job_session(job: Any) -> str:
    return session_tag((getattr(job, "meta", None) or {}).get("session_id"))


def job_started(job: Any) -> dict:
    """``job_start`` for a :class:`dashboard.state.jobs.Job` that a worker has just begun."""
    started = job.started if job.started is not None else time.monotonic()
    return emit(
        "job_start",
        session=_job_session(job),
        job=str(job.kind),
        wait_seconds=max(0.0, started - job.submitted),
    )


def job_finished(job: Any) -> dict:
    """``job_end`` for a job that has ended: status, run time, queue time, error class."""
    fields: dict[str, Any] = {
        "session": _job_session(job),
        "job": str(job.kind),
        "status": str(job.state),
        "seconds": job.elapsed(),
        "wait_seconds": max(0.0, (job.started or job.finished or job.submitted) - job.submitted),
    }
    if job.error is not None:
        fields["error"] = type(job.error).__name__
    return emit("job_end", **fields)


# --------------------------------------------------------------------------- sessions
def previous_session_lost(websocket_protocol: str | None, session_id: str) -> bool:
    """Whether a session was opened by a browser coming back from a session that is gone.

    Streamlit's browser client names the session it wants to resume as the third entry of
    the WebSocket's ``Sec-WebSocket-Protocol`` header (``streamlit, <xsrf token>, <session
    id>``). When the server could not resume it (another replica, or a restarted one), it
    opens a new session with another id: the user's data and models are gone.
    """
    entries = [e.strip() for e in (websocket_protocol or "").split(",")]
    wanted = entries[2] if len(entries) >= 3 else ""
    return bool(wanted) and wanted != session_id


def session_started(session_id: str, *, lost_previous: bool = False) -> bool:
    """Record a session's first run (``session_start``); False when already known."""
    with _LOCK:
        known = _SESSIONS.get(session_id)
        if known is not None:
            known[2] = None  # running again: not gone
            return False
        _SESSIONS[session_id] = [session_tag(session_id), time.monotonic(), None, None]
    emit("session_start", session=session_tag(session_id), lost_previous=bool(lost_previous))
    return True


def page_view(session_id: str, page: str | None) -> bool:
    """``page_view`` when the session's page differs from its last one; True when logged."""
    session_started(session_id)
    with _LOCK:
        seen = _SESSIONS[session_id]
        if seen[3] == page:
            return False
        seen[3] = page
    emit("page_view", session=session_tag(session_id), page=str(page or ""))
    return True


def sweep(is_active: Any, idle_seconds: float, now: float | None = None) -> list[dict]:
    """Log ``session_end`` for sessions gone (``is_active(id)`` false) for ``idle_seconds``.

    A session seen inactive is remembered as gone since then; if it comes back (a
    reconnect) it is active again. Returns the events written.
    """
    now = time.monotonic() if now is None else now
    ended = []
    with _LOCK:
        for session_id, seen in list(_SESSIONS.items()):
            if is_active(session_id):
                seen[2] = None
            elif seen[2] is None:
                seen[2] = now
            elif now - seen[2] >= idle_seconds:
                del _SESSIONS[session_id]
                ended.append((seen[0], seen[2] - seen[1]))
    return [emit("session_end", session=tag, seconds=max(0.0, s)) for tag, s in ended]


def _sweep_forever() -> None:  # pragma: no cover - a daemon thread of a running server
    from streamlit.runtime import Runtime

    from dashboard.state import limits

    idle = float(limits.current().idle_timeout_seconds)
    while True:
        time.sleep(SWEEP_SECONDS)
        if Runtime.exists():
            sweep(Runtime.instance().is_active_session, idle)


def start_sweeper() -> None:
    """Start (once per process) the thread that logs ``session_end`` events."""
    global _sweeper
    with _LOCK:
        if _sweeper is None and enabled():
            _sweeper = threading.Thread(target=_sweep_forever, name="lmm-events", daemon=True)
            _sweeper.start()


# --------------------------------------------------------------------------- Streamlit side
def _context() -> tuple[str, str | None] | None:
    """This script run's session id and its WebSocket protocol header (None outside a run)."""
    import streamlit as st
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is None:
        return None
    try:
        protocol = st.context.headers.get("Sec-Websocket-Protocol")
    except Exception:  # noqa: BLE001 (no headers in AppTest: not a reconnect)
        protocol = None
    return ctx.session_id, protocol


def _track(found: tuple[str, str | None]) -> bool:
    """``session_start`` on a session's first run; True when it replaced a lost one."""
    session_id, protocol = found
    with _LOCK:
        first = session_id not in _SESSIONS
    lost = first and previous_session_lost(protocol, session_id)
    started = session_started(session_id, lost_previous=lost)
    start_sweeper()
    return started and lost


def track_session() -> bool:
    """At the start of every script run: ``session_start`` on a session's first run (and the
    thread that logs ``session_end``). True on the first run of a session that replaced a
    lost one (:func:`previous_session_lost`), so that the page can say so."""
    found = _context()
    return False if found is None else _track(found)


def track_page(page: str | None) -> bool:
    """After navigation in every script run: ``page_view`` when the page changed.

    Also tracks the session (as :func:`track_session`, whose value it returns): a new session
    opened by a browser that was on a page runs that page's script alone, without ``app.py``.
    """
    found = _context()
    if found is None:
        return False
    lost = _track(found)
    page_view(found[0], page)
    return lost
