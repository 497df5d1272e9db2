"""Fixtures of the real-browser tests: one app server and one chromium per session.

With ``LMM_REQUIRE_BROWSER=1`` (set by ``.ci/run``) a missing chromium or playwright is a
failure; otherwise those tests are skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from tests.e2e import support


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """A headless Debian chromium driven by playwright."""
    reason = support.browser_missing_reason()
    if reason:
        if os.environ.get("LMM_REQUIRE_BROWSER") == "1":
            pytest.fail(f"Browser tests are required (LMM_REQUIRE_BROWSER=1) but {reason}.")
        pytest.skip(f"browser tests skipped: {reason}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=support.CHROMIUM, args=support.CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def app_url(browser) -> Iterator[str]:
    """URL of ``streamlit run app.py`` on a free 127.0.0.1 port (started once)."""
    with support.running_app() as url:
        yield url


@pytest.fixture
def tab(browser) -> Iterator[SimpleNamespace]:
    """A fresh browser tab (new session) recording every request URL it makes."""
    context = browser.new_context(viewport=support.VIEWPORT)
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    yield SimpleNamespace(page=page, requests=requests)
    context.close()
