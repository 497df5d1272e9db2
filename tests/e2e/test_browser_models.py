"""Real browser: build and fit models in the Model page, then visit every page.

1. Pick an example dataset, build a random-slope model with the builder's widgets, fit it,
   fit a random-intercept model by typing its formula, and visit every page: screenshots
   (``artifacts/screenshots/models_*.png``), no exception, no request leaving 127.0.0.1.
2. On the 79k-row trial example, fit ``y ~ time * arm + (time | patient)`` and time each
   page from the sidebar click until every chart is drawn. The timings are written to
   ``artifacts/page_timings.json`` and printed: they are reported, with only a loose bound
   asserted (benchmarks report, tests check correctness).
"""

from __future__ import annotations

import json
import time

import pytest

from tests.e2e import support

pytestmark = pytest.mark.browser

TYPED = "Or type a formula"


choose_example = support.open_example  # other browser tests import it from here


def fit_typed(page, formula: str) -> None:
    support.go_to(page, "Model")
    box = page.get_by_role("textbox", name=TYPED)
    box.fill(formula)
    page.get_by_role("button", name="Fit model").click()
    support.wait_idle(page, timeout_ms=120_000)
    support.wait_for_jobs(page)


def test_builder_fit_then_every_page(app_url, tab):
    page = tab.page
    support.open_app(page, app_url)
    choose_example(page, "orthodont")
    support.go_to(page, "Model")
    slopes = page.locator('[data-testid="stMultiSelect"]', has_text="Random slopes per Subject")
    slopes.locator("input").click()
    page.keyboard.type("age")
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")  # close the drop-down list
    support.wait_idle(page)
    formula_shown = page.locator('[data-testid="stCode"]').first.inner_text()
    assert "(age | Subject)" in formula_shown
    page.get_by_role("button", name="Fit model").click()
    support.wait_idle(page, timeout_ms=120_000)
    body = page.inner_text("body")
    assert "Fitted M1" in body and "(age | Subject)" in body
    fit_typed(page, "distance ~ age + Sex + (1 | Subject)")
    assert "Fitted M2" in page.inner_text("body")

    shown = support.visit_all_pages(page, prefix="models_")
    assert set(shown) >= {"Model", "Trajectories", "Shrinkage", "Compare", "Diagnostics"}
    assert all(not errors for errors in shown.values()), shown
    support.go_to(page, "Compare")
    assert "refitting" in page.inner_text("body").lower()
    outside = [url for url in tab.requests if not support.is_local(url)]
    assert tab.requests and not outside, outside


@pytest.mark.slow
def test_pages_after_a_fit_on_the_large_trial(app_url, tab):
    page = tab.page
    support.open_app(page, app_url)
    choose_example(page, "trial_large")
    fit_typed(page, "y ~ time * arm + (time | patient)")
    assert "Fitted M" in page.inner_text("body")
    timings = {}
    for label in support.sidebar_links(page):
        if label == "Data":
            continue
        support.go_to(page, "Data")
        start = time.perf_counter()
        support.go_to(page, label)
        timings[label] = round(time.perf_counter() - start - 0.6, 2)  # wait_idle sleeps 0.6 s
        assert not support.exceptions_on(page), label
        support.screenshot(page, f"large_{label.lower()}")
    path = support.ROOT / "artifacts" / "page_timings.json"
    path.write_text(json.dumps(timings, indent=1))
    print("page render seconds on trial_large:", timings)
    assert max(timings.values()) < 15, timings
    outside = [url for url in tab.requests if not support.is_local(url)]
    assert not outside, outside
