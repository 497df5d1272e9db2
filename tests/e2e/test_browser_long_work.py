"""Real browser: long work runs in the job runner, survives a page switch, can be cancelled.

1. A parametric bootstrap of 300 replicates (the small multi-center trial, patients within
   hospitals: about 20 s of work; sleepstudy's refits are now too quick to watch) is started
   on the Model page; the user goes to the Explore page, where the sidebar shows it running with a
   Cancel button; back on the Model page its progress has advanced or its result is stored;
   it finishes with the table of intervals.
2. The Teach page's repeat of 1,000 studies (at 1024 px) is started, the user leaves the page
   and comes back (the run went on), then cancels it: it stops, says so, and stores nothing
   (no result appears, the earlier prompt stays).

Screenshots: ``artifacts/screenshots/long_work_*.png`` (progress and Cancel at 1400 and
1024 px).
"""

from __future__ import annotations

import re

import pytest

from tests.e2e import support
from tests.e2e.test_browser_models import choose_example, fit_typed

pytestmark = pytest.mark.browser

INLINE = ".st-key-job_inline_{}"
SIDEBAR = ".st-key-job_sidebar_{}"


def _count(text: str, unit: str) -> int:
    """The ``k`` of ``"<unit> k of n"`` in a progress text (0 when not there yet)."""
    match = re.search(rf"{unit} ([\d,]+) of", text)
    return int(match.group(1).replace(",", "")) if match else 0


def _progress(page, selector: str, unit: str) -> int:
    box = page.locator(selector)
    return _count(box.first.inner_text(), unit) if box.count() else -1


def _wait_progress(page, selector: str, unit: str, above: int = 0) -> int:
    """Wait until the progress box shows more than ``above`` units done; returns the count."""
    page.wait_for_function(
        """([sel, unit, above]) => {
            const box = document.querySelector(sel);
            const m = box && box.innerText.match(new RegExp(unit + ' ([\\\\d,]+) of'));
            return m && parseInt(m[1].replace(/,/g, '')) > above;
        }""",
        arg=[selector, unit, above],
        timeout=support.WAIT_MS,
    )
    return _progress(page, selector, unit)


def _set_number(page, label: str, value: int) -> None:
    box = page.get_by_role("spinbutton", name=label)
    box.fill(str(value))
    box.press("Enter")
    support.wait_idle(page)


def test_bootstrap_keeps_running_across_a_page_switch(app_url, tab):
    page = tab.page
    support.open_app(page, app_url)
    choose_example(page, "trial_small")
    fit_typed(page, "y ~ time * arm + (time | patient) + (1 | hospital)")
    assert "Fitted M1" in page.inner_text("body")
    page.get_by_text("Parametric bootstrap intervals").click()
    _set_number(page, "Replicates", 300)
    page.get_by_role("button", name="Run the bootstrap").click()
    first = _wait_progress(page, INLINE.format("bootstrap"), "Replicate")
    assert page.locator(f"{INLINE.format('bootstrap')} button", has_text="Cancel").count() >= 1
    support.screenshot(page, "long_work_bootstrap_running_1400")

    support.go_to(page, "Explore")
    sidebar = page.locator(SIDEBAR.format("bootstrap"))
    assert sidebar.count() == 1 and "Parametric bootstrap of" in sidebar.inner_text()
    later = _wait_progress(page, SIDEBAR.format("bootstrap"), "Replicate", above=first)
    support.screenshot(page, "long_work_sidebar_explore_1400")
    assert not support.exceptions_on(page)

    support.go_to(page, "Model")
    page.wait_for_function(
        """([sel, above]) => {
            if (document.body.innerText.includes('300 replicates (seed 1)')) return true;
            const box = document.querySelector(sel);
            if (!box) return false;
            const m = box.innerText.match(/Replicate ([\\d,]+) of/);
            return m && parseInt(m[1].replace(/,/g, '')) > above;
        }""",
        arg=[INLINE.format("bootstrap"), later],
        timeout=support.WAIT_MS,
    )
    page.wait_for_selector("text=300 replicates (seed 1)", timeout=support.WAIT_MS)
    support.wait_idle(page)
    body = page.inner_text("body")
    table = page.locator('.st-key-infer_w_boot_box [data-testid="stDataFrame"]')
    assert table.count() == 1 and "300 replicates (seed 1) in" in body
    assert page.locator(INLINE.format("bootstrap")).count() == 0
    assert page.locator(SIDEBAR.format("bootstrap")).count() == 0
    assert not support.exceptions_on(page)
    print(f"bootstrap progress: {first} at start, {later} on Explore, done back on Model")


def test_teach_repeat_survives_a_page_switch_and_cancel_stores_nothing(browser):
    # 1,000 studies take about 2 s: each waits 30 ms more here, so that the run lasts
    env = {"LMM_EXPLORER_STUDY_DELAY": "0.03"}
    with support.running_app(timeout=120, env=env) as url:
        _teach_repeat_cancelled(browser, url)


def _teach_repeat_cancelled(browser, app_url: str) -> None:
    context = browser.new_context(viewport={"width": 1024, "height": 1800})
    page = context.new_page()
    support.open_app(page, app_url)
    support.go_to(page, "Teach")
    _set_number(page, "Number of studies", 1000)
    assert "Press Repeat 1000 times to run the lab." in page.inner_text("body")
    page.get_by_role("button", name="Repeat 1000 times").click()
    first = _wait_progress(page, INLINE.format("teach"), "Study")
    support.screenshot(page, "long_work_teach_running_1024")

    support.go_to(page, "Data")
    later = _wait_progress(page, SIDEBAR.format("teach"), "Study", above=first)
    support.screenshot(page, "long_work_sidebar_data_1024")
    support.go_to(page, "Teach")
    again = _wait_progress(page, INLINE.format("teach"), "Study", above=later)
    assert first < later < again < 1000

    page.locator(f"{INLINE.format('teach')} button", has_text="Cancel").first.click()
    page.wait_for_selector("text=Cancelled: Repeating the simulated study", timeout=support.WAIT_MS)
    support.wait_idle(page)
    support.screenshot(page, "long_work_teach_cancelled_1024")
    body = page.inner_text("body")
    assert "Nothing was stored." in body
    assert "Press Repeat 1000 times to run the lab." in body  # no result was stored
    assert "Time for" not in body and "Coverage, mixed" not in body
    assert page.locator(INLINE.format("teach")).count() == 0
    assert page.locator(SIDEBAR.format("teach")).count() == 0
    assert not support.exceptions_on(page)
    print(f"teach progress: {first} -> {later} (on Data) -> {again} (back), then cancelled")
    context.close()
