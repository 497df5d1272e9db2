"""Real browser: the first paint shows the app's own menu, never the pages/ file names.

Streamlit lists the files of ``pages/`` in lowercase (app, compare, data, ...) while the first
session after a server start runs in its old multipage mode; the app switches that menu off
and draws its own (``dashboard.views.menu``). The test starts its own server, opens the first
session (cold: the app's modules are imported during it) and a second one (warm), and polls
the page every few milliseconds from the moment the navigation commits: Streamlit's menu never
appears, no link ever reads like a file name, the menu never shows other entries, and in the
cold session (the one that used to show the file names for seconds) the app's menu is drawn
before the page's title. In a warm session the whole first page arrives at once; the menu gets
a head start (``dashboard.views.menu.HEAD_START_SECONDS``) and is usually drawn first too, but
its links are drawn by a lazily loaded browser script, which a busy machine can delay behind
the page's charts: there the test only bounds the lag (:data:`WARM_LAG`) and prints it.
Screenshots of the first paint: ``artifacts/screenshots/first_paint_*.png``.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from dashboard.views.menu import PAGES
from tests.e2e import support

pytestmark = pytest.mark.browser

TITLES = [title for _, title in PAGES]
FILE_NAMES = {"app", *(Path(path).stem for path, _ in PAGES)}  # what Streamlit would list
STATE = """() => {
  const links = [...document.querySelectorAll('[data-testid="stSidebar"] a')]
    .map(a => a.innerText.trim()).filter(Boolean);
  const menu = [...document.querySelectorAll('.st-key-app_menu a')].map(a => a.innerText.trim());
  const h1 = document.querySelector('[data-testid="stMain"] h1');
  return {
    streamlitNav: !!document.querySelector('[data-testid="stSidebarNav"]'),
    links, menu, title: h1 ? h1.innerText.trim() : null,
  };
}"""
#: the page's title may be drawn at most this long before the menu is complete (seconds):
#: cold session (the menu is sent over a second before the page), warm session (loaded machine)
TOLERANCE = 0.5
WARM_LAG = 5.0


def _watch(page, url: str, name: str) -> dict:
    """Load ``url`` and poll until the page's title and the menu are drawn."""
    start = time.monotonic()
    page.goto(url, wait_until="commit")
    seen: list[tuple[float, dict]] = []
    shots = set()
    while time.monotonic() - start < support.WAIT_MS / 1000:
        state = page.evaluate(STATE)
        now = time.monotonic() - start
        seen.append((now, state))
        for what, ready in (("menu", state["menu"]), ("title", state["title"])):
            if ready and what not in shots:
                shots.add(what)
                support.screenshot(page, f"first_paint_{name}_{what}")
        if state["title"] and state["menu"] == TITLES:
            break
        page.wait_for_timeout(25)
    menu_at = next((t for t, s in seen if s["menu"] == TITLES), None)
    title_at = next((t for t, s in seen if s["title"]), None)
    return {"seen": seen, "menu_at": menu_at, "title_at": title_at, "polls": len(seen)}


def _check(found: dict, name: str, lag: float) -> None:
    seen = found["seen"]
    assert not any(s["streamlitNav"] for _, s in seen), f"{name}: Streamlit's menu was shown"
    named_like_files = {link for _, s in seen for link in s["links"] if link in FILE_NAMES}
    assert not named_like_files, f"{name}: links named like files {named_like_files}"
    assert found["menu_at"] is not None, f"{name}: the menu never appeared"
    assert found["title_at"] is not None, f"{name}: the page never appeared"
    assert found["menu_at"] <= found["title_at"] + lag, (name, found["menu_at"], found["title_at"])
    partial = [s["menu"] for _, s in seen if s["menu"] and s["menu"] != TITLES[: len(s["menu"])]]
    assert not partial, f"{name}: the menu showed other entries: {partial[:1]}"


def test_first_paint_shows_the_apps_own_menu(browser):
    timings = {}
    with support.running_app() as url:  # a fresh server: its first session is the cold one
        for name in ("cold", "warm"):
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            page = context.new_page()
            found = _watch(page, url, name)
            context.close()
            _check(found, name, TOLERANCE if name == "cold" else WARM_LAG)
            timings[name] = {
                "menu": round(found["menu_at"], 2),
                "title": round(found["title_at"], 2),
                "polls": found["polls"],
            }
    print("first paint (s from navigation start):", timings)
