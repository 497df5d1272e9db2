"""Render nginx's configuration of LMM Explorer from the template and the limits file.

Usage (on the server, as root, after any change of replicas, limits or Streamlit)::

    .venv/bin/python deploy/render_nginx.py --server-name lmm.example.org \\
        --cert /etc/ssl/lmm/fullchain.pem --key /etc/ssl/lmm/privkey.pem \\
        --replica 8501 --replica 8502 > /etc/nginx/conf.d/lmm-explorer.conf
    nginx -t && systemctl reload nginx

``--standalone PREFIX`` wraps the same blocks into a complete ``nginx.conf`` whose
temporary files, pid and logs live under ``PREFIX`` (no root needed: the deployment tests
run nginx this way). The template is ``deploy/nginx/lmm-explorer.conf.template``; the
upload size comes from ``deploy/limits.toml`` (:mod:`dashboard.state.limits`); the hashes of
Streamlit's inline scripts for the Content-Security-Policy are read from the installed
Streamlit's ``index.html`` (render again after updating Streamlit).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dashboard.state import limits as limits_module  # noqa: E402

TEMPLATE = Path(__file__).resolve().parent / "nginx" / "lmm-explorer.conf.template"
_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.S)


def inline_script_hashes(index_html: str) -> list[str]:
    """CSP sources ``'sha256-...'`` of the inline ``<script>`` blocks of a page."""
    return [
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
        for body in _INLINE_SCRIPT.findall(index_html)
    ]


def streamlit_index() -> str:
    """The installed Streamlit's ``index.html`` (the page every browser loads first)."""
    import streamlit

    return (Path(streamlit.__file__).parent / "static" / "index.html").read_text()


def content_security_policy(script_hashes: list[str]) -> str:
    """The Content-Security-Policy of the app's pages (see the template's comments)."""
    scripts = " ".join(["'self'", "'wasm-unsafe-eval'", *script_hashes])
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src {scripts}",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data: blob:",
            "font-src 'self' data:",
            "connect-src 'self'",
            "worker-src 'self' blob:",
            "frame-src 'self' blob: data:",
            "media-src 'self' data: blob:",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def _server(port: int, extra: str = "") -> str:
    return f"    server 127.0.0.1:{port} max_fails=3 fail_timeout=10s{extra};"


def render(
    *,
    server_name: str,
    cert: str,
    key: str,
    replicas: list[int],
    https_listen: str = "443",
    http_listen: str | None = "80",
    upload_mb: int | None = None,
    csp_script_hashes: list[str] | None = None,
    log_dir: str = "/var/log/nginx",
) -> str:
    """The http-context blocks of nginx's configuration (the rendered template).

    Parameters
    ----------
    server_name
        The host name users type (also Streamlit's ``server.allowedHosts``).
    cert, key
        Paths of the TLS certificate chain and its private key.
    replicas
        Local ports of the Streamlit replicas (``deploy/replica.py --port``).
    https_listen, http_listen
        nginx ``listen`` addresses; ``http_listen`` (``None``: none) only redirects to HTTPS.
    upload_mb
        Largest upload in MB (default: the limits file's ``upload_mb``).
    csp_script_hashes
        CSP hashes of inline scripts (default: those of Streamlit's ``index.html``).
    log_dir
        Folder of the access and error logs (``lmm-explorer.access.log``, ``...error.log``).
    """
    if not replicas:
        raise ValueError("at least one replica port is needed")
    if upload_mb is None:
        upload_mb = limits_module.current().upload_mb
    if csp_script_hashes is None:
        csp_script_hashes = inline_script_hashes(streamlit_index())
    routes = [(f"r{i + 1}", port) for i, port in enumerate(replicas)]
    route_blocks = []
    for name, port in routes:
        others = [_server(p, " backup") for _, p in routes if p != port]
        route_blocks.append("\n".join([f"upstream lmm_{name} {{", _server(port), *others, "}"]))
    redirect = ""
    if http_listen:
        redirect = (
            f"server {{\n    listen {http_listen};\n    server_name {server_name};\n"
            "    server_tokens off;\n    return 301 https://$host$request_uri;\n}"
        )
    values = {
        "ROUTE_UPSTREAMS": "\n".join(f"    {name} lmm_{name};" for name, _ in routes),
        "SERVED_ROUTES": "\n".join(
            f'    "~(^|, )127\\.0\\.0\\.1:{port}$" {name};' for name, port in routes
        ),
        "POOL_SERVERS": "\n".join(_server(port) for _, port in routes),
        "ROUTE_BLOCKS": "\n".join(route_blocks),
        "HTTP_REDIRECT": redirect,
        "HTTPS_LISTEN": https_listen,
        "SERVER_NAME": server_name,
        "CERT": cert,
        "KEY": key,
        "BODY_MB": str(int(upload_mb) + 1),
        "CSP": content_security_policy(csp_script_hashes),
        "ACCESS_LOG": f"{log_dir}/lmm-explorer.access.log",
        "ERROR_LOG": f"{log_dir}/lmm-explorer.error.log",
    }
    text = TEMPLATE.read_text()
    for name, value in values.items():
        text = text.replace(f"@@{name}@@", value)
    left = re.findall(r"@@[A-Z_]+@@", text)
    if left:
        raise ValueError(f"the template has placeholders without a value: {', '.join(left)}")
    return text


def standalone(blocks: str, prefix: Path) -> str:
    """A complete ``nginx.conf`` around ``blocks`` with every file under ``prefix``."""
    return f"""worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log notice;
events {{ worker_connections 512; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
{blocks}
}}
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server-name", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--replica", type=int, action="append", required=True, metavar="PORT")
    parser.add_argument("--https-listen", default="443")
    parser.add_argument("--http-listen", default="80", help="'' for no HTTP redirect")
    parser.add_argument("--standalone", type=Path, metavar="PREFIX")
    args = parser.parse_args(argv)
    blocks = render(
        server_name=args.server_name,
        cert=args.cert,
        key=args.key,
        replicas=args.replica,
        https_listen=args.https_listen,
        http_listen=args.http_listen or None,
        log_dir=str(args.standalone) if args.standalone else "/var/log/nginx",
    )
    sys.stdout.write(standalone(blocks, args.standalone) if args.standalone else blocks)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
