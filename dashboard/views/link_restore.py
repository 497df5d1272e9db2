"""A link's models are fitted as a job, so that a reload shows the page at once.

:func:`dashboard.state.link.restore_once` rebuilds the dataset and settings of the address
bar in the session's first run and hands the models to :func:`_start`: one job of the runner
(:mod:`dashboard.views.jobs`; each fit in a child process) fits those not fitted yet and
stores them, in the link's order, when it is collected: in the same run when the fits are
quick (the page's short wait), else with its progress and Cancel button in the sidebar while
the page is already shown. While it runs, :func:`sync` leaves the address bar alone: it
still holds the models being fitted, so a reload in the meantime restores them again.
"""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from dashboard.analysis import link_codec as codec
from dashboard.state import link
from dashboard.state.jobs import Job
from dashboard.state.session import Keys, current_data
from dashboard.views import jobs as jobs_view

__all__ = ["KIND", "restore_once", "show_notice", "sync"]

#: the job kind of a link's restore
KIND = "link"


def restore_once() -> None:
    """The view of the address bar at a session's first run, its models fitted as a job."""
    link.restore_once(fit_models=_start)


def _start(models: Sequence[codec.LinkModel], active: int | None, problems: list[str]) -> None:
    missing = link.missing_models(models)
    if not missing:
        link.set_notice(problems + link.place_models(models, {}, active))
        return
    key, data = st.session_state[Keys.DATA_KEY], current_data()

    def work(job: Job) -> dict[int, object]:
        outcomes = {}
        for done, i in enumerate(missing):
            job.report(done / len(missing), f"Model {done + 1} of {len(missing)}")
            outcomes[i] = link.fit_outcome(i + 1, models[i], key, data, job)
        return outcomes

    def store(outcomes: dict[int, object]) -> None:
        link.set_notice(problems + link.place_models(models, outcomes, active))

    label = f"Restoring the link's view: fitting {len(missing)} model(s)"
    job = jobs_view.start((KIND, key, tuple(models)), work, kind=KIND, label=label, store=store)
    if jobs_view.wait_briefly(job, f"{label}..."):  # quick fits: stored in this run
        jobs_view.collect(toast=False)


def show_notice() -> None:
    """What of a link or a session file could not be restored, once above the page."""
    link.show_notice()


def sync() -> None:
    """:func:`dashboard.state.link.sync`, except while a link's models are being fitted."""
    if not jobs_view.active(KIND):
        link.sync()
