"""The app's menu: its pages in order, drawn as links at the top of the sidebar.

Streamlit's own page menu is off (``client.showSidebarNavigation = false`` in
``.streamlit/config.toml`` and ``st.navigation(..., position="hidden")``). Because the app
has a ``pages/`` folder, Streamlit runs the first session after a server start in its old
multipage mode: it lists the folder's files in lowercase (app, compare, data, ...) until
``app.py`` has imported everything and called ``st.navigation`` (about 3 s on a fresh
server). With its menu off, that list is never shown; this module draws the app's own menu
as the first output of every run, before the heavy imports (it imports only Streamlit).

In the browser every element except text is drawn by a script loaded on first use, the menu's
links too. When a session's first page arrives at once (a warm server runs the whole script
in a fraction of a second), the page's larger scripts (charts, tables) can hold the menu back
by a second or more on a busy machine. So the first run of a session waits
:data:`HEAD_START_SECONDS` after sending the menu (:func:`give_menu_a_head_start`): then the
menu is usually drawn before the page (5 of 5 warm sessions on a moderately loaded 2-core
machine; under heavy load the browser can still lag, see
``tests/e2e/test_browser_first_paint.py``).
"""

from __future__ import annotations

import sys
import time

import streamlit as st
from streamlit.runtime import Runtime

__all__ = [
    "HEAD_START_SECONDS",
    "MENU_KEY",
    "PAGES",
    "give_menu_a_head_start",
    "page_list",
    "render_menu",
]

#: (file, title), in menu order. No page icons on purpose: the active page's icon becomes the
#: favicon, and Streamlit fetches ":material/..." favicons from fonts.gstatic.com (a request
#: leaving the machine); emoji need a colour-emoji font that servers often lack.
PAGES: list[tuple[str, str]] = [
    ("pages/data.py", "Data"),
    ("pages/explore.py", "Explore"),
    ("pages/model.py", "Model"),
    ("pages/trajectories.py", "Trajectories"),
    ("pages/prediction.py", "Prediction"),
    ("pages/shrinkage.py", "Shrinkage"),
    ("pages/compare.py", "Compare"),
    ("pages/trial.py", "Trial"),
    ("pages/diagnostics.py", "Diagnostics"),
    ("pages/teach.py", "Teach"),
    ("pages/tour.py", "Tour"),
    ("pages/glossary.py", "Glossary"),
    ("pages/export.py", "Export"),
]
#: key of the menu's container (its CSS class is ``st-key-app_menu``; browser tests use it)
MENU_KEY = "app_menu"
#: seconds the first run of a session waits after sending the menu (see the module docstring)
HEAD_START_SECONDS = 0.25
_STARTED = "menu_head_start_given"  # session-state flag: this session's first run is over


def page_list() -> list[st.Page]:
    """The pages of :data:`PAGES` for ``st.navigation`` (the first is the start page)."""
    return [st.Page(path, title=title) for path, title in PAGES]


def render_menu(pages: list[st.Page]) -> None:
    """One link per page at the top of the sidebar (the current page is highlighted)."""
    with st.sidebar.container(key=MENU_KEY, gap=None):
        for page in pages:
            st.page_link(page)


def give_menu_a_head_start() -> None:
    """On a session's first run in a warm server, wait :data:`HEAD_START_SECONDS` so that the
    browser draws the menu before the page. Not in a cold server (the imports that follow
    take longer anyway) nor outside a server (AppTest)."""
    if st.session_state.get(_STARTED):
        return
    st.session_state[_STARTED] = True
    if Runtime.exists() and "dashboard.state.session" in sys.modules:
        time.sleep(HEAD_START_SECONDS)
