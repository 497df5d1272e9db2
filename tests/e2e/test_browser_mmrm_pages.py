"""Real browser, issue 14: an MMRM from the Model builder on the shipped ``trial_visits``
example, seen by Compare, Diagnostics and Export.

"Correlation between a patient's visits" is set to AR(1) in the builder and fitted, then
compound symmetry (a second model to compare); Compare shows both in one table with the
likelihood-ratio test between the nested structures, Diagnostics the normalized residuals and
the correlation heatmaps, Export R's ``mmrm()`` and SAS's ``REPEATED``: no exception at 1400
and 1024 pixels wide, no request leaving 127.0.0.1. Screenshots in
``artifacts/screenshots/mmrm_*.png``.
"""

from __future__ import annotations

import pytest

from tests.e2e import support

pytestmark = pytest.mark.browser

CONTROL = "Correlation between a patient's visits"


def _fit_structure(page, words: str) -> None:
    """Choose ``words`` in the builder's visit-correlation control and fit."""
    support.go_to(page, "Model")
    box = page.locator('[data-testid="stSelectbox"]', has_text=CONTROL)
    box.click()
    page.get_by_role("option", name=words, exact=True).click()
    support.wait_idle(page)
    page.get_by_role("button", name="Fit model").click()
    support.wait_for_text(page, "The fit converged.")


@pytest.mark.parametrize("width", [1400, 1024])
def test_ar1_from_the_builder_on_compare_diagnostics_and_export(browser, app_url, width):
    context = browser.new_context(viewport={"width": width, "height": 1800})
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    try:
        support.open_app(page, app_url)
        support.open_example(page, "trial_visits")
        _fit_structure(page, "AR(1)")
        body = page.inner_text("body")
        assert "ar1(visit | patient)" in body and "Fitted M1: AR(1) visits" in body
        assert not support.exceptions_on(page)
        support.screenshot(page, f"mmrm_model_{width}")
        _fit_structure(page, "compound symmetry")
        support.go_to(page, "Compare")
        support.wait_for_text(page, "MMRMs and random-effects models")
        body = page.inner_text("body")
        assert "npar counts the fixed effects" in body  # the table itself is a canvas
        assert "Likelihood-ratio tests between nested structures" in body
        assert not support.exceptions_on(page)
        support.screenshot(page, f"mmrm_compare_{width}")
        support.go_to(page, "Diagnostics")
        support.wait_for_text(page, "Correlation between visits: model vs data")
        assert "Normalized residuals" in page.inner_text("body")
        assert not support.exceptions_on(page)
        support.screenshot(page, f"mmrm_diagnostics_{width}")
        support.go_to(page, "Export")
        support.wait_for_text(page, "residual_covariance()")  # the Python tab: lmm_core.fit_lmm
        assert "cs(visit | patient)" in page.inner_text("body")  # the active model: M2
        page.get_by_role("tab", name="R").click()
        support.wait_for_text(page, "library(mmrm)")
        page.get_by_role("tab", name="SAS").click()
        support.wait_for_text(page, "TYPE=CS;")
        assert not support.exceptions_on(page)
        support.screenshot(page, f"mmrm_export_{width}")
        outside = [url for url in requests if not support.is_local(url)]
        assert not outside, outside
    finally:
        context.close()
