"""AppTest, issue 16: the address bar restores the view; session files are saved and opened."""

from __future__ import annotations

import json

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from dashboard.analysis import session_file as fmt
from dashboard.analysis.link_codec import LinkModel
from dashboard.state import session_file
from dashboard.state.session import Keys
from lmm_core import datasets, fit_lmm
from tests.app.conftest import ROOT, texts

RI = "distance ~ age + (1 | Subject)"
RS = "distance ~ age + (age | Subject)"


def _app(**params) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    for key, value in params.items():
        at.query_params[key] = value
    return at.run()


def _param(at: AppTest, key: str) -> list[str]:
    value = at.query_params.get(key)
    return [] if value is None else value if isinstance(value, list) else [value]


def _names(at: AppTest) -> list[str]:
    return [r.name for r in at.session_state[Keys.FITS]]


def test_a_link_restores_the_example_the_models_and_the_active_one():
    at = _app(ds="orthodont", m=[f"reml;intercept;{RI}", f"ml;slope;{RS}"], a="1", reml="0")
    assert not at.exception
    assert at.session_state[Keys.EXAMPLE_NAME] == "orthodont"
    assert _names(at) == ["M1: intercept", "M2: slope"]
    assert at.session_state[Keys.ACTIVE_FIT] == "M1: intercept"
    fits = at.session_state[Keys.FITS]
    assert fits[0].reml is True and fits[1].reml is False
    assert at.session_state[Keys.MODEL_REML] is False
    assert not at.warning and not at.error
    assert _param(at, "ds") == ["orthodont"]  # written back as it is now
    assert _param(at, "m") == [f"reml;intercept;{RI}", f"ml;slope;{RS}"]
    assert _param(at, "a") == ["1"] and _param(at, "reml") == ["0"]


def test_the_address_bar_holds_the_view_of_a_plain_start():
    # AppTest reruns only the page of an st.navigation app (not app.py), so the address bar
    # following later changes is checked in the browser (tests/e2e/test_browser_session.py)
    at = _app(ds="orthodont", m=[f"reml;intercept;{RI}", f"reml;slope;{RS}"])
    assert _param(at, "ds") == ["orthodont"] and len(_param(at, "m")) == 2
    assert _param(at, "a") == ["2"]  # the newest model is the active one
    plain = _app()
    assert _param(plain, "ds") == ["sleepstudy"] and _param(plain, "m") == []


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"ds": "../../etc/passwd"}, "unknown example"),
        ({"ds": "sleepstudy", "m": "reml;x;Reaction ~ __import__('os').system('id')"}, "parse"),
        ({"ds": "sleepstudy", "m": "reml;x;Reaction ~ nosuchcolumn + (1 | Subject)"}, "fitted"),
        ({"up": "A" * 43, "m": "reml;x;y ~ x + (1 | g)"}, "not available"),
        ({"a": "x" * 50_000}, "too long"),
    ],
)
def test_a_hostile_or_broken_link_gives_a_message_and_the_default_view(params, words):
    at = _app(**params)
    assert not at.exception
    shown = texts(at.warning)
    assert words in shown, shown
    assert at.session_state[Keys.DATASET] is not None
    assert at.session_state[Keys.FITS] == []
    at.run()  # the notice is shown once
    assert words not in texts(at.warning)


def _orthodont_file(*, include_data: bool, source: str) -> bytes:
    data, _ = datasets.load_example("orthodont")
    models = [(LinkModel(f, label, True), fit_lmm(f, data)) for f, label in
              [(RI, "intercept"), (RS, "slope")]]  # fmt: skip
    return fmt.write(
        data=data, source=source, example="orthodont" if source == "example" else None,
        name="orthodont", roles={"subject": "Subject", "time": "age", "outcome": "distance"},
        units={}, models=models, page="trajectories", reml=True, active=0,
        include_data=include_data,
    )  # fmt: skip


def _opening() -> None:
    """A script that opens ``st.session_state["raw"]`` as the Open session panel does (AppTest
    drops the sidebar, where the panel is, on reruns of st.navigation apps)."""
    import streamlit as st

    from dashboard.state.link import show_notice
    from dashboard.state.session import Keys, init_state
    from dashboard.state.session_file import open_session

    init_state()
    st.session_state[Keys.CURRENT_PAGE] = ""
    st.session_state["page"] = open_session(st.session_state["raw"])
    show_notice()


def _open(raw: bytes) -> AppTest:
    at = AppTest.from_function(_opening, default_timeout=60)
    at.session_state["raw"] = raw
    return at.run()


@pytest.mark.parametrize(("include_data", "source"), [(True, "upload"), (False, "example")])
def test_a_session_file_is_opened_on_its_page_with_its_models(include_data, source):
    at = _open(_orthodont_file(include_data=include_data, source=source))
    assert not at.exception
    assert at.session_state[Keys.DATA_NAME] == "orthodont"
    assert at.session_state[Keys.DATA_SOURCE] == source
    assert _names(at) == ["M1: intercept", "M2: slope"]
    assert at.session_state[Keys.ACTIVE_FIT] == "M1: intercept"
    assert at.session_state["page"] == "trajectories"
    assert "Opened the session file" in texts(at.success)


def test_a_session_file_without_its_data_is_refused_on_other_data():
    at = _open(_orthodont_file(include_data=False, source="upload"))
    assert not at.exception
    shown = texts(at.error)
    assert "other data" in shown and "fingerprints differ" in shown, shown
    assert at.session_state[Keys.FITS] == [] and at.session_state[Keys.DATA_NAME] == "sleepstudy"


@pytest.mark.parametrize(
    "raw",
    [
        b"not json at all",
        json.dumps({"format": fmt.FORMAT, "version": 99}).encode(),
        b"[" * 50_000,
    ],
)
def test_a_broken_session_file_is_refused_with_a_message(raw):
    at = _open(raw)
    assert not at.exception
    assert "The session file was not opened" in texts(at.error)
    assert at.session_state[Keys.FITS] == [] and at.session_state[Keys.DATA_NAME] == "sleepstudy"


def test_the_session_writer_snapshots_the_models_and_the_data():
    at = _app(ds="orthodont", m=[f"reml;intercept;{RI}"])
    # the writer is built in the app's run; build it here from the same state (bare mode)
    st.session_state.update({k: at.session_state[k] for k in (
        Keys.DATASET, Keys.DATA_KEY, Keys.DATA_NAME, Keys.DATA_SOURCE, Keys.EXAMPLE_NAME,
        Keys.ROLES, Keys.UNITS, Keys.FITS, Keys.ACTIVE_FIT, Keys.MODEL_REML, Keys.CURRENT_PAGE,
    )})  # fmt: skip
    saved = fmt.read(session_file.session_writer(True)())
    assert saved.example == "orthodont" and [m.formula for m in saved.models] == [RI]
    assert saved.data is not None and len(saved.data) == len(at.session_state[Keys.DATASET])


def test_a_slow_restore_shows_the_page_first_and_keeps_the_link(monkeypatch):
    """The link's models are fitted as a job: with fits slower than the page's short wait,
    the first run shows the page with the restore running, the address bar keeps the models
    meanwhile, and the fits arrive, in the link's order, when the job is collected."""
    import time

    from dashboard.state import cached
    from dashboard.views import jobs as jobs_view
    from tests.app.conftest import finish_jobs, pending_jobs

    real = cached.fit_model

    def slow(*args, **kwargs):
        time.sleep(0.5)
        return real(*args, **kwargs)

    monkeypatch.setattr(cached, "fit_model", slow)
    monkeypatch.setattr(jobs_view, "QUICK_WAIT_SECONDS", 0.0)
    at = _app(ds="orthodont", m=[f"reml;intercept;{RI}", f"ml;slope;{RS}"], a="1")
    assert not at.exception
    (job,) = pending_jobs(at)
    assert job.kind == "link" and _names(at) == []
    assert _param(at, "m") == [f"reml;intercept;{RI}", f"ml;slope;{RS}"]  # kept meanwhile
    finish_jobs(at.switch_page("pages/model.py"))
    assert _names(at) == ["M1: intercept", "M2: slope"]
    assert at.session_state[Keys.ACTIVE_FIT] == "M1: intercept"
