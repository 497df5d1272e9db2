"""Who is using this session, and the sign-in check that every page passes.

The settings and the rule are :mod:`dashboard.analysis.access` (pure); this module reads them
from the server's secrets (``st.secrets``) and the user from ``st.user`` (the identity cookie
that ``st.login`` set). The pages the user sees instead of the app are
:mod:`dashboard.views.signin`, drawn by ``app.py`` before anything of the app.

Why a second check, in :func:`guard_page` (called by
:func:`dashboard.state.session.init_state`, the first call of every page): Streamlit runs an
app that has a ``pages/`` folder in its old multipage mode until ``app.py`` has called
``st.navigation`` once in the server process (``PagesManager.uses_pages_directory``). In that
mode a first request for a page's address (``/model``) right after a server start runs
``pages/model.py`` directly, without ``app.py`` and so without its gate. The guard stops such
a run before the page draws anything, switches the server to ``app.py``'s navigation (what
``st.navigation`` itself does) and runs again through ``app.py``, which draws the sign-in page.
It does so with sign-in off too: a page run alone would lack the menu, the sidebar and the
notice that the session was lost (a browser that reconnects to a replica started since, see
``deploy/README.md``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from dashboard.analysis.access import AccessPolicy, decide, read_policy

__all__ = ["claims", "guard_page", "let_in", "policy"]


def policy() -> AccessPolicy:
    """The :class:`~dashboard.analysis.access.AccessPolicy` of this server's secrets (a
    secrets file that exists but cannot be parsed closes the app)."""
    try:
        secrets = st.secrets.to_dict()
    except FileNotFoundError:  # no secrets file, or one that cannot be parsed
        files = st.get_option("secrets.files") or []
        return read_policy({}, unreadable=any(Path(p).is_file() for p in files))
    return read_policy(secrets)


def claims() -> dict[str, Any]:
    """The signed-in user's identity claims (``st.user``; ``{}`` without sign-in)."""
    return st.user.to_dict()


def let_in(current: AccessPolicy | None = None) -> bool:
    """Whether this session may see the app: sign-in off, or signed in and on the list."""
    current = policy() if current is None else current
    return not current.sign_in or decide(current, claims()).allowed


def guard_page(set_up: bool = True) -> None:
    """Send a page run directly, without ``app.py``, through ``app.py`` when the session is
    not let in or ``app.py`` has never set it up (``set_up`` false); stop a page that runs
    for a session that is not let in (see the module docstring)."""
    allowed = let_in()
    if PagesManager.uses_pages_directory and not (allowed and set_up):  # without app.py
        PagesManager.uses_pages_directory = False
        st.rerun()  # the same address again, through app.py
    if not allowed:
        st.stop()  # not reached through app.py's gate in any other way; draw nothing
