"""Real browser, issue 15: a count GLMM compared and diagnosed, and both GLMMs exported.

The shipped ``seizures`` example (counts per period with its length as exposure): two Poisson
models fitted from the Model page (random intercept, then a random slope typed as a formula),
Compare's GLMM table and likelihood-ratio test, Diagnostics' overdispersion check and
randomized quantile residuals, and Export's three code tabs (glmer with the offset, PROC
GLIMMIX with ``DIST=POISSON`` and an ``OFFSET=`` variable, ``fit_glmm``). Then the binary
``infections`` example fitted as a logistic GLMM and exported (glmer's binomial family,
GLIMMIX's ``DIST=BINARY``). No exception at 1400 and 1024 pixels wide, no request leaving
127.0.0.1. Screenshots in ``artifacts/screenshots/glmm_counts_*.png`` and
``glmm_export_*.png``.
"""

from __future__ import annotations

import pytest

from tests.e2e import support

pytestmark = pytest.mark.browser

SLOPE = "seizures ~ period * arm + offset(log(exposure)) + (period | patient)"


def _fit(page, typed: str, name: str) -> None:
    """Fit the builder's model (``typed`` empty) or a typed formula; wait for its name."""
    support.go_to(page, "Model")
    box = page.get_by_role("textbox", name="Or type a formula")
    box.fill(typed)
    page.get_by_role("button", name="Fit model").click()
    support.wait_for_text(page, f"Summary of {name}")
    assert not support.exceptions_on(page)


def _export(page, python: str, r: str, sas: str, shot: str) -> None:
    """The Export page's Python, R and SAS tabs hold the given pieces."""
    support.go_to(page, "Export")
    support.wait_for_text(page, python)
    assert "Wald z tests" in page.inner_text("body")  # no df choice for a GLMM
    page.get_by_role("tab", name="R").click()
    support.wait_for_text(page, r)
    page.get_by_role("tab", name="SAS").click()
    support.wait_for_text(page, sas)
    assert not support.exceptions_on(page)
    support.screenshot(page, shot)


@pytest.mark.parametrize("width", [1400, 1024])
def test_count_glmm_compared_diagnosed_and_both_glmms_exported(browser, app_url, width):
    context = browser.new_context(viewport={"width": width, "height": 2400})
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    try:
        support.open_app(page, app_url)
        support.open_example(page, "seizures")
        _fit(page, "", "M1")
        _fit(page, SLOPE, "M2")

        support.go_to(page, "Compare")
        support.wait_for_text(page, "Likelihood-ratio tests (lme4's anova table)")
        body = page.inner_text("body")
        assert "GLMMs of seizures" in body and "Poisson" in body
        assert not support.exceptions_on(page)
        support.screenshot(page, f"glmm_counts_compare_{width}")

        support.go_to(page, "Diagnostics")
        support.wait_for_text(page, "Dispersion ratio")
        body = page.inner_text("body")
        assert "Overdispersion" in body and "Randomized quantile residuals" in body
        assert "Binned residuals" not in body  # for 0/1 outcomes only
        assert not support.exceptions_on(page)
        support.screenshot(page, f"glmm_counts_diagnostics_{width}")

        _export(
            page,
            "fit_glmm(",
            "offset(log(exposure))",
            "DIST=POISSON",
            f"glmm_export_poisson_{width}",
        )
        assert "OFFSET=" in page.inner_text("body")

        support.open_example(page, "infections")
        _fit(page, "", "M3")  # model names go on counting across datasets
        _export(page, "family='binomial'", "glmer(", "DIST=BINARY", f"glmm_export_binary_{width}")
        assert 'family = binomial(link = "logit")' in _r_text(page)
        outside = [url for url in requests if not support.is_local(url)]
        assert not outside, outside
    finally:
        context.close()


def _r_text(page) -> str:
    page.get_by_role("tab", name="R").click()
    support.wait_idle(page)
    return page.inner_text("body")
