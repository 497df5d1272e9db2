"""What happens to an uploaded file: read, assess, then activate or hold back.

An upload replaces the active dataset only when it is usable as it is. A file that cannot be
read, a wide table, or a table with blocking problems (text in the outcome, an empty column)
is kept aside as a *pending upload* with a clear message, and the data loaded before stays
active until the user converts, repairs or discards it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from dashboard.base.markup import escape_text
from dashboard.io.loading import UploadError
from dashboard.io.reshape import WideSpec, detect_wide, wide_to_long
from dashboard.io.roles import Roles, guess_roles
from dashboard.io.validation import DATES_FIX, ValidationReport, repair, validate
from dashboard.state import cached
from dashboard.state.session import Keys, activate_dataset

__all__ = ["Assessment", "accept_pending", "assess", "convert_pending", "receive_upload"]


@dataclass(frozen=True)
class Assessment:
    """Guessed roles, validation report and wide-format detection of a parsed table."""

    roles: Roles
    report: ValidationReport
    wide: WideSpec | None

    @property
    def usable(self) -> bool:
        """True when the table can become the active dataset without a decision.

        A time column of dates does not hold the table back: the Data page converts it.
        """
        blocking = [f for f in self.report.errors if f.fix != DATES_FIX]
        return not blocking and self.wide is None

    @property
    def repairs(self) -> list[str]:
        """Automatic repairs that would fix every error, or ``[]`` if some error has none.

        The conversion of dates to a time is not among them: it happens on the Data page,
        where the user chooses the unit and the start.
        """
        fixes = [f.fix for f in self.report.errors if f.fix != DATES_FIX]
        return sorted(set(fixes)) if fixes and all(fixes) else []


def assess(data: pd.DataFrame) -> Assessment:
    """Guess roles, validate, and look for wide format (pure; no session state)."""
    roles = guess_roles(data)
    return Assessment(roles, validate(data, roles), detect_wide(data))


def _previous() -> str:
    name = st.session_state.get(Keys.DATA_NAME)
    return f" The data loaded before ({name}) is still active." if name else ""


def receive_upload(data_bytes: bytes, filename: str, sheet: str | None = None) -> bool:
    """Read an upload and activate it, or keep it pending with a message.

    Parameters
    ----------
    data_bytes, filename
        The uploaded file.
    sheet
        Excel sheet to read (first sheet when ``None``).

    Returns
    -------
    bool
        True when the upload became the active dataset.
    """
    state = st.session_state
    limit_mb = float(st.get_option("server.maxUploadSize"))
    try:
        if len(data_bytes) > limit_mb * 1024 * 1024:
            raise UploadError(
                f"The file is {len(data_bytes) / 1024**2:,.0f} MB, over the upload limit of "
                f"{limit_mb:,.0f} MB.",
                "Upload a smaller file (for example only the columns you need, or Parquet).",
            )
        table = cached.read_upload(data_bytes, filename, sheet)
    except UploadError as exc:
        state[Keys.PENDING_UPLOAD] = None
        state[Keys.UPLOAD_MESSAGE] = ("error", f"**{filename}**: {exc}{_previous()}")
        return False
    several_sheets = table.sheet is not None and len(table.sheet_names) > 1
    label = f"{filename} [{table.sheet}]" if several_sheets else filename
    key = hashlib.sha256(data_bytes).hexdigest()[:16] + (f":{table.sheet}" if table.sheet else "")
    found = assess(table.data)
    if found.usable:
        activate_dataset(
            table.data, name=label, source="upload", roles=found.roles, key=key,
            title=f"Uploaded file {label}", note=table.describe(),
        )  # fmt: skip
        dates = [f for f in found.report.errors if f.fix == DATES_FIX]
        time = escape_text(found.roles.time or "")
        then = f" Its time '{time}' holds dates: convert it below." if dates else ""
        state[Keys.UPLOAD_MESSAGE] = ("success", f"Loaded **{label}**. {table.describe()}{then}")
        return True
    state[Keys.PENDING_UPLOAD] = {
        "data": table.data,
        "name": label,
        "key": key,
        "note": table.describe(),
        "roles": found.roles.to_dict(),
        "wide": found.wide,
        "messages": [f.message for f in found.report.errors],
        "repairs": found.repairs,
    }
    if found.wide is not None:
        shown = ", ".join(found.wide.columns[:4]) + (", ..." if len(found.wide.columns) > 4 else "")
        text = (
            f"**{label}** looks like wide format: one column per visit ({shown}). The models "
            "need long format (one row per visit). Convert it below."
        )
        state[Keys.UPLOAD_MESSAGE] = ("warning", text + _previous())
    else:
        state[Keys.UPLOAD_MESSAGE] = (
            "error",
            f"**{label}** was read but cannot be used as it is (see the problems below)."
            + _previous(),
        )
    return False


def accept_pending(*, apply_repairs: bool) -> None:
    """Activate the pending upload, applying its automatic repairs if asked."""
    state = st.session_state
    pending = state[Keys.PENDING_UPLOAD]
    if pending is None:
        return
    data = pending["data"]
    roles = Roles.from_dict(pending["roles"])
    note = pending["note"]
    if apply_repairs and pending["repairs"]:
        data = repair(data, roles, pending["repairs"])
        note += " Repaired: " + ", ".join(pending["repairs"]).replace("_", " ") + "."
        roles = guess_roles(data) if "drop_empty" in pending["repairs"] else roles
    name = pending["name"]
    activate_dataset(
        data, name=name, source="upload", roles=roles, title=f"Uploaded file {name}", note=note,
    )  # fmt: skip
    state[Keys.UPLOAD_MESSAGE] = ("success", f"Loaded **{name}**. {note}")


def convert_pending() -> None:
    """Convert the pending wide upload to long format and activate it."""
    state = st.session_state
    pending = state[Keys.PENDING_UPLOAD]
    if pending is None or pending["wide"] is None:
        return
    spec: WideSpec = pending["wide"]
    long = wide_to_long(pending["data"], spec)
    found = assess(long)
    name = pending["name"] + " (long)"
    note = (
        f"Converted from wide format: {len(spec.columns)} visit columns became "
        f"'{spec.time_name}' and '{spec.outcome_name}' ({len(long):,} rows; empty visits left out)."
    )
    activate_dataset(
        long, name=name, source="upload", roles=found.roles, title=f"Uploaded file {name}",
        note=note,
    )  # fmt: skip
    state[Keys.UPLOAD_MESSAGE] = ("success", note)
