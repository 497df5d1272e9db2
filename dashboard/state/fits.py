"""Fitted models kept in the session: named records, the active one, and the page guard.

A fit record is a :class:`dashboard.analysis.records.FitRecord` stored in
``st.session_state[Keys.FITS]`` (a list, oldest first). Fits are computed through
:func:`dashboard.state.cached.fit_model` (in the job runner), so refitting the same formula on
the same data is instant. Records of other datasets stay in the list (they are not lost when
the user switches data) but pages work on the records of the active dataset.
"""

from __future__ import annotations

import streamlit as st

from dashboard.analysis.formula_text import model_key
from dashboard.analysis.records import GAUSSIAN, FitRecord, label_of
from dashboard.state.session import Keys
from lmm_core import LMMError

__all__ = [
    "MODEL_PAGE",
    "active_record",
    "add_fit",
    "delete_fit",
    "find_fit",
    "next_name",
    "taken_labels",
    "records_for_active_data",
    "same_model_groups",
    "require_fit",
    "set_active",
]

MODEL_PAGE = "pages/model.py"


def records_for_active_data() -> list[FitRecord]:
    """Fit records of the active dataset, oldest first."""
    key = st.session_state[Keys.DATA_KEY]
    return [r for r in st.session_state[Keys.FITS] if r.data_key == key]


def next_name(label: str) -> str:
    """``"M<k>: <label>"`` with ``k`` one more than the highest number used so far.

    After a deletion the numbers of the remaining models are not reused, so two models in
    the list never share a number.
    """
    numbers = [0]
    for record in st.session_state[Keys.FITS]:
        head = record.name.split(":", 1)[0]
        if head[:1] == "M" and head[1:].isdigit():
            numbers.append(int(head[1:]))
    return f"M{max(numbers) + 1}: {label}"


def taken_labels() -> set[str]:
    """Labels of the fits of the active dataset (a new fit's label must differ)."""
    return {label_of(r.name) for r in records_for_active_data()}


def _same_model_key(formula: str, family: str = GAUSSIAN, link: str | None = None) -> tuple | None:
    """:func:`dashboard.analysis.formula_text.model_key`, ``None`` if the text does not parse."""
    try:
        return model_key(formula, family, link)
    except LMMError:  # a record's formula always parses; be safe anyway
        return None


def find_fit(
    formula: str,
    reml: bool,
    data_key: str | None = None,
    family: str = GAUSSIAN,
    link: str | None = None,
    nagq: int = 1,
) -> FitRecord | None:
    """The stored fit of the same model (:func:`dashboard.analysis.formula_text.model_key`: however
    the formula is spelled, with its family and link), method and data, or ``None``.

    One fit per distinct model and settings: a second request for it selects this record
    instead of fitting again. A GLMM's settings are its quadrature points (``reml`` is
    False for every GLMM).
    """
    key = st.session_state[Keys.DATA_KEY] if data_key is None else data_key
    wanted = _same_model_key(formula, family, link)
    if wanted is None:
        return None
    for record in st.session_state[Keys.FITS]:
        if (
            record.data_key == key
            and bool(record.reml) == bool(reml)
            and int(record.nagq) == int(nagq)
            and _same_model_key(record.formula, record.family, record.link) == wanted
        ):
            return record
    return None


def same_model_groups(records: list[FitRecord]) -> list[list[str]]:
    """Names of records that hold the same model (fitted by REML and by ML), in groups of
    two or more: compared after ML refits they tie, since they are one model."""
    groups: dict[tuple, list[str]] = {}
    for record in records:
        key = _same_model_key(record.formula, record.family, record.link)
        if key is not None:
            groups.setdefault((record.data_key, key), []).append(record.name)
    return [names for names in groups.values() if len(names) > 1]


def add_fit(record: FitRecord) -> None:
    """Append a record (replacing one of the same name) and make it the active fit."""
    fits = [r for r in st.session_state[Keys.FITS] if r.name != record.name]
    fits.append(record)
    st.session_state[Keys.FITS] = fits
    st.session_state[Keys.ACTIVE_FIT] = record.name


def delete_fit(name: str) -> None:
    """Remove the fit called ``name``; the newest remaining one becomes active."""
    fits = [r for r in st.session_state[Keys.FITS] if r.name != name]
    st.session_state[Keys.FITS] = fits
    if st.session_state.get(Keys.ACTIVE_FIT) == name:
        st.session_state[Keys.ACTIVE_FIT] = fits[-1].name if fits else None


def set_active(name: str) -> None:
    st.session_state[Keys.ACTIVE_FIT] = name


def active_record() -> FitRecord | None:
    """The active fit of the active dataset (the newest one if none is chosen)."""
    records = records_for_active_data()
    if not records:
        return None
    chosen = st.session_state.get(Keys.ACTIVE_FIT)
    for record in records:
        if record.name == chosen:
            return record
    return records[-1]


def require_fit(page_label: str) -> FitRecord:
    """The active fit record, or stop the page with a message and a link to the Model page."""
    record = active_record()
    if record is None:
        st.info(
            f"{page_label} shows a fitted model. Fit one on the Model page first "
            f"(the active dataset is {st.session_state[Keys.DATA_NAME]})."
        )
        st.page_link(MODEL_PAGE, label="Go to the Model page")
        st.stop()
    return record
