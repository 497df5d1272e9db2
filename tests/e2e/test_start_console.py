"""What ``streamlit run app.py`` prints at start, and that others on the network can still
use the app (issue 11 item 13).

With the repository's ``.streamlit/config.toml`` the start prints one address and no
"Did not auto detect external IP" warning (Streamlit skips its outside lookup of the public
address when ``browser.serverAddress`` is set), while the server keeps listening on every
interface, so a browser on another machine still gets a working app.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.e2e import support


@contextlib.contextmanager
def started_as_the_readme_says() -> Iterator[tuple[int, subprocess.Popen, list[str]]]:
    """``streamlit run app.py --server.port N``: the repository config, no address given."""
    port = support.free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)],
        cwd=support.ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
            lines.append(line.rstrip())
            if "URL: " in line:
                break
        yield port, proc, lines
    finally:
        support.stop(proc)


def _own_address() -> str | None:
    """This machine's address on its network (no packet is sent), or None."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 1))  # documentation address: only picks the route
            address = sock.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_start_prints_one_local_address_and_no_alarming_warning(browser):
    with started_as_the_readme_says() as (port, proc, lines):
        printed = "\n".join(lines)
        assert f"URL: http://localhost:{port}" in printed, printed
        assert "Did not auto detect external IP" not in printed, printed
        assert "External URL" not in printed and "Network URL" not in printed, printed
        assert proc.poll() is None, printed

        # remote use: the server listens on every interface; a browser that reaches the
        # machine by its network address gets the app, not a refused connection
        address = _own_address()
        if address is None:
            pytest.skip("this machine has no network address besides 127.0.0.1")
        url = f"http://{address}:{port}"
        deadline = time.monotonic() + 60
        while not support.healthy(url) and time.monotonic() < deadline:
            time.sleep(0.25)
        assert support.healthy(url), f"no answer at {url}"
        context = browser.new_context(viewport={"width": 1024, "height": 768})
        page = context.new_page()
        try:
            support.open_app(page, url)
            assert page.locator("h1", has_text="Data").count() == 1
            assert "sleepstudy" in page.inner_text("body")
            assert not support.exceptions_on(page)
        finally:
            context.close()
