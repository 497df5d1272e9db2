"""Real browser, issue 16: the Model page with the keyboard only.

No mouse: from the app's first page, Tab reaches the menu link "Model" and Enter opens it;
Tab reaches the random-slopes control, the arrow keys and Enter pick Days in it, Escape closes
its list; Tab reaches the estimation radio and the right arrow picks ML; Shift+Tab goes back
from the Fit button to the radio; Tab then Space on "Fit model" fits
``Reaction ~ Days + (Days | Subject)`` by maximum likelihood. Every focused control shows a
focus ring (an outline or a box shadow). At 1400 px, sleepstudy.
"""

from __future__ import annotations

import pytest

from tests.e2e import support

pytestmark = pytest.mark.browser

#: most Tab presses allowed to reach a control (the page has about 40 stops before "Fit")
MAX_PRESSES = 120
#: the accessible name of the focused element: aria-label, its label, its text
FOCUSED = """() => {
    const e = document.activeElement;
    if (!e || e === document.body) return '';
    const label = e.getAttribute('aria-label') || (e.labels && e.labels[0]
        && e.labels[0].innerText);
    return (label || e.innerText || e.value || '').trim();
}"""
#: whether the focused element (or its visible wrapper) draws a focus indicator
FOCUS_RING = """() => {
    const e = document.activeElement;
    for (let n = e, k = 0; n && k < 4; n = n.parentElement, k++) {
        const s = getComputedStyle(n);
        if ((s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0)
            || (s.boxShadow && s.boxShadow !== 'none')
            || n.matches(':focus-within') && s.borderColor !== getComputedStyle(document.body).color
               && n.getAttribute('data-focused') !== null) return true;
    }
    return false;
}"""


def tab_to(page, name: str, key: str = "Tab") -> int:
    """Press ``key`` until the focused element's name starts with ``name``; the presses."""
    for presses in range(1, MAX_PRESSES + 1):
        page.keyboard.press(key)
        if page.evaluate(FOCUSED).startswith(name):
            return presses
    raise AssertionError(f"{name!r} not reached with {MAX_PRESSES} presses of {key}")


def _formula(page) -> str:
    return page.locator('[data-testid="stCode"]').first.inner_text()


def test_model_page_with_the_keyboard_only(app_url, tab):
    page = tab.page
    support.open_app(page, app_url)
    tab_to(page, "Model")
    page.keyboard.press("Enter")
    page.wait_for_selector("h1:has-text('Model')", timeout=support.WAIT_MS)
    support.wait_idle(page)

    tab_to(page, "Random slopes per Subject on")  # the multiselect's input
    page.keyboard.press("ArrowDown")  # opens the list on its first option
    page.wait_for_selector('[role="option"]', timeout=10_000)
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    support.wait_idle(page)
    assert "(Days | Subject)" in _formula(page)

    tab_to(page, "REML")  # the estimation radio: the checked option takes the focus
    assert page.evaluate(FOCUS_RING)
    page.keyboard.press("ArrowRight")
    support.wait_idle(page)
    assert page.get_by_role("radio", name="ML", exact=True).is_checked()

    tab_to(page, "Fit model")
    assert page.evaluate(FOCUS_RING)
    tab_to(page, "ML", key="Shift+Tab")  # back to the radio
    tab_to(page, "Fit model")
    page.keyboard.press("Space")
    page.wait_for_function(
        "t => document.body.innerText.includes(t)", arg="Fitted M1", timeout=180_000
    )
    support.wait_idle(page)
    body = page.inner_text("body")
    assert "(Days | Subject)" in body and "maximum likelihood" in body.lower()
    assert not support.exceptions_on(page)
    support.screenshot(page, "keyboard_model_fitted")
