"""Where the rows of a streamed fit come from, and the DuckDB engine that reads them.

A :class:`Source` names a table that need not fit in memory: a Parquet file or folder (or a
glob), a CSV file, a table of a DuckDB database file, or an Arrow table / dataset / record
batch reader. :class:`DuckDBEngine` reads any of them through an embedded DuckDB
connection (out-of-core: DuckDB spills to disk rather than holding the table), with two
operations: an aggregate query returning a small pandas table (pass 1), and the selected
rows as a stream of pandas batches (pass 2). Nothing is written anywhere.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import pandas as pd

from lmm_core.errors import DataError
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
    module = type(data).__module__ or ""
    if module.startswith("pyarrow"):
        return Source.from_arrow(data)
    raise DataError(
        "The data must be a pandas DataFrame, a Parquet/CSV path, a DuckDB table "
        f"(Source.duckdb) or an Arrow table/dataset; got {type(data).__name__}."
    )


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

    def __init__(
        self, source: Source, threads: int | None = None, memory_limit: str | None = None
    ) -> None:
        import duckdb

        self.source = source
        if source.kind == "duckdb":
            if not os.path.exists(source.location):
                raise DataError(f"No DuckDB database {source.location!r}.")
            self.con = duckdb.connect(source.location, read_only=True)
            self.table = quote(source.table)
        else:
            self.con = duckdb.connect()
            self.table = self._from_clause(source)
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
            if type(exc).__module__.startswith("duckdb"):
                raise DataError(f"Cannot read {self.source.describe()}: {exc}") from exc
            raise

    def empty_frame(self, columns: list[str]) -> pd.DataFrame:
        """The columns with no rows: their pandas types as the batches will have them."""
        cols = ", ".join(self.dialect.ident(c) for c in columns)
        return self.query(f"SELECT {cols} FROM {{table}} LIMIT 0")

    def columns(self) -> list[str]:
        """Column names of the source."""
        return [str(c) for c in self.query("SELECT * FROM {table} LIMIT 0").columns]

    def batches(self, columns: list[str], where: str, batch_size: int) -> Iterator[pd.DataFrame]:
        """The rows satisfying ``where`` (SQL), ``batch_size`` rows at a time."""
        cols = ", ".join(self.dialect.ident(c) for c in columns)
        sql = f"SELECT {cols} FROM {self.table} WHERE {where}"
        reader = self.con.sql(sql).to_arrow_reader(batch_size)
        for batch in reader:
            if batch.num_rows:
                yield batch.to_pandas()

    def close(self) -> None:
        self.con.close()


__all__ = ["DuckDBEngine", "DuckDBTable", "Source", "as_source"]
