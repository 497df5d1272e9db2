"""Real browser, sign-in (issue 17): OpenID Connect against a real provider on 127.0.0.1.

The provider is panva's ``oidc-provider`` (``tests/e2e/oidc/``: a static client and two users,
``ada`` in the allowed group and ``eve`` not). The app runs from a temporary folder holding
``.streamlit/config.toml`` (the repository's) and a ``secrets.toml`` with ``[auth]`` and an
allow-list, so Streamlit's own ``st.login`` does the sign-in. In chromium:

* the first request after the server start, for a page's address, shows only the sign-in
  page (no menu, no sidebar, no data), as does the start address;
* ``ada`` signs in, uploads a table with a unique marker, fits a model; signs out (through
  the provider's sign-out) and is back on the sign-in page; signed in again she has none of
  it, and the link that held her upload finds nothing;
* ``eve`` signs in and sees only the refusal page, on any address.

With ``LMM_REQUIRE_BROWSER=1`` (``.ci/run``) a missing node or ``npm ci`` is a failure.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.e2e import support

pytestmark = pytest.mark.browser

OIDC = Path(__file__).resolve().parent / "oidc"
ALLOWED, REFUSED = "ada", "eve"
USERS = {
    ALLOWED: {"email": "ada@example.org", "name": "Ada", "groups": ["lmm-users", "staff"]},
    REFUSED: {"email": "eve@example.org", "name": "Eve", "groups": ["visitors"]},
}
CONTACT = "the test desk (desk@example.org)"
SIGN_IN = ".st-key-signin_button button"
SIGN_OUT = ".st-key-signout_button button"


def _provider_missing() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed (apt-get install nodejs)"
    if not (OIDC / "node_modules" / "oidc-provider").is_dir():
        return "the test OIDC provider is not installed (npm ci --prefix tests/e2e/oidc)"
    return None


def _wait_until(check, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not answer within {timeout:.0f} s")
        time.sleep(0.25)


def _answers(url: str) -> bool:
    with suppress(OSError):
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    return False


@pytest.fixture(scope="module")
def signin_app(browser, tmp_path_factory) -> Iterator[SimpleNamespace]:
    """The provider and an app with sign-in on; yields their URLs; stops both after."""
    reason = _provider_missing()
    if reason:
        if os.environ.get("LMM_REQUIRE_BROWSER") == "1":
            pytest.fail(f"Sign-in browser tests are required but {reason}.")
        pytest.skip(f"sign-in browser tests skipped: {reason}")
    folder = tmp_path_factory.mktemp("signin")
    idp_port, app_port = support.free_port(), support.free_port()
    idp, app = f"http://127.0.0.1:{idp_port}", f"http://127.0.0.1:{app_port}"
    client_id, client_secret = "lmm-explorer-test", secrets.token_hex(16)
    passwords = {name: secrets.token_hex(8) for name in USERS}
    users = {name: {**info, "password": passwords[name]} for name, info in USERS.items()}
    config = folder / "provider.json"
    config.write_text(
        json.dumps(
            {
                "port": idp_port,
                "client_id": client_id,
                "client_secret": client_secret,
                "redirect_uri": f"{app}/oauth2callback",
                "users": users,
            }
        )
    )
    (folder / ".streamlit").mkdir()
    shutil.copy(support.ROOT / ".streamlit" / "config.toml", folder / ".streamlit")
    (folder / ".streamlit" / "secrets.toml").write_text(
        f"""[auth]
redirect_uri = "{app}/oauth2callback"
cookie_secret = "{secrets.token_hex(32)}"
client_id = "{client_id}"
client_secret = "{client_secret}"
server_metadata_url = "{idp}/.well-known/openid-configuration"
client_kwargs = {{ prompt = "login" }}

[lmm_explorer.access]
allowed_groups = ["lmm-users"]
contact = "{CONTACT}"
"""
    )
    logs = support.ROOT / "artifacts"
    logs.mkdir(exist_ok=True)
    with open(logs / "oidc-provider.log", "wb") as log:
        provider = subprocess.Popen(
            ["node", str(OIDC / "provider.mjs"), str(config)], stdout=log, stderr=subprocess.STDOUT
        )
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(support.ROOT / "app.py"),
        "--server.headless", "true", "--server.port", str(app_port),
        "--server.address", "127.0.0.1", "--server.fileWatcherType", "none",
    ]  # fmt: skip
    server = None
    try:
        _wait_until(lambda: _answers(f"{idp}/.well-known/openid-configuration"), "the provider")
        with open(logs / f"streamlit-signin-{app_port}.log", "wb") as log:
            server = subprocess.Popen(cmd, cwd=folder, stdout=log, stderr=subprocess.STDOUT)
        _wait_until(lambda: support.healthy(app), "the app")
        yield SimpleNamespace(app=app, idp=idp, passwords=passwords)
    finally:
        if server is not None:
            support.stop(server)
        support.stop(provider)


@pytest.fixture
def signin_tab(browser, signin_app) -> Iterator[SimpleNamespace]:
    """A fresh browser context (no cookies) recording the URLs it requests."""
    context = browser.new_context(viewport=support.VIEWPORT)
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    yield SimpleNamespace(page=page, requests=requests, **vars(signin_app))
    context.close()


def _body(page) -> str:
    return page.inner_text("body")


def _assert_nothing_of_the_app(page) -> None:
    assert page.locator(support.MENU_LINKS).count() == 0
    assert page.locator('[data-testid="stSidebar"]').count() == 0
    assert [h.strip() for h in page.locator("h1").all_inner_texts()] == ["LMM Explorer"]
    body = _body(page)
    for word in ("sleepstudy", "Reaction", "Active dataset", "Upload your own data", "Fit"):
        assert word not in body, word
    assert not support.exceptions_on(page)


def _sign_in_page(page) -> None:
    page.wait_for_selector(SIGN_IN, timeout=support.WAIT_MS)
    support.wait_idle(page)
    _assert_nothing_of_the_app(page)
    assert page.locator("button:visible").all_inner_texts() == ["Sign in"]


def _sign_in(tab, user: str) -> None:
    page = tab.page
    page.locator(SIGN_IN).first.click()
    page.wait_for_url(f"{tab.idp}/interaction/**", timeout=support.WAIT_MS)
    page.fill("input[name=login]", user)
    page.fill("input[name=password]", tab.passwords[user])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{tab.app}/**", timeout=support.WAIT_MS)


def _sign_out(tab) -> None:
    page = tab.page
    page.locator(SIGN_OUT).first.click()
    page.wait_for_url(f"{tab.idp}/session/end**", timeout=support.WAIT_MS)
    page.get_by_role("button", name="Yes, sign me out").click()
    page.wait_for_url(f"{tab.app}/**", timeout=support.WAIT_MS)
    _sign_in_page(page)


def _marked_table(folder: Path, mark: str) -> Path:
    lines = [f"patient,week,score_{mark}"]
    for i in range(10):
        for week in range(5):
            value = 50 + (7 * i) % 11 + 1.5 * week + ((i + week) % 3) * 0.9
            lines.append(f"{mark}-{i:02d},{week},{value:.1f}")
    path = folder / f"visits_{mark}.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_allowed_user_signs_in_works_and_signing_out_drops_the_data(signin_tab, tmp_path):
    tab, page = signin_tab, signin_tab.page
    # the very first request after the server start, for a page's address: the sign-in page
    page.goto(f"{tab.app}/model", wait_until="domcontentloaded")
    _sign_in_page(page)
    page.goto(tab.app, wait_until="domcontentloaded")
    _sign_in_page(page)
    support.screenshot(page, "signin_page")

    _sign_in(tab, ALLOWED)
    page.wait_for_selector(support.MENU_LINKS, timeout=support.WAIT_MS)
    page.wait_for_selector("h1:has-text('Data')", timeout=support.WAIT_MS)
    support.wait_idle(page)
    sidebar = page.locator('[data-testid="stSidebar"]').inner_text()
    assert "Signed in as ada@example.org" in sidebar and "sleepstudy" in sidebar

    mark = "SIGNIN" + uuid.uuid4().hex[:10].upper()
    path = _marked_table(tmp_path, mark)
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(path)
    page.wait_for_selector(f"text=Loaded {path.name}", timeout=support.WAIT_MS)
    support.wait_idle(page)
    support.go_to(page, "Model")
    page.get_by_role("textbox", name="Or type a formula").fill(
        f"score_{mark} ~ week + (1 | patient)"
    )
    page.get_by_role("button", name="Fit model").click()
    try:
        page.wait_for_selector("text=Fitted M1", timeout=support.WAIT_MS)
    finally:
        support.screenshot(page, "signin_after_fit")
    support.wait_idle(page)
    assert mark in _body(page) and not support.exceptions_on(page)
    held_link = page.url
    assert "up=" in held_link, held_link  # the upload is held for a reload of this browser

    _sign_out(tab)
    assert mark not in _body(page)

    _sign_in(tab, ALLOWED)  # the same person, the same browser: none of it is left
    page.wait_for_selector(support.MENU_LINKS, timeout=support.WAIT_MS)
    support.wait_idle(page)
    sidebar = page.locator('[data-testid="stSidebar"]').inner_text()
    assert "sleepstudy" in sidebar and mark not in sidebar and "M1" not in sidebar, sidebar
    page.goto(held_link, wait_until="domcontentloaded")  # a reload of the old view
    page.wait_for_selector("text=is not available", timeout=support.WAIT_MS)
    support.wait_idle(page)
    assert mark not in _body(page) and not support.exceptions_on(page)

    outside = [url for url in tab.requests if not support.is_local(url)]
    assert tab.requests and not outside, outside


def test_refused_user_sees_only_the_refusal_page(signin_tab):
    tab, page = signin_tab, signin_tab.page
    page.goto(tab.app, wait_until="domcontentloaded")
    _sign_in_page(page)
    _sign_in(tab, REFUSED)
    page.wait_for_selector(SIGN_OUT, timeout=support.WAIT_MS)
    support.wait_idle(page)
    body = _body(page)
    assert "You are signed in as eve@example.org, but not allowed to use this app" in body
    assert CONTACT in body and "lmm-users" not in body
    support.screenshot(page, "signin_refused")
    _assert_nothing_of_the_app(page)
    assert page.locator("button:visible").all_inner_texts() == ["Sign out"]

    page.goto(f"{tab.app}/trajectories", wait_until="domcontentloaded")  # any address
    page.wait_for_selector(SIGN_OUT, timeout=support.WAIT_MS)
    support.wait_idle(page)
    _assert_nothing_of_the_app(page)
    assert "not allowed to use this app" in _body(page)

    _sign_out(tab)
