"""Uploaded tables held in the server's memory under an unguessable token, for a reload.

A page reload starts a new Streamlit session with an empty ``st.session_state``. So that an
uploaded table survives it, the active upload is also kept in :class:`UploadStore` (one per
server, an ``st.cache_resource``; the same DataFrame object as the session's, no copy, nothing
written to disk) under ``secrets.token_urlsafe(32)`` (256 random bits), and the link holds
``up=<token>``. The entry is bound to the browser that uploaded it: the SHA-256 of the
browser's Streamlit XSRF cookie (a random token that a reload keeps and another browser, or
a private window, does not have). Another browser with the same link gets nothing.

An entry lives as long as a session of the server uses it: it is dropped at the next sweep
(every time any session reads or writes the store) once none of the sessions that used it is
still held by the server and none has touched it for :data:`GRACE_SECONDS` (Streamlit keeps a
closed tab's session :data:`GRACE_SECONDS` = 120 s, ``server.disconnectedSessionTTL``), and in
any case after :data:`MAX_AGE_SECONDS`; at most :data:`MAX_ENTRIES` entries are kept.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

__all__ = [
    "GRACE_SECONDS",
    "MAX_AGE_SECONDS",
    "MAX_ENTRIES",
    "HeldUpload",
    "UploadStore",
    "browser_id",
    "session_id",
    "store",
]

GRACE_SECONDS = 120.0
MAX_AGE_SECONDS = 12 * 3600.0
MAX_ENTRIES = 64
XSRF_COOKIE = "_streamlit_xsrf"


@dataclass
class HeldUpload:
    """An uploaded table held for a reload: the table and how it was activated."""

    data: Any  # pandas.DataFrame (the session's own object)
    meta: dict[str, Any]  # name, title, note, units, roles, key: activate_dataset's arguments
    browser: str  # SHA-256 of the browser's XSRF token
    created: float
    seen: float
    sessions: set[str] = field(default_factory=set)


class UploadStore:
    """Token -> :class:`HeldUpload`, thread-safe, with the expiry of the module docstring.

    Parameters
    ----------
    alive
        ``alive(session_id)``: whether the server still holds that session.
    clock
        Seconds (monotonic); tests pass their own.
    """

    def __init__(
        self,
        alive: Callable[[str], bool] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._entries: dict[str, HeldUpload] = {}
        self._lock = threading.Lock()
        self._alive = alive or (lambda _sid: False)
        self._clock = clock

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, data: Any, meta: dict[str, Any], browser: str, session: str) -> str:
        """Hold ``data`` for ``browser``; returns its new token."""
        token = secrets.token_urlsafe(32)
        now = self._clock()
        with self._lock:
            self._sweep(now)
            self._entries[token] = HeldUpload(data, dict(meta), browser, now, now, {session})
            while len(self._entries) > MAX_ENTRIES:  # drop the least recently used
                oldest = min(self._entries, key=lambda t: self._entries[t].seen)
                del self._entries[oldest]
        return token

    def get(self, token: str, browser: str, session: str) -> HeldUpload | None:
        """The upload held under ``token`` for this ``browser``, or ``None`` (unknown or
        expired token, or another browser); the session is recorded as a user of it."""
        now = self._clock()
        with self._lock:
            self._sweep(now)
            entry = self._entries.get(token)
            if entry is None or not browser or not secrets.compare_digest(entry.browser, browser):
                return None
            entry.seen = now
            entry.sessions.add(session)
            return entry

    def touch(self, token: str, session: str) -> None:
        """A run of ``session`` still uses ``token``: keep the entry."""
        with self._lock:
            entry = self._entries.get(token)
            if entry is not None and session in entry.sessions:
                entry.seen = self._clock()

    def drop(self, token: str) -> None:
        """Forget ``token`` now."""
        with self._lock:
            self._entries.pop(token, None)

    def drop_for(self, session: str, browser: str) -> int:
        """Forget now every upload that ``session`` used or that is held for ``browser``
        (sign-out: the next person at this browser gets none of them); returns how many."""
        with self._lock:
            gone = [
                token
                for token, entry in self._entries.items()
                if (session and session in entry.sessions) or (browser and entry.browser == browser)
            ]
            for token in gone:
                del self._entries[token]
        return len(gone)

    def _sweep(self, now: float) -> None:
        for token, entry in list(self._entries.items()):
            idle = now - entry.seen > GRACE_SECONDS
            too_old = now - entry.created > MAX_AGE_SECONDS
            if too_old or (idle and not any(self._alive(s) for s in entry.sessions)):
                del self._entries[token]


def _session_alive(session: str) -> bool:
    from streamlit.runtime import Runtime

    return Runtime.exists() and Runtime.instance().is_active_session(session)


#: the store itself is renewed after a day (its entries live 12 hours at most anyway)
STORE_TTL_SECONDS = 24 * 3600


@st.cache_resource(max_entries=1, ttl=STORE_TTL_SECONDS, show_spinner=False)
def store() -> UploadStore:
    """The server's one :class:`UploadStore` (in memory; emptied by a restart and renewed
    after :data:`STORE_TTL_SECONDS`)."""
    return UploadStore(alive=_session_alive)


def browser_id(cookie: str | None = None) -> str:
    """SHA-256 (hex) of the browser's XSRF token, ``""`` when there is none.

    Streamlit's cookie is ``2|<mask>|<masked token>|<time>`` (a new mask on every page load,
    the same token): the token is the masked bytes XOR the 4-byte mask, repeated.
    """
    if cookie is None:
        cookie = st.context.cookies.get(XSRF_COOKIE) or ""
    parts = cookie.split("|")
    try:
        if len(parts) != 4 or parts[0] != "2":
            raise ValueError(cookie)
        mask, masked = bytes.fromhex(parts[1]), bytes.fromhex(parts[2])
    except ValueError:
        return ""
    if len(mask) != 4 or not masked:
        return ""
    token = bytes(b ^ mask[i % 4] for i, b in enumerate(masked))
    return hashlib.sha256(token).hexdigest()


def session_id() -> str:
    """This Streamlit session's id (``""`` outside a script run)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else ""
