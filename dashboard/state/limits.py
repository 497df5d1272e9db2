"""The server's limits, read from one file: upload size, jobs per session, idle time, workers,
and each job's process, memory and time.

A deployment keeps every limit an operator may want to change in one TOML file,
``deploy/limits.toml`` (or the file named by the environment variable :data:`ENV_VAR`),
under the section ``[lmm_explorer]``::

    [lmm_explorer]
    upload_mb = 200             # largest upload, MB (Streamlit's server.maxUploadSize, nginx's
                                # client_max_body_size)
    jobs_per_session = 0        # long jobs one session may run at once (0: no cap beyond
                                # one job of each kind)
    idle_timeout_seconds = 120  # how long a session whose browser has gone is kept
                                # (Streamlit's server.disconnectedSessionTTL)
    job_workers = 0             # worker threads of each replica's job runner (0: one per
                                # core, at most dashboard.state.jobs.MAX_WORKERS)
    job_processes = 1           # 1: each job runs in a child process under the two limits
                                # below (dashboard.state.isolation); 0: in the worker thread
    job_memory_mb = 4096        # memory one job's process may add to the loaded engine, MB
    job_seconds = 3600          # longest wall time of one job, seconds
    data_folder = "/srv/data"   # server data files users may fit by streaming (absolute
                                # path; absent: the Data page has no "Server data" section)

Every key is optional; a missing key, or a missing file, means the default, and the defaults
(:data:`DEFAULTS`) are the app's behaviour without the file. An unknown key or a value that
is not a whole number in its range (``data_folder``: not an absolute path) is an error naming
the file and the key (:class:`LimitsError`), so that a typo never silently leaves a limit at
its default.

Who reads what: the job runner (:mod:`dashboard.views.jobs`) reads ``jobs_per_session`` and
``job_workers``; the replica launcher (``deploy/replica.py``) turns ``upload_mb`` and
``idle_timeout_seconds`` into Streamlit's options, which Streamlit enforces and the upload
views read back with ``st.get_option``; the nginx renderer (``deploy/render_nginx.py``)
sizes ``client_max_body_size`` from ``upload_mb``. No Streamlit here.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path

__all__ = [
    "DEFAULTS",
    "DEFAULT_PATH",
    "ENV_VAR",
    "SECTION",
    "Limits",
    "LimitsError",
    "current",
    "limits_path",
    "load",
    "parse",
]

#: environment variable naming the limits file
ENV_VAR = "LMM_LIMITS"
#: the file used when the variable is not set (absent: the defaults)
DEFAULT_PATH = Path(__file__).resolve().parents[2] / "deploy" / "limits.toml"
#: the TOML section holding the limits
SECTION = "lmm_explorer"


class LimitsError(ValueError):
    """The limits file cannot be used (unreadable TOML, unknown key, value out of range)."""


@dataclass(frozen=True)
class Limits:
    """The server's limits (see the module docstring for each one's meaning).

    Attributes
    ----------
    upload_mb
        Largest upload in megabytes (1 to 10,000).
    jobs_per_session
        Long jobs one session may run at the same time; 0 means no cap beyond one job of each
        kind (0 to 100).
    idle_timeout_seconds
        Seconds a session whose browser has disconnected is kept before its data is dropped
        (10 to 86,400).
    job_workers
        Worker threads of a replica's job runner; 0 means one per core, capped (0 to 64).
    job_processes
        1: each job runs in a child process, stopped alone when it exceeds ``job_memory_mb``
        or ``job_seconds`` (:mod:`dashboard.state.isolation`); 0: in the worker thread.
    job_memory_mb
        Address space a job's process may add to what the loaded engine holds, MB (512 to
        1,048,576).
    job_seconds
        Longest wall time of a job, seconds (1 to 604,800).
    data_folder
        Absolute path of the folder whose data files the Data page offers for streamed fits
        (:mod:`dashboard.state.server_data`); ``None``: no such section.
    """

    upload_mb: int = 200
    jobs_per_session: int = 0
    idle_timeout_seconds: int = 120
    job_workers: int = 0
    job_processes: int = 1
    job_memory_mb: int = 4096
    job_seconds: int = 3600
    data_folder: str | None = None


#: the limits without a file: today's behaviour
DEFAULTS = Limits()
#: inclusive range of each limit
_RANGES = {
    "upload_mb": (1, 10_000),
    "jobs_per_session": (0, 100),
    "idle_timeout_seconds": (10, 86_400),
    "job_workers": (0, 64),
    "job_processes": (0, 1),
    "job_memory_mb": (512, 1_048_576),
    "job_seconds": (1, 604_800),
}
#: the keys holding a path (a string) instead of a whole number
_PATHS = ("data_folder",)


def parse(text: str, source: str = "the limits file") -> Limits:
    """Limits from the TOML ``text`` (keys of section :data:`SECTION`; missing ones default).

    Raises
    ------
    LimitsError
        Invalid TOML, an unknown key, a value that is not a whole number in its range, or a
        ``data_folder`` that is not an absolute path.
    """
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise LimitsError(f"{source} is not valid TOML: {error}") from None
    section = document.get(SECTION, {})
    if not isinstance(section, dict):
        raise LimitsError(f"{source}: [{SECTION}] must be a table of limits")
    known = {f.name for f in fields(Limits)}
    unknown = sorted(set(section) - known)
    if unknown:
        raise LimitsError(
            f"{source}: unknown limit {', '.join(unknown)} in [{SECTION}] "
            f"(known: {', '.join(sorted(known))})"
        )
    values = {}
    for name, value in section.items():
        if name in _PATHS:
            if not isinstance(value, str) or not os.path.isabs(value):
                raise LimitsError(f"{source}: {name} must be an absolute path, not {value!r}")
            values[name] = value
            continue
        low, high = _RANGES[name]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise LimitsError(
                f"{source}: {name} must be a whole number from {low} to {high}, not {value!r}"
            )
        values[name] = value
    return Limits(**values)


def limits_path() -> Path:
    """The limits file: ``$LMM_LIMITS`` when set, else :data:`DEFAULT_PATH`."""
    named = os.environ.get(ENV_VAR, "").strip()
    return Path(named) if named else DEFAULT_PATH


def load(path: Path | None = None) -> Limits:
    """The limits in ``path`` (default :func:`limits_path`); :data:`DEFAULTS` when the default
    file does not exist. A file named explicitly (argument or ``$LMM_LIMITS``) must exist."""
    explicit = path is not None or bool(os.environ.get(ENV_VAR, "").strip())
    path = limits_path() if path is None else Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if explicit:
            raise LimitsError(f"the limits file {path} does not exist") from None
        return DEFAULTS
    except OSError as error:
        raise LimitsError(f"the limits file {path} cannot be read: {error}") from None
    return parse(text, source=str(path))


@lru_cache(maxsize=1)
def current() -> Limits:
    """This process's limits, read once (:func:`load`); a replica restarts to change them."""
    return load()
