"""A real browser through nginx (TLS) and two replicas: one session's life, and its loss.

One module-scoped journey drives chromium through ``https://localhost:<port>``: it uploads a
CSV whose file name, column names and values hold a unique marker, fits a model whose
formula names the marked column, switches pages and comes back (the session keeps its data
and model across requests: uploads, WebSocket, pages), records every Content-Security-
Policy violation; then the replica holding the session (named by nginx's route cookie) is
stopped: the page reconnects through nginx to the other replica, and on the user's next
action (a click on the Model page, whose script runs alone on a new session) says that
the session is lost; a fresh session works there. The tests check what the journey saw, and
grep every log (replicas' output with the JSON events, nginx's access and error logs) for the
marker.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.e2e import support

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CSP_WATCH = """
window.__csp = [];
document.addEventListener('securitypolicyviolation',
    e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
"""
NOTICE = "Your previous session has ended"


def marked_csv(folder: Path, mark: str) -> Path:
    """A long table whose file name, column names and values hold ``mark``."""
    lines = [f"patient,week,sbp_{mark},note_{mark}"]
    for i in range(12):
        for week in range(5):
            sbp = 120 + 3 * i % 7 + 0.8 * week + (i * week % 5) * 0.6
            lines.append(f"{mark}-P{i:02d},{week},{sbp:.1f},{mark} visit {week}")
    path = folder / f"ward_{mark}.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def new_page(browser):
    context = browser.new_context(viewport=support.VIEWPORT, ignore_https_errors=True)
    context.add_init_script(CSP_WATCH)
    return context, context.new_page()


def route_of(context) -> str | None:
    return next((c["value"] for c in context.cookies() if c["name"] == "lmm_route"), None)


@pytest.fixture(scope="module")
def journey(deployed, proxy_browser, tmp_path_factory):
    """Everything one session sees through the proxy (see the module docstring)."""
    mark = "ZQX" + uuid.uuid4().hex[:10].upper()
    upload = marked_csv(tmp_path_factory.mktemp("upload"), mark)
    seen = SimpleNamespace(mark=mark, upload=upload, csp=[], exceptions=[])
    context, page = new_page(proxy_browser)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("websocket", lambda ws: requests.append(ws.url))
    support.open_app(page, deployed.url)
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(upload)
    page.wait_for_selector(f"text=Loaded {upload.name}", timeout=support.WAIT_MS)
    support.wait_idle(page)
    support.go_to(page, "Model")
    formula = f"sbp_{mark} ~ week + (1 | patient)"
    page.get_by_role("textbox", name="Or type a formula").fill(formula)
    page.get_by_role("button", name="Fit model").click()
    page.wait_for_selector("text=Fitted M1", timeout=support.WAIT_MS)
    support.wait_idle(page)
    support.go_to(page, "Trajectories")
    seen.exceptions += support.exceptions_on(page)
    support.go_to(page, "Data")
    seen.data_after_switch = page.inner_text("body")
    seen.sidebar = page.locator('[data-testid="stSidebar"]').inner_text()
    seen.csp += page.evaluate("window.__csp")
    seen.requests = requests
    seen.route = route_of(context)

    # the replica holding the session stops: the browser reconnects through nginx
    holder = deployed.replica(seen.route)
    holder.stop()
    page.wait_for_timeout(3000)  # the browser reconnects through nginx to the other replica
    page.locator(support.MENU_LINKS, has_text="Model").first.click()  # the next action
    page.wait_for_selector(f"text={NOTICE}", timeout=support.WAIT_MS)
    support.wait_idle(page)
    seen.after_loss = page.inner_text("body")
    seen.route_after_loss = route_of(context)
    page.get_by_role("button", name="Dismiss").click()
    support.wait_idle(page)
    seen.after_dismiss = page.inner_text("body")
    context.close()

    # a fresh session works on the replica that is left
    context, page = new_page(proxy_browser)
    support.open_app(page, deployed.url)
    support.go_to(page, "Model")
    seen.fresh = page.inner_text("body")
    seen.fresh_route = route_of(context)
    seen.csp += page.evaluate("window.__csp")
    context.close()
    seen.holder = holder.route
    seen.logs = deployed.logs()
    return seen


def test_the_session_keeps_its_data_and_model_across_requests(journey):
    assert journey.upload.name in journey.sidebar and "60 rows x 4 columns" in journey.sidebar
    assert journey.mark in journey.data_after_switch  # the uploaded table, after page switches
    assert "M1" in journey.sidebar
    assert not journey.exceptions


def test_everything_went_through_the_proxy_over_tls(journey):
    assert any(u.startswith("wss://localhost:") for u in journey.requests)
    assert all(u.split(":")[0] in {"https", "wss", "data", "blob"} for u in journey.requests)


def test_the_content_security_policy_blocks_nothing_the_app_needs(journey):
    assert journey.csp == []


def test_a_stopped_replica_loses_its_session_and_says_so(journey):
    assert NOTICE in journey.after_loss and "load your data again" in journey.after_loss
    assert journey.mark not in journey.after_loss  # the data is really gone
    assert NOTICE not in journey.after_dismiss
    assert journey.route_after_loss not in (None, journey.holder)  # the cookie follows


def test_a_fresh_session_works_on_the_other_replica(journey):
    assert journey.fresh_route not in (None, journey.holder)
    assert "Model" in journey.fresh and NOTICE not in journey.fresh


def events_of(logs: dict[str, str]) -> list[dict]:
    found = []
    for text in logs.values():
        for line in text.splitlines():
            if line.startswith("{") and '"event"' in line:
                found.append(json.loads(line))
    return found


def test_the_logs_hold_events_and_no_data(journey):
    for name, text in journey.logs.items():
        for needle in (journey.mark, journey.mark.lower(), journey.upload.name):
            assert needle not in text, f"{needle} is in {name}"
    events = events_of(journey.logs)
    kinds = {e["event"] for e in events}
    assert {"session_start", "page_view", "job_start", "job_end"} <= kinds, kinds
    fits = [e for e in events if e["event"] == "job_end" and e["job"] == "fit"]
    assert fits and fits[0]["status"] == "done" and fits[0]["seconds"] >= 0
    assert {"", "model", "trajectories"} <= {e["page"] for e in events if "page" in e}  # "": Data
    assert any(e["event"] == "session_start" and e["lost_previous"] for e in events)
