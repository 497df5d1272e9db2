"""Model-page fits as jobs of the job runner (:mod:`dashboard.views.jobs`).

The Model page only *starts* a fit (:func:`start_fit`); it runs in the runner's pool, so it
survives page switches. The page then waits :data:`dashboard.views.jobs.QUICK_WAIT_SECONDS`
under a spinner, so ordinary fits look synchronous. A longer fit keeps running while the
user moves on: the sidebar shows its progress (elapsed time) with a Cancel button, and the
app stores the finished fit on whatever page the user is (a fit record, see
:mod:`dashboard.state.fits`), with a toast. One fit at a time per session; a fit cannot be
interrupted half-way, so Cancel discards its result when it ends.

When the active dataset is a sample of a file of the server's data folder
(:mod:`dashboard.state.server_data`), the fit streams the *whole file* instead
(:func:`dashboard.state.work.stream_fit`, in a child process): its progress is the rows read
and the rows per second, Cancel stops it between two batches, and the fit is stored as seen
on the sample (the result pages show the sampled patients).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st

from dashboard.analysis.records import GAUSSIAN, FitRecord
from dashboard.base.markup import code_span, escape_message
from dashboard.state import cached, server_data, work
from dashboard.state.fits import add_fit, find_fit, next_name, set_active
from dashboard.state.isolation import in_child
from dashboard.state.jobs import CANCELLED, Job
from dashboard.state.session import Keys, current_data
from dashboard.views import jobs as jobs_view

__all__ = [
    "DELAY_ENV",
    "KIND",
    "FitRequest",
    "already_fitted_message",
    "request_of",
    "running_job",
    "start_fit",
    "wait_briefly",
]

KIND = "fit"
#: a GLMM family in words (messages)
FAMILY_WORDS = {"binomial": "logistic (binomial)", "poisson": "Poisson"}
#: Test hook: seconds every fit sleeps first (the browser test of a long fit sets it).
DELAY_ENV = "LMM_EXPLORER_FIT_DELAY"


@dataclass(frozen=True)
class FitRequest:
    """What is being fitted (for messages and the record)."""

    formula: str
    reml: bool
    label: str
    data_key: str
    data_name: str
    rows: int
    family: str = GAUSSIAN
    link: str | None = None
    nagq: int = 1
    streamed: bool = False  # the whole server file, by streaming

    def describe(self) -> str:
        """What is being fitted, in one line (Markdown)."""
        method = "REML" if self.reml else "ML"
        if self.family != GAUSSIAN:
            words = FAMILY_WORDS.get(self.family, self.family)
            how = "Laplace" if self.nagq <= 1 else f"{self.nagq}-point quadrature"
            method = f"{words} GLMM ({self.link or 'canonical'} link, {how})"
        if self.streamed:
            method = f"{method}, streaming every row of the file"
        return (
            f"{code_span(self.formula)} by {method} on {escape_message(self.data_name)} "
            f"({self.rows:,} rows)"
        )


def _work(request: FitRequest, data: pd.DataFrame):
    """The fit, run by a worker: ``(LMMResult, seconds)``."""

    def work(job: Job) -> tuple[Any, float]:
        start = time.perf_counter()
        job.report(None, "Fitting the model")  # no fraction: a fit does not report progress
        delay = float(os.environ.get(DELAY_ENV) or 0)
        if delay > 0:
            time.sleep(delay)
        job.check()
        if request.family == GAUSSIAN:
            result = cached.fit_model(request.data_key, request.formula, request.reml, data, job)
        else:
            result = cached.fit_glmm_model(
                request.data_key,
                request.formula,
                request.family,
                request.link,
                request.nagq,
                data,
                job,
            )
        return result, time.perf_counter() - start

    return work


def running_job() -> Job | None:
    """This session's fit that has not been collected yet (waiting, running or finished)."""
    for job in jobs_view.active(KIND):
        return job
    return None


def request_of(job: Job) -> FitRequest:
    """The :class:`FitRequest` of a fit job."""
    return job.meta["request"]


def _store(request: FitRequest):
    def store(outcome: tuple[Any, float]) -> str:
        result, seconds = outcome
        existing = find_fit(
            request.formula,
            request.reml,
            request.data_key,
            family=request.family,
            link=request.link,
            nagq=request.nagq,
        )
        if existing is not None:  # the same model arrived meanwhile (e.g. from the ladder)
            set_active(existing.name)
            st.session_state[Keys.MODEL_NOTICE] = ("info", already_fitted_message(existing))
            return f"{escape_message(existing.name)} was already fitted."
        record = FitRecord(
            name=next_name(request.label),
            formula=result.formula,
            reml=request.reml,
            data_key=request.data_key,
            data_name=request.data_name,
            result=result,
            seconds=seconds,
            family=request.family,
            link=getattr(result, "link", None) if request.family != GAUSSIAN else None,
            nagq=request.nagq,
        )
        add_fit(record)
        took = f"{seconds:.2f} s"  # fixed: timing
        st.session_state[Keys.MODEL_NOTICE] = (
            "success",
            f"Fitted **{escape_message(record.name)}** in {took}. It is now the "
            "active model: its summary is on the Model page, and the other pages show it.",
        )
        return f"Fitted {escape_message(record.name)} in {seconds:.1f} s."  # fixed: timing

    return store


def _fail(job: Job) -> None:
    request = request_of(job)
    if job.state == CANCELLED:
        message = (
            f"Cancelled the fit of {code_span(request.formula)}: nothing was stored. "
            "Earlier fits are kept."
        )
        st.session_state[Keys.MODEL_NOTICE] = ("info", message)
        return
    if jobs_view.is_engine_error(job.error):
        text = str(job.error).rstrip()
        message = (
            f"The model could not be fitted: {escape_message(text)}"
            f"{'' if text.endswith('.') else '.'} Earlier fits are kept."
        )
    else:  # a bug, not the user's input: say so, keep the app running
        message = (
            f"The fit failed unexpectedly ({type(job.error).__name__}). Earlier fits are "
            "kept; please report this with the formula and the data's shape."
        )
    st.session_state[Keys.MODEL_NOTICE] = ("error", message)


def start_fit(
    formula: str,
    reml: bool,
    label: str,
    family: str = GAUSSIAN,
    link: str | None = None,
    nagq: int = 1,
) -> Job | None:
    """Start a fit of the active data; ``None`` when this session already has a fit running.

    ``family`` ``"binomial"`` or ``"poisson"`` fits a GLMM (:func:`lmm_core.fit_glmm`, by
    maximum likelihood: ``reml`` is then False) with ``link`` (None: the canonical one) and
    ``nagq`` quadrature points (1 = Laplace).
    """
    if running_job() is not None:
        return None
    server = server_data.active()
    if server is not None:
        return _start_streamed(formula, reml, label, server, family, link, nagq)
    data = current_data()
    glmm = family != GAUSSIAN
    request = FitRequest(
        formula=formula,
        reml=bool(reml) and not glmm,
        label=label,
        data_key=st.session_state[Keys.DATA_KEY],
        data_name=st.session_state[Keys.DATA_NAME],
        rows=len(data),
        family=family,
        link=link if glmm else None,
        nagq=int(nagq) if glmm else 1,
    )
    return jobs_view.start(
        ("fit", request.data_key, formula, request.reml, family, request.link, request.nagq),
        _work(request, data),
        kind=KIND,
        label=f"Fitting **{escape_message(label)}**: {request.describe()}",
        store=_store(request),
        fail=_fail,
        meta={"request": request},
    )


def _start_streamed(
    formula: str,
    reml: bool,
    label: str,
    server: dict,
    family: str = GAUSSIAN,
    link: str | None = None,
    nagq: int = 1,
) -> Job:
    """Start the streamed fit of the server file behind the active sample: a linear mixed
    model (:func:`dashboard.state.work.stream_fit`) or a GLMM
    (:func:`dashboard.state.work.stream_glmm_fit`, one pass over the rows per iteration)."""
    glmm = family != GAUSSIAN
    request = FitRequest(
        formula=formula,
        reml=bool(reml) and not glmm,
        label=label,
        data_key=st.session_state[Keys.DATA_KEY],
        data_name=server["label"],
        rows=server["n_rows"],
        family=family,
        link=link if glmm else None,
        nagq=int(nagq) if glmm else 1,
        streamed=True,
    )
    where = (server["folder"], server["name"], server["table"])
    delay = float(os.environ.get(DELAY_ENV) or 0) / 10  # test hook: a slower, visible progress
    if glmm:
        fit_in_child = in_child(
            work.stream_glmm_fit,
            formula,
            *where,
            family,
            request.link,
            request.nagq,
            current_data(),
            server["n_rows"],
            delay,
        )
    else:
        fit_in_child = in_child(
            work.stream_fit,
            formula,
            *where,
            request.reml,
            family,
            current_data(),
            server["n_rows"],
            delay,
        )

    def streamed(job: Job) -> tuple[Any, float]:
        start = time.perf_counter()
        return fit_in_child(job), time.perf_counter() - start

    return jobs_view.start(
        ("fit", request.data_key, formula, request.reml, family, request.link, request.nagq),
        streamed,
        kind=KIND,
        label=f"Fitting **{escape_message(label)}**: {request.describe()}",
        store=_store(request),
        fail=_fail,
        meta={"request": request},
    )


def wait_briefly(job: Job, timeout: float | None = None) -> bool:
    """Wait a moment for a quick fit under a spinner; True when it has ended."""
    return jobs_view.wait_briefly(job, f"Fitting {request_of(job).describe()}...", timeout)


def already_fitted_message(record: FitRecord) -> str:
    """The notice when a requested model is already among the fits (Markdown)."""
    return (
        f"This model is already fitted by {record.method} as **{escape_message(record.name)}** "
        f"({code_span(record.formula)}): it is now the active model, not fitted again."
    )
