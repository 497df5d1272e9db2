"""The operator's event log (dashboard.state.events): one JSON line per event, no data."""

from __future__ import annotations

import io
import json

import pytest

from dashboard.state import events
from dashboard.state.jobs import FAILED, JobRunner


@pytest.fixture
def log(monkeypatch):
    """Events switched on and captured; the session registry emptied."""
    monkeypatch.setenv(events.ENV_VAR, "stderr")
    monkeypatch.setattr(events, "_SESSIONS", {})
    stream = io.StringIO()
    events.configure(stream)
    yield stream
    events.configure(io.StringIO())


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_one_json_line_per_event(log):
    events.emit("page_view", session="abc", page="model")
    (record,) = lines(log)
    assert record["event"] == "page_view" and record["page"] == "model"
    assert record["ts"].endswith("Z") and isinstance(record["pid"], int)


def test_off_unless_asked(monkeypatch, log):
    monkeypatch.delenv(events.ENV_VAR)
    record = events.emit("session_start", session="x")
    assert record["event"] == "session_start" and log.getvalue() == ""


def test_unknown_events_are_refused(log):
    with pytest.raises(ValueError, match="unknown event"):
        events.emit("upload", name="x")


def test_user_text_never_passes(log):
    events.emit(
        "error",
        where="weight (kg) ~ time",  # a formula: spaces and brackets
        error="patients.csv,visit=3",
        thing={"column": "ZZMARKER"},
        rows=[1, 2],
        big="a" * 65,
    )
    (record,) = lines(log)
    assert record["where"] == record["error"] == record["thing"] == "?"
    assert record["rows"] == record["big"] == "?"
    assert "ZZMARKER" not in log.getvalue() and "weight" not in log.getvalue()


def test_session_ids_are_hashed():
    tag = events.session_tag("2c1f0a2e-7f7b-4c1e-9a55-33c1b2d1e0aa")
    assert len(tag) == 12 and "2c1f" not in tag
    assert tag == events.session_tag("2c1f0a2e-7f7b-4c1e-9a55-33c1b2d1e0aa")
    assert tag != events.session_tag("another")
    assert events.session_tag(None) == "-"


def test_error_events_hold_the_class_only(log):
    events.error("store", KeyError("ZZCOLUMN"), "sid")
    (record,) = lines(log)
    assert record["error"] == "KeyError" and "ZZCOLUMN" not in log.getvalue()


def test_jobs_log_start_and_end_without_their_label_or_key(log):
    runner = JobRunner(1)

    def work(job):
        raise ValueError("ZZVALUE in column ZZCOLUMN")

    job = runner.submit(
        "owner",
        ("fit", "ZZKEY"),
        work,
        kind="fit",
        label="Fitting **ZZFORMULA**",
        meta={"session_id": "sid-1"},
    )
    assert job.wait(10)
    runner.shutdown()
    start, end = lines(log)
    assert start["event"] == "job_start" and start["job"] == "fit"
    assert end == {
        **end,
        "event": "job_end",
        "job": "fit",
        "status": FAILED,
        "error": "ValueError",
    }
    assert end["seconds"] >= 0 and end["wait_seconds"] >= 0
    assert start["session"] == end["session"] == events.session_tag("sid-1")
    assert "ZZ" not in log.getvalue()


def test_sessions_start_once_and_pages_are_logged_on_change(log):
    assert events.session_started("s1")
    assert not events.session_started("s1")
    assert events.page_view("s1", "model")
    assert not events.page_view("s1", "model")  # a rerun on the same page
    assert events.page_view("s1", "data")
    kinds = [(r["event"], r.get("page")) for r in lines(log)]
    assert kinds == [("session_start", None), ("page_view", "model"), ("page_view", "data")]


def test_a_session_ends_after_being_gone_for_the_idle_time(log):
    events.session_started("s1")
    events.session_started("s2")
    alive = {"s1"}
    assert events.sweep(alive.__contains__, 120, now=1e9) == []  # s2 seen gone
    assert events.sweep(alive.__contains__, 120, now=1e9 + 60) == []  # not long enough
    (ended,) = events.sweep(alive.__contains__, 120, now=1e9 + 121)
    assert ended["event"] == "session_end" and ended["session"] == events.session_tag("s2")
    assert ended["seconds"] >= 0


def test_a_session_that_reconnects_does_not_end(log):
    events.session_started("s1")
    assert events.sweep(lambda _: False, 120, now=1e9) == []
    assert events.sweep(lambda _: True, 120, now=1e9 + 100) == []  # back
    assert events.sweep(lambda _: False, 120, now=1e9 + 200) == []  # gone again: restart
    assert events.sweep(lambda _: False, 120, now=1e9 + 300) == []


@pytest.mark.parametrize(
    ("header", "session", "lost"),
    [
        (None, "new", False),  # no websocket header (AppTest)
        ("streamlit, tok", "new", False),  # a first connection
        ("streamlit, tok, old", "old", False),  # a resumed session
        ("streamlit, tok, old", "new", True),  # resume failed: another session
        ("streamlit, , old", "new", True),
    ],
)
def test_a_lost_previous_session_is_recognised(header, session, lost):
    assert events.previous_session_lost(header, session) is lost
