"""Fixtures of the deployment tests: nginx + two replicas, and a real chromium.

With ``LMM_REQUIRE_BROWSER=1`` (set by ``.ci/run``) a missing chromium, playwright or nginx
is a failure; otherwise these tests are skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.deploy import proxy_support
from tests.e2e import support


def _require(reason: str | None) -> None:
    if reason:
        if os.environ.get("LMM_REQUIRE_BROWSER") == "1":
            pytest.fail(f"Deployment tests are required (LMM_REQUIRE_BROWSER=1) but {reason}.")
        pytest.skip(f"deployment tests skipped: {reason}")


@pytest.fixture(scope="module")
def deployed(tmp_path_factory) -> Iterator[proxy_support.Deployment]:
    """Two replicas behind nginx with a self-signed certificate (one per test module)."""
    _require(proxy_support.nginx_missing_reason())
    with proxy_support.deployment(tmp_path_factory.mktemp("deploy")) as found:
        yield found


@pytest.fixture(scope="module")
def proxy_browser() -> Iterator[object]:
    """A headless Debian chromium driven by playwright."""
    _require(support.browser_missing_reason())
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=support.CHROMIUM, args=support.CHROMIUM_ARGS)
        yield chromium
        chromium.close()
