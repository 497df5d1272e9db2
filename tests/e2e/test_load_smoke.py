"""Real browser, load smoke test: 5 concurrent sessions on one server (benchmarks/load_sessions.py).

Each session loads the 79k-row ``trial_large`` example, fits
``y ~ time * arm + (time | patient)`` and switches page. Asserted: no session errors, every
session saw its own "Fitted M1", the server answered every health check. The latencies and
the server's peak memory are printed (and written to ``artifacts/load_smoke.json``), not
asserted: the numbers of 1, 5 and 20 sessions are in ``benchmarks/README.md``.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from benchmarks import load_sessions
from tests.e2e import support

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SESSIONS = 5


def test_five_concurrent_sessions_load_fit_and_switch(browser):
    # `browser` only to skip/fail like the other browser tests; the benchmark drives its own
    # chromium with playwright's asyncio API, in a thread of its own (no event loop here)
    with ThreadPoolExecutor(1) as pool:
        result = pool.submit(load_sessions.run, SESSIONS, step_timeout=240).result()
    print()
    print(load_sessions.markdown_table([result]))
    path = support.ROOT / "artifacts" / "load_smoke.json"
    path.write_text(json.dumps(result.to_dict(), indent=1))
    assert len(result.results) == SESSIONS
    errors = [r.error for r in result.results if r.error]
    assert not errors, errors
    assert all(r.fitted for r in result.results), [r.index for r in result.results]
    assert all(r.load and r.fit and r.switch for r in result.results)
    assert result.health_checks > 0 and result.health_failures == 0
    assert result.peak_rss_mib > result.rss_before_mib > 0
