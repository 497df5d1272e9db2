"""Save this session to a file, and open a saved one (the format:
:mod:`dashboard.analysis.session_file`).

:func:`session_writer` takes a snapshot of the session (the data, the fitted models with their
results, the page and the settings) and returns the function that writes the file, so the
download button builds it only when clicked, off the script's thread. :func:`open_session`
checks a file and restores it: the data (from the file, the named example, or the active
table when its fingerprint matches), the REML choice, the models fitted again from their
formulas (:func:`dashboard.state.link.restore_models`), the active model and the page.
What is refused or differs is said in the notice shown above the page.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from dashboard.analysis import session_file as fmt
from dashboard.analysis.link_codec import LinkModel
from dashboard.analysis.records import label_of
from dashboard.base.markup import escape_message
from dashboard.io.roles import Roles
from dashboard.state import cached
from dashboard.state.fits import active_record, find_fit, records_for_active_data
from dashboard.state.link import restore_models
from dashboard.state.session import Keys, activate_dataset, activate_example, current_data

__all__ = ["file_name", "open_session", "session_writer"]


def file_name() -> str:
    """``lmm-session-<data name>.json`` (letters, digits, ``-`` and ``_`` only)."""
    name = str(st.session_state[Keys.DATA_NAME] or "data")
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in name)[:40].strip("-")
    return f"lmm-session-{safe or 'data'}.json"


def session_writer(include_data: bool) -> Callable[[], bytes]:
    """A function writing this session's file as it is now (no Streamlit call inside)."""
    state = st.session_state
    records = records_for_active_data()
    active = active_record()
    models = [
        (LinkModel(r.formula, label_of(r.name), bool(r.reml), r.family, r.link, r.nagq), r.result)
        for r in records
    ]
    index = next((i for i, r in enumerate(records) if active and r.name == active.name), None)
    source = state[Keys.DATA_SOURCE] or "upload"
    arguments = {
        "data": current_data(),
        "source": source if source in ("example", "upload") else "upload",
        "example": state[Keys.EXAMPLE_NAME] if source == "example" else None,
        "name": str(state[Keys.DATA_NAME] or "data"),
        "roles": dict(state[Keys.ROLES]),
        "units": dict(state[Keys.UNITS]),
        "models": models,
        "page": state.get(Keys.CURRENT_PAGE) or None,  # None: the first page
        "reml": bool(state[Keys.MODEL_REML]),
        "active": index,
        "include_data": bool(include_data),
    }
    return lambda: fmt.write(**arguments)


def _roles(raw: dict) -> Roles:
    try:
        return Roles.from_dict(raw)
    except (TypeError, ValueError):
        return Roles()


def _data(saved: fmt.SessionFile) -> list[str]:
    """Make the file's data active; a sentence when it cannot (then nothing else is restored)."""
    if saved.data is not None:
        activate_dataset(
            saved.data, name=saved.name, source="upload", roles=_roles(saved.roles),
            title=f"From the session file: {saved.name}",
            note=f"The table saved in a session file ({len(saved.data):,} rows).",
            units={k: v for k, v in saved.units.items() if isinstance(v, str)},
        )  # fmt: skip
        return []
    if saved.source == "example":
        if saved.example not in [name for name, _ in cached.example_names()]:
            return [f"The session file names an unknown example dataset ({saved.example})."]
        activate_example(saved.example)
        return []
    if fmt.fingerprint(current_data()) != saved.fingerprint:
        return [
            f"The session file was saved with other data ({saved.name}) than the active table "
            f"({st.session_state[Keys.DATA_NAME]}): their SHA-256 fingerprints differ, so its "
            "models were not fitted. Load the same table on the Data page and open the file "
            "again, or save the session with its data."
        ]
    return []


def open_session(raw: bytes) -> str | None:
    """Check and restore a session file.

    Returns
    -------
    str or None
        The saved page's name (``"trajectories"``: its file's stem), ``None`` when the file
        was refused or named none. The outcome is in ``Keys.LINK_NOTICE``.
    """
    state = st.session_state
    try:
        saved = fmt.read(raw)
    except fmt.SessionFileError as exc:
        state[Keys.LINK_NOTICE] = ("error", f"The session file was not opened. {exc}")
        return None
    refused = _data(saved)
    if refused:
        state[Keys.LINK_NOTICE] = ("error", escape_message(refused[0]))
        return None
    notes = []
    if saved.data is None and fmt.fingerprint(current_data()) != saved.fingerprint:
        notes.append(
            f"The example {saved.example} differs from the one the file was saved with (its "
            "fingerprint changed): the models are fitted to the example as it is now."
        )
    state[Keys.MODEL_REML] = saved.reml
    with st.spinner(f"Opening the session: fitting {len(saved.models)} model(s)..."):
        notes += restore_models(saved.models, saved.active)
    refitted = [
        getattr(find_fit(m.formula, m.reml, None, m.family, m.link, m.nagq), "result", None)
        for m in saved.models
    ]
    notes += fmt.summary_differences(saved.models, saved.summaries, refitted)
    done = f"Opened the session file: {saved.name}, {len(saved.models)} model(s)."
    if notes:
        text = done + " But:\n\n" + "\n\n".join(f"- {escape_message(n)}" for n in notes)
        state[Keys.LINK_NOTICE] = ("warning", text)
    else:
        state[Keys.LINK_NOTICE] = ("success", escape_message(done))
    return saved.page
