"""Real browser, issue 14: the Trial page end to end on the shipped trial example.

The ``trial_visits`` example (300 patients, 6 visits, drop-out) is opened, the Trial page shows
the drop-out per arm, one click fits the MMRM with every covariance structure as a background
job, and the comparison table, the analysis plan's verdict, the LS-means, the treatment
difference per visit and the correlation between visits appear: no exception, at 1400 and
1024 pixels wide, and no request leaving 127.0.0.1. Screenshots in
``artifacts/screenshots/trial_*.png``.
"""

from __future__ import annotations

import pytest

from tests.e2e import support

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("width", [1400, 1024])
def test_trial_page_fits_the_structures_and_shows_the_treatment_effect(browser, app_url, width):
    context = browser.new_context(viewport={"width": width, "height": 1800})
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    try:
        support.open_app(page, app_url)
        support.open_example(page, "trial_visits")
        support.go_to(page, "Trial")
        support.wait_for_text(page, "Drop-out")
        assert not support.exceptions_on(page)
        page.get_by_role("button", name="Fit the covariance structures").click()
        support.wait_for_text(page, "Covariance structures compared")
        support.wait_for_text(page, "LS-means and the treatment effect per visit")
        body = page.inner_text("body")
        assert "Correlation between visits" in body
        assert "Coefficients of the primary model" in body
        assert "failed" not in body.lower(), body[:3000]
        assert not support.exceptions_on(page)
        support.screenshot(page, f"trial_page_{width}")
        outside = [url for url in requests if not support.is_local(url)]
        assert not outside, outside
    finally:
        context.close()
