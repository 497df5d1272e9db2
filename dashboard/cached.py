"""The only module that uses ``st.cache_data``.

Caches live in memory (never on disk), are bounded by ``max_entries`` and expire after
``ttl``. Cached values are shared between sessions, so only pure functions of their
arguments are cached here; per-user data lives in ``st.session_state`` (see ``state``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd
import streamlit as st

from dashboard.loading import LoadedTable, excel_sheet_names, read_table
from lmm_core import LMMResult, datasets, fit_lmm

__all__ = ["example_names", "fit_model", "load_example", "read_upload", "sheet_names"]


@st.cache_data(max_entries=8, ttl=6 * 3600, show_spinner=False)
def load_example(name: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read an example dataset; returns the rows and its manifest entry as a dict."""
    data, info = datasets.load_example(name)
    return data, dataclasses.asdict(info)


@st.cache_data(max_entries=2, ttl=3600, show_spinner=False)
def example_names() -> list[tuple[str, str]]:
    """``(name, title)`` of every example dataset, in manifest order."""
    return [(i.name, i.title) for i in datasets.list_examples()]


@st.cache_data(max_entries=4, ttl=1800, show_spinner="Reading the file...")
def read_upload(data_bytes: bytes, filename: str, sheet: str | None = None) -> LoadedTable:
    """Parse an uploaded file (see :func:`dashboard.loading.read_table`); errors are not
    cached, so a corrected upload is read again."""
    return read_table(data_bytes, filename, sheet)


@st.cache_data(max_entries=4, ttl=1800, show_spinner=False)
def sheet_names(data_bytes: bytes) -> list[str]:
    """Sheet names of an uploaded .xlsx workbook."""
    return excel_sheet_names(data_bytes)


@st.cache_data(max_entries=24, ttl=3600, show_spinner=False)  # runs in a pool thread
def fit_model(data_key: str, formula: str, reml: bool, _data: pd.DataFrame) -> LMMResult:
    """Fit ``formula`` to the data identified by ``data_key`` (the frame itself is not hashed).

    Errors (:class:`lmm_core.LMMError`) are raised, not cached.
    """
    return fit_lmm(formula, _data, reml=reml)


@st.cache_data(max_entries=16, ttl=3600, show_spinner="Comparing the models (ML refits)...")
def compare_models(
    data_key: str, fits_key: tuple[tuple[str, str, bool], ...], _records: tuple
) -> Any:
    """:func:`dashboard.compare_view.build_comparison` of fit records, cached.

    ``fits_key`` holds ``(name, formula, reml)`` of each record (identifies the fits); the
    records themselves (with their results) are not hashed.
    """
    from dashboard.compare_view import build_comparison

    return build_comparison(list(_records))


@st.cache_data(max_entries=32, ttl=3600, show_spinner="Computing degrees of freedom...")
def fixef_inference(
    fit_key: tuple[str, str, bool], method: str, level: float, _result: LMMResult
) -> pd.DataFrame:
    """:func:`lmm_core.inference.fixed_effects.fixef_inference` of the fit identified by ``fit_key``
    (``(data key, formula, reml)``; the result itself is not hashed)."""
    from lmm_core.inference.fixed_effects import fixef_inference as compute

    return compute(_result, method=method, level=level)


@st.cache_data(max_entries=8, ttl=3600, show_spinner="Profiling the likelihood (refits)...")
def profile_confint(
    fit_key: tuple[str, str, bool], level: float, _result: LMMResult
) -> pd.DataFrame:
    """:func:`lmm_core.inference.profile.profile_confint` of the fit identified by ``fit_key``."""
    from lmm_core.inference.profile import profile_confint as compute

    return compute(_result, level=level)


@st.cache_data(max_entries=32, ttl=3600, show_spinner="Simulating and fitting the study...")
def teach_study(truth: tuple, seed: int) -> tuple[Any, LMMResult]:
    """:func:`lmm_core.simulation.teaching.simulate_lab` and
    :func:`~lmm_core.simulation.teaching.fit_lab` for the truth ``LabTruth(*truth)`` and
    ``seed``; returns ``(LabData, LMMResult)``."""
    from lmm_core.simulation.teaching import LabTruth, fit_lab, simulate_lab

    lab = simulate_lab(LabTruth(*truth), seed)
    return lab, fit_lab(lab)


@st.cache_data(max_entries=32, ttl=3600, show_spinner="Computing the intervals...")
def teach_recovery(
    truth: tuple, seed: int, level: float, profile: bool, _result: LMMResult
) -> pd.DataFrame:
    """:func:`lmm_core.simulation.teaching.recovery_table` of the study ``teach_study(truth, seed)``
    (the fit itself is not hashed)."""
    from lmm_core.simulation.teaching import LabTruth, recovery_table

    return recovery_table(_result, LabTruth(*truth), level=level, profile=profile)
