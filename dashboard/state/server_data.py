"""The server data folder in the session: its cached list, samples of patients, and the
server file behind the active dataset.

When the limits file names a ``data_folder`` (:mod:`dashboard.state.limits`), the Data page
lists its files (:func:`dashboard.analysis.server_data.list_folder`). Choosing one draws the
whole trajectories of ``n`` random patients (:func:`lmm_core.stream.sources.sample_groups`),
which become the active dataset like an example (Explore and Trajectories show them); the
session remembers which file they come from (:data:`Keys.SERVER_DATA`), so that the Model
page fits the *whole file* by streaming (:func:`dashboard.state.work.stream_fit`).
"""

from __future__ import annotations

import hashlib
from typing import Any

import pandas as pd
import streamlit as st

from dashboard.analysis.server_data import (
    ServerFile,
    folder_signature,
    list_folder,
    source_of,
)
from dashboard.io.roles import Roles, guess_roles
from dashboard.state import limits
from dashboard.state.session import Keys, activate_dataset
from lmm_core.stream.sources import DuckDBEngine, sample_groups

__all__ = [
    "HEAD_ROWS",
    "SERVER",
    "active",
    "activate_sample",
    "data_folder",
    "head",
    "listing",
    "sample",
]

#: ``Keys.DATA_SOURCE`` of a sample of a server file
SERVER = "server"
#: rows read from the top of a file to guess its column roles
HEAD_ROWS = 2000


def data_folder() -> str | None:
    """The operator's data folder (``data_folder`` of the limits file), or ``None``."""
    return limits.current().data_folder


@st.cache_data(max_entries=4, ttl=600, show_spinner="Reading the data folder...")
def _files(folder: str, signature: tuple) -> list[ServerFile]:
    return list_folder(folder)


def listing(folder: str) -> list[ServerFile]:
    """The files of ``folder`` (cached until a file changes, at most ten minutes).

    Raises
    ------
    lmm_core.DataError
        When the folder does not exist.
    """
    return _files(folder, folder_signature(folder))


def _entry_key(entry: ServerFile) -> tuple:
    return (entry.name, entry.table, entry.size_bytes, entry.modified)


@st.cache_data(max_entries=4, ttl=3600, show_spinner=False)
def _head(folder: str, name: str, table: str | None, _key: tuple) -> pd.DataFrame:
    engine = DuckDBEngine(source_of(folder, name, table), threads=1)
    try:
        return engine.query(f"SELECT * FROM {{table}} LIMIT {HEAD_ROWS}")
    finally:
        engine.close()


def head(folder: str, entry: ServerFile) -> pd.DataFrame:
    """The first :data:`HEAD_ROWS` rows of a file (its columns, and what role guessing
    reads)."""
    return _head(folder, entry.name, entry.table, _entry_key(entry))


@st.cache_data(max_entries=4, ttl=3600, show_spinner="Drawing the patients...")
def _sample(
    folder: str, name: str, table: str | None, group: str, n: int, seed: int, _key: tuple
) -> pd.DataFrame:
    return sample_groups(source_of(folder, name, table), group, n, seed)


def sample(folder: str, entry: ServerFile, group: str, n: int, seed: int) -> pd.DataFrame:
    """Every row of ``n`` random patients (``group``) of a file; the same seed gives the
    same patients (:func:`lmm_core.stream.sources.sample_groups`)."""
    return _sample(folder, entry.name, entry.table, group, int(n), int(seed), _entry_key(entry))


def activate_sample(folder: str, entry: ServerFile, group: str, n: int, seed: int) -> None:
    """Draw the sample and make it the active dataset, labelled as a sample of the file; the
    session remembers the file for streamed fits (:func:`active`)."""
    frame = sample(folder, entry, group, n, seed)
    info = frame.attrs
    guessed = guess_roles(frame).to_dict()
    guessed["subject"] = group
    if guessed.get("cluster") == group:
        guessed["cluster"] = None
    for role in ("time", "outcome"):
        if guessed.get(role) == group:
            guessed[role] = None
    guessed["covariates"] = [c for c in guessed.get("covariates", []) if c != group]
    digest = hashlib.sha256(repr((folder, _entry_key(entry), group, n, seed)).encode())
    key = f"server:{digest.hexdigest()[:16]}"
    n_sampled, n_groups, n_rows = int(info["n_sampled"]), int(info["n_groups"]), int(info["n_rows"])
    what = (
        f"all {n_groups:,} patients"
        if n_sampled == n_groups
        else f"sample of {n_sampled:,} of {n_groups:,} patients"
    )
    activate_dataset(
        frame,
        name=f"{entry.label}: {what}",
        source=SERVER,
        roles=Roles.from_dict(guessed),
        key=key,
        title=f"server file of {n_rows:,} rows; Fit streams every row",
        note=(
            f"Server file {entry.label} ({n_rows:,} rows): {what} (`{group}`), every visit "
            f"of each, drawn with seed {int(seed)}. Explore, Trajectories and the residual "
            "plots show this sample; Fit on the Model page streams the whole file, and the "
            "estimates are those of the whole file."
        ),
    )
    st.session_state[Keys.SERVER_DATA] = {
        "folder": folder,
        "name": entry.name,
        "table": entry.table,
        "label": entry.label,
        "group": group,
        "n_sampled": n_sampled,
        "n_groups": n_groups,
        "n_rows": n_rows,
        "seed": int(seed),
        "data_key": key,
    }


def active() -> dict[str, Any] | None:
    """The server file behind the active dataset (a dict of :func:`activate_sample`), or
    ``None`` when the active dataset is not a sample of one."""
    state = st.session_state
    info = state.get(Keys.SERVER_DATA)
    if not info or state.get(Keys.DATA_SOURCE) != SERVER:
        return None
    if info.get("data_key") != state.get(Keys.DATA_KEY) or data_folder() != info["folder"]:
        return None
    return info
