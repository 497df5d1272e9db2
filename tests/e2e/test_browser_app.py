"""Real browser: load the app, upload a CSV through the file input, visit every page."""

from __future__ import annotations

import pytest

from tests.e2e import support

pytestmark = pytest.mark.browser

UPLOAD_ROWS = "\n".join(
    f"P{p:02d};{week};{120 + p + 0.5 * week:.1f}".replace(".", ",") + f";{'AB'[p % 2]}"
    for p in range(1, 13)
    for week in (0, 4, 8, 12)
)


def _sidebar_text(page) -> str:
    return page.locator('[data-testid="stSidebar"]').inner_text()


def test_upload_then_every_page_renders_locally(app_url, tab, tmp_path):
    page = tab.page
    support.open_app(page, app_url)
    assert "sleepstudy" in _sidebar_text(page)
    assert page.locator(".js-plotly-plot").count() >= 1  # visits histogram of the report
    support.screenshot(page, "data_example")

    csv_path = tmp_path / "clinic_visits.csv"
    csv_path.write_text("patient;week;sbp;group\n" + UPLOAD_ROWS + "\n", encoding="utf-8")
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(csv_path)
    page.wait_for_selector("text=Loaded", timeout=support.WAIT_MS)
    support.wait_idle(page)
    assert "clinic_visits.csv" in _sidebar_text(page)
    assert "semicolon-separated, decimal comma" in page.inner_text("body")

    labels = support.sidebar_links(page)
    assert labels[:2] == ["Data", "Explore"]
    shown = support.visit_all_pages(page, prefix="upload_")
    assert shown.keys() == set(labels)
    assert all(not errors for errors in shown.values()), shown

    support.go_to(page, "Explore")
    assert page.locator(".js-plotly-plot").count() == 3
    assert "clinic_visits.csv" in page.inner_text("body")
    assert not support.exceptions_on(page)

    outside = [url for url in tab.requests if not support.is_local(url)]
    assert tab.requests and not outside, outside


def test_file_over_upload_limit_is_refused(browser, tmp_path):
    context = browser.new_context(viewport=support.VIEWPORT)
    page = context.new_page()
    big = tmp_path / "too_big.csv"
    big.write_text("id,t,y\n" + "a,1,2.5\n" * 200_000)  # about 1.6 MB
    with support.running_app("--server.maxUploadSize", "1") as url:
        support.open_app(page, url)
        page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(big)
        page.wait_for_selector("text=or smaller", timeout=15_000)
        support.wait_idle(page)
        assert "sleepstudy" in _sidebar_text(page)
        assert not support.exceptions_on(page)
        support.screenshot(page, "upload_too_big")
    context.close()
