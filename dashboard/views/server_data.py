"""The Data page's "Server data" section: the operator's data folder, a sample of patients.

Shown only when the limits file names a ``data_folder``. It lists the folder's files with
their sizes and row counts, and draws the whole trajectories of a random sample of patients
of the chosen file, which becomes the active dataset (:mod:`dashboard.state.server_data`);
the widgets show the settings of the sample drawn last (Streamlit forgets a widget's value on
another page). While the Model page's streamed fit of the file runs, its progress and Cancel
button show here too.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import pandas as pd
import streamlit as st

from dashboard.analysis.server_data import ServerFile
from dashboard.base.markup import code_span, escape_message, escape_text
from dashboard.base.numbers import fmt
from dashboard.io.roles import guess_roles
from dashboard.state import server_data
from dashboard.state.session import Keys
from dashboard.views import fit_jobs
from dashboard.views import jobs as jobs_view
from lmm_core import LMMError

__all__ = ["DEFAULT_PATIENTS", "MAX_PATIENTS", "file_table", "server_section"]

#: patients drawn by default, and at most (the sample is held in the session's memory)
DEFAULT_PATIENTS = 500
MAX_PATIENTS = 20_000


def _size(n: int) -> str:
    for unit, power in (("GB", 30), ("MB", 20), ("kB", 10)):
        if n >= 2**power:
            return f"{fmt(n / 2**power, 3)} {unit}"
    return f"{n:,} B"


def file_table(files: list[ServerFile]) -> pd.DataFrame:
    """The list as shown: file, kind, size, rows and last change."""
    return pd.DataFrame(
        {
            "file": [f.label for f in files],
            "kind": [f.kind for f in files],
            "size": [_size(f.size_bytes) for f in files],
            "rows": [
                f"{f.rows:,}" if f.rows is not None else ("unreadable" if f.problem else "—")
                for f in files
            ],
            "changed": [
                datetime.fromtimestamp(f.modified).strftime("%Y-%m-%d %H:%M") for f in files
            ],
        }
    )


def _group_key(entry: ServerFile) -> str:
    return f"{Keys.W_SERVER_GROUP}_{hashlib.sha256(entry.ident.encode()).hexdigest()[:10]}"


def _sample(folder: str, entry: ServerFile, group_key: str) -> None:
    state = st.session_state
    try:
        server_data.activate_sample(
            folder, entry, state[group_key], state[Keys.W_SERVER_N], state[Keys.W_SERVER_SEED]
        )
    except LMMError as error:
        state[Keys.UPLOAD_MESSAGE] = ("error", f"No sample drawn: {escape_message(str(error))}")
    else:
        state[Keys.UPLOAD_MESSAGE] = None


def _active_note() -> None:
    info = server_data.active()
    if info is None:
        return
    st.success(
        f"The active dataset is a sample of {escape_text(info['label'])}: "
        f"{info['n_sampled']:,} of {info['n_groups']:,} patients ({code_span(info['group'])}), "
        f"every visit of each. Explore and Trajectories show them; **Fit** on the Model page "
        f"streams all {info['n_rows']:,} rows of the file."
    )


def server_section(folder: str) -> None:
    """The section: the file list, the sample's settings and the button that draws it."""
    st.subheader("Server data")
    st.caption(
        "Data files on the server, in the folder the operator set up. Choose a file to explore "
        "a random sample of its patients (all visits of each); the Model page then fits the "
        "whole file by streaming it, however large."
    )
    try:
        files = server_data.listing(folder)
    except LMMError as error:
        st.warning(escape_message(str(error)))
        return
    if not files:
        st.info("The data folder holds no .parquet, .csv or .duckdb file yet.")
        return
    st.dataframe(file_table(files), hide_index=True, key="server_files")
    counted = [f.rows for f in files if f.rows is not None]
    st.caption(
        f"{len(files):,} file{'s' * (len(files) != 1)} offered"
        + (f", {sum(counted):,} rows in all" if len(counted) == len(files) else "")
        + ". Rows of a large CSV file are counted when it is sampled."
    )
    usable = [f for f in files if not f.problem]
    for f in files:
        if f.problem:
            st.caption(f"{escape_text(f.label)} cannot be read: {escape_message(f.problem)}")
    if not usable:
        return
    by_id = {f.ident: f for f in usable}
    info = server_data.active()  # the sample drawn last: the widgets show its settings
    if st.session_state.get(Keys.W_SERVER_FILE) not in by_id:
        where = (info["name"], info["table"]) if info else None
        shown = [f.ident for f in usable if (f.name, f.table) == where]
        st.session_state[Keys.W_SERVER_FILE] = (shown or [usable[0].ident])[0]
    cols = st.columns([3, 2, 1, 1])
    chosen = cols[0].selectbox(
        "File",
        list(by_id),
        format_func=lambda i: by_id[i].label,
        key=Keys.W_SERVER_FILE,
        help="Files directly in the data folder (and folders of Parquet files).",
    )
    entry = by_id[chosen]
    if info is not None and (info["name"], info["table"]) != (entry.name, entry.table):
        info = None
    try:
        top = server_data.head(folder, entry)
    except LMMError as error:
        st.error(escape_message(str(error)))
        return
    columns = [str(c) for c in top.columns]
    group_key = _group_key(entry)
    if st.session_state.get(group_key) not in columns:
        guess = info["group"] if info else guess_roles(top).subject
        st.session_state[group_key] = guess if guess in columns else columns[0]
    cols[1].selectbox(
        "Patient column",
        columns,
        key=group_key,
        help="Whose visits are drawn together: every row of each drawn patient is kept, so "
        "trajectories are whole. Guessed from the first rows of the file.",
    )
    st.session_state.setdefault(Keys.W_SERVER_N, info["n_sampled"] if info else DEFAULT_PATIENTS)
    st.session_state.setdefault(Keys.W_SERVER_SEED, info["seed"] if info else 1)
    cols[2].number_input(
        "Patients",
        min_value=1,
        max_value=MAX_PATIENTS,
        step=100,
        key=Keys.W_SERVER_N,
        help="How many patients to draw at random (without replacement).",
    )
    cols[3].number_input(
        "Seed",
        min_value=0,
        max_value=2**31 - 1,
        step=1,
        key=Keys.W_SERVER_SEED,
        help="The same seed draws the same patients.",
    )
    st.button(
        "Sample patients",
        type="primary",
        key=Keys.W_SERVER_SAMPLE,
        on_click=_sample,
        args=(folder, entry, group_key),
    )
    _active_note()
    _running_fit()


def _running_fit() -> None:
    """The streamed fit of the file, while it runs: its progress (rows, or passes for a
    GLMM, with the cost said first) and Cancel, as in the sidebar."""
    job = fit_jobs.running_job()
    if job is not None and fit_jobs.request_of(job).streamed:
        jobs_view.show_progress(job.key)
