"""Real browser, issue 15: GLMMs fitted from the Model page on the shipped ``infections``
example (binary outcome), then compared on the Compare page (the GLMM table, the
likelihood-ratio test with its chi-bar-square p-value, the Laplace vs quadrature section) and
checked on the Diagnostics page (binned residuals, randomized quantile residuals drawn again,
random-effect QQ plots): no exception, at 1400 and 1024 pixels wide, and no request leaving
127.0.0.1. Screenshots in ``artifacts/screenshots/glmm_*.png``.
"""

from __future__ import annotations

import pytest

from tests.e2e import support

pytestmark = pytest.mark.browser

SLOPE = "infection ~ week + arm + age + (week | patient)"


def _fit(page, typed: str, name: str) -> None:
    """Fit the builder's model (``typed`` empty) or a typed formula; wait for ``name``."""
    support.go_to(page, "Model")
    if typed:
        page.get_by_role("textbox", name="Or type a formula").fill(typed)
    page.get_by_role("button", name="Fit model").click()
    support.wait_for_text(page, name)
    assert not support.exceptions_on(page)


@pytest.mark.parametrize("width", [1400, 1024])
def test_glmms_on_compare_and_diagnostics(browser, app_url, width):
    context = browser.new_context(viewport={"width": width, "height": 1800})
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    try:
        support.open_app(page, app_url)
        support.open_example(page, "infections")
        _fit(page, "", "M1:")
        _fit(page, SLOPE, "M2:")
        support.go_to(page, "Compare")
        support.wait_for_text(page, "GLMMs of infection")
        body = page.inner_text("body")
        assert "binomial (logit link)" in body
        assert "Likelihood-ratio tests (lme4's anova table)" in body
        assert "Testing a variance on the boundary" in body  # the tables are canvases
        assert "Laplace vs quadrature" in body
        assert "this section does not apply" in body  # curve and ladder: linear models
        assert not support.exceptions_on(page)
        support.screenshot(page, f"glmm_compare_{width}")
        support.go_to(page, "Diagnostics")
        support.wait_for_text(page, "Binned residuals")
        body = page.inner_text("body")
        assert "bins" in body and "lie outside the 2-SE band" in body
        assert "Randomized quantile residuals" in body
        assert page.locator('[data-testid="stPlotlyChart"]').count() == 4
        page.get_by_role("button", name="Draw again").click()
        support.wait_idle(page)
        seed = page.get_by_role("spinbutton", name="Seed of the random draws")
        assert seed.input_value() == "2"
        assert not support.exceptions_on(page)
        support.screenshot(page, f"glmm_diagnostics_{width}")
        outside = [url for url in requests if not support.is_local(url)]
        assert not outside, outside
    finally:
        context.close()
