"""Load smoke test through nginx and two replicas: 3 sessions of ``benchmarks/load_proxy.py``.

``load_proxy.run`` in its ``--quick`` form: three browser sessions, a second apart, each open
the app over HTTPS, upload their own CSV (a unique marker in column names and values), fit two
models and switch through five pages. Asserted: no session errors (timeouts, exception boxes,
lost sessions, a route cookie that moves), each saw its own marker, none saw another's (page
texts and every WebSocket frame), every session is logged by the replica its cookie names,
and no marker is in any log. Timings are printed, never asserted (the 30-session figures are
in ``benchmarks/README.md``).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from benchmarks import load_proxy
from tests.deploy import proxy_support
from tests.e2e import support

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SESSIONS = 3


@pytest.fixture(scope="module")
def quick_run() -> load_proxy.RunResult:
    reason = proxy_support.nginx_missing_reason() or support.browser_missing_reason()
    if reason:  # as tests/deploy/conftest.py: required in CI, skipped elsewhere
        if os.environ.get("LMM_REQUIRE_BROWSER") == "1":
            pytest.fail(f"Deployment tests are required (LMM_REQUIRE_BROWSER=1) but {reason}.")
        pytest.skip(f"deployment tests skipped: {reason}")
    # the benchmark drives chromium with playwright's asyncio API: in a thread of its own
    with ThreadPoolExecutor(1) as pool:
        job = pool.submit(
            load_proxy.run, SESSIONS, browsers=1, arrive_over=3.0, solo=False, warm=False,
            step_timeout=180,
        )  # fmt: skip
        result = job.result()
    print()
    print(load_proxy.markdown(result))
    return result


def test_every_session_uploads_fits_twice_and_switches_pages(quick_run):
    assert len(quick_run.results) == SESSIONS
    assert not quick_run.errors, quick_run.errors
    assert all(r.own_mark_seen for r in quick_run.results)
    per_session = len(quick_run.results[0].actions)
    assert per_session == 11 and quick_run.actions == SESSIONS * per_session
    assert quick_run.stats("fit")["n"] == 2 * SESSIONS
    assert all(r.frames > 0 for r in quick_run.results)  # the leak check saw the WebSocket


def test_no_session_sees_another_sessions_data(quick_run):
    assert not quick_run.leaks, quick_run.leaks
    assert quick_run.marks_in_logs == 0


def test_each_session_stays_on_the_replica_that_holds_it(quick_run):
    assert all(len(r.routes) == 1 and r.route == r.routes[0] for r in quick_run.results)
    for usage in quick_run.replicas:
        assert usage.events.get("session_start", 0) == usage.sessions, usage
        assert usage.events.get("lost_previous", 0) == 0
        assert usage.events.get("job_end:fit:done", 0) == 2 * usage.sessions
        assert usage.sessions == 0 or usage.cpu_seconds > 0
    assert quick_run.health_checks > 0 and quick_run.health_failures == 0
