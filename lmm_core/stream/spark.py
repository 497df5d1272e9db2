"""The Spark engine of a streamed fit: the same two passes as DuckDB, as Spark jobs.

``fit_lmm(formula, source, engine="spark", spark=session)`` fits from a Spark DataFrame, or a
path Spark reads (a Parquet file or folder, a CSV file with a header; ``hdfs://``, ``s3a://``
and ``dbfs:/`` paths are given to Spark as they are), or a pandas DataFrame (sent to Spark
first, for tests and small tables). The passes are those of :mod:`lmm_core.stream.fit`:

1. pass 1 (:func:`~lmm_core.stream.plan.plan_stream`, unchanged): the aggregate queries run
   as Spark SQL on a temporary view of the table (:class:`SparkEngine`, dialect
   ``Dialect("spark")``: backquoted names, exact type-7 quantiles by ``percentile``,
   ``try_divide``). Only their small results reach the driver, plus the labels of every
   grouping level (one string per patient);
2. pass 2 (:func:`spark_blocks`): ``mapInPandas`` over the rows used. Each partition
   gathers its Arrow batches into pandas tables of ``batch_size`` rows, runs
   :func:`~lmm_core.stream.batches.batch_blocks` on each (our own design code, the plan's
   recipes) and sums them; it sends back **one row**: its blocks, pickled, reduced to the
   levels it saw (the per-level blocks of the patients in the partition, the nonzero
   entries of ``Z2'Z1`` and ``Z2'Z2``). The driver adds them into the whole table's
   :class:`~lmm_core.model.cross_products.CrossProducts` (sums over rows, so the order of
   partitions changes only rounding: the criterion agrees with DuckDB's to about 1e-13);
3. the optimizer runs on the driver, from the blocks only (no Spark work).

Pointing it at a cluster
------------------------
Build the session as for any PySpark job; nothing else changes::

    from pyspark.sql import SparkSession
    spark = (SparkSession.builder.master("spark://head:7077")     # or "yarn", "k8s://..."
             .config("spark.driver.memory", "8g")
             .config("spark.driver.maxResultSize", "4g")
             .getOrCreate())
    fit = lmm_core.fit_lmm("y ~ time * arm + (time | patient) + (1 | hospital)",
                           "hdfs:///registry/visits/", engine="spark", spark=spark)

On Databricks, pass the notebook's ``spark`` (a Spark Connect session works too, without the
progress reports: it has no status tracker), with a table: ``source=spark.table("visits")``.
The executors run our Python code, so ``lmm_core`` and its dependencies (numpy, scipy, pandas,
pyarrow) must be importable there: install the package on the nodes (cluster library,
``pip`` in the image), or ship it with ``spark-submit --py-files lmm_core.zip`` /
``spark.sparkContext.addPyFile``; ``spark.pyspark.python`` names the executors' interpreter.

What travels: the plan (recipes, the learned constants and the level labels of every grouping
factor: tens of bytes per patient) goes to the executors once with the task (PySpark
broadcasts a pickled function above 1 MB); the rows never leave the executors; back to the
driver come the per-partition blocks, about ``8 (S1^2 + S1 (p + 1)) + 8`` bytes per patient
seen in the partition plus ``16`` bytes per nonzero of ``Z2'Z1`` and ``Z2'Z2``. A patient
whose visits are spread over several partitions is sent once per partition: cluster the
table by patient (``repartition("patient")`` or files written sorted by patient) to send
each patient about once. The driver holds the collected rows (``spark.driver.maxResultSize``
must exceed their total) and the summed blocks; each executor holds the blocks of one
partition (its running sum, the batch's and their sum). Their size is the estimate printed
when a model is refused (:func:`~lmm_core.stream.plan.block_memory`, ``max_memory_gib``), so
give the driver and each executor two to three times that, plus a batch of rows (about
``batch_size (p + 2 S) 8`` bytes of matrices and the pandas table).

Cost model
----------
With ``N`` rows, ``m1`` patients (levels of the first grouping factor), ``P`` partitions and
``C`` executor cores: pass 1 is about six scans of the used columns (missing counts, finite
check, distinct levels per factor, ranges, a query per ``scale()`` or spline) and one
``DISTINCT`` shuffle per grouping factor; pass 2 is one scan, ``c_row N / C`` (``c_row``: our
design code and ``bincount`` per row), plus, per batch, a term proportional to ``m1`` (the
batch's blocks are allocated for every level, and its grouping labels are coded against
them) and the transfer of the blocks: keep ``batch_size`` (and the partitions) at a few
times ``m1`` rows or more. The optimizer is on the driver and costs ``c_patient m1`` per
evaluation of the criterion, whatever ``N``. ``benchmarks/bench_stream.py`` measures
``c_row``, the per-batch term and ``c_patient``, and prints from them the cost of a
1-billion-row extract.
"""

from __future__ import annotations

import os
import pickle
import time
import uuid
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from lmm_core.errors import DataError, FormulaError, LMMError, ModelError
from lmm_core.model.cross_products import CrossProducts
from lmm_core.stream.batches import BatchBlocks, _qr_r, batch_blocks
from lmm_core.stream.plan import StreamPlan
from lmm_core.stream.sources import CSV_SUFFIXES, Source, as_source
from lmm_core.stream.sql import Dialect

_ERRORS: dict[str, type[LMMError]] = {
    "DataError": DataError,
    "ModelError": ModelError,
    "FormulaError": FormulaError,
}


def is_spark_frame(data: object) -> bool:
    """Whether ``data`` is a PySpark DataFrame (classic or Spark Connect), without importing
    pyspark."""
    module = type(data).__module__ or ""
    return module.startswith("pyspark.sql") and hasattr(data, "mapInPandas")


def _spark_error(what: str, exc: Exception) -> LMMError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return DataError(f"Spark could not {what}: {first}")


def _is_spark_exception(exc: Exception) -> bool:
    module = type(exc).__module__ or ""
    return module.startswith(("pyspark", "py4j"))


class SparkEngine:
    """A table read through a SparkSession, with the interface of
    :class:`~lmm_core.stream.sources.DuckDBEngine` for pass 1 (``dialect``, ``columns``,
    ``empty_frame``, ``query``).

    Parameters
    ----------
    spark
        The SparkSession (``None``: the source's own session, or the active one).
    source
        A Spark DataFrame, a pandas DataFrame, a path (Parquet file/folder/glob, CSV file by
        its suffix) or a :class:`~lmm_core.stream.sources.Source` of kind parquet or csv.

    Raises
    ------
    ModelError
        Without a SparkSession, or when pyspark is not installed.
    DataError
        For a source Spark cannot read.
    """

    dialect = Dialect("spark")

    def __init__(self, spark: object | None, source: object) -> None:
        if spark is None and is_spark_frame(source):
            spark = source.sparkSession
        if spark is None:
            try:
                from pyspark.sql import SparkSession
            except ImportError as exc:
                raise ModelError(
                    'engine="spark" needs pyspark (pip install pyspark) and Java 17.'
                ) from exc
            spark = SparkSession.getActiveSession()
        if spark is None:
            raise ModelError(
                'engine="spark" needs a SparkSession: fit_lmm(formula, source, engine="spark", '
                'spark=SparkSession.builder.master("local[*]").getOrCreate()).'
            )
        self.spark = spark
        frame = self._read(source)
        decimals = [f.name for f in frame.schema.fields if f.dataType.typeName() == "decimal"]
        if decimals:  # Arrow gives Python Decimal objects; numbers are doubles here
            from pyspark.sql import functions as F

            frame = frame.withColumns({c: F.col(c).cast("double") for c in decimals})
        self.frame = frame
        self.view = f"lmm_stream_{uuid.uuid4().hex}"
        frame.createOrReplaceTempView(self.view)
        self.table = self.dialect.ident(self.view)

    def _read(self, source: object):
        if is_spark_frame(source):
            return source
        if isinstance(source, pd.DataFrame):
            try:
                return self.spark.createDataFrame(source)
            except Exception as exc:
                if _is_spark_exception(exc):
                    raise _spark_error("take this DataFrame", exc) from exc
                raise
        if isinstance(source, str | os.PathLike) and "://" in os.fspath(source):
            path = os.fspath(source)  # a cluster path: Spark checks it, not us
            kind = "csv" if path.lower().endswith(CSV_SUFFIXES) else "parquet"
            source = Source(kind, path)
        src = as_source(source)
        if src.kind not in ("parquet", "csv"):
            raise DataError(
                f"Spark reads Parquet and CSV files or Spark DataFrames, not {src.describe()}; "
                'fit it with engine="duckdb".'
            )
        try:
            if src.kind == "csv":
                return self.spark.read.csv(
                    src.location, header=True, inferSchema=True, nullValue="NA"
                )
            return self.spark.read.parquet(src.location)
        except Exception as exc:
            if _is_spark_exception(exc):
                raise _spark_error(f"read {src.describe()}", exc) from exc
            raise

    def query(self, sql: str) -> pd.DataFrame:
        """A (small) query result as a pandas table; ``{table}`` in ``sql`` is the source."""
        try:
            result = self.spark.sql(sql.format(table=self.table))
            if hasattr(result, "toArrow"):  # Spark 4: the types DuckDB's results have
                return result.toArrow().to_pandas()
            return result.toPandas()
        except Exception as exc:
            if _is_spark_exception(exc):
                raise _spark_error("compute an aggregate of the table", exc) from exc
            raise

    def empty_frame(self, columns: list[str]) -> pd.DataFrame:
        """The columns with no rows: their pandas types as the batches will have them."""
        cols = ", ".join(self.dialect.ident(c) for c in columns)
        return self.query(f"SELECT {cols} FROM {{table}} LIMIT 0")

    def columns(self) -> list[str]:
        """Column names of the source."""
        return [str(c) for c in self.frame.columns]

    def selected(self, columns: Sequence[str], where: str):
        """The Spark DataFrame of the rows used (SQL condition ``where``), ``columns`` only
        (from the DataFrame itself: it does not need the view of pass 1)."""
        return self.frame.where(where).selectExpr(*(self.dialect.ident(c) for c in columns))

    def close(self) -> None:
        """Drop the temporary view of pass 1."""
        try:
            self.spark.catalog.dropTempView(self.view)
        except Exception as exc:  # a stopped session: nothing left to drop
            if not _is_spark_exception(exc):
                raise


# ------------------------------------------------------------------ executors: one partition
class PartitionBlocks:
    """The function ``mapInPandas`` runs on each partition (pickled with the plan).

    It sums :func:`batch_blocks` over pandas tables of about ``batch_size`` rows and yields
    one row ``blocks`` (binary): ``pickle(("blocks", pack_blocks(sum)))``, or
    ``pickle(("error", class name, message))`` for bad data (a non-finite ``log(x)``...), so
    that the driver raises the same error as DuckDB would, not a Java stack trace.
    """

    def __init__(self, plan: StreamPlan, batch_size: int) -> None:
        self.plan = plan
        self.batch_size = int(batch_size)

    def __call__(self, frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        total = None
        held: list[pd.DataFrame] = []
        rows = 0
        clock = {"read": 0.0, "blocks": 0.0}
        try:
            t = time.perf_counter()
            for frame in frames:
                clock["read"] += time.perf_counter() - t
                held.append(frame)
                rows += len(frame)
                if rows >= self.batch_size:
                    total = self._add(total, held, clock)
                    held, rows = [], 0
                t = time.perf_counter()
            clock["read"] += time.perf_counter() - t
            if rows:
                total = self._add(total, held, clock)
        except LMMError as exc:
            payload = ("error", type(exc).__name__, str(exc))
            yield pd.DataFrame({"blocks": [pickle.dumps(payload, protocol=5)]})
            return
        if total is not None:
            t = time.perf_counter()
            packed = pack_blocks(total)
            clock["blocks"] += time.perf_counter() - t
            packed["seconds"] = clock
            yield pd.DataFrame({"blocks": [pickle.dumps(("blocks", packed), protocol=5)]})

    def _add(self, total: BatchBlocks | None, held: list[pd.DataFrame], clock) -> BatchBlocks:
        t = time.perf_counter()
        frame = held[0] if len(held) == 1 else pd.concat(held, ignore_index=True)
        part = batch_blocks(self.plan, frame)
        out = part if total is None else total + part
        clock["blocks"] += time.perf_counter() - t
        return out


def pack_blocks(blocks: BatchBlocks) -> dict:
    """The blocks of a partition reduced to what it saw.

    ``a11_flat`` and ``a1xy`` are kept at the levels ``seen`` (a row of either nonzero; the
    others are zero), ``a21`` and ``a22`` as their nonzero entries (COO triplets), ``a2xy`` at
    its nonzero rows; ``axy``, ``R`` and the slopes' ranges as they are.
    """
    cp = blocks.cp
    seen = np.flatnonzero(cp.a11_flat.any(axis=1) | cp.a1xy.any(axis=(0, 2)))
    out = {
        "n": cp.n,
        "p": cp.p,
        "m1": cp.a11_flat.shape[0],
        "s1": cp.a1xy.shape[0],
        "seen": seen,
        "a11": cp.a11_flat[seen],
        "a1xy": cp.a1xy[:, seen, :],
        "axy": cp.axy,
        "r": blocks.r,
        "z_min": blocks.z_min,
        "z_max": blocks.z_max,
    }
    if cp.a21 is not None:
        a21 = cp.a21.tocoo()
        rows, cols = np.nonzero(cp.a22)
        seen2 = np.flatnonzero(cp.a2xy.any(axis=1))
        out.update(
            a21=(a21.row, a21.col, a21.data, a21.shape),
            a22=(rows, cols, cp.a22[rows, cols]),
            q2=cp.a22.shape[0],
            seen2=seen2,
            a2xy=cp.a2xy[seen2],
        )
    return out


class BlockSum:
    """The driver's running sum of packed partition blocks (:func:`pack_blocks`).

    Adding a partition costs the size of what it sent (levels seen, nonzeros), not the size
    of the whole table's blocks; ``Z2'Z1``'s triplets are gathered and summed once at the end.
    """

    def __init__(self) -> None:
        self.parts = 0
        self.seconds = {"read": 0.0, "blocks": 0.0}
        self._first: dict | None = None

    def add(self, packed: dict) -> None:
        """Add one partition's blocks."""
        self.parts += 1
        if self._first is None:
            m1, s1, p = packed["m1"], packed["s1"], packed["p"]
            self.n = 0
            self.a11 = np.zeros((m1, s1 * s1))
            self.a1xy = np.zeros((s1, m1, p + 1))
            self.axy = np.zeros((p + 1, p + 1))
            self.rs: list[np.ndarray] = []
            self.z_min = [np.full_like(z, np.inf) for z in packed["z_min"]]
            self.z_max = [np.full_like(z, -np.inf) for z in packed["z_max"]]
            if "q2" in packed:
                self.a21: list[tuple] = []
                self.a22 = np.zeros((packed["q2"], packed["q2"]))
                self.a2xy = np.zeros((packed["q2"], p + 1))
            self._first = packed
        for key, sec in packed.get("seconds", {}).items():
            self.seconds[key] = self.seconds.get(key, 0.0) + sec
        seen = packed["seen"]
        self.n += packed["n"]
        self.a11[seen] += packed["a11"]
        self.a1xy[:, seen, :] += packed["a1xy"]
        self.axy += packed["axy"]
        self.rs.append(packed["r"])
        for lo, hi, a, b in zip(
            self.z_min, self.z_max, packed["z_min"], packed["z_max"], strict=True
        ):
            np.minimum(lo, a, out=lo)
            np.maximum(hi, b, out=hi)
        if "q2" in packed:
            self.a21.append(packed["a21"])
            rows, cols, values = packed["a22"]
            self.a22[rows, cols] += values
            self.a2xy[packed["seen2"]] += packed["a2xy"]

    def total(self) -> BatchBlocks:
        """The blocks of every row (as summing :class:`BatchBlocks` would give)."""
        if self._first is None:
            raise ModelError("No row reached the Spark job; the table changed? Fit again.")
        rest = {}
        if "q2" in self._first:
            shape = self.a21[0][3]
            rows, cols, values = (np.concatenate([t[k] for t in self.a21]) for k in range(3))
            a21 = sp.coo_matrix((values, (rows, cols)), shape=shape).tocsr()
            a21.sum_duplicates()
            rest = {"a21": a21, "a22": self.a22, "a2xy": self.a2xy}
        cp = CrossProducts(
            n=int(self.n),
            p=int(self._first["p"]),
            a11_flat=self.a11,
            a1xy=self.a1xy,
            axy=self.axy,
            **rest,
        )
        return BatchBlocks(cp, _qr_r(np.vstack(self.rs)), tuple(self.z_min), tuple(self.z_max))


# ------------------------------------------------------------------ driver: pass 2
def spark_blocks(
    engine: SparkEngine,
    plan: StreamPlan,
    batch_size: int,
    progress: Callable[[int, int, float], None] | None = None,
) -> tuple[BatchBlocks, dict]:
    """Pass 2 on Spark (module docstring): the summed blocks, and figures of the job.

    ``progress(rows_done, rows_total, rows_per_second)`` is called from this thread about
    twice a second while the job runs, with the rows done estimated from the share of
    partitions finished (Spark's status tracker), and once at the end.

    Returns
    -------
    blocks, figures
        :class:`BatchBlocks` of every row used; ``partitions`` (that had rows),
        ``executor_read`` and ``executor_blocks`` (seconds summed over partitions: waiting
        for Spark's pandas batches, and our design code, sums and packing), ``driver_sum``
        (seconds to unpickle and add the partitions' blocks).

    Raises
    ------
    LMMError
        The error a partition met in the data (as DuckDB would raise it), or a
        :class:`ModelError` when the Spark job fails.
    """
    job = engine.selected(plan.columns, plan.where).mapInPandas(
        PartitionBlocks(plan, batch_size), "blocks binary"
    )
    start = time.perf_counter()
    parts = collect_payloads(engine, job, plan.n_used, progress)
    t = time.perf_counter()
    acc = BlockSum()
    for packed in parts:
        acc.add(packed)
    blocks = acc.total()
    figures = {
        "partitions": acc.parts,
        "executor_read": acc.seconds["read"],
        "executor_blocks": acc.seconds["blocks"],
        "driver_sum": time.perf_counter() - t,
    }
    if progress is not None:
        done = blocks.cp.n
        progress(done, plan.n_used, done / max(time.perf_counter() - start, 1e-9))
    return blocks, figures


def collect_payloads(engine: SparkEngine, job, n_used: int, progress) -> list:
    """The partitions' payloads of a pass-2 job (one row ``blocks`` each: a pickled
    ``("blocks", value)`` or ``("error", class name, message)``), their values unpickled.

    Raises
    ------
    LMMError
        The error a partition met in the data (as DuckDB would raise it), or a
        :class:`ModelError` when the Spark job fails.
    """
    try:
        rows = _collect(engine.spark, job, n_used, progress)
    except LMMError:
        raise
    except Exception as exc:
        if _is_spark_exception(exc):
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise ModelError(f"The Spark job of pass 2 failed: {first}") from exc
        raise
    out = []
    for row in rows:
        payload = pickle.loads(row["blocks"])
        if payload[0] == "error":
            raise _ERRORS.get(payload[1], DataError)(payload[2])
        out.append(payload[1])
    return out


def _context(spark):
    """The SparkContext, or ``None`` under Spark Connect (no status tracker there)."""
    try:
        return spark.sparkContext
    except Exception:  # Spark Connect raises its own "not supported" error
        return None


def _collect(spark, job, n_used: int, progress) -> list:
    """``job.collect()``; with ``progress``, in a thread of its own job group while this
    thread reports the share of tasks done."""
    sc = _context(spark)
    if progress is None or sc is None:
        return job.collect()
    from pyspark import InheritableThread

    group = f"lmm-stream-{uuid.uuid4().hex}"
    box: dict = {}

    def run() -> None:
        try:
            sc.setJobGroup(group, "lmm_core streamed fit: pass 2", interruptOnCancel=True)
            box["rows"] = job.collect()
        except BaseException as exc:  # handed to the calling thread
            box["error"] = exc

    thread = InheritableThread(target=run, daemon=True)
    start = time.perf_counter()
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.5)
            done, total = _tasks(sc, group)
            if total and thread.is_alive():
                rows = int(n_used * done / total)
                progress(rows, n_used, rows / max(time.perf_counter() - start, 1e-9))
    except BaseException:
        sc.cancelJobGroup(group)
        thread.join()
        raise
    if "error" in box:
        raise box["error"]
    return box["rows"]


def _tasks(sc, group: str) -> tuple[int, int]:
    """Tasks finished and tasks in all, over the stages of the jobs of ``group``."""
    tracker = sc.statusTracker()
    done = total = 0
    for job_id in tracker.getJobIdsForGroup(group):
        info = tracker.getJobInfo(job_id)
        for stage_id in info.stageIds if info is not None else ():
            stage = tracker.getStageInfo(stage_id)
            if stage is not None:
                done += stage.numCompletedTasks
                total += stage.numTasks
    return done, total


# ------------------------------------------------------------------ the rows again
class SparkRows:
    """The rows used, streamed back to the driver on demand (``iter_fitted``): each
    partition's Arrow batches, one partition at a time (``toLocalIterator``), restricted in
    Spark SQL to some groups with ``keep = (column, values)``. It holds the SparkSession, so
    a result carrying it does not pickle."""

    def __init__(self, engine: SparkEngine, columns: Sequence[str], where: str) -> None:
        self.engine = engine
        self.columns = tuple(columns)
        self.where = where

    def __call__(self, keep: tuple[str, Sequence] | None = None) -> Iterator[pd.DataFrame]:
        import pyarrow as pa

        frame = self.engine.selected(self.columns, self.where)
        if keep is not None:
            from pyspark.sql import functions as F

            column, values = keep
            frame = frame.where(F.col(column).isin(list(values)))
        for row in frame.mapInArrow(_to_ipc, "ipc binary").toLocalIterator():
            table = pa.ipc.open_stream(row["ipc"]).read_all()
            if table.num_rows:
                yield table.to_pandas()


def _to_ipc(batches):
    """Executor side of :class:`SparkRows`: each Arrow batch as IPC bytes."""
    import pyarrow as pa

    for batch in batches:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, batch.schema) as writer:
            writer.write_batch(batch)
        yield pa.RecordBatch.from_pydict({"ipc": [sink.getvalue().to_pybytes()]})


__all__ = [
    "BlockSum",
    "PartitionBlocks",
    "SparkEngine",
    "SparkRows",
    "is_spark_frame",
    "pack_blocks",
    "spark_blocks",
]
