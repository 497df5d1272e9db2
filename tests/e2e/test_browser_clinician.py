"""Real browser, issue 11's clinician path end to end on a 1024 x 768 screen.

A generated messy CSV (60 patients, blood pressure at 3-8 irregular visits over two years,
"Patient ID", ISO "Visit date", "SBP (mmHg)" with blanks and "n/a", Age, Sex M/F, Treatment
A/B; semicolons and decimal commas) is uploaded, its visit dates become the time in one
click, a random-slope model with Age is fitted through the formula box, the random-effects
ladder is fitted on the Compare page, and every page is visited: no exception anywhere,
screenshots in ``artifacts/screenshots/clinician_*.png``.
"""

from __future__ import annotations

import pytest

from tests.e2e import support
from tests.fixtures.clinic_bp import clinic_csv

pytestmark = pytest.mark.browser

SCREEN = {"width": 1024, "height": 768}
TIME = "Visit date (months since first visit)"
FORMULA = f"`SBP (mmHg)` ~ `{TIME}` + Age + Sex + Treatment + (`{TIME}` | `Patient ID`)"


def test_clinician_uploads_converts_dates_fits_and_sees_every_page(app_url, browser, tmp_path):
    context = browser.new_context(viewport=SCREEN)
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    try:
        support.open_app(page, app_url)
        path = tmp_path / "blood pressure clinic.csv"
        path.write_bytes(clinic_csv())
        page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(path)
        support.wait_for_text(page, "Loaded blood pressure clinic.csv")
        body = page.inner_text("body")
        assert "semicolon-separated, decimal comma" in body
        assert "The time 'Visit date' holds dates (ISO dates)" in body  # not Age
        assert "not numeric" not in body
        support.screenshot(page, "clinician_data_uploaded")

        # one click: dates -> months since each patient's first visit
        page.get_by_text("months", exact=True).click()
        support.wait_idle(page)
        page.get_by_role("button", name="and use it as the time").click()
        support.wait_for_text(page, "It is now the time")
        body = page.inner_text("body")
        assert f"Added '{TIME}'" in body
        assert "holds dates" not in body and "never changes within" not in body
        assert "Explore these data" in body  # the report has no error left
        assert not support.exceptions_on(page)
        support.screenshot(page, "clinician_data_converted")

        support.go_to(page, "Model")
        assert "only two values" not in page.inner_text("body")  # SBP is a measurement
        page.get_by_role("textbox", name="Or type a formula").fill(FORMULA)
        page.get_by_role("button", name="Fit model").click()
        support.wait_for_text(page, "Summary of")
        body = page.inner_text("body")
        assert "Fitted " in body and "could not" not in body, body[:3000]
        assert "Age" in body and TIME in body
        assert not support.exceptions_on(page)
        support.screenshot(page, "clinician_model_fitted")

        # the random-effects ladder rebuilds formulas from these names: every rung fits
        support.go_to(page, "Compare")
        page.get_by_role("button", name="Fit the ladder").click()
        support.wait_for_text(page, "Ladder fitted in")
        body = page.inner_text("body")
        assert "Unknown function" not in body and "failed" not in body
        assert not support.exceptions_on(page)

        shown = support.visit_all_pages(page, prefix="clinician_")
        assert "Trajectories" in shown and "Data" in shown
        assert all(not errors for errors in shown.values()), shown
        outside = [url for url in requests if not support.is_local(url)]
        assert not outside, outside
    finally:
        context.close()
