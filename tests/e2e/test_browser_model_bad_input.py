"""Real browser: hostile and huge formulas typed into the Model page.

The server slows every fit down by 2.5 s (``LMM_EXPLORER_FIT_DELAY``), so a formula that
parses is shown while it runs (the "Fitting ..." box, the sidebar's status, a toast when it
fails): the places where a formula holding Markdown could render an image from an outside
host. Checks: the marker file a hostile formula tries to create never appears, the error
names the offending token, nothing is fetched from outside 127.0.0.1, a 100 kB formula is
refused within seconds, and the model fitted first stays in the sidebar throughout.
"""

from __future__ import annotations

import time

import pytest

from dashboard.views.layout import short_text
from tests.e2e import support

pytestmark = pytest.mark.browser

FIRST = "Reaction ~ Days + (Days | Subject)"
OUTSIDE_HOST = "198.51.100.1"  # TEST-NET-2: never answers


def sidebar(page) -> str:
    return page.locator('[data-testid="stSidebar"]').inner_text()


def fit(page, formula: str, expect: str, timeout_ms: int = 60_000) -> float:
    """Type ``formula``, click Fit, wait until ``expect`` is on the page; seconds taken."""
    page.get_by_role("textbox", name="Or type a formula").fill(formula)
    start = time.perf_counter()
    page.get_by_role("button", name="Fit model").click()
    page.wait_for_function(
        "m => document.body.innerText.includes(m)", arg=expect, timeout=timeout_ms
    )
    seconds = time.perf_counter() - start
    support.wait_idle(page)
    return seconds


def test_hostile_and_huge_formulas_in_the_browser(browser, tmp_path):
    marker = tmp_path / "MARKER"
    with support.running_app(env={"LMM_EXPLORER_FIT_DELAY": "2.5"}) as url:
        context = browser.new_context(viewport=support.VIEWPORT)
        page = context.new_page()
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        support.open_app(page, url)
        support.go_to(page, "Model")
        fit(page, FIRST, "Fitted M1")
        timings = {}

        # quotes: refused by the tokenizer, nothing reaches the engine
        formula = f"__import__('os').system('touch {marker}')"
        timings["__import__ with quotes"] = fit(page, formula, "could not be read")
        assert "Unexpected ' at position 11: quotes are not allowed" in page.inner_text("body")

        # a backticked name holding code: parsed as a column name, refused by the fit
        formula = f"Reaction ~ `__import__('os').system('touch {marker}')` + (1 | Subject)"
        timings["code in backticks"] = fit(page, formula, "could not be fitted")
        body = page.inner_text("body")
        assert f"Unknown column __import__('os').system('touch {marker}')" in body

        # Markdown in a name: shown as code while it runs and in the error, never rendered
        formula = f"Reaction ~ `![x](http://{OUTSIDE_HOST}/x.png)` + `[y](http://{OUTSIDE_HOST}/)`"
        page.get_by_role("textbox", name="Or type a formula").fill(formula + " + (1 | Subject)")
        page.get_by_role("button", name="Fit model").click()
        page.wait_for_selector("text=Its progress is in the sidebar", timeout=30_000)
        running = page.inner_text("body")
        assert f"![x](http://{OUTSIDE_HOST}/x.png)" in running  # shown as text
        page.wait_for_selector("text=could not be fitted", timeout=60_000)
        support.wait_idle(page)
        assert page.locator(f'img[src*="{OUTSIDE_HOST}"], a[href*="{OUTSIDE_HOST}"]').count() == 0

        # 100 kB: refused at once, the caret shows a window of the formula
        formula = "Reaction ~ Days + " + "a" * 100_000
        timings["100 kB formula"] = fit(page, formula, "characters long; the limit is 10,000")
        code = page.locator('[data-testid="stCode"]').last.inner_text()
        assert code.rstrip().endswith("^") and len(code) < 400

        print("browser formula round trips (s):", {k: round(v, 2) for k, v in timings.items()})
        assert not marker.exists() and list(tmp_path.iterdir()) == []
        assert not support.exceptions_on(page)
        assert "M1: random slope" in sidebar(page) and short_text(FIRST) in sidebar(page)
        assert timings["100 kB formula"] < 15, timings
        outside = [u for u in requests if not support.is_local(u)]
        assert not outside, outside
        context.close()
