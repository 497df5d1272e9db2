"""Real browser, issue 17: one session's heavy fit does not freeze another session's pages,
and a job over the server's memory limit is stopped alone, with a clear message.

Session B uploads a simulated trial of about 1M rows and fits
``y ~ time * arm + (time | patient) + (1 | hospital)`` (in a child process,
:mod:`dashboard.state.isolation`) while session A switches pages; then B starts a parametric
bootstrap of that fit (200 refits of 1M rows: minutes of work), A switches pages again, and
every one of those switches must end while B's bootstrap is still running; B cancels it. The
durations of A's switches (idle, during the fit, during the bootstrap) go to
``artifacts/heavy_job_page_switch.json`` for the note (measured, not asserted). Then a job
over its memory limit (a crossed model of 20,000 x 15,000 levels, on a server whose limits
file gives a job 512 MB) is stopped with the memory message while session A goes on working.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.e2e import support

pytestmark = pytest.mark.browser

FORMULA = "y ~ time * arm + (time | patient) + (1 | hospital)"
INLINE = ".st-key-job_inline_bootstrap"
CROSSED = "score ~ 1 + (1 | rater) + (1 | item)"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def trial_csv(tmp_path_factory) -> Path:
    """About 1M rows: 100 hospitals x 1,600 patients (benchmarks/bench_fit.py's 1M trial)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_fit import load_trial

    path = tmp_path_factory.mktemp("heavy") / "trial_1m.csv"
    load_trial(100, 1600).to_csv(path, index=False)
    return path


def _upload_and_fit(page, url: str, csv: Path) -> None:
    """Session B: upload the trial, then ask for the fit (it runs as a job)."""
    support.open_app(page, url)
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(csv)
    page.wait_for_selector("text=Loaded", timeout=300_000)
    support.wait_idle(page, timeout_ms=300_000)
    support.go_to(page, "Model")
    page.get_by_role("textbox", name="Or type a formula").fill(FORMULA)
    page.get_by_role("button", name="Fit model").click()
    page.wait_for_timeout(500)


def _switch_pages(page) -> list[float]:
    """Session A: switch between three pages; seconds each switch took."""
    seconds = []
    for label in ("Explore", "Trajectories", "Data", "Explore"):
        start = time.perf_counter()
        support.go_to(page, label)
        seconds.append(time.perf_counter() - start)
    return seconds


def _bootstrap_running(page) -> bool:
    return page.locator(f"{INLINE} button", has_text="Cancel").count() >= 1


def test_a_heavy_fit_leaves_other_sessions_responsive(browser, trial_csv):
    with support.running_app(timeout=120) as url:
        a = browser.new_context(viewport=support.VIEWPORT).new_page()
        b = browser.new_context(viewport=support.VIEWPORT).new_page()
        support.open_app(a, url)
        idle = _switch_pages(a)
        _upload_and_fit(b, url, trial_csv)
        during_fit = _switch_pages(a)
        support.wait_for_text(b, "Fitted M1", timeout_ms=600_000)
        assert not support.exceptions_on(b)

        b.get_by_text("Parametric bootstrap intervals").click()
        b.get_by_role("button", name="Run the bootstrap").click()
        b.wait_for_selector(f"{INLINE} button:has-text('Cancel')", timeout=120_000)
        during_bootstrap = _switch_pages(a)
        assert _bootstrap_running(b), f"A's page switches {during_bootstrap} outlasted B's job"
        assert not support.exceptions_on(a)
        support.screenshot(b, "heavy_job_bootstrap_running")
        b.locator(f"{INLINE} button", has_text="Cancel").first.click()
        support.wait_for_text(b, "Nothing was stored")

        report = {
            "rows": 1_010_613,
            "formula": FORMULA,
            "page_switch_seconds": {
                "idle": idle,
                "during_fit": during_fit,
                "during_bootstrap": during_bootstrap,
            },
        }
        out = ROOT / "artifacts" / "heavy_job_page_switch.json"
        out.write_text(json.dumps(report, indent=2))


@pytest.fixture(scope="module")
def crossed_csv(tmp_path_factory) -> Path:
    """60,000 rows, two crossed factors of 20,000 and 15,000 levels: the dense block of the
    second factor alone needs about 1.8 GB."""
    rng = np.random.default_rng(1)
    n = 60_000
    data = pd.DataFrame(
        {
            "rater": rng.integers(0, 20_000, n).astype(str),
            "item": rng.integers(0, 15_000, n).astype(str),
            "score": rng.normal(size=n),
        }
    )
    path = tmp_path_factory.mktemp("crossed") / "crossed.csv"
    data.to_csv(path, index=False)
    return path


def test_a_job_over_the_memory_limit_is_stopped_alone(browser, crossed_csv, tmp_path):
    limits = tmp_path / "limits.toml"
    limits.write_text("[lmm_explorer]\njob_memory_mb = 512\n")
    with support.running_app(timeout=120, env={"LMM_LIMITS": str(limits)}) as url:
        a = browser.new_context(viewport=support.VIEWPORT).new_page()
        b = browser.new_context(viewport=support.VIEWPORT).new_page()
        support.open_app(b, url)
        b.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(crossed_csv)
        b.wait_for_selector("text=Loaded", timeout=120_000)
        support.wait_idle(b)
        support.go_to(b, "Model")
        b.get_by_role("textbox", name="Or type a formula").fill(CROSSED)
        b.get_by_role("button", name="Fit model").click()
        support.wait_for_text(b, "more memory than the server allows one job", 600_000)
        body = b.inner_text("body")
        assert "512 MB" in body and "Traceback" not in body
        assert not support.exceptions_on(b)
        support.screenshot(b, "heavy_job_memory_limit")
        # the server and the other sessions go on: A fits the example
        support.open_app(a, url)
        support.go_to(a, "Model")
        a.get_by_role("button", name="Fit model").click()
        support.wait_for_text(a, "Fitted M1")
        assert not support.exceptions_on(a)
