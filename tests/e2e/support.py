"""Reusable helpers for real-browser tests: start the app, drive Debian's chromium.

Later issues add pages; a test visits them all with :func:`visit_all_pages`, which follows
the links of the app's menu in the sidebar, so page URLs never start a new session.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = os.environ.get("LMM_CHROMIUM", "/usr/bin/chromium")
#: Milliseconds a page may take to render: generous, because a busy 2-core machine is slow
#: (a render of 1 s idle takes 15-20 s at a load average of 10); tests check behaviour.
WAIT_MS = 90_000
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
VIEWPORT = {"width": 1400, "height": 2600}


def browser_missing_reason() -> str | None:
    """Why the browser tests cannot run here, or ``None`` when they can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the Python package playwright is not installed"
    if not Path(CHROMIUM).exists() and not shutil.which(CHROMIUM):
        return f"chromium was not found at {CHROMIUM} (apt-get install chromium)"
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_app(
    *extra_args: str,
    timeout: float = 60.0,
    env: dict[str, str] | None = None,
    on_start: Callable[[int], None] | None = None,
    cwd: Path | None = None,
) -> Iterator[str]:
    """Start ``streamlit run app.py`` on a free local port; yield its URL; stop it after.

    Parameters
    ----------
    extra_args
        More command-line options, e.g. ``"--server.maxUploadSize", "1"``.
    timeout
        Seconds to wait for ``/_stcore/health`` to answer ``ok``.
    env
        Environment variables to add for the server (e.g. its own ``TMPDIR``).
    on_start
        Called with the server's process id once it answers (e.g. to sample its memory).
    cwd
        Folder holding the ``app.py`` to run (default: the repository; a copy for tests that
        watch the app folder's files).
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = ROOT / "artifacts" / f"streamlit-{port}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable, "-m", "streamlit", "run", "app.py",
        "--server.headless", "true", "--server.port", str(port),
        "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
        # no module reloads when a source file changes during a test (edits in the checkout
        # would swap classes under live sessions: isinstance checks then fail)
        "--server.fileWatcherType", "none",
        *extra_args,
    ]  # fmt: skip
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd or ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"streamlit exited early:\n{log_path.read_text()[-2000:]}")
            if healthy(url):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"streamlit did not become healthy within {timeout:.0f} s")
            time.sleep(0.25)
        if on_start is not None:
            on_start(proc.pid)
        yield url
    finally:
        stop(proc)


def healthy(url: str) -> bool:
    """True when the Streamlit server at ``url`` answers its health check with ``ok``."""
    with contextlib.suppress(OSError):
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
            return resp.read().strip() == b"ok"
    return False


def stop(proc: subprocess.Popen) -> None:
    """Terminate a server process, killing it if it does not stop within 10 s."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def is_local(url: str) -> bool:
    """True for requests that stay on this machine (127.0.0.1, data: and blob: URLs)."""
    parsed = urlparse(url)
    return parsed.scheme in {"data", "blob", "about"} or parsed.hostname == "127.0.0.1"


def wait_idle(page, timeout_ms: int = WAIT_MS) -> None:
    """Wait until Streamlit has finished running the script and drawn its charts."""
    page.wait_for_timeout(300)  # let a rerun triggered just before start
    page.wait_for_selector(
        '[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout_ms
    )
    page.wait_for_function(  # lazily loaded widgets and charts show a skeleton first
        """() => !document.querySelector('[data-testid="stSkeleton"]')
            && [...document.querySelectorAll('[data-testid="stPlotlyChart"]')]
                .every(c => c.querySelector('.main-svg'))""",
        timeout=timeout_ms,
    )
    page.wait_for_timeout(300)


def open_app(page, url: str) -> None:
    """Load the app and wait for the first page to render."""
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_selector("h1", timeout=WAIT_MS)
    wait_idle(page)


#: the app's own menu (dashboard.views.menu: links in the container keyed ``app_menu``)
MENU_LINKS = ".st-key-app_menu a"


def sidebar_links(page) -> list[str]:
    """Labels of the page links in the sidebar menu, in order."""
    links = page.locator(MENU_LINKS)
    texts = [links.nth(i).inner_text() for i in range(links.count())]
    return [[ln.strip() for ln in t.splitlines() if ln.strip()][-1] for t in texts]  # no icon


def go_to(page, label: str) -> None:
    """Click the sidebar link ``label`` and wait for that page's title."""
    page.locator(MENU_LINKS, has_text=label).first.click()
    page.wait_for_selector(f"h1:has-text('{label}')", timeout=WAIT_MS)
    wait_idle(page)


def exceptions_on(page) -> list[str]:
    """Texts of Streamlit exception boxes shown on the page."""
    boxes = page.locator('[data-testid="stException"]')
    return [boxes.nth(i).inner_text() for i in range(boxes.count())]


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot as ``artifacts/screenshots/<name>.png``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def visit_all_pages(page, *, prefix: str = "") -> dict[str, list[str]]:
    """Visit every sidebar page; screenshot each; return exception texts per page."""
    found = {}
    for label in sidebar_links(page):
        go_to(page, label)
        screenshot(page, f"{prefix}{label.lower().replace(' ', '_')}")
        found[label] = exceptions_on(page)
    return found


def wait_for_text(page, text: str, timeout_ms: int = 180_000) -> None:
    """Wait until ``text`` shows on the page, then until the app is idle; on a timeout, a
    screenshot (``timeout_<text>.png``) and an assertion that says which text never came."""
    try:
        page.wait_for_function(
            "t => document.body.innerText.includes(t)", arg=text, timeout=timeout_ms
        )
    except Exception as error:
        name = "timeout_" + re.sub(r"[^A-Za-z0-9]+", "_", text)[:40]
        screenshot(page, name)
        raise AssertionError(f"{text!r} never appeared (screenshot {name}.png)") from error
    wait_idle(page, timeout_ms=timeout_ms)


def open_example(page, name: str) -> None:
    """Open the example dataset ``name`` from the Data page's first select box."""
    go_to(page, "Data")
    page.locator('[data-testid="stSelectbox"]').first.click()
    page.keyboard.type(name)
    page.keyboard.press("Enter")
    wait_idle(page, timeout_ms=120_000)


def wait_for_jobs(page, timeout_ms: int = 300_000) -> None:
    """Wait until the session runs no job (no progress box of dashboard.views.jobs shows; a
    slow fit goes on after the page's short wait), then until the app is idle."""
    page.wait_for_function(
        """() => !document.querySelector('[class*="st-key-job_inline_"]')
            && !document.querySelector('[class*="st-key-job_sidebar_"]')""",
        timeout=timeout_ms,
    )
    wait_idle(page, timeout_ms=timeout_ms)
