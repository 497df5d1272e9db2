"""The notice of the pages that draw patients when the active fit was streamed.

A fit of a server file (:mod:`dashboard.state.server_data`) is estimated from every row of
the file, but the app holds only a sample of whole patients: the pages that draw patients
(Trajectories, Shrinkage, Diagnostics, Prediction) show that sample. Each of them calls
:func:`show_sample_notice` at its top, which says so in one sentence with the numbers of the
fit and of the sample:

    Estimates from all 10,000,000 rows of trial.parquet (streamed); this chart shows the
    300 sampled patients (of 1,600,000).

Nothing is shown for a fit held in memory.
"""

from __future__ import annotations

import streamlit as st

from dashboard.analysis.records import FitRecord
from dashboard.base.markup import escape_text
from dashboard.state import server_data

__all__ = ["is_streamed", "sample_notice", "show_sample_notice"]


def is_streamed(result: object) -> bool:
    """Whether ``result`` is a streamed fit seen on a sample of its patients (an LMM's
    ``StreamedLMMResult.on_sample`` or a GLMM's
    :class:`~lmm_core.stream.glmm_sample.SampledGLMMResult`)."""
    return bool(getattr(result, "is_sample_view", False))


def sample_notice(
    n_rows: int,
    file_label: str,
    n_sampled: int,
    n_groups: int | None = None,
    shows: str = "this chart shows",
) -> str:
    """The sentence (plain text): the rows the estimates come from, and what is drawn.

    Parameters
    ----------
    n_rows
        Rows the fit used (every row of the file with no missing value).
    file_label
        The file (and table) that was fitted.
    n_sampled, n_groups
        Patients drawn into the sample, and in the whole file (``None``: not said); they
        are "patients" whatever the column's name, as on the Data page.
    shows
        What the page shows, e.g. "this chart shows", "the residual plots show".
    """
    of = f" (of {n_groups:,})" if n_groups and n_groups != n_sampled else ""
    return (
        f"Estimates from all {n_rows:,} rows of {file_label} (streamed); {shows} the "
        f"{n_sampled:,} sampled patients{of}."
    )


def show_sample_notice(record: FitRecord, shows: str = "this chart shows") -> None:
    """When ``record`` was streamed: :func:`sample_notice` in an info box (nothing else)."""
    result = record.result
    if not is_streamed(result):
        return
    info = server_data.active()
    if info is not None:
        n_sampled, n_groups = info["n_sampled"], info["n_groups"]
    else:  # the sample's patients from the result: the levels of its first grouping factor
        group = next(iter(result.ngroups))
        n_sampled, n_groups = len(result.ranef[group]), result.ngroups[group]
    text = sample_notice(result.nobs, record.data_name, n_sampled, n_groups, shows)
    st.info(escape_text(text), icon=":material/dataset:")
