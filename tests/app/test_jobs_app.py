"""The job runner in the app (AppTest): a bootstrap in the background across a page switch,
cancellation, errors as messages, one job per kind, no work started twice, sessions apart."""

from __future__ import annotations

import pytest

from dashboard.state import cached, isolation, work
from dashboard.state.session import Keys
from dashboard.views import jobs as jobs_view
from lmm_core import ModelError
from tests.app.conftest import finish_jobs, pending_jobs, texts
from tests.app.test_trajectories_page import SLEEP, inject

W = Keys.INFER_W
PAGE = "pages/model.py"
CANCEL = "inline_cancel_bootstrap"  # the Cancel button of the bootstrap's progress box


@pytest.fixture
def background(monkeypatch):
    """No quick wait: every job is still running when the click's run ends."""
    monkeypatch.setattr(jobs_view, "QUICK_WAIT_SECONDS", 0.0)


def _model_page(app):
    at = inject(app, "sleepstudy", SLEEP).switch_page(PAGE).run()
    assert not at.exception
    return at


def _start_bootstrap(at, n_boot: int):
    at.number_input(key=W + "n_boot").set_value(n_boot).run()
    at.button(key=W + "boot").click().run()
    assert not at.exception
    return at


def _boot_key(at, n_boot: int, seed: int = 1) -> tuple:
    (record,) = at.session_state[Keys.FITS]
    return (*record.key, "bootstrap", n_boot, seed)


def test_a_bootstrap_goes_on_across_a_page_switch_and_is_stored(app, background):
    at = _start_bootstrap(_model_page(app), 100)
    (job,) = pending_jobs(at)
    assert job.kind == "bootstrap" and job.key == _boot_key(at, 100)
    assert at.button(key=CANCEL)  # its progress box with a Cancel button
    assert _boot_key(at, 100) not in at.session_state[Keys.INFER_RESULTS]
    at.switch_page("pages/explore.py").run()  # the user moves on
    assert not at.exception and at.title[0].value == "Explore"
    assert pending_jobs(at) == [job] and not job.cancel_requested
    assert job.wait(60) and job.state == "done"
    at.switch_page(PAGE).run()  # the next run on any page stores it (app.py collects)
    assert not at.exception and pending_jobs(at) == []
    boot = at.session_state[Keys.INFER_RESULTS][_boot_key(at, 100)]
    assert boot.n_boot == 100 and job.result is boot
    assert any("100 replicates (seed 1)" in c.value for c in at.caption)


def test_cancel_stops_the_bootstrap_and_stores_nothing(app, background):
    at = _start_bootstrap(_model_page(app), 1000)
    (job,) = pending_jobs(at)
    at.button(key=CANCEL).click().run()
    assert job.cancel_requested
    if pending_jobs(at):  # not yet collected (the notice shows in the run that collects it)
        finish_jobs(at)
    assert job.state == "cancelled" and 0 <= (job.fraction or 0) < 1
    assert "Cancelled: Parametric bootstrap of" in texts(at.info)
    assert "Nothing was stored" in texts(at.info)
    assert not [k for k in at.session_state[Keys.INFER_RESULTS] if "bootstrap" in k]
    assert pending_jobs(at) == [] and not at.exception


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        (ModelError("The model needs more subjects for this."), "needs more subjects for this."),
        (ZeroDivisionError("division by zero"), "failed unexpectedly (ZeroDivisionError)"),
    ],
)
def test_a_failing_job_says_why_without_a_traceback(app, monkeypatch, error, shown):
    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(work, "bootstrap", fail)
    at = _start_bootstrap(_model_page(app), 50)  # fails at once: stored within the wait
    assert not at.exception and pending_jobs(at) == []
    message = texts(at.error)
    assert shown in message and "could not be completed" in message
    assert "Traceback" not in message and 'File "' not in message
    assert not [k for k in at.session_state[Keys.INFER_RESULTS] if "bootstrap" in k]
    assert at.session_state[Keys.FITS]  # the fit is kept


def test_one_bootstrap_at_a_time(app, background):
    at = _start_bootstrap(_model_page(app), 1000)
    (job,) = pending_jobs(at)
    owner = at.session_state[Keys.JOB_OWNER]
    assert not [b for b in at.button if b.key == W + "boot"]  # no second start while it runs
    at.switch_page("pages/explore.py").run()
    at.switch_page(PAGE).run()
    assert pending_jobs(at) == [job] and jobs_view.runner().jobs(owner) == [job]
    at.number_input(key=W + "n_boot").set_value(500).run()
    at.button(key=W + "boot").click().run()  # other work of the same kind: refused
    assert "is still running: wait for it, or cancel it first" in texts(at.warning)
    assert pending_jobs(at) == [job]
    job.cancel()
    finish_jobs(at)


def test_sessions_do_not_see_each_others_jobs(app, background):
    from streamlit.testing.v1 import AppTest

    from tests.app.conftest import ROOT

    mine = _start_bootstrap(_model_page(app), 1000)
    (job,) = pending_jobs(mine)
    other = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30)
    other.run()
    other = _model_page(other)
    assert pending_jobs(other) == []  # its state holds none of the first session's jobs
    token = other.session_state[Keys.JOB_OWNER] if Keys.JOB_OWNER in other.session_state else "?"
    assert token != job.owner
    assert jobs_view.runner().get(token, job.key) is None  # the same work key, another owner
    assert jobs_view.runner().jobs(job.owner) == [job]
    assert not [b for b in other.button if b.key == CANCEL]
    job.cancel()
    finish_jobs(mine)


def test_the_runner_is_one_per_process_with_workers_from_the_cores():
    from dashboard.state.jobs import worker_count

    first, again = jobs_view.runner(), jobs_view.runner()
    assert first is again and first.workers == worker_count()


@pytest.mark.job_processes
def test_a_fit_job_runs_in_a_child_process_and_its_result_reaches_the_page(app, monkeypatch):
    calls = []
    real = isolation.run_isolated

    def spy(job, fn, *args, limits):
        calls.append((fn.__name__, limits.enabled))
        return real(job, fn, *args, limits=limits)

    monkeypatch.setattr(isolation, "run_isolated", spy)
    cached.fit_model.clear()  # an earlier test may have fitted this model: fit it again
    at = app.switch_page(PAGE).run()
    at.button(key="model_fit").click().run()
    finish_jobs(at)
    assert calls == [("fit", True)]  # the fit went to a child process
    assert [r.name for r in at.session_state[Keys.FITS]] and not at.exception
