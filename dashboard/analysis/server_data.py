"""The server's data folder: which files users may open, and how to read them safely.

The operator names one folder in the limits file (``data_folder``,
:mod:`dashboard.state.limits`); users pick a file from the list, never type a path. What is
offered is exactly:

* regular files directly in the folder ending in ``.parquet``, ``.csv`` or ``.duckdb``
  (each table of a DuckDB database is one entry);
* folders directly in it whose name ends in ``.parquet`` or that hold ``.parquet`` files
  (a partitioned dataset, as Spark writes), read recursively.

Nothing else: no hidden entries (``.name``), no symbolic link anywhere (an entry, or a file
or folder inside a Parquet folder; a link could point outside the folder), no name with a
path separator, ``..`` or a NUL. :func:`resolve` checks a chosen name again at the moment it
is read (a name from the list is re-validated, not trusted), and the resolved path must lie
inside the folder's real path. Files are only read; nothing is written.

Sizes come from the file system; row counts from DuckDB (:func:`lmm_core.stream.sources.
count_rows`): Parquet and DuckDB answer from their metadata, a CSV file is counted only when
it is smaller than :data:`CSV_COUNT_MAX_BYTES` (a count reads it whole). No Streamlit here.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from lmm_core.errors import DataError
from lmm_core.stream.sources import Source, count_rows, database_tables

__all__ = [
    "CSV_COUNT_MAX_BYTES",
    "EXTENSIONS",
    "ServerFile",
    "folder_signature",
    "list_folder",
    "resolve",
    "source_of",
]

#: file name endings offered (lower case)
EXTENSIONS = (".parquet", ".csv", ".duckdb")
#: a CSV file larger than this is not counted in the list (a count reads the whole file)
CSV_COUNT_MAX_BYTES = 64 * 2**20
_KINDS = {".parquet": "parquet", ".csv": "csv", ".duckdb": "duckdb"}


@dataclass(frozen=True)
class ServerFile:
    """One entry of the data folder.

    Attributes
    ----------
    name
        The entry's name in the folder (a file, or a folder of Parquet files).
    kind
        ``"parquet"``, ``"parquet folder"``, ``"csv"`` or ``"duckdb"``.
    table
        The table, for a DuckDB database (one entry per table); else ``None``.
    size_bytes
        Size on disk (of every Parquet file, for a folder).
    rows
        Number of rows, or ``None`` when not counted (a large CSV) or unreadable.
    modified
        Last modification time (seconds since the epoch; the newest file of a folder).
    problem
        Why the entry cannot be read (then ``rows`` is ``None``), else ``""``.
    """

    name: str
    kind: str
    table: str | None
    size_bytes: int
    rows: int | None
    modified: float
    problem: str = ""

    @property
    def label(self) -> str:
        """What the list shows: the name, and the table of a database."""
        return f"{self.name}: {self.table}" if self.table else self.name

    @property
    def ident(self) -> str:
        """A stable id of the entry (name and table)."""
        return f"{self.name}\x1f{self.table or ''}"


def _bad_name(name: str) -> str | None:
    """Why ``name`` is not a plain entry name of the folder, or ``None``."""
    if not name or name in (".", ".."):
        return "an empty or relative name"
    if "/" in name or "\\" in name or "\x00" in name or os.sep in name:
        return "a path, not a name"
    if name.startswith("."):
        return "a hidden entry"
    return None


def _ending(name: str) -> str | None:
    lower = name.lower()
    return next((e for e in EXTENSIONS if lower.endswith(e)), None)


def _parquet_folder(path: Path) -> tuple[int, float] | None:
    """``(bytes, newest mtime)`` of the Parquet files under ``path``, or ``None`` when it
    holds none or contains a symbolic link (files and folders are walked without following
    links)."""
    total, newest, found = 0, 0.0, False
    for root, dirs, files in os.walk(path, followlinks=False):
        for name in dirs + files:
            if os.path.islink(os.path.join(root, name)):
                return None
        for name in files:
            if name.lower().endswith(".parquet"):
                st = os.stat(os.path.join(root, name), follow_symlinks=False)
                total += st.st_size
                newest = max(newest, st.st_mtime)
                found = True
    return (total, newest) if found else None


def _count(source: Source, size: int, kind: str) -> tuple[int | None, str]:
    if kind == "csv" and size > CSV_COUNT_MAX_BYTES:
        return None, ""
    try:
        return count_rows(source), ""
    except DataError as error:
        return None, str(error)


def _entries(root: Path, name: str) -> list[ServerFile]:
    """The list entries of one folder entry (none when it is not offered)."""
    path = root / name
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode) or _bad_name(name):
        return []
    ending = _ending(name)
    if stat.S_ISDIR(info.st_mode):
        found = _parquet_folder(path)
        if found is None:
            return []
        rows, problem = _count(Source.parquet(path), found[0], "parquet")
        return [ServerFile(name, "parquet folder", None, found[0], rows, found[1], problem)]
    if not stat.S_ISREG(info.st_mode) or ending is None:
        return []
    kind = _KINDS[ending]
    if kind != "duckdb":
        source = Source.parquet(path) if kind == "parquet" else Source.csv(path)
        rows, problem = _count(source, info.st_size, kind)
        return [ServerFile(name, kind, None, info.st_size, rows, info.st_mtime, problem)]
    try:
        tables = database_tables(path)
    except DataError as error:
        return [ServerFile(name, kind, None, info.st_size, None, info.st_mtime, str(error))]
    out = []
    for table in tables:
        rows, problem = _count(Source.duckdb(path, table), info.st_size, kind)
        out.append(ServerFile(name, kind, table, info.st_size, rows, info.st_mtime, problem))
    return out


def _root(folder: str | os.PathLike) -> Path:
    root = Path(folder)
    if not root.is_absolute():
        raise DataError(f"The data folder must be an absolute path, not {os.fspath(folder)!r}.")
    if not root.is_dir():
        raise DataError(
            f"The data folder {os.fspath(folder)!r} named in the limits file does not exist "
            "or is not a folder; ask the operator to check data_folder."
        )
    return root.resolve()


def list_folder(folder: str | os.PathLike) -> list[ServerFile]:
    """The data files offered in ``folder`` (module docstring), sorted by name.

    Raises
    ------
    DataError
        When ``folder`` is not an absolute path of an existing folder.
    """
    root = _root(folder)
    out: list[ServerFile] = []
    for name in sorted(os.listdir(root)):
        out.extend(_entries(root, name))
    return out


def folder_signature(folder: str | os.PathLike) -> tuple:
    """``(name, size, mtime)`` of every entry directly in ``folder``: changes when a file is
    added, removed or rewritten (for caching the list)."""
    root = _root(folder)
    out = []
    for name in sorted(os.listdir(root)):
        info = os.lstat(root / name)
        out.append((name, info.st_size, info.st_mtime_ns))
    return tuple(out)


def resolve(folder: str | os.PathLike, name: str) -> Path:
    """The path of entry ``name`` of ``folder``, checked as the list checks it.

    Raises
    ------
    DataError
        For a name that is not a plain entry name, an entry that is missing, hidden, a
        symbolic link (or a Parquet folder containing one), not a file or folder offered, or
        whose real path is outside the folder.
    """
    reason = _bad_name(name)
    if reason:
        raise DataError(f"{name!r} is {reason}: choose a file from the list.")
    root = _root(folder)
    path = root / name
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise DataError(f"{name!r} is no longer in the data folder.") from None
    if stat.S_ISLNK(info.st_mode):
        raise DataError(f"{name!r} is a link: only files in the data folder itself are read.")
    if path.resolve().parent != root:
        raise DataError(f"{name!r} is not in the data folder.")
    if stat.S_ISDIR(info.st_mode):
        if _parquet_folder(path) is None:
            raise DataError(f"{name!r} is not a folder of Parquet files (or contains a link).")
    elif not stat.S_ISREG(info.st_mode) or _ending(name) is None:
        raise DataError(f"{name!r} is not a .parquet, .csv or .duckdb file.")
    return path


def source_of(folder: str | os.PathLike, name: str, table: str | None = None) -> Source:
    """The :class:`~lmm_core.stream.sources.Source` of entry ``name`` (and ``table`` of a
    DuckDB database), after :func:`resolve`.

    Raises
    ------
    DataError
        As :func:`resolve`; a DuckDB entry without a table or with a table it does not hold.
    """
    path = resolve(folder, name)
    if path.is_dir():
        return Source.parquet(path)
    kind = _KINDS[_ending(name) or ""]
    if kind == "duckdb":
        if table is None or table not in database_tables(path):
            raise DataError(f"{name!r} has no table {table!r}.")
        return Source.duckdb(path, table)
    return Source.parquet(path) if kind == "parquet" else Source.csv(path)
