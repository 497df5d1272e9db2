"""Real browser, issue 13 end to end: a curved model is built, fitted, drawn, compared,
forecast and exported.

On the ChickWeight example (curved growth): the Model builder's shape of time gives a natural
spline for the population curve and for each chick's curve; the fit's summary shows lme4's
column names; a spline model typed in the formula box is fitted too; Trajectories draws curves
with the knots marked; the Compare page's "does the curve earn its keep?" fits the straight
line, the quadratic and the splines and gives its verdict; the Prediction page forecasts a new
chick; the Export page writes R code with the learned knots. Every page is visited: no
exception anywhere, screenshots in ``artifacts/screenshots/splines_*.png``.
"""

from __future__ import annotations

import pytest

from tests.e2e import support

pytestmark = pytest.mark.browser

TYPED = "Or type a formula"
FORMULA = "weight ~ ns(Time, 3) * Diet + (ns(Time, 2) | Chick)"


def _choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the selectbox whose label starts with ``label``."""
    box = page.locator('[data-testid="stSelectbox"]', has_text=label).first
    box.click()
    page.get_by_role("option", name=option, exact=True).click()
    support.wait_idle(page)


def test_spline_model_built_fitted_drawn_compared_forecast_exported(app_url, tab):
    page = tab.page
    support.open_app(page, app_url)
    support.open_example(page, "chickweight")

    # the builder: a natural spline for the population curve and for each chick's curve
    support.go_to(page, "Model")
    slopes = page.locator('[data-testid="stMultiSelect"]', has_text="Random slopes per Chick")
    slopes.locator("input").click()
    page.keyboard.type("Time")
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    support.wait_idle(page)
    _choose(page, "Shape of Time (the population curve)", "natural spline (3 df)")
    _choose(page, "Shape of each Chick's own curve", "natural spline (2 df)")
    shown = page.locator('[data-testid="stCode"]').first.inner_text()
    assert "ns(Time, 3)" in shown and "(ns(Time, 2) | Chick)" in shown, shown
    assert "knots at" in page.inner_text("body")
    page.get_by_role("button", name="Fit model").click()
    support.wait_for_text(page, "Summary of")
    body = page.inner_text("body")
    assert "Curved time" in body and "could not" not in body, body[:3000]
    support.screenshot(page, "splines_model_builder")

    page.get_by_role("textbox", name=TYPED).fill(FORMULA)
    page.get_by_role("button", name="Fit model").click()
    support.wait_for_text(page, "Fitted M2")
    assert "ns(Time, 3) * Diet" in page.inner_text("body")
    assert not support.exceptions_on(page)

    support.go_to(page, "Trajectories")
    support.wait_idle(page)
    assert "knot" in page.inner_text("body").lower()
    assert not support.exceptions_on(page)
    support.screenshot(page, "splines_trajectories")

    support.go_to(page, "Compare")
    page.get_by_role("button", name="Compare the shapes").click()
    support.wait_for_text(page, "straight line")
    support.wait_for_text(page, "natural spline")
    body = page.inner_text("body")
    assert "failed" not in body.lower(), body[:3000]
    assert not support.exceptions_on(page)
    support.screenshot(page, "splines_compare")

    support.go_to(page, "Prediction")
    support.wait_idle(page)
    assert not support.exceptions_on(page)
    support.screenshot(page, "splines_prediction")

    support.go_to(page, "Export")
    support.wait_idle(page)
    page.get_by_role("tab", name="R").click()
    support.wait_idle(page)
    body = page.inner_text("body")
    assert "library(splines)" in body and "knots = c(" in body, body[:3000]
    support.screenshot(page, "splines_export")

    shown = support.visit_all_pages(page, prefix="splines_")
    assert all(not errors for errors in shown.values()), shown
    outside = [url for url in tab.requests if not support.is_local(url)]
    assert not outside, outside
