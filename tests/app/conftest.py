"""AppTest helpers: build the app, upload bytes, decode plotly figures from the page."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
MIME = {
    "csv": "text/csv",
    "tsv": "text/tab-separated-values",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "parquet": "application/octet-stream",
}


@pytest.fixture(autouse=True)
def jobs_in_threads(monkeypatch, request):
    """AppTest checks what the pages do: jobs run in the worker thread, as before issue 17,
    so that tests can patch the engine and fits end within the page's short wait. The child
    processes (dashboard.state.isolation) are tested in tests/dashboard/test_isolation.py,
    by ``@pytest.mark.job_processes`` tests here and by every browser test (a real server
    runs jobs in processes)."""
    if request.node.get_closest_marker("job_processes"):
        return
    from dashboard.state import isolation

    monkeypatch.setattr(isolation, "configured", lambda: isolation.Isolation(enabled=False))


@pytest.fixture
def app() -> AppTest:
    """The whole app (entry point with navigation), run once: the Data page with sleepstudy."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30)
    at.run()
    assert not at.exception
    return at


def pending_jobs(at: AppTest) -> list:
    """This session's jobs not yet collected (see dashboard.views.jobs)."""
    from dashboard.state.session import Keys

    return list(at.session_state[Keys.JOBS].values()) if Keys.JOBS in at.session_state else []


def finish_jobs(at: AppTest, timeout: float = 120.0) -> AppTest:
    """Wait for the session's background jobs to end, then rerun (the run stores them)."""
    deadline = time.monotonic() + timeout
    for job in pending_jobs(at):
        assert job.wait(max(0.0, deadline - time.monotonic())), f"{job.label} did not finish"
    return at.run()


def upload(at: AppTest, name: str, data: bytes) -> AppTest:
    """Put a file into the Data page's uploader and rerun."""
    mime = MIME.get(name.rsplit(".", 1)[-1], "application/octet-stream")
    at.file_uploader(key="upload_file").set_value((name, data, mime))
    return at.run()


def _decode(node):
    if isinstance(node, dict):
        if "bdata" in node and "dtype" in node:
            arr = np.frombuffer(base64.b64decode(node["bdata"]), dtype=np.dtype(node["dtype"]))
            if "shape" in node:  # plotly writes the shape as "2, 3" (a string) or a list
                shape = node["shape"]
                dims = [int(d) for d in (shape.split(",") if isinstance(shape, str) else shape)]
                arr = arr.reshape(dims)
            return arr
        return {k: _decode(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_decode(v) for v in node]
    return node


def figures_on(at: AppTest) -> list[dict]:
    """Every plotly figure on the page as a dict, typed arrays decoded to numpy."""
    return [_decode(json.loads(chart.proto.spec)) for chart in at.get("plotly_chart")]


def texts(elements) -> str:
    """All values of a list of elements (errors, captions...) joined into one string."""
    return "\n".join(str(e.value) for e in elements)
