"""Where the rows of a streamed fit come from, and the DuckDB engine that reads them.

A :class:`Source` names a table that need not fit in memory: a Parquet file or folder (or a
glob), a CSV file, a table of a DuckDB database file, or an Arrow table / dataset / record
batch reader. :class:`DuckDBEngine` reads any of them through an embedded DuckDB
connection (streaming: the table is read in batches, never held whole), with two
operations: an aggregate query returning a small pandas table (pass 1), and the selected
rows as a stream of pandas batches (pass 2). Nothing is written anywhere: DuckDB's spilling
to disk is off, so a pass above its memory limit stops with a message.

:class:`RowStream` is that stream as a value: the source and the SQL selecting the rows, which
opens its own connection for each pass, so that it can be pickled with a fitted model and
read again in another process (it may be restricted to some groups: the fitted values of a
few patients). :func:`sample_groups` reads whole groups (every row of ``n`` patients drawn at
random), and :func:`count_rows` / :func:`database_tables` are the cheap metadata a file list
shows.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from lmm_core.errors import DataError, LMMError, ModelError
from lmm_core.stream.sql import Dialect, quote

PARQUET_SUFFIXES = (".parquet", ".parq", ".pq")
CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".txt")


@dataclass(frozen=True)
class Source:
    """A table to stream (build one with the class methods or :func:`as_source`).

    Attributes
    ----------
    kind
        ``"parquet"``, ``"csv"``, ``"duckdb"`` or ``"arrow"``.
    location
        File, folder or glob (Parquet, CSV), database file (DuckDB).
    table
        Table name inside a DuckDB database.
    arrow
        The Arrow object (``pyarrow.Table``, ``pyarrow.dataset.Dataset``, ...).
    """

    kind: str
    location: str | None = None
    table: str | None = None
    arrow: object | None = field(default=None, repr=False, compare=False)

    @classmethod
    def parquet(cls, path: str | os.PathLike) -> Source:
        """A Parquet file, a folder of Parquet files (read recursively) or a glob."""
        return cls("parquet", os.fspath(path))

    @classmethod
    def csv(cls, path: str | os.PathLike) -> Source:
        """A CSV file with a header line (empty fields and ``NA`` are missing values)."""
        return cls("csv", os.fspath(path))

    @classmethod
    def duckdb(cls, path: str | os.PathLike, table: str) -> Source:
        """Table ``table`` of the DuckDB database file ``path`` (opened read-only)."""
        return cls("duckdb", os.fspath(path), table)

    @classmethod
    def from_arrow(cls, data: object) -> Source:
        """An Arrow table, dataset or record batch reader."""
        return cls("arrow", arrow=data)

    def describe(self) -> str:
        """A short name for messages."""
        if self.kind == "duckdb":
            return f"table {self.table} of {self.location}"
        if self.kind == "arrow":
            return f"an Arrow {type(self.arrow).__name__}"
        return f"{self.kind} {self.location}"


def DuckDBTable(path: str | os.PathLike, table: str) -> Source:  # noqa: N802 (a constructor)
    """Table ``table`` of the DuckDB database file ``path`` (:meth:`Source.duckdb`)."""
    return Source.duckdb(path, table)


def as_source(data: object) -> Source:
    """A :class:`Source` from a path (Parquet by suffix or folder, CSV by suffix), an Arrow
    object or a source.

    Raises
    ------
    DataError
        For a path that does not exist or whose kind cannot be told from its name.
    """
    if isinstance(data, Source):
        return data
    if isinstance(data, str | os.PathLike):
        path = os.fspath(data)
        lower = path.lower()
        if any(ch in path for ch in "*?["):
            return Source.parquet(path) if not lower.endswith(CSV_SUFFIXES) else Source.csv(path)
        if not os.path.exists(path):
            raise DataError(f"No file or folder {path!r}.")
        if os.path.isdir(path) or lower.endswith(PARQUET_SUFFIXES):
            return Source.parquet(path)
        if lower.endswith(CSV_SUFFIXES):
            return Source.csv(path)
        if lower.endswith((".duckdb", ".db")):
            raise DataError(
                f"{path!r} is a DuckDB database: name the table, "
                "Source.duckdb(path, table) (or DuckDBTable(path, table))."
            )
        raise DataError(
            f"Cannot tell the format of {path!r} from its name: use a .parquet or .csv file, "
            "a folder of Parquet files, or Source.duckdb(path, table)."
        )
    if isinstance(data, pd.DataFrame):  # streamed as an Arrow table (tests, small tables)
        import pyarrow as pa

        return Source.from_arrow(pa.Table.from_pandas(data, preserve_index=False))
    module = type(data).__module__ or ""
    if module.startswith("pyarrow"):
        return Source.from_arrow(data)
    raise DataError(
        "The data must be a pandas DataFrame, a Parquet/CSV path, a DuckDB table "
        f"(Source.duckdb) or an Arrow table/dataset; got {type(data).__name__}."
    )


def _is_duckdb_error(exc: BaseException) -> bool:
    """An error of DuckDB (its classes live in ``duckdb`` or, from 1.x on, ``_duckdb``)."""
    return type(exc).__module__.lstrip("_").startswith("duckdb")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class DuckDBEngine:
    """Reads a :class:`Source` through an embedded DuckDB connection.

    Parameters
    ----------
    source
        The table.
    threads, memory_limit
        DuckDB settings (``None``: DuckDB's defaults, all cores and 80% of the memory).
    """

    dialect = Dialect("duckdb")
    #: name under which :meth:`batches` registers the groups it keeps
    KEEP_VIEW = "lmm_keep_groups"

    def __init__(
        self, source: Source, threads: int | None = None, memory_limit: str | None = None
    ) -> None:
        import duckdb

        self.source = source
        self.threads = threads
        self.memory_limit = memory_limit
        if source.kind == "duckdb":
            if not os.path.exists(source.location):
                raise DataError(f"No DuckDB database {source.location!r}.")
            self.con = duckdb.connect(source.location, read_only=True)
            self.table = quote(source.table)
        else:
            self.con = duckdb.connect()
            self.table = self._from_clause(source)
        # health data are never written to disk: a query that would spill (a sort or an
        # aggregate larger than the memory limit) fails with a message instead
        self.con.execute("SET temp_directory = ''")
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        if memory_limit:
            self.con.execute(f"SET memory_limit = {_literal(memory_limit)}")

    def _from_clause(self, source: Source) -> str:
        if source.kind == "arrow":
            self.con.register("lmm_stream_source", source.arrow)
            return "lmm_stream_source"
        path = source.location
        if source.kind == "csv":
            return f"read_csv({_literal(path)}, header = true, nullstr = ['', 'NA'])"
        if os.path.isdir(path):
            path = os.path.join(path, "**", "*.parquet")
        return f"read_parquet({_literal(path)})"

    def query(self, sql: str) -> pd.DataFrame:
        """A (small) query result as a pandas table; ``{table}`` in ``sql`` is the source."""
        try:
            return self.con.sql(sql.format(table=self.table)).to_arrow_table().to_pandas()
        except Exception as exc:  # duckdb raises its own error types
            if not _is_duckdb_error(exc):
                raise
            raise self._error(exc) from exc

    def _error(self, exc: Exception) -> LMMError:
        """Our error for one of DuckDB's: above the memory limit, what to do (nothing is
        spilled to disk); otherwise the file cannot be read."""
        if "Out of Memory" in str(exc):
            return ModelError(
                "DuckDB needs more memory than its limit for this pass over "
                f"{self.source.describe()} (a sort or a table of levels; health data are never "
                "spilled to disk): give the process more memory, or fit a sample of patients."
            )
        return DataError(f"Cannot read {self.source.describe()}: {exc}")

    def empty_frame(self, columns: list[str]) -> pd.DataFrame:
        """The columns with no rows: their pandas types as the batches will have them."""
        cols = ", ".join(self.dialect.ident(c) for c in columns)
        return self.query(f"SELECT {cols} FROM {{table}} LIMIT 0")

    def columns(self) -> list[str]:
        """Column names of the source."""
        return [str(c) for c in self.query("SELECT * FROM {table} LIMIT 0").columns]

    def batches(
        self,
        columns: list[str],
        where: str,
        batch_size: int,
        keep: tuple[str, Sequence] | None = None,
        order_by: Sequence[str] = (),
    ) -> Iterator[pd.DataFrame]:
        """The rows satisfying ``where`` (SQL), ``batch_size`` rows at a time, in the table's
        order (or sorted by the columns ``order_by``, within DuckDB's memory limit); with
        ``keep = (column, values)`` only the rows whose ``column`` is among ``values``."""
        cols = ", ".join(self.dialect.ident(c) for c in columns)
        sql = f"SELECT {cols} FROM {self.table} WHERE {where}"
        if keep is not None:
            sql += f" AND {self._keep_condition(*keep)}"
        if order_by:
            sql += f" ORDER BY {', '.join(self.dialect.ident(c) for c in order_by)}"
        try:
            for batch in self.con.sql(sql).to_arrow_reader(batch_size):
                if batch.num_rows:
                    yield batch.to_pandas()
        except Exception as exc:
            if not _is_duckdb_error(exc):
                raise
            raise self._error(exc) from exc

    def _keep_condition(self, column: str, values: Sequence) -> str:
        """SQL condition: ``column`` among ``values`` (registered as a one-column view)."""
        self.con.register(self.KEEP_VIEW, pd.DataFrame({"g": pd.Series(list(values))}))
        return f"{self.dialect.ident(column)} IN (SELECT g FROM {self.KEEP_VIEW})"

    def count(self) -> int:
        """Rows of the table (Parquet and DuckDB answer from their metadata)."""
        return int(self.query("SELECT count(*) AS n FROM {table}")["n"].iloc[0])

    def row_stream(self, columns: list[str], where: str, batch_size: int) -> RowStream:
        """These :meth:`batches` as a picklable :class:`RowStream`."""
        return RowStream(self.source, tuple(columns), where, int(batch_size), self.threads)

    def close(self) -> None:
        self.con.close()


@dataclass(frozen=True)
class RowStream:
    """Rows of a source selected by SQL, read again on demand (one connection per pass).

    Calling it yields pandas batches as :meth:`DuckDBEngine.batches`. It holds only the
    :class:`Source` and the SQL, so it pickles (a fitted model carrying it can travel to
    another process, which reopens the file); an Arrow source pickles with its data.

    Attributes
    ----------
    source
        The table.
    columns
        Columns read.
    where
        SQL condition selecting the rows.
    batch_size
        Rows per batch.
    threads
        DuckDB threads (``None``: DuckDB's default).
    order_by
        Columns the rows are sorted by (``()``: the table's order).
    """

    source: Source
    columns: tuple[str, ...]
    where: str
    batch_size: int
    threads: int | None = None
    order_by: tuple[str, ...] = ()

    def __call__(self, keep: tuple[str, Sequence] | None = None) -> Iterator[pd.DataFrame]:
        """The rows, batch by batch; ``keep = (column, values)`` restricts them to the rows
        whose ``column`` is among ``values`` (in SQL, before any row is read)."""
        engine = DuckDBEngine(self.source, threads=self.threads)
        try:
            yield from engine.batches(
                list(self.columns), self.where, self.batch_size, keep, self.order_by
            )
        finally:
            engine.close()


def count_rows(source: object) -> int:
    """Rows of a table (:meth:`DuckDBEngine.count`; a CSV file is read once to count)."""
    engine = DuckDBEngine(as_source(source), threads=1)
    try:
        return engine.count()
    finally:
        engine.close()


def database_tables(path: str | os.PathLike) -> list[str]:
    """Names of the tables of a DuckDB database file (opened read-only), sorted.

    Raises
    ------
    DataError
        When the file cannot be opened as a DuckDB database.
    """
    import duckdb

    try:
        con = duckdb.connect(os.fspath(path), read_only=True)
    except Exception as exc:  # duckdb raises its own error types
        raise DataError(f"Cannot open {os.fspath(path)!r} as a DuckDB database: {exc}") from exc
    try:
        rows = con.sql(
            "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
            "ORDER BY table_name"
        ).fetchall()
    finally:
        con.close()
    return [str(r[0]) for r in rows]


def sample_groups(
    source: object, group: str, n: int, seed: int, *, threads: int | None = None
) -> pd.DataFrame:
    """Every row of ``n`` groups (patients) drawn at random without replacement.

    The distinct non-missing values of ``group`` are sorted (numbers numerically, text by
    code point), ``n`` of their positions are drawn by ``numpy.random.default_rng(seed)``
    (:meth:`numpy.random.Generator.choice`, without replacement), and the rows of those groups
    are read in the table's order: the same ``seed`` gives the same sample, whatever the number
    of DuckDB threads. With ``n`` at least the number of groups, every row is returned.

    Parameters
    ----------
    source
        A path or :class:`Source` (:func:`as_source`).
    group
        The column identifying the groups.
    n
        Number of groups to draw (at least 1).
    seed
        Seed of the draw.
    threads
        DuckDB threads.

    Returns
    -------
    pandas.DataFrame
        The rows, index ``0..rows-1``; ``attrs`` hold ``group``, ``n_groups`` (in the table),
        ``n_sampled``, ``seed`` and ``n_rows`` (rows of the table).

    Raises
    ------
    DataError
        For an unknown column, a table without any group, or ``n < 1``.
    """
    if int(n) < 1:
        raise DataError(f"Draw at least one group, not {n}.")
    engine = DuckDBEngine(as_source(source), threads=threads)
    try:
        columns = engine.columns()
        if group not in columns:
            raise DataError(
                f"No column `{group}` in {engine.source.describe()} (columns: "
                f"{', '.join(columns[:12])}{', ...' if len(columns) > 12 else ''})."
            )
        col = engine.dialect.ident(group)
        ids = engine.query(
            f"SELECT DISTINCT {col} AS g FROM {{table}} WHERE {col} IS NOT NULL ORDER BY g"
        )["g"]
        if ids.empty:
            raise DataError(f"Column `{group}` has no value in {engine.source.describe()}.")
        rng = np.random.default_rng(int(seed))
        k = min(int(n), len(ids))
        chosen = ids.iloc[np.sort(rng.choice(len(ids), size=k, replace=False))]
        condition = engine._keep_condition(group, chosen.tolist())
        frame = engine.query(f"SELECT * FROM {{table}} WHERE {condition}")
        n_rows = engine.count()
    finally:
        engine.close()
    frame = frame.reset_index(drop=True)
    frame.attrs.update(group=group, n_groups=len(ids), n_sampled=k, seed=int(seed), n_rows=n_rows)
    return frame


__all__ = [
    "DuckDBEngine",
    "DuckDBTable",
    "RowStream",
    "Source",
    "as_source",
    "count_rows",
    "database_tables",
    "sample_groups",
]
