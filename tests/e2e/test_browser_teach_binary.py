"""Real browser, issue 15: the Teach page's binary lab end to end.

The Teach page is switched to the binary outcome; the simulated study's curves (typical
subject and population average), the estimates against the truth and the attenuation appear;
one click refits the GLMM with 1 to 25 quadrature points as a background job and the verdict
appears; two subjects give a clear message. No exception, at 1400 and 1024 pixels wide, and no
request leaving 127.0.0.1. Screenshots in ``artifacts/screenshots/teach_binary_*.png``.
"""

from __future__ import annotations

import pytest

from tests.e2e import support

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("width", [1400, 1024])
def test_teach_binary_lab_shows_both_curves_and_the_quadrature_verdict(browser, app_url, width):
    context = browser.new_context(viewport={"width": width, "height": 3400})
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    try:
        support.open_app(page, app_url)
        support.go_to(page, "Teach")
        support.wait_for_text(page, "Binary outcome")
        page.get_by_text("Binary outcome (yes/no)").click()
        support.wait_for_text(page, "Attenuation of the averaged effect")
        body = page.inner_text("body")
        assert "subject-specific vs population-averaged" in body
        assert "population-averaged odds ratio of only" in body
        assert not support.exceptions_on(page)
        support.screenshot(page, f"teach_binary_{width}")
        page.get_by_role("button", name="Refit with nagq").click()
        support.wait_for_text(page, "log-likelihood by")
        assert "Laplace" in page.inner_text("body")
        assert not support.exceptions_on(page)
        page.get_by_text("3. Laplace vs quadrature").scroll_into_view_if_needed()
        support.screenshot(page, f"teach_binary_quadrature_{width}")
        subjects = page.get_by_label("Subjects", exact=True)
        subjects.fill("2")
        subjects.press("Enter")
        support.wait_for_text(page, "cannot be simulated")
        assert "from 10" in page.inner_text("body")
        assert not support.exceptions_on(page)
        outside = [url for url in requests if not support.is_local(url)]
        assert not outside, outside
    finally:
        context.close()
