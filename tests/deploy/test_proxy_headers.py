"""nginx in front of the replicas: TLS, health, security headers, sticky cookie, upload limit."""

from __future__ import annotations

import http.client

import pytest

from dashboard.state import limits
from tests.deploy.proxy_support import get, insecure_context

pytestmark = [pytest.mark.browser, pytest.mark.slow]

EXPECTED = {
    "strict-transport-security": "max-age=31536000; includeSubDomains",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


def test_health_is_reachable_through_nginx(deployed):
    status, _, body = get(f"{deployed.url}/_stcore/health")
    assert (status, body.strip()) == (200, b"ok")


@pytest.mark.parametrize("path", ["/", "/_stcore/health", "/no-such-page.js"])
def test_security_headers_on_every_answer(deployed, path):
    status, headers, _ = get(deployed.url + path)
    assert status in (200, 404)
    for name, value in EXPECTED.items():
        assert headers.get(name) == value, (path, name, headers.get(name))
    csp = headers.get("content-security-policy")
    assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp
    assert "object-src 'none'" in csp and "'unsafe-eval'" not in csp
    assert "camera=()" in headers.get("permissions-policy")
    assert headers.get("server") == "nginx"  # no version


def test_the_route_cookie_names_a_replica_and_is_safe(deployed):
    _, headers, _ = get(deployed.url + "/")
    cookie = headers.get("set-cookie")
    route = cookie.split(";")[0].split("=")[1]
    assert route in {r.route for r in deployed.replicas}
    for flag in ("Secure", "HttpOnly", "SameSite=Strict", "Path=/"):
        assert flag in cookie
    # with the cookie, the browser stays on that replica and is not told again
    _, again, _ = get(deployed.url + "/", headers={"Cookie": f"lmm_route={route}"})
    assert again.get("set-cookie") is None


def test_uploads_above_the_limit_are_refused_by_nginx(deployed):
    too_big = (limits.current().upload_mb + 2) * 2**20
    host, port = deployed.url.removeprefix("https://").split(":")
    conn = http.client.HTTPSConnection(host, int(port), context=insecure_context(), timeout=20)
    conn.putrequest("PUT", "/_stcore/upload_file/x/y")
    conn.putheader("Content-Length", str(too_big))  # announced only: nginx answers at once
    conn.endheaders()
    response = conn.getresponse()
    assert response.status == 413 and response.getheader("x-frame-options") == "DENY"
    conn.close()


def test_uploads_without_the_xsrf_token_are_refused(deployed):
    _, headers, _ = get(deployed.url + "/")
    route = headers.get("set-cookie").split(";")[0]
    status, _, _ = get(
        deployed.url + "/_stcore/upload_file/x/y", method="PUT", data=b"a,b\n1,2\n",
        headers={"Cookie": route},
    )  # fmt: skip
    assert status == 403
