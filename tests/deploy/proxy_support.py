"""Start LMM Explorer as deployed: two replicas (deploy/replica.py) behind nginx with TLS.

Used by the deployment tests and by ``benchmarks/load_proxy.py``. Everything lives in one
folder (certificate, nginx's configuration, temporary files, pid and logs, the replicas'
logs); nginx runs as the current user on free ports (``nginx -p <folder> -c <conf> -g
'daemon off;'``).
"""

from __future__ import annotations

import contextlib
import datetime
import os
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.e2e import support

ROOT = support.ROOT
NGINX = os.environ.get("LMM_NGINX", "/usr/sbin/nginx")
HOST = "localhost"


def nginx_missing_reason() -> str | None:
    """Why nginx cannot be started here, or ``None``."""
    if not Path(NGINX).exists():
        return f"nginx was not found at {NGINX} (apt-get install nginx)"
    return None


def self_signed(folder: Path, host: str = HOST) -> tuple[Path, Path]:
    """A self-signed certificate for ``host`` (and 127.0.0.1) and its key, valid one day."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(host), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def insecure_context() -> ssl.SSLContext:
    """A TLS context accepting the self-signed certificate (tests only)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def get(url: str, *, method: str = "GET", data: bytes | None = None, headers=None):
    """``(status, headers, body)`` of one HTTPS request (errors included, not raised)."""
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=20, context=insecure_context()) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


@dataclass
class Replica:
    """One Streamlit replica: its port, route name (nginx's cookie), process and log."""

    port: int
    route: str
    log: Path
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            support.stop(self.proc)


@dataclass
class Deployment:
    """Two replicas behind nginx: the public URL, the replicas, nginx's files."""

    url: str
    folder: Path
    replicas: list[Replica] = field(default_factory=list)
    nginx: subprocess.Popen | None = None

    def replica(self, route: str) -> Replica:
        return next(r for r in self.replicas if r.route == route)

    def logs(self) -> dict[str, str]:
        """Every log written so far: the replicas' output and nginx's access and error logs."""
        paths = [r.log for r in self.replicas] + sorted(self.folder.glob("*.log"))
        return {p.name: p.read_text(errors="replace") for p in paths if p.exists()}


def _wait(check, what: str, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited early:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not answer within {timeout:.0f} s")
        time.sleep(0.25)


def _https_healthy(url: str) -> bool:
    with contextlib.suppress(OSError):
        status, _, body = get(f"{url}/_stcore/health")
        return status == 200 and body.strip() == b"ok"
    return False


@contextlib.contextmanager
def deployment(folder: Path, replicas: int = 2, timeout: float = 120.0) -> Iterator[Deployment]:
    """Certificate, nginx configuration, ``replicas`` Streamlit replicas and nginx, started
    in ``folder``; everything is stopped on exit."""
    sys.path.insert(0, str(ROOT / "deploy"))
    try:
        import render_nginx
    finally:
        sys.path.pop(0)
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = self_signed(folder)
    https_port = support.free_port()
    ports = []
    while len(ports) < replicas:
        port = support.free_port()
        if port != https_port and port not in ports:
            ports.append(port)
    blocks = render_nginx.render(
        server_name=HOST,
        cert=str(cert),
        key=str(key),
        replicas=ports,
        https_listen=f"127.0.0.1:{https_port}",
        http_listen=None,
        log_dir=str(folder),
    )
    conf = folder / "nginx.conf"
    conf.write_text(render_nginx.standalone(blocks, folder))
    found = Deployment(url=f"https://{HOST}:{https_port}", folder=folder)
    found.replicas = [
        Replica(port, f"r{i + 1}", folder / f"replica-{port}.out") for i, port in enumerate(ports)
    ]
    try:
        for replica in found.replicas:
            with open(replica.log, "wb") as out:
                replica.proc = subprocess.Popen(
                    [sys.executable, str(ROOT / "deploy" / "replica.py"),
                     "--port", str(replica.port), "--host", HOST,
                     "--public-port", str(https_port)],
                    stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                )  # fmt: skip
        for replica in found.replicas:
            _wait(lambda r=replica: support.healthy(r.url), f"replica {replica.port}",
                  replica.proc, replica.log, timeout)  # fmt: skip
        nginx_out = folder / "nginx.out"
        with open(nginx_out, "wb") as out:
            found.nginx = subprocess.Popen(
                [NGINX, "-p", str(folder), "-c", str(conf), "-g", "daemon off;"],
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        _wait(lambda: _https_healthy(found.url), "nginx", found.nginx, nginx_out, 30)
        yield found
    finally:
        if found.nginx is not None and found.nginx.poll() is None:
            support.stop(found.nginx)
        for replica in found.replicas:
            replica.stop()
