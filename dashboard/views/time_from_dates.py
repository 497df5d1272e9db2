"""The Data page's one-click "use dates as the time": change the active dataset.

The conversion itself is pure (:mod:`dashboard.io.dates`); this module applies it to the
session: the table gains the new time column, which becomes the time role, and a message
says what was done (or why it could not be).
"""

from __future__ import annotations

import streamlit as st

from dashboard.base.markup import escape_text
from dashboard.io.dates import (
    FIRST_VISIT,
    DateConversionError,
    add_time_from_dates,
    date_columns,
    read_dates,
)
from dashboard.io.roles import Roles, constant_within_subjects, is_numeric
from dashboard.state.session import Keys, activate_dataset, current_data, current_roles

__all__ = ["apply_dates_as_time", "date_choices"]


def date_choices(data, roles: Roles) -> list[str]:
    """Date columns the page offers to turn into the time, the time role's first.

    Empty when the time is already a usable number (numeric and changing within subjects)
    or when no column holds dates.
    """
    time = roles.time
    if time is not None and time in data.columns and is_numeric(data[time]):
        if roles.subject is None or not constant_within_subjects(data, roles.subject, time):
            return []
    dates = date_columns(data)
    if time in dates:
        dates.remove(time)
        dates.insert(0, time)
    elif time is not None and time in data.columns and read_dates(data[time]) is not None:
        return []  # the time holds ambiguous dates: the report says how to fix them
    return dates


def apply_dates_as_time(date_column: str, unit: str, origin: str = FIRST_VISIT) -> None:
    """Add the time computed from ``date_column`` to the active dataset and make it the time.

    Parameters
    ----------
    date_column
        Column of visit dates.
    unit
        ``"days"``, ``"weeks"``, ``"months"`` or ``"years"``.
    origin
        :data:`dashboard.io.dates.FIRST_VISIT` or another date column (e.g. randomisation).
    """
    state = st.session_state
    data = current_data()
    roles = current_roles()
    try:
        new, name, note = add_time_from_dates(
            data, date_column, subject=roles.subject, unit=unit, origin=origin
        )
    except DateConversionError as err:
        state[Keys.UPLOAD_MESSAGE] = ("error", escape_text(str(err)))
        return
    covariates = tuple(c for c in roles.covariates if c not in (date_column, name, origin))
    new_roles = Roles(roles.subject, roles.cluster, name, roles.outcome, covariates)
    since = "each subject's first visit" if origin == FIRST_VISIT else origin
    units = {**state[Keys.UNITS], name: f"{unit} since {since}"}
    activate_dataset(
        new,
        name=state[Keys.DATA_NAME],
        source=state[Keys.DATA_SOURCE] or "upload",
        roles=new_roles,
        title=state[Keys.DATA_TITLE],
        note=" ".join(t for t in (state[Keys.DATA_NOTE], note) if t),
        units=units,
    )
    state[Keys.UPLOAD_MESSAGE] = ("success", escape_text(note) + " It is now the time.")
