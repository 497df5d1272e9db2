"""Benchmark of streamed fits (issue 18): time and memory of each pass, against in memory.

A seeded trial is written to Parquet (patients in 1,000 hospitals, 1 to 10 visits each,
6.25 visits per patient on average: 1.6M patients at 10M rows), then
``y ~ time * arm + (time | patient) + (1 | hospital)`` is fitted by streaming with DuckDB,
and (``--in-memory``) by the in-memory path on the same rows. Peak memory is the process's
maximum resident set size (``resource.getrusage``), so run one configuration per process
for the streaming figure to be its own: ``--in-memory`` runs after the streamed fit.

Usage::

    PYTHONPATH=. .venv/bin/python benchmarks/bench_stream.py --rows 1000000 --in-memory
    PYTHONPATH=. .venv/bin/python benchmarks/bench_stream.py --rows 3000000
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

FORMULA = "y ~ time * arm + (time | patient) + (1 | hospital)"


def write_trial(path: str, rows: int, hospitals: int = 1000, seed: int = 18) -> int:
    """Write the trial in row groups of about 1M rows; returns the number of rows."""
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
        writer.write_table(table, row_group_size=1_000_000)
        written += pid.size
        patient0 += npat
    writer.close()
    return written


def peak_rss_gib() -> float:
    """Maximum resident set size of this process so far (GiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--batch-size", type=int, default=1_000_000)
    ap.add_argument("--in-memory", action="store_true", help="also fit with pandas in memory")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()

    from lmm_core import fit_lmm

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "trial.parquet")
        t = time.perf_counter()
        n = write_trial(path, args.rows)
        print(
            f"wrote {n:,} rows in {time.perf_counter() - t:.1f} s "
            f"({os.path.getsize(path) / 1e6:.0f} MB)"
        )
        base = peak_rss_gib()
        t = time.perf_counter()
        res = fit_lmm(FORMULA, path, batch_size=args.batch_size, threads=args.threads)
        total = time.perf_counter() - t
        tm = res.timings
        print(f"streamed (DuckDB): {res.nobs:,} rows, {res.ngroups}")
        print(
            f"  pass 1 {tm['pass1']:.2f} s, pass 2 {tm['pass2']:.2f} s "
            f"({tm['rows_per_second']:,.0f} rows/s, {1e6 * tm['pass2'] / res.nobs:.2f} us/row)"
        )
        print(
            f"  optimizer {tm['optimize']:.2f} s ({res.opt.n_evals} evals), "
            f"solution {tm['result']:.2f} s, total {total:.2f} s"
        )
        print(f"  peak RSS {peak_rss_gib():.2f} GiB (before the fit {base:.2f} GiB)")
        print(f"  objective {res.objective:.6f} theta {np.round(res.theta, 5)}")
        print(f"  fixef {dict(zip(res.x_names, np.round(res.beta, 5), strict=True))}")
        if args.in_memory:
            import pandas as pd

            t = time.perf_counter()
            df = pd.read_parquet(path)
            t_read = time.perf_counter() - t
            t = time.perf_counter()
            ref = fit_lmm(FORMULA, df)
            t_fit = time.perf_counter() - t
            print(
                f"in memory: read {t_read:.2f} s, fit {t_fit:.2f} s, "
                f"peak RSS {peak_rss_gib():.2f} GiB"
            )
            print(
                f"  objective {ref.objective:.6f} (relative difference "
                f"{abs(ref.objective / res.objective - 1):.1e}), largest beta difference / SE "
                f"{np.max(np.abs(ref.beta - res.beta) / ref.std_errors):.1e}"
            )


if __name__ == "__main__":
    main()
