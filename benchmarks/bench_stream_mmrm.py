"""Benchmark of streamed MMRMs (issue 18): a visit covariance structure fitted from Parquet.

A seeded parallel-group trial is written to Parquet (patients with 6 scheduled visits, two
arms, a baseline covariate, monotone drop-out and a few missed visits: about 5.2 rows per
patient), then ``y ~ baseline + arm * visit + us(visit | patient)`` (21 covariance parameters)
is fitted by streaming with DuckDB (rows sorted by patient, the patterns' summed products),
(``--in-memory``) by the in-memory path on the same rows (pandas, then
:func:`lmm_core.fit_lmm`) and (``--spark``) with Spark in local mode (``local[2]``; rows
partitioned and sorted by patient on the executors), each in a fresh process for its own
peak memory (maximum resident set size). ``--r`` also fits the same rows with R's mmrm
(``mmrm(y ~ baseline + arm * visit + us(visit | patient))``, REML, its default optimizer) and
reports its time and the difference of the estimates.

Usage::

    PYTHONPATH=. .venv/bin/python benchmarks/bench_stream_mmrm.py --rows 1000000 --in-memory
    PYTHONPATH=. .venv/bin/python benchmarks/bench_stream_mmrm.py --rows 200000 --r
    PYTHONPATH=. .venv/bin/python benchmarks/bench_stream_mmrm.py --rows 1000000 --spark
    PYTHONPATH=. .venv/bin/python benchmarks/bench_stream_mmrm.py --rows 10000000
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
import pandas as pd

FORMULA = "y ~ baseline + arm * visit + us(visit | patient)"
VISITS = 6


def write_trial(path: str, rows: int, seed: int = 7) -> int:
    """A seeded MMRM trial of about ``rows`` rows to Parquet; returns the rows written."""
    rng = np.random.default_rng(seed)
    n = max(int(rows / 5.2), 20)
    t = np.arange(VISITS)
    corr = 0.6 ** np.abs(t[:, None] - t[None, :])
    sd = 1.0 + 0.15 * t
    chol = np.linalg.cholesky(corr * np.outer(sd, sd))
    arm = rng.integers(0, 2, n)
    base = rng.normal(50.0, 8.0, n)
    eps = rng.standard_normal((n, VISITS)) @ chol.T
    y = 10 + 0.8 * base[:, None] - 0.9 * t[None, :] * arm[:, None] + 0.2 * t[None, :] + eps
    last = np.minimum(VISITS, 2 + rng.geometric(0.18, n))  # monotone drop-out
    seen = (t[None, :] < last[:, None]) & (rng.random((n, VISITS)) > 0.03)
    seen[:, 0] = True
    pid, vis = np.nonzero(seen)
    frame = pd.DataFrame(
        {
            "patient": pid.astype(np.int64),
            "visit": pd.Categorical.from_codes(vis, [f"V{k + 1}" for k in t]).astype(str),
            "arm": np.where(arm[pid] == 1, "active", "placebo"),
            "baseline": base[pid],
            "y": y[pid, vis],
        }
    )
    frame = frame.sample(frac=1.0, random_state=seed)  # rows in no order: the pass sorts
    frame.to_parquet(path, row_group_size=250_000, index=False)
    return len(frame)


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def fit_once(path: str, how: str, batch_size: int) -> dict:
    """One fit in this process (``how``: ``stream``, ``memory`` or ``spark``)."""
    import lmm_core

    extra = {}
    if how == "spark":
        spark, extra["session_start"] = spark_session()
    t0 = time.perf_counter()
    if how == "stream":
        res = lmm_core.fit_lmm(FORMULA, path, batch_size=batch_size)
        parts = {k: res.timings[k] for k in ("pass1", "pass2", "optimize")}
    elif how == "spark":
        res = lmm_core.fit_lmm(FORMULA, path, engine="spark", spark=spark, batch_size=batch_size)
        parts = {k: res.timings[k] for k in ("pass1", "pass2", "optimize")}
        from bench_stream import tree_hwm_gib

        extra["jvm_gib"] = tree_hwm_gib(spark.sparkContext._gateway.proc.pid)
    else:
        frame = pd.read_parquet(path)
        t1 = time.perf_counter()
        res = lmm_core.fit_lmm(FORMULA, frame)
        parts = {"read": t1 - t0, "fit": time.perf_counter() - t1}
    wall = time.perf_counter() - t0
    return {
        "how": how,
        "wall": wall,
        "peak_gib": peak_gib(),
        "objective": res.objective,
        "beta": res.beta.tolist(),
        "names": list(res.x_names),
        "nobs": res.nobs,
        "subjects": res.n_subjects,
        "evals": res.opt.n_evals,
        **parts,
        **extra,
    }


def spark_session() -> tuple[object, float]:
    """Spark in local mode on the two cores (its start, in seconds, is not counted)."""
    os.environ["PYSPARK_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    t = time.perf_counter()
    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.driver.memory", "2g")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark, time.perf_counter() - t


def fit_r(path: str) -> dict:
    """The same fit with R's mmrm (time of ``mmrm()`` only; the rows go to R as CSV)."""
    csv = path.replace(".parquet", ".csv")
    pd.read_parquet(path).to_csv(csv, index=False)
    script = f"""
suppressMessages(library(mmrm))
d <- read.csv("{csv}")
d$visit <- factor(d$visit); d$patient <- factor(d$patient)
d$arm <- factor(d$arm, levels = c("active", "placebo"))
t0 <- proc.time()[["elapsed"]]
f <- mmrm(y ~ baseline + arm * visit + us(visit | patient), data = d, reml = TRUE)
el <- proc.time()[["elapsed"]] - t0
cat(sprintf("%.6f %.10f\\n", el, -2 * as.numeric(logLik(f))))
cat(sprintf("%.12g", coef(f)), sep = " "); cat("\\n")
"""
    done = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "R"}
    lines = done.stdout.strip().splitlines()
    seconds, objective = (float(v) for v in lines[-2].split())
    return {"wall": seconds, "objective": objective, "beta": [float(v) for v in lines[-1].split()]}


def child(path: str, how: str, batch_size: int) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", how, "--path", path]
    cmd += ["--batch-size", str(batch_size)]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path_var = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONPATH": path_var}
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--batch-size", type=int, default=1_000_000)
    ap.add_argument("--in-memory", action="store_true", help="also fit in memory")
    ap.add_argument("--spark", action="store_true", help="also fit with Spark (local[2])")
    ap.add_argument("--r", action="store_true", help="also fit with R's mmrm")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--path", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(fit_once(args.path, args.child, args.batch_size)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "mmrm_trial.parquet")
        t0 = time.perf_counter()
        n = write_trial(path, args.rows)
        print(f"{n:,} rows written in {time.perf_counter() - t0:.1f} s; {FORMULA}")
        runs = [child(path, "stream", args.batch_size)]
        if args.in_memory:
            runs.append(child(path, "memory", args.batch_size))
        if args.spark:
            runs.append(child(path, "spark", args.batch_size))
        for r in runs:
            parts = ("pass1", "pass2", "optimize", "read", "fit")
            extra = ", ".join(f"{k} {r[k]:.2f} s" for k in parts if k in r)
            if "jvm_gib" in r:
                extra += f"; JVM and workers {r['jvm_gib']:.2f} GiB, session start not counted"
            print(
                f"{r['how']:>6}: {r['wall']:.2f} s wall ({extra}), peak {r['peak_gib']:.2f} GiB, "
                f"{r['nobs']:,} rows, {r['subjects']:,} patients, {r['evals']} evaluations, "
                f"{r['nobs'] / r['wall']:,.0f} rows/s, -2 REML log-lik {r['objective']:.8f}"
            )
        for b in runs[1:]:
            a = runs[0]
            rel = abs(a["objective"] - b["objective"]) / abs(b["objective"])
            diff = np.max(np.abs(np.subtract(a["beta"], b["beta"])))
            print(f"stream vs {b['how']}: criterion {rel:.1e} relative, max |beta diff| {diff:.1e}")
        if args.r:
            r = fit_r(path)
            if "error" in r:
                print(f"R mmrm failed: {r['error']}")
            else:
                rel = abs(r["objective"] - runs[0]["objective"]) / abs(r["objective"])
                diff = np.max(np.abs(np.subtract(r["beta"], runs[0]["beta"])))
                print(
                    f"R mmrm: {r['wall']:.2f} s (mmrm() only); criterion {rel:.1e} relative to "
                    f"the stream, max |beta diff| {diff:.1e}; streamed total is "
                    f"{r['wall'] / runs[0]['wall']:.1f}x faster"
                )


if __name__ == "__main__":
    main()
