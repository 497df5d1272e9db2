"""Benchmark of streamed fits (issue 18): time and memory of each pass, DuckDB and Spark.

A seeded trial is written to Parquet (patients in 1,000 hospitals, 1 to 10 visits each, about
5.5 rows per patient: 1.8M patients at 10M rows; row groups of 250k rows), then
``y ~ time * arm + (time | patient) + (1 | hospital)`` is fitted by streaming with DuckDB,
(``--spark``) with Spark in local mode (``local[2]``) on the same file, and (``--in-memory``)
by the in-memory path on the same rows. Peak memory is the process's maximum resident set
size (``resource.getrusage``; for Spark, the JVM's and its Python workers' ``VmHWM`` too), so
one configuration runs per process: ``--scaling`` runs each size in a fresh subprocess and
prints the table of time per row of pass 2, the optimizer's time per evaluation and per
patient, and peak memory; then the on-paper cost of a 1-billion-row extract on a Spark
cluster from those measured costs (assumptions printed with it). ``--profile`` times the
parts of one batch of pass 2 and of one evaluation of the criterion.

Usage::

    PYTHONPATH=. .venv/bin/python benchmarks/bench_stream.py --rows 1000000 --in-memory
    PYTHONPATH=. .venv/bin/python benchmarks/bench_stream.py --rows 1000000 --spark
    PYTHONPATH=. .venv/bin/python benchmarks/bench_stream.py --scaling 1000000,3000000,10000000 \
        --spark
    PYTHONPATH=. .venv/bin/python benchmarks/bench_stream.py --rows 10000000 --profile
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

FORMULA = "y ~ time * arm + (time | patient) + (1 | hospital)"


def write_trial(path: str, rows: int, hospitals: int = 1000, seed: int = 18) -> int:
    """Write the trial in row groups of 250k rows; returns the number of rows."""
    rng = np.random.default_rng(seed)
    hosp_effect = rng.normal(0.0, 2.0, hospitals)
    writer = None
    written = 0
    patient0 = 0
    while written < rows:
        npat = max(1, min(160_000, (rows - written) // 6))
        visits = rng.integers(1, 11, npat)
        visits = visits[np.cumsum(visits) <= rows - written] if npat > 1 else visits
        if visits.size == 0:
            visits = np.array([rows - written])
        npat = visits.size
        pid = np.repeat(np.arange(patient0, patient0 + npat), visits)
        hosp = np.repeat(rng.integers(0, hospitals, npat), visits)
        arm = np.repeat(rng.integers(0, 2, npat), visits)
        start = np.cumsum(visits) - visits
        time_ = (np.arange(pid.size) - np.repeat(start, visits)).astype(float)
        b0 = np.repeat(rng.normal(0.0, 5.0, npat), visits)
        b1 = np.repeat(rng.normal(0.0, 0.8, npat), visits)
        y = (
            140.0
            + hosp_effect[hosp]
            + b0
            + (-0.5 + b1) * time_
            - 1.0 * time_ * arm
            + rng.normal(0.0, 4.0, pid.size)
        )
        table = pa.table(
            {
                "patient": pid.astype(np.int64),
                "hospital": hosp.astype(np.int64),
                "arm": np.where(arm == 1, "treated", "control"),
                "time": time_,
                "y": y,
            }
        )
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=250_000)
        written += pid.size
        patient0 += npat
    writer.close()
    return written


def peak_rss_gib() -> float:
    """Maximum resident set size of this process so far (GiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def tree_hwm_gib(pid: int) -> float:
    """Sum of the peak resident sizes (``VmHWM``) of ``pid`` and its descendants (GiB): for
    the Spark JVM and the Python workers it starts (an upper bound of their joint peak)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    parents[int(entry)] = int(fh.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    tree, grew = {pid}, True
    while grew:
        kids = {p for p, pp in parents.items() if pp in tree} - tree
        tree |= kids
        grew = bool(kids)
    total = 0
    for p in tree:
        try:
            with open(f"/proc/{p}/status") as fh:
                total += next(int(ln.split()[1]) for ln in fh if ln.startswith("VmHWM"))
        except (OSError, StopIteration):
            continue
    return total / 1024**2


def summary(res, wall: float) -> dict:
    """The figures of a streamed fit."""
    tm = res.timings
    m1 = max(res.ngroups.values())
    return {
        "rows": res.nobs,
        "patients": m1,
        "pass1": tm["pass1"],
        "pass2": tm["pass2"],
        "us_per_row": 1e6 * tm["pass2"] / res.nobs,
        "optimize": tm["optimize"],
        "evals": res.opt.n_evals,
        "ms_per_eval": 1e3 * tm["optimize"] / res.opt.n_evals,
        "us_per_patient_eval": 1e6 * tm["optimize"] / res.opt.n_evals / m1,
        "result": tm["result"],
        "total": wall,
        "partitions": tm.get("partitions"),
        "executor_read": tm.get("executor_read"),
        "executor_blocks": tm.get("executor_blocks"),
        "driver_sum": tm.get("driver_sum"),
        "objective": res.objective,
        "beta": res.beta.tolist(),
        "theta": res.theta.tolist(),
    }


def print_fit(name: str, fig: dict) -> None:
    print(f"{name}: {fig['rows']:,} rows, {fig['patients']:,} patients")
    part = f", {fig['partitions']} partitions" if fig.get("partitions") else ""
    print(
        f"  pass 1 {fig['pass1']:.2f} s, pass 2 {fig['pass2']:.2f} s "
        f"({fig['rows'] / fig['pass2']:,.0f} rows/s, {fig['us_per_row']:.2f} us/row{part})"
    )
    print(
        f"  optimizer {fig['optimize']:.2f} s ({fig['evals']} evals, {fig['ms_per_eval']:.0f} "
        f"ms/eval, {fig['us_per_patient_eval']:.2f} us per patient per eval), solution "
        f"{fig['result']:.2f} s, total {fig['total']:.2f} s"
    )
    if fig.get("partitions"):
        print(
            f"  executors (summed over partitions): waiting for Spark's pandas batches "
            f"{fig['executor_read']:.2f} s, our design code and sums {fig['executor_blocks']:.2f}"
            f" s; driver unpickling and adding {fig['driver_sum']:.2f} s"
        )
    if fig.get("queries"):
        slow = sorted(fig["queries"], reverse=True)[:3]
        print(
            f"  pass 1: {len(fig['queries'])} Spark SQL queries, "
            f"{sum(q[0] for q in fig['queries']):.1f} s in all; slowest: "
            + "; ".join(f"{sec:.1f} s {sql}" for sec, sql in slow)
        )
    if fig.get("cpu"):
        c = fig["cpu"]
        print(
            f"  CPU seconds (load average {fig['load']:.1f} on 2 cores): pass 1 {c['pass1']:.2f},"
            f" pass 2 {c['pass2']:.2f} ({1e6 * c['pass2'] / fig['rows']:.2f} us/row), optimizer "
            f"{c['optimize']:.2f} ({1e3 * c['optimize'] / fig['evals']:.0f} ms/eval)"
        )
    print(f"  peak memory {fig['peak_gib']:.2f} GiB{fig.get('peak_note', '')}")
    print(f"  objective {fig['objective']:.6f} theta {np.round(fig['theta'], 5)}")


def cpu_timed(module, name: str, cpu: dict) -> None:
    """Wrap ``module.name`` to add its CPU seconds (this process, every thread) to
    ``cpu[name]``: on a shared machine the wall time depends on the others' load."""
    plain = getattr(module, name)

    def timed(*a, **k):
        t = time.process_time()
        try:
            return plain(*a, **k)
        finally:
            cpu[name] = cpu.get(name, 0.0) + time.process_time() - t

    setattr(module, name, timed)


def run_duckdb(path: str, args) -> dict:
    import lmm_core.stream.fit as stream_fit
    from lmm_core import fit_lmm

    cpu: dict = {}
    for name in ("plan_stream", "_accumulate", "optimum"):
        cpu_timed(stream_fit, name, cpu)
    t = time.perf_counter()
    res = fit_lmm(FORMULA, path, batch_size=args.batch_size, threads=args.threads)
    fig = summary(res, time.perf_counter() - t)
    fig["peak_gib"] = peak_rss_gib()
    fig["cpu"] = {
        "pass1": cpu["plan_stream"],
        "pass2": cpu["_accumulate"],
        "optimize": cpu["optimum"],
    }
    fig["load"] = os.getloadavg()[0]
    return fig


def run_spark(path: str, args) -> dict:
    """The same fit with Spark in local mode (session start not counted)."""
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYTHONPATH"] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    from pyspark.sql import SparkSession

    from lmm_core import fit_lmm
    from lmm_core.stream.spark import SparkEngine

    queries: list[tuple[float, str]] = []
    plain = SparkEngine.query

    def timed(self, sql: str):  # pass 1's queries, one by one
        t = time.perf_counter()
        out = plain(self, sql)
        queries.append((time.perf_counter() - t, " ".join(sql.split())[:70]))
        return out

    SparkEngine.query = timed
    t = time.perf_counter()
    spark = (
        SparkSession.builder.master(f"local[{args.spark_cores}]")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", str(args.spark_cores))
        .config("spark.driver.memory", "2g")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    started = time.perf_counter() - t
    try:
        t = time.perf_counter()
        res = fit_lmm(FORMULA, path, engine="spark", spark=spark, batch_size=args.batch_size)
        fig = summary(res, time.perf_counter() - t)
        jvm = spark.sparkContext._gateway.proc.pid
        fig["peak_gib"] = peak_rss_gib()
        fig["jvm_gib"] = tree_hwm_gib(jvm)
        fig["queries"] = queries
        fig["peak_note"] = (
            f" (driver Python; JVM and Python workers {fig['jvm_gib']:.2f} GiB; session "
            f"start {started:.1f} s, not counted)"
        )
    finally:
        spark.stop()
    return fig


def run_in_memory(path: str) -> dict:
    import pandas as pd

    from lmm_core import fit_lmm

    t = time.perf_counter()
    df = pd.read_parquet(path)
    t_read = time.perf_counter() - t
    t = time.perf_counter()
    ref = fit_lmm(FORMULA, df)
    return {
        "read": t_read,
        "fit": time.perf_counter() - t,
        "peak_gib": peak_rss_gib(),
        "objective": ref.objective,
        "beta": ref.beta.tolist(),
        "se": ref.std_errors.tolist(),
    }


def profile(path: str, args) -> None:
    """Where the time of pass 2 (one batch) and of one evaluation goes."""
    import cProfile
    import pstats
    from dataclasses import replace

    from lmm_core.design.reterms import amalgamate
    from lmm_core.model.cross_products import cross_products
    from lmm_core.model.linalg import single_threaded_blas
    from lmm_core.stream.batches import _qr_r, batch_blocks
    from lmm_core.stream.plan import plan_stream
    from lmm_core.stream.sources import DuckDBEngine, as_source
    from lmm_core.stream.spark import pack_blocks

    eng = DuckDBEngine(as_source(path), threads=args.threads)
    t = time.perf_counter()
    plan = plan_stream(FORMULA, eng)
    print(f"profile: pass 1 {time.perf_counter() - t:.2f} s")
    t = time.perf_counter()
    frame = next(eng.batches(plan.columns, plan.where, args.batch_size))
    n = len(frame)
    parts = {"read (DuckDB -> pandas)": time.perf_counter() - t}
    design = plan.design
    t = time.perf_counter()
    y = design.response_values(frame)
    X = design.fixed_matrix(frame)
    parts["X and y (fixed recipe)"] = time.perf_counter() - t
    terms = []
    for term in plan.reterms:
        t = time.perf_counter()
        codes, z = term.rebuild.evaluate(frame)
        parts[f"codes and Z of ({term.group}), {term.n_levels:,} levels"] = time.perf_counter() - t
        terms.append(replace(term, codes=codes, z=z))
    t = time.perf_counter()
    cp = cross_products(X, y, amalgamate(tuple(terms))[0])
    parts["cross-products (bincount, sparse Z2'Z1, Z2'Z2)"] = time.perf_counter() - t
    t = time.perf_counter()
    _qr_r(X)
    parts["QR of X"] = time.perf_counter() - t
    t = time.perf_counter()
    blocks = batch_blocks(plan, frame)
    whole = time.perf_counter() - t
    t = time.perf_counter()
    blocks + blocks
    parts["adding two batches' blocks (every level)"] = time.perf_counter() - t
    t = time.perf_counter()
    pack_blocks(blocks)
    parts["packing the blocks (Spark: levels seen)"] = time.perf_counter() - t
    print(f"pass 2, one batch of {n:,} rows (batch_blocks {whole:.2f} s in all):")
    for name, sec in parts.items():
        print(f"  {name:<55} {sec:6.3f} s  {1e6 * sec / n:6.2f} us/row")
    del cp
    from lmm_core import fit_lmm

    res = fit_lmm(FORMULA, path, batch_size=args.batch_size, threads=args.threads)
    dev = res.deviance
    with single_threaded_blas():
        t = time.perf_counter()
        for _ in range(5):
            dev(res.theta)
        per = (time.perf_counter() - t) / 5
        m1 = max(res.ngroups.values())
        print(
            f"one evaluation of the criterion: {1e3 * per:.0f} ms "
            f"({1e6 * per / m1:.2f} us per patient, {m1:,} patients); profile of 3:"
        )
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(3):
            dev(res.theta)
        prof.disable()
    pstats.Stats(prof).sort_stats("tottime").print_stats(8)


def billion(figs: dict[int, dict], spark: dict | None) -> None:
    """On paper: a 1-billion-row extract on a Spark cluster, from the measured costs."""
    from lmm_core.stream.plan import GIB

    big = figs[max(figs)]
    c_row = big["cpu"]["pass2"] / big["rows"]  # CPU: DuckDB's reading and our design code
    if spark:  # the executors' own time (reading excluded: Spark's, measured apart)
        c_row_spark = (spark["executor_read"] + spark["executor_blocks"]) / spark["rows"]
    else:
        c_row_spark = c_row
    c_pat = big["cpu"]["optimize"] / big["evals"] / big["patients"]
    c_pass1 = big["cpu"]["pass1"] / big["rows"]  # DuckDB, every thread
    evals = big["evals"]
    cores = 200
    print(
        "\nOn paper: 1 billion rows on a Spark cluster of 50 executors x 4 cores (200 cores), "
        "from the costs measured above"
    )
    print(
        f"  assumptions: pass 2 costs {1e6 * c_row_spark:.2f} us per row per core (Spark "
        f"executors at {spark['rows'] if spark else 0:,} rows; the per-batch part that grows "
        f"with patients not counted: batches of at least a few times the patients), scaling "
        "linearly with cores, storage and network not limiting; pass 1 about "
        f"{1e6 * c_pass1:.2f} CPU us per row (DuckDB here); the optimizer on one driver core at "
        f"{1e6 * c_pat:.2f} us per patient per evaluation, {evals} evaluations; the same "
        "model (S1 = 2, p = 4), files clustered by patient."
    )
    for label, rows_per_patient in (("6 visits per patient", 6), ("100 visits per patient", 100)):
        m1 = int(1e9 / rows_per_patient)
        blocks = 8 * m1 * (3 * 4 + 2 * 2 * 5) + 8 * m1 * 2 * 3
        t1 = 1e9 * c_pass1 / cores
        t2 = 1e9 * c_row_spark / cores
        t_opt = c_pat * m1 * evals
        print(
            f"  {label}: {m1 / 1e6:,.0f}M patients; blocks about {blocks / GIB:.0f} GiB on "
            f"the driver (and in each executor), pass 1 ~{t1 / 60:.0f} min, pass 2 "
            f"~{t2 / 60:.0f} min, optimizer ~{t_opt / 60:.0f} min "
            f"({c_pat * m1:.1f} s per evaluation)"
        )
    print(
        "  The rows are cheap on a cluster (they scale with cores); what does not scale is on "
        "the driver: the blocks and the optimizer grow with the number of patients, and each "
        "batch of pass 2 allocates the blocks of every patient (plus the plan carries every "
        "patient's label to each executor), so 167M patients is out of reach of this design "
        "(tens of GiB per executor); 10M patients (100 visits each) is a few GiB and "
        "minutes of driver time."
    )


def one(args) -> dict:
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "trial.parquet")
        t = time.perf_counter()
        n = write_trial(path, args.rows)
        if not args.json:
            print(
                f"wrote {n:,} rows in {time.perf_counter() - t:.1f} s "
                f"({os.path.getsize(path) / 1e6:.0f} MB); load average {os.getloadavg()}"
            )
        if args.profile:
            profile(path, args)
            return out
        if args.spark:
            out["spark"] = run_spark(path, args)
            out["spark"]["cores"] = args.spark_cores
        else:
            out["duckdb"] = run_duckdb(path, args)
        if args.in_memory:
            out["memory"] = run_in_memory(path)
    if not args.json:
        report(out)
    return out


def report(out: dict) -> None:
    if "duckdb" in out:
        print_fit("streamed (DuckDB)", out["duckdb"])
    if "spark" in out:
        print_fit(f"streamed (Spark local[{out['spark']['cores']}])", out["spark"])
    if "memory" in out:
        mem = out["memory"]
        ref = out.get("duckdb") or out["spark"]
        diff = np.max(np.abs(np.subtract(mem["beta"], ref["beta"])) / np.array(mem["se"]))
        print(
            f"in memory: read {mem['read']:.2f} s, fit {mem['fit']:.2f} s, peak RSS "
            f"{mem['peak_gib']:.2f} GiB (streamed fit first in the same process)"
        )
        print(
            f"  objective {mem['objective']:.6f} (relative difference "
            f"{abs(mem['objective'] / ref['objective'] - 1):.1e}), largest beta difference / "
            f"SE {diff:.1e}"
        )


def child(args, rows: int, *extra: str) -> dict:
    """One configuration in a fresh process (its own peak memory)."""
    cmd = [sys.executable, os.path.abspath(__file__), "--rows", str(rows), "--json"]
    cmd += ["--batch-size", str(args.batch_size), *extra]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def scaling(args) -> None:
    sizes = [int(s) for s in args.scaling.split(",")]
    print(f"load average before: {os.getloadavg()} (2 cores, shared)")
    figs, spark = {}, None
    for rows in sizes:
        out = child(args, rows, *(["--in-memory"] if rows == sizes[0] else []))
        figs[rows] = out["duckdb"]
        print(f"--- {rows:,} rows (load average {os.getloadavg()})")
        report(out)
    sparks = {}
    for rows in sizes if args.spark else []:
        spark = child(args, rows, "--spark", "--spark-cores", str(args.spark_cores))["spark"]
        spark["cores"] = args.spark_cores
        sparks[rows] = spark
        print(f"--- {rows:,} rows on Spark (load average {os.getloadavg()})")
        report({"spark": spark})
        print(
            f"  objective relative difference to DuckDB "
            f"{abs(spark['objective'] / figs[rows]['objective'] - 1):.1e}"
        )
    spark = sparks.get(sizes[0])
    print(
        "\nwall seconds (CPU seconds)\n"
        "rows        patients   pass1         pass2          us/row       evals  ms/eval"
        "     us/pat/eval  total   peak GiB  load"
    )
    for rows, f in figs.items():
        c = f["cpu"]
        print(
            f"{rows:>10,} {f['patients']:>10,} {f['pass1']:>5.1f} ({c['pass1']:>5.1f}) "
            f"{f['pass2']:>6.1f} ({c['pass2']:>6.1f}) {f['us_per_row']:>5.2f} "
            f"({1e6 * c['pass2'] / rows:>5.2f}) {f['evals']:>4} {f['ms_per_eval']:>5.0f} "
            f"({1e3 * c['optimize'] / f['evals']:>5.0f}) "
            f"{1e6 * c['optimize'] / f['evals'] / f['patients']:>5.2f} {f['total']:>7.1f} "
            f"{f['peak_gib']:>6.2f} {f['load']:>6.1f}"
        )
    if sparks:
        print(
            "\nSpark local mode, wall seconds\n"
            "rows        pass1   pass2   us/row   evals  ms/eval  total   JVM+workers GiB"
        )
        for rows, f in sparks.items():
            print(
                f"{rows:>10,} {f['pass1']:>7.1f} {f['pass2']:>7.1f} {f['us_per_row']:>7.2f} "
                f"{f['evals']:>6} {f['ms_per_eval']:>7.0f} {f['total']:>7.1f} "
                f"{f.get('jvm_gib', float('nan')):>8.2f}"
            )
    billion(figs, spark)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--batch-size", type=int, default=1_000_000)
    ap.add_argument("--in-memory", action="store_true", help="also fit with pandas in memory")
    ap.add_argument("--spark", action="store_true", help="fit with Spark in local mode")
    ap.add_argument("--spark-cores", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--scaling", default=None, help="sizes, e.g. 1000000,3000000,10000000")
    ap.add_argument("--profile", action="store_true", help="where the time goes")
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.scaling:
        scaling(args)
        return
    out = one(args)
    if args.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
