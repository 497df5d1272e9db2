"""Long fits run in the background: the page does not block, a page switch keeps the fit.

The fit is slowed down with the test hook ``LMM_EXPLORER_FIT_DELAY`` and the page waits
only briefly, so the fit is still running when the script run ends.
"""

from __future__ import annotations

import pytest

from dashboard.state.session import Keys
from dashboard.views import fit_jobs
from dashboard.views import jobs as jobs_view
from tests.app.conftest import pending_jobs, texts

W = Keys.MODEL_W


@pytest.fixture
def slow_fits(monkeypatch):
    monkeypatch.setenv(fit_jobs.DELAY_ENV, "1.5")
    monkeypatch.setattr(jobs_view, "QUICK_WAIT_SECONDS", 0.05)


def _wait_done(job, timeout: float = 20.0) -> None:
    assert job.wait(timeout), "the background fit did not finish"


def _start(app, formula: str):
    at = app.switch_page("pages/model.py").run()
    at.text_area(key=W + "typed").input(formula)
    at.button(key="model_fit").click().run()
    assert not at.exception
    return at


def test_a_long_fit_survives_a_page_switch(app, slow_fits):
    at = _start(app, "Reaction ~ Days + (Days | Subject)")
    (job,) = pending_jobs(at)
    assert job.kind == "fit" and not job.done()
    assert at.session_state[Keys.FITS] == []
    assert "Its progress is in the sidebar" in texts(at.info)
    at.switch_page("pages/explore.py").run()  # the user moves on while the fit runs
    assert not at.exception and at.title[0].value == "Explore"
    assert pending_jobs(at) == [job]
    _wait_done(job)
    # In the server app.py stores it on the next rerun (the sidebar's poll) on any page
    # (browser test); AppTest reruns only the page script, so come back to the Model page.
    at.switch_page("pages/model.py").run()
    assert not at.exception
    assert pending_jobs(at) == []
    (record,) = at.session_state[Keys.FITS]
    assert record.name == "M1: random slope" and record.seconds >= 1.5
    assert "Fitted **M1: random slope**" in texts(at.success)
    assert at.subheader[-1].value == "3. Summary of M1: random slope"


def test_a_second_fit_waits_for_the_first_and_errors_arrive_later(app, slow_fits):
    at = _start(app, "Reaction ~ Dayz + (1 | Subject)")
    at.button(key="model_fit").click().run()  # again while the first one runs
    assert "A fit is already running" in texts(at.warning)
    (job,) = pending_jobs(at)
    _wait_done(job)
    at.run()
    assert not at.exception
    assert "could not be fitted" in texts(at.error) and "Dayz" in texts(at.error)
    assert at.session_state[Keys.FITS] == [] and pending_jobs(at) == []


def test_a_running_fit_can_be_cancelled_and_stores_nothing(app, slow_fits):
    at = _start(app, "Reaction ~ Days + (Days | Subject)")
    (job,) = pending_jobs(at)
    job.cancel()  # what the sidebar's Cancel button does (on_click=job.cancel)
    _wait_done(job)
    at.run()
    assert not at.exception
    assert job.state == "cancelled" and at.session_state[Keys.FITS] == []
    assert "Cancelled the fit" in texts(at.info) and "nothing was stored" in texts(at.info)
    assert pending_jobs(at) == []


def test_a_quick_fit_is_stored_before_the_page_is_drawn(app):
    at = _start(app, "Reaction ~ Days + (1 | Subject)")
    assert pending_jobs(at) == []
    assert [r.name for r in at.session_state[Keys.FITS]] == ["M1: random intercept"]
