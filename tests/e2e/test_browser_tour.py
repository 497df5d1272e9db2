"""Real browser, issue 16: the guided tour walked forward and back.

In the presenter view at 1280x720 (a projector) with the keyboard only: the right arrow
moves on, the left arrow back, PageDown and PageUp too (what a presentation clicker sends),
Escape leaves the view; the sidebar is hidden, no grey focus frame surrounds the slide, and
each step shows one chart or table beside its sentences, all within the window. With the
buttons in the normal view at 1400 and 1024 pixels wide, on sleepstudy and on the yes/no
``infections`` example (logistic mixed models: every step says log-odds or why it has no
GLMM version). Screenshots: ``artifacts/screenshots/tour_present_<k>.png`` (every step in
the presenter view), ``tour_buttons_<width>.png``, ``tour_infections_<width>_<k>.png``.
"""

from __future__ import annotations

import pytest

from tests.e2e import support

pytestmark = pytest.mark.browser

STEPS = 8
TITLE = ".st-key-tour_head h2"


def _title(page) -> str:
    return page.locator(TITLE).first.inner_text().strip()


def _step(page, k: int) -> None:
    page.wait_for_function(
        "t => document.body.innerText.includes(t)", arg=f"Step {k} of {STEPS}", timeout=60_000
    )
    support.wait_idle(page, timeout_ms=60_000)
    assert not support.exceptions_on(page)


#: the one chart or table of a step (tables are static st.table in the presenter view)
CHART_OR_TABLE = (
    '[data-testid="stPlotlyChart"], [data-testid="stDataFrame"], [data-testid="stTable"]'
)


def _content_bottom(page) -> float:
    """Lowest bottom edge (px) of the step's title, text, chart and buttons."""
    return page.evaluate(
        """() => Math.max(...[...document.querySelectorAll(
            '.st-key-tour_head, .st-key-tour_text, [data-testid="stPlotlyChart"],'
            + ' [data-testid="stDataFrame"], [data-testid="stTable"], .st-key-tour_next')]
            .map(e => e.getBoundingClientRect().bottom))"""
    )


def _frame_shadow(page) -> str:
    """The box shadow of Streamlit's focus frame of the main region (``stMain::before``)."""
    return page.evaluate(
        """() => getComputedStyle(document.querySelector('[data-testid="stMain"]'),
            '::before').boxShadow"""
    )


def test_presenter_view_walks_with_the_arrow_keys_at_1280x720(browser, app_url):
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    try:
        support.open_app(page, app_url)
        support.go_to(page, "Tour")
        page.locator('[data-testid="stCheckbox"]', has_text="Presenter view").click()
        _step(page, 1)
        assert not page.locator('section[data-testid="stSidebar"]').is_visible()
        titles = []
        for k in range(1, STEPS + 1):
            _step(page, k)
            titles.append(_title(page))
            charts = page.locator(CHART_OR_TABLE)
            assert charts.count() == 1
            assert _content_bottom(page) <= 720, f"step {k} runs below the window"
            assert _frame_shadow(page) == "none", f"a focus frame surrounds step {k}"
            support.screenshot(page, f"tour_present_{k}")
            page.mouse.click(5, 400)  # focus the page, not a chart
            page.keyboard.press("ArrowRight")
        assert len(set(titles)) == STEPS
        for k in range(STEPS - 1, 0, -1):
            page.keyboard.press("ArrowLeft")
            _step(page, k)
            assert _title(page) == titles[k - 1]
        page.keyboard.press("PageDown")  # a presentation clicker's "next"
        _step(page, 2)
        assert _title(page) == titles[1]
        page.keyboard.press("PageUp")
        _step(page, 1)
        assert _title(page) == titles[0]
        page.keyboard.press("Escape")
        page.wait_for_selector('section[data-testid="stSidebar"]', state="visible")
        support.wait_idle(page)
        assert page.locator('[data-testid="stCheckbox"]', has_text="Presenter view").is_visible()
    finally:
        context.close()


@pytest.mark.parametrize("width", [1400, 1024])
def test_tour_walks_with_the_buttons(browser, app_url, width):
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    try:
        support.open_app(page, app_url)
        support.go_to(page, "Tour")
        titles = []
        for k in range(1, STEPS + 1):
            _step(page, k)
            titles.append(_title(page))
            if k < STEPS:
                page.locator(".st-key-tour_next button").click()
        assert titles[0].startswith("The raw data") and titles[-1] == "What to report"
        for k in range(STEPS - 1, 0, -1):
            page.locator(".st-key-tour_back button").click()
            _step(page, k)
            assert _title(page) == titles[k - 1]
        support.screenshot(page, f"tour_buttons_{width}")
        page.locator(".st-key-tour_leave button").first.click()
        page.wait_for_selector("h1:has-text('Explore')", timeout=60_000)
        support.wait_idle(page)
        assert not support.exceptions_on(page)
    finally:
        context.close()


@pytest.mark.parametrize("width", [1400, 1024])
def test_tour_on_a_yes_no_outcome_fits_logistic_models(browser, app_url, width):
    context = browser.new_context(viewport={"width": width, "height": 1100})
    page = context.new_page()
    try:
        support.open_app(page, app_url)
        support.open_example(page, "infections")
        support.go_to(page, "Tour")
        texts = []
        for k in range(1, STEPS + 1):
            _step(page, k)
            body = page.inner_text("body")
            texts.append(body)
            assert "could not be fitted" not in body and "cannot be made" not in body
            support.screenshot(page, f"tour_infections_{width}_{k}")
            if k < STEPS:
                page.locator(".st-key-tour_next button").click()
        assert "logistic mixed models (binomial, logit link)" in texts[0]
        assert "ordinary logistic regression" in texts[1] and "GLM is" in texts[1]
        assert "median odds ratio" in texts[2] and "odds ratio" in texts[3]
        assert "log-odds scale" in texts[4]
        assert "no GLMM version" in texts[5]
        assert "Binomial GLMM (logit link)" in texts[7]
        for k in range(STEPS - 1, 0, -1):
            page.locator(".st-key-tour_back button").click()
            _step(page, k)
        assert "logistic mixed models" in page.inner_text("body")
    finally:
        context.close()


def test_presenter_view_on_a_yes_no_outcome(browser, app_url):
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    try:
        support.open_app(page, app_url)
        support.open_example(page, "infections")
        support.go_to(page, "Tour")
        page.locator('[data-testid="stCheckbox"]', has_text="Presenter view").click()
        for k in range(1, STEPS + 1):
            _step(page, k)
            assert page.locator(CHART_OR_TABLE).count() == 1
            assert _content_bottom(page) <= 720, f"step {k} runs below the window"
            support.screenshot(page, f"tour_infections_present_{k}")
            page.mouse.click(5, 400)
            page.keyboard.press("PageDown")
    finally:
        context.close()
