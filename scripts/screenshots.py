"""Take the README screenshots from the running app (headless Debian chromium).

Usage: ``.venv/bin/python scripts/screenshots.py`` from the repository root. Writes
``docs/screenshot-data.png`` (sleepstudy loaded) and ``docs/screenshot-explore.png``.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

from tests.e2e import support  # noqa: E402


def main() -> None:
    """Start the app, open the Data and Explore pages, save the screenshots."""
    docs = ROOT / "docs"
    docs.mkdir(exist_ok=True)
    with support.running_app() as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=support.CHROMIUM, args=support.CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 1400, "height": 1750}).new_page()
        support.open_app(page, url)
        page.screenshot(path=str(docs / "screenshot-data.png"))
        support.go_to(page, "Explore")
        page.set_viewport_size({"width": 1400, "height": 1700})
        support.wait_idle(page)
        page.screenshot(path=str(docs / "screenshot-explore.png"))
        browser.close()
    print("wrote docs/screenshot-data.png and docs/screenshot-explore.png")


if __name__ == "__main__":
    main()
