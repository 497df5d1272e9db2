"""Start one LMM Explorer replica (a Streamlit server on a local port) for nginx.

Usage::

    .venv/bin/python deploy/replica.py --port 8501 [--host lmm.example.org]
        [--config /etc/lmm-explorer/streamlit-server.toml]

The process becomes ``python -m streamlit run app.py`` (``exec``: systemd, or a test,
stops the server itself) with

* every option of the server configuration (default ``deploy/streamlit-server.toml``, or
  ``$LMM_SERVER_CONFIG``) as a command-line option; ``--host`` replaces its host name
  (``server.allowedHosts``, ``browser.serverAddress``) and ``--public-port`` its port
  (``browser.serverPort``);
* the limits of ``deploy/limits.toml`` (or ``$LMM_LIMITS``, :mod:`dashboard.state.limits`):
  ``server.maxUploadSize`` = ``upload_mb``, ``server.disconnectedSessionTTL`` =
  ``idle_timeout_seconds``;
* the environment ``LMM_EVENTS=stderr`` (the operator's JSON events,
  :mod:`dashboard.state.events`) and ``LMM_REPLICA=<port>``.

``--print`` prints the command instead of running it.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dashboard.state import limits as limits_module  # noqa: E402

CONFIG_ENV = "LMM_SERVER_CONFIG"
DEFAULT_CONFIG = Path(__file__).resolve().parent / "streamlit-server.toml"


def _flag_values(value: Any) -> list[str]:
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


def options(
    config: dict[str, dict[str, Any]],
    limits: limits_module.Limits,
    *,
    host: str | None = None,
    public_port: int | None = None,
) -> dict[str, list[str]]:
    """Streamlit options ``{"section.name": [values]}`` of a replica (list options repeat)."""
    found: dict[str, list[str]] = {}
    for section, values in config.items():
        if not isinstance(values, dict):
            raise ValueError(f"the server configuration's {section!r} must be a [section]")
        for name, value in values.items():
            found[f"{section}.{name}"] = _flag_values(value)
    if host:
        found["server.allowedHosts"] = [host]
        found["browser.serverAddress"] = [host]
    if public_port:
        found["browser.serverPort"] = [str(public_port)]
    found["server.maxUploadSize"] = [str(limits.upload_mb)]
    found["server.disconnectedSessionTTL"] = [str(limits.idle_timeout_seconds)]
    return found


def command(port: int, opts: dict[str, list[str]]) -> list[str]:
    """``python -m streamlit run app.py`` on ``port`` with the options ``opts``."""
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py")]
    cmd += ["--server.port", str(port)]
    for name, values in opts.items():
        for value in values:
            cmd += [f"--{name}", value]
    return cmd


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", help="the host name users type (overrides the config's)")
    parser.add_argument("--public-port", type=int, help="the port users type (default 443)")
    parser.add_argument("--config", type=Path, help=f"default ${CONFIG_ENV} or {DEFAULT_CONFIG}")
    parser.add_argument("--print", action="store_true", help="print the command only")
    args = parser.parse_args(argv)
    path = args.config or Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)
    config = tomllib.loads(path.read_text(encoding="utf-8"))
    opts = options(config, limits_module.load(), host=args.host, public_port=args.public_port)
    cmd = command(args.port, opts)
    if args.print:
        print(shlex.join(cmd))
        return 0
    env = {**os.environ, "LMM_EVENTS": "stderr", "LMM_REPLICA": str(args.port)}
    os.chdir(ROOT)  # Streamlit also reads the repository's .streamlit/config.toml
    os.execve(sys.executable, cmd, env)
    return 0  # not reached


if __name__ == "__main__":
    raise SystemExit(main())
