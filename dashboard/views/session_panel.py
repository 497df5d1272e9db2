"""The sidebar's "Session" section: share the view as a link, save it to a file, open one.

The address bar always holds the view (:mod:`dashboard.state.link`): copying it shares the
example, the models and the page, never the user's data. "Save session" downloads one file
(:mod:`dashboard.analysis.session_file`: settings, formulas, the fits' summaries, and the
data only if the box is ticked); "Open session" checks a file and restores it.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard.analysis.session_file import MAX_BYTES
from dashboard.base.numbers import fmt
from dashboard.state.session import Keys
from dashboard.state.session_file import file_name, open_session, session_writer
from dashboard.views.menu import PAGES

__all__ = ["OPENING", "render"]

#: widget key of the toggle that shows the "Open session" uploader (hidden until asked for,
#: so the Data page keeps a single file uploader)
OPENING = "session_opening"


def _open_file() -> None:
    """Open the file in the uploader once (the uploader keeps it across runs)."""
    state = st.session_state
    upload = state.get(Keys.W_SESSION_OPEN)
    if upload is None or state[Keys.SESSION_FILE_ID] == upload.file_id:
        return
    state[Keys.SESSION_FILE_ID] = upload.file_id
    state[OPENING] = False  # done: hide the uploader again (before it is drawn in this run)
    if upload.size > MAX_BYTES:
        state[Keys.LINK_NOTICE] = (
            "error",
            f"The session file was not opened: it is {fmt(upload.size / 1024**2, 3)} MB, over the "
            f"limit of {MAX_BYTES / 1024**2:,.0f} MB.",
        )
        return
    page = open_session(upload.getvalue())
    paths = {Path(path).stem: path for path, _ in PAGES}
    if page in paths and page != state.get(Keys.CURRENT_PAGE):
        st.switch_page(paths[page])


def render() -> None:
    """The "Session" expander (inside the sidebar)."""
    _open_file()
    with st.expander("Session: share, save, open"):
        st.caption(
            "The address bar holds this view (dataset, models, page): bookmark it, reload, or "
            "send it. A link never holds your data: a table you upload comes back only in this "
            "browser, while the server holds its session."
        )
        with_data = st.checkbox(
            "Put the data into the file",
            key=Keys.W_SESSION_DATA,
            help="Without it the file holds the settings, the formulas and the models' "
            "summaries, and a fingerprint (SHA-256) of the data; opening it then needs the same "
            "data (an example is read again by its name).",
        )
        st.download_button(
            "Save session",
            data=session_writer(with_data),
            file_name=file_name(),
            mime="application/json",
            on_click="ignore",
            help="One JSON file: settings, formulas, the fitted models' summaries"
            + (", and the data." if with_data else " (not the data)."),
        )
        if st.toggle("Open a session file", key=OPENING):
            st.file_uploader(
                "Open session",
                type=["json"],
                key=Keys.W_SESSION_OPEN,
                help="A file saved by 'Save session'. It is checked (size, format, version, "
                "formulas, data fingerprint) before anything is restored.",
            )
