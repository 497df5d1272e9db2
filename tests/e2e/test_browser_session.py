"""Real browser, issue 16: sessions that last (the address bar, held uploads, session files).

1. Open an example, fit two models, go to Trajectories: the address bar holds the view;
   a reload shows the same page with the same models, and the same URL in a new browser
   context (another user) too.
2. Upload a CSV: a reload keeps it (same browser, same server); the same link in a new
   context does not get it (a clear message, the default example).
3. Save a session file with its data and open it in a fresh context: restored on its page;
   a broken file is refused with a message.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest

from tests.e2e import support
from tests.e2e.test_browser_models import choose_example, fit_typed

pytestmark = pytest.mark.browser

RI = "distance ~ age + (1 | Subject)"
RS = "distance ~ age + (age | Subject)"
SESSION = "Session: share, save, open"


def _query(page) -> dict[str, list[str]]:
    return parse_qs(urlparse(page.url).query)


def _wait_for_url(page, test: str) -> None:
    page.wait_for_function(test, timeout=support.WAIT_MS)


def _sidebar(page) -> str:
    return page.locator('[data-testid="stSidebar"]').inner_text()


def _fresh(browser):
    return browser.new_context(viewport=support.VIEWPORT, accept_downloads=True)


def test_reload_and_a_shared_link_give_the_same_view(browser, app_url):
    context = _fresh(browser)
    page = context.new_page()
    try:
        support.open_app(page, app_url)
        choose_example(page, "orthodont")
        fit_typed(page, RI)
        fit_typed(page, RS)
        support.go_to(page, "Trajectories")
        _wait_for_url(
            page,
            "() => location.pathname.endsWith('/trajectories')"
            " && new URLSearchParams(location.search).getAll('m').length == 2",
        )
        query = _query(page)
        assert query["ds"] == ["orthodont"] and query["a"] == ["2"]
        assert [m.split(";", 2)[2] for m in query["m"]] == [RI, RS]
        url = page.url
        before = _sidebar(page)
        assert "M1" in before and "M2" in before
        page.reload(wait_until="domcontentloaded")
        page.wait_for_selector("h1:has-text('Trajectories')", timeout=support.WAIT_MS)
        support.wait_idle(page)
        after = _sidebar(page)
        assert "orthodont" in after and "M1" in after and "M2" in after, after
        assert not support.exceptions_on(page)
        assert page.url == url
        support.screenshot(page, "session_reloaded")
        other = _fresh(browser).new_page()
        try:
            other.goto(url, wait_until="domcontentloaded")
            other.wait_for_selector("h1:has-text('Trajectories')", timeout=support.WAIT_MS)
            support.wait_idle(other)
            shared = _sidebar(other)
            assert "orthodont" in shared and "M1" in shared and "M2" in shared, shared
            assert not support.exceptions_on(other)
        finally:
            other.context.close()
    finally:
        context.close()


def test_an_upload_survives_a_reload_but_not_a_shared_link(browser, app_url, tmp_path):
    csv = tmp_path / "mine_private.csv"
    rows = ["id,week,score"] + [f"p{i},{t},{10 + i + 0.5 * t}" for i in range(8) for t in range(4)]
    csv.write_text("\n".join(rows) + "\n")
    context = _fresh(browser)
    page = context.new_page()
    try:
        support.open_app(page, app_url)
        support.go_to(page, "Data")
        page.locator(".st-key-upload_file input[type='file']").set_input_files(str(csv))
        page.wait_for_selector(f"text=Loaded {csv.name}", timeout=60_000)
        support.wait_idle(page)
        _wait_for_url(page, "() => new URLSearchParams(location.search).has('up')")
        url = page.url
        assert "score" not in url and "mine_private" not in url and "ds=" not in url
        page.reload(wait_until="domcontentloaded")
        page.wait_for_selector("h1", timeout=support.WAIT_MS)
        support.wait_idle(page)
        assert csv.name in _sidebar(page)
        other = _fresh(browser).new_page()
        try:
            other.goto(url, wait_until="domcontentloaded")
            other.wait_for_selector("text=is not available", timeout=support.WAIT_MS)
            support.wait_idle(other)
            assert csv.name not in other.inner_text("body")
            assert "sleepstudy" in _sidebar(other)
            assert not support.exceptions_on(other)
        finally:
            other.context.close()
    finally:
        context.close()


def _open_panel(page) -> None:
    page.get_by_text(SESSION).click()
    page.wait_for_timeout(300)


def _open_file(page, path) -> None:
    _open_panel(page)
    page.get_by_text("Open a session file").click()
    page.wait_for_selector(".st-key-session_open", timeout=support.WAIT_MS)
    page.locator(".st-key-session_open input[type='file']").set_input_files(str(path))


def test_a_saved_session_file_opens_in_a_fresh_context_and_a_broken_one_is_refused(
    browser, app_url, tmp_path
):
    context = _fresh(browser)
    page = context.new_page()
    try:
        support.open_app(page, app_url)
        choose_example(page, "orthodont")
        fit_typed(page, RS)
        support.go_to(page, "Trajectories")
        _open_panel(page)
        page.get_by_text("Put the data into the file").click()
        support.wait_idle(page)
        with page.expect_download(timeout=support.WAIT_MS) as info:
            page.get_by_role("button", name="Save session").click()
        saved = tmp_path / "session.json"
        info.value.save_as(saved)
    finally:
        context.close()
    text = saved.read_text()
    assert '"format": "lmm-explorer-session"' in text and RS in text and '"csv": "' in text

    fresh = _fresh(browser)
    page = fresh.new_page()
    try:
        support.open_app(page, app_url)
        _open_file(page, saved)
        page.wait_for_selector("text=Opened the session file", timeout=support.WAIT_MS)
        page.wait_for_selector("h1:has-text('Trajectories')", timeout=support.WAIT_MS)
        support.wait_idle(page)
        sidebar = _sidebar(page)
        assert "orthodont" in sidebar and "M1" in sidebar, sidebar
        assert not support.exceptions_on(page)
        support.screenshot(page, "session_file_opened")
        broken = tmp_path / "broken.json"
        broken.write_text('{"format": "lmm-explorer-session", "version": 1, "data": ')
        _open_file(page, broken)
        page.wait_for_selector("text=The session file was not opened", timeout=support.WAIT_MS)
        assert not support.exceptions_on(page)
        assert "M1" in _sidebar(page)  # nothing was changed
    finally:
        fresh.close()
