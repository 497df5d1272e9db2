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

from dashboard.analysis.records import GAUSSIAN, FitKey
from dashboard.figures import prediction as fp
from dashboard.figures import trajectories as ft
from dashboard.io.loading import LoadedTable, excel_sheet_names, read_table
from dashboard.state import work
from dashboard.state.isolation import run_configured
from dashboard.state.jobs import Job
from lmm_core import LMMResult, datasets
from lmm_core.glmm.results import GLMMResult
from lmm_core.model.mmrm_results import MMRMResult
from lmm_core.predict.forecast import SubjectForecast, new_subject_forecast
from lmm_core.predict.per_group import ShrinkageEstimates, deviation_by, shrinkage_estimates

__all__ = [
    "band_widths",
    "deviation",
    "example_names",
    "fit_glmm_model",
    "fit_model",
    "forecast",
    "glmm_curves",
    "glmm_shrinkage",
    "load_example",
    "read_upload",
    "sheet_names",
    "shrinkage",
    "trajectories",
]

# The functions below key on a fit's FitKey ``(data key, formula, reml)``
# (:attr:`dashboard.analysis.records.FitRecord.key`) and take the fit itself (and its data)
# unhashed, as ``_result``.


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
    """Parse an uploaded file (see :func:`dashboard.io.loading.read_table`); errors are not
    cached, so a corrected upload is read again."""
    return read_table(data_bytes, filename, sheet)


@st.cache_data(max_entries=4, ttl=1800, show_spinner=False)
def sheet_names(data_bytes: bytes) -> list[str]:
    """Sheet names of an uploaded .xlsx workbook."""
    return excel_sheet_names(data_bytes)


@st.cache_data(max_entries=24, ttl=3600, show_spinner=False)  # runs in a pool thread
def fit_model(
    data_key: str, formula: str, reml: bool, _data: pd.DataFrame, _job: Job | None = None
) -> LMMResult | MMRMResult:
    """Fit ``formula`` to the data identified by ``data_key`` (the frame itself is not hashed).

    A covariance structure of the visits (``ar1(visit | patient)``) gives an MMRM
    (:class:`lmm_core.model.mmrm_results.MMRMResult`, no random effects); the pages show
    what is defined for it (:mod:`dashboard.analysis.mmrm_models`). Errors
    (:class:`lmm_core.LMMError`, e.g. random effects at the patient level together with a
    structure) are raised, not cached. Given its job, the fit runs in the job's child process
    (:mod:`dashboard.state.isolation`).
    """
    return run_configured(_job, work.fit, formula, _data, reml, GAUSSIAN, None, 1)


@st.cache_data(max_entries=24, ttl=3600, show_spinner=False)  # runs in a pool thread
def fit_glmm_model(
    data_key: str,
    formula: str,
    family: str,
    link: str | None,
    nagq: int,
    _data: pd.DataFrame,
    _job: Job | None = None,
) -> GLMMResult:
    """:func:`lmm_core.fit_glmm` of ``formula`` (a binomial or Poisson GLMM, by Laplace for
    ``nagq = 1`` or adaptive quadrature) to the data identified by ``data_key`` (the frame
    itself is not hashed). Errors (:class:`lmm_core.LMMError`) are raised, not cached. Given
    its job, the fit runs in the job's child process (:mod:`dashboard.state.isolation`)."""
    return run_configured(_job, work.fit, formula, _data, False, family, link, nagq)


@st.cache_data(max_entries=16, ttl=3600, show_spinner="Comparing the models (ML refits)...")
def compare_models(
    data_key: str, fits_key: tuple[tuple[str, str, bool], ...], _records: tuple
) -> Any:
    """:func:`dashboard.analysis.compare.build_comparison` of fit records, cached.

    ``fits_key`` holds ``(name, formula, reml)`` of each record (identifies the fits); the
    records themselves (with their results) are not hashed.
    """
    from dashboard.analysis.compare import build_comparison

    return build_comparison(list(_records))


@st.cache_data(max_entries=32, ttl=3600, show_spinner="Computing degrees of freedom...")
def fixef_inference(fit_key: FitKey, method: str, level: float, _result: LMMResult) -> pd.DataFrame:
    """:func:`lmm_core.inference.fixed_effects.fixef_inference` of the fit identified by ``fit_key``
    (``(data key, formula, reml)``; the result itself is not hashed)."""
    from lmm_core.inference.fixed_effects import fixef_inference as compute

    return compute(_result, method=method, level=level)


@st.cache_data(max_entries=32, ttl=3600, show_spinner="Simulating and fitting the study...")
def teach_study(truth: tuple, seed: int) -> tuple[Any, LMMResult]:
    """:func:`lmm_core.simulation.teaching.simulate_lab` and
    :func:`~lmm_core.simulation.teaching.fit_lab` for the truth ``LabTruth(*truth)`` and
    ``seed``; returns ``(LabData, LMMResult)``."""
    from lmm_core.simulation.teaching import fit_lab, simulate_lab
    from lmm_core.simulation.teaching_truth import LabTruth

    lab = simulate_lab(LabTruth(*truth), seed)
    return lab, fit_lab(lab)


@st.cache_data(max_entries=32, ttl=3600, show_spinner="Computing the intervals...")
def teach_recovery(
    truth: tuple, seed: int, level: float, profile: bool, _result: LMMResult
) -> pd.DataFrame:
    """:func:`lmm_core.simulation.teaching.recovery_table` of the study ``teach_study(truth, seed)``
    (the fit itself is not hashed)."""
    from lmm_core.simulation.teaching import recovery_table
    from lmm_core.simulation.teaching_truth import LabTruth

    return recovery_table(_result, LabTruth(*truth), level=level, profile=profile)


# --------------------------------------------------------------------------- result pages
@st.cache_data(max_entries=16, ttl=3600, show_spinner=False)
def shrinkage(fit_key: FitKey, group: str, _result: LMMResult) -> ShrinkageEstimates:
    """:func:`lmm_core.predict.per_group.shrinkage_estimates` of the fit ``fit_key`` (one
    own-data fit per level: the Shrinkage page's expensive part)."""
    return shrinkage_estimates(_result, group)


@st.cache_data(max_entries=16, ttl=3600, show_spinner=False)
def deviation(fit_key: FitKey, column: str, _result: LMMResult, _data: pd.DataFrame) -> pd.Series:
    """:func:`lmm_core.predict.per_group.deviation_by` of the fit ``fit_key`` and its data
    (a GLMM's on the link scale: :func:`dashboard.analysis.glmm_curves.link_deviation`)."""
    if fit_key.family != GAUSSIAN:
        from dashboard.analysis.glmm_curves import link_deviation

        return link_deviation(_result, _data, column)
    return deviation_by(_result, _data, column)


@st.cache_data(max_entries=32, ttl=3600, show_spinner=False)
def trajectories(
    fit_key: FitKey,
    subject: str,
    x: str,
    subjects: tuple,
    by: str | None,
    cluster: str | None,
    cluster_group: str | None,
    _result: LMMResult,
    _data: pd.DataFrame,
) -> ft.TrajectoryData:
    """:func:`dashboard.figures.trajectories.prepare_trajectories` of the fit ``fit_key`` (its
    data is the one the key names) for the chosen subjects and axis."""
    return ft.prepare_trajectories(
        _result,
        _data,
        subject,
        x,
        list(subjects),
        by=by,
        cluster=cluster,
        cluster_group=cluster_group,
    )


@st.cache_data(max_entries=32, ttl=3600, show_spinner=False)
def glmm_curves(
    fit_key: FitKey,
    subject: str,
    x: str,
    subjects: tuple,
    by: str | None,
    _result: Any,
    _data: pd.DataFrame,
) -> Any:
    """:func:`dashboard.analysis.glmm_curves.glmm_curves` of the GLMM ``fit_key`` (its data
    is the one the key names) for the chosen patients and axis."""
    from dashboard.analysis.glmm_curves import glmm_curves as compute

    return compute(_result, _data, subject, x, list(subjects), by=by)


@st.cache_data(max_entries=16, ttl=3600, show_spinner=False)
def glmm_shrinkage(fit_key: FitKey, group: str, _result: Any, _data: pd.DataFrame) -> Any:
    """:func:`dashboard.analysis.glmm_shrinkage.glmm_shrinkage` of the GLMM ``fit_key``
    (one own logistic or Poisson fit per patient: the Shrinkage page's expensive part)."""
    from dashboard.analysis.glmm_shrinkage import glmm_shrinkage as compute

    return compute(_result, _data, group)


@st.cache_data(max_entries=32, ttl=3600, show_spinner=False)
def forecast(
    fit_key: FitKey,
    observed: pd.DataFrame,
    future: pd.DataFrame,
    level: float,
    group: str,
    _result: LMMResult,
) -> SubjectForecast:
    """:func:`lmm_core.predict.forecast.new_subject_forecast` of the fit ``fit_key`` (the
    entered visits and the forecast rows are small and hashed). Errors are raised, not cached."""
    return new_subject_forecast(_result, observed, future, level=level, group=group)


@st.cache_data(max_entries=32, ttl=3600, show_spinner=False)
def band_widths(
    fit_key: FitKey,
    observed: pd.DataFrame,
    row: pd.DataFrame,
    level: float,
    group: str,
    _result: LMMResult,
) -> pd.DataFrame:
    """:func:`dashboard.figures.prediction.band_widths` of the fit ``fit_key``: one forecast
    per number of visits used."""
    return fp.band_widths(_result, observed, row, group=group, level=level)
