"""Fits that run in a background thread, so that a long fit survives page switches.

Streamlit stops the running script when the user clicks another page; a fit computed in
the script would be lost. Here the Model page only *starts* a fit: :func:`start_fit` hands
it to a small process-wide thread pool and keeps the job (a future) in the session state.
The page then waits :data:`QUICK_WAIT_SECONDS` under a spinner, so ordinary fits look
synchronous. A longer fit keeps running while the user moves on: the sidebar shows a
status box that polls every :data:`POLL_SECONDS` (an ``st.fragment``), and the app stores
the finished fit (:func:`collect`) on whatever page the user is, with a toast.

One fit at a time per session; at most :data:`WORKERS` fits run at once on the server
(further fits wait in the pool's queue), so a class fitting together cannot start more
threads than the machine has cores.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import cached
from dashboard.fits import add_fit, find_fit, next_name, set_active
from dashboard.markup import code_span, escape_message
from dashboard.state import Keys, current_data
from lmm_core import LMMError, LMMResult

__all__ = [
    "FitJob",
    "already_fitted_message",
    "POLL_SECONDS",
    "QUICK_WAIT_SECONDS",
    "collect",
    "render_progress",
    "running_job",
    "start_fit",
    "wait_briefly",
]

WORKERS = 2
POLL_SECONDS = 0.5
QUICK_WAIT_SECONDS = 1.5
#: Test hook: seconds every fit sleeps first (the browser test of a long fit sets it).
DELAY_ENV = "LMM_EXPLORER_FIT_DELAY"

_POOL = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="lmm-fit")


@dataclass
class FitJob:
    """A fit submitted to the pool and what it is about (for messages and the record)."""

    formula: str
    reml: bool
    label: str
    data_key: str
    data_name: str
    rows: int
    future: Future = field(repr=False)
    started: float = field(default_factory=time.monotonic)

    def elapsed(self) -> float:
        """Seconds since the fit was submitted."""
        return time.monotonic() - self.started

    def describe(self) -> str:
        """What is being fitted, in one line."""
        method = "REML" if self.reml else "ML"
        return (
            f"{code_span(self.formula)} by {method} on {escape_message(self.data_name)} "
            f"({self.rows:,} rows)"
        )


def _fit(data_key: str, formula: str, reml: bool, data: pd.DataFrame) -> tuple[LMMResult, float]:
    """Runs in a pool thread: the cached fit and its duration in seconds."""
    start = time.perf_counter()
    delay = float(os.environ.get(DELAY_ENV) or 0)
    if delay > 0:
        time.sleep(delay)
    result = cached.fit_model(data_key, formula, reml, data)
    return result, time.perf_counter() - start


def running_job() -> FitJob | None:
    """This session's fit that has not been collected yet (running, queued or finished)."""
    return st.session_state.get(Keys.FIT_JOB)


def start_fit(formula: str, reml: bool, label: str) -> FitJob | None:
    """Submit a fit of the active data; ``None`` when this session already has one running."""
    if running_job() is not None:
        return None
    data = current_data()
    key = st.session_state[Keys.DATA_KEY]
    job = FitJob(
        formula=formula,
        reml=reml,
        label=label,
        data_key=key,
        data_name=st.session_state[Keys.DATA_NAME],
        rows=len(data),
        future=_POOL.submit(_fit, key, formula, reml, data),
    )
    st.session_state[Keys.FIT_JOB] = job
    return job


def wait_briefly(job: FitJob, timeout: float | None = None) -> bool:
    """Wait up to ``timeout`` (default :data:`QUICK_WAIT_SECONDS`) seconds under a spinner;
    True when the fit has finished."""
    with st.spinner(f"Fitting {job.describe()}...", show_time=True):
        wait_futures([job.future], timeout=QUICK_WAIT_SECONDS if timeout is None else timeout)
    return job.future.done()


def collect(*, toast: bool) -> dict[str, Any] | None:
    """Store this session's finished fit, if any, and leave a notice for the Model page.

    A successful fit becomes a record (see :mod:`dashboard.fits`) and the active model; a
    failed one leaves its message. With ``toast`` the outcome also pops up on the current
    page. Returns the new record, or ``None``.
    """
    job = running_job()
    if job is None or not job.future.done():
        return None
    st.session_state[Keys.FIT_JOB] = None
    try:
        result, seconds = job.future.result()
    except LMMError as err:
        text = str(err).rstrip()
        message = (
            f"The model could not be fitted: {escape_message(text)}"
            f"{'' if text.endswith('.') else '.'} "
            "Earlier fits are kept."
        )
        st.session_state[Keys.MODEL_NOTICE] = ("error", message)
        if toast:
            st.toast(f"The model {code_span(job.formula)} could not be fitted: see the Model page.")
        return None
    except Exception as err:  # a bug, not the user's input: say so, keep the app running
        message = (
            f"The fit failed unexpectedly ({type(err).__name__}). Earlier fits are kept; "
            "please report this with the formula and the data's shape."
        )
        st.session_state[Keys.MODEL_NOTICE] = ("error", message)
        return None
    existing = find_fit(job.formula, job.reml, job.data_key)
    if existing is not None:  # the same model arrived meanwhile (e.g. from the ladder)
        set_active(existing["name"])
        st.session_state[Keys.MODEL_NOTICE] = ("info", already_fitted_message(existing))
        return existing
    record = {
        "name": next_name(job.label),
        "formula": result.formula,
        "reml": job.reml,
        "data_key": job.data_key,
        "data_name": job.data_name,
        "result": result,
        "seconds": seconds,
    }
    add_fit(record)
    st.session_state[Keys.MODEL_NOTICE] = (
        "success",
        f"Fitted **{escape_message(record['name'])}** in {seconds:.2f} s. It is now the "
        "active model: its summary is on the Model page, and the other pages show it.",
    )
    if toast:
        st.toast(f"Fitted {escape_message(record['name'])} in {seconds:.1f} s.")
    return record


def already_fitted_message(record: dict[str, Any]) -> str:
    """The notice when a requested model is already among the fits (Markdown)."""
    method = "REML" if record["reml"] else "ML"
    return (
        f"This model is already fitted by {method} as **{escape_message(record['name'])}** "
        f"({code_span(record['formula'])}): it is now the active model, not fitted again."
    )


@st.fragment(run_every=POLL_SECONDS)
def _progress() -> None:
    job = running_job()
    if job is None:
        return
    if job.future.done():
        st.rerun()  # the whole app: collect() stores the fit and the sidebar lists it
    stage = "fitting" if job.future.running() else "waiting for a free worker"
    with st.status(f"Fitting {job.label}: {job.elapsed():.0f} s", state="running"):
        st.caption(
            f"{stage.capitalize()}: {job.describe()}. You can use the other pages meanwhile; "
            "the model appears in this list when it is ready."
        )


def render_progress() -> None:
    """A self-refreshing status box while this session's fit runs (nothing otherwise)."""
    if running_job() is not None:
        _progress()
