"""Speed of random effects plus a covariance of the visits (issue 14) beside ``nlme::lme``.

Model, by REML: ``y ~ time * arm + (1 | hospital) + ar1(visit | patient)`` on trials from
:func:`lmm_core.simulation.trial.simulate_trial` (the simulator of ``benchmarks/bench_fit.py``;
8 scheduled visits, drop-out and missed visits; the visit number is the structure's factor):

* the issue's 80k-row trial (100 hospitals x 125 patients; goal: under 3 s);
* smaller trials (``--r-sizes``, default 20 x 25 and 40 x 50 patients) fitted by us and, where
  ``Rscript`` with nlme is available, by ``lme(y ~ time * arm, random = ~ 1 | hospital,
  correlation = corAR1(form = ~ visit | hospital / patient), method = "REML")``.

It reports our wall time (median of ``--repeat`` fits after one warm-up, building the design
included), lme's elapsed time, and our log-likelihood minus lme's (positive: ours is higher).
BLAS runs on one thread (``OPENBLAS_NUM_THREADS=1`` unless set). A benchmark, not a test:
nothing is asserted.

Usage (from the repository root)::

    PYTHONPATH=. .venv/bin/python benchmarks/bench_mmrm_random.py          # everything
    PYTHONPATH=. .venv/bin/python benchmarks/bench_mmrm_random.py --no-r   # ours only
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import pandas as pd  # noqa: E402

from lmm_core import fit_lmm  # noqa: E402
from lmm_core.simulation.trial import simulate_trial  # noqa: E402

FORMULA = "y ~ time * arm + (1 | hospital) + ar1(visit | patient)"
SEED = 20240601
R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
suppressMessages(library(nlme))
d <- read.csv(args[1], stringsAsFactors = TRUE)
d$arm <- factor(d$arm, levels = c("control", "treatment"))
el <- system.time(fit <- lme(y ~ time * arm, data = d, random = ~ 1 | hospital,
                             correlation = corAR1(form = ~ visit | hospital / patient),
                             method = "REML"))[["elapsed"]]
cat(sprintf("%.17g %.6f\n", as.numeric(logLik(fit)), el))
"""


def time_ours(data: pd.DataFrame, repeat: int) -> tuple[float, float, bool, int]:
    """Median wall time of ``fit_lmm`` after a warm-up, log-likelihood, convergence, evals."""
    fit = fit_lmm(FORMULA, data)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fit = fit_lmm(FORMULA, data)
        times.append(time.perf_counter() - start)
    return statistics.median(times), fit.loglik, fit.converged, fit.opt.n_evals


def run_lme(data: pd.DataFrame, timeout: float) -> tuple[float, float] | None:
    """``(logLik, seconds)`` of nlme::lme, or None without R (or on failure / timeout)."""
    if shutil.which("Rscript") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        script, csv = Path(tmp) / "lme.R", Path(tmp) / "trial.csv"
        script.write_text(R_SCRIPT)
        data.to_csv(csv, index=False)
        try:
            out = subprocess.run(
                ["Rscript", str(script), str(csv)],
                capture_output=True, text=True, timeout=timeout, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            print(f"  lme stopped after {timeout:.0f} s", file=sys.stderr)
            return None
    if out.returncode != 0:
        print(f"  lme failed: {out.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    loglik, seconds = out.stdout.split()
    return float(loglik), float(seconds)


def report(label: str, n: int, ours: tuple, lme: tuple[float, float] | None) -> None:
    seconds, loglik, converged, evals = ours
    line = (
        f"{label:<18} {n:>7} rows  ours {seconds:8.3f} s ({evals} evaluations)  "
        f"logLik {loglik:15.6f}  conv {converged}"
    )
    if lme is not None:
        line += f"  | lme {lme[1]:8.3f} s  ours - lme {loglik - lme[0]:+.2e}"
    print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-r", action="store_true", help="skip nlme::lme")
    parser.add_argument("--r-sizes", default="20x25,40x50", help="hospitals x patients, ...")
    parser.add_argument("--r-timeout", type=float, default=600.0)
    args = parser.parse_args()
    big = simulate_trial(n_hospitals=100, patients_per_hospital=125, seed=SEED).data
    report("80k trial", len(big), time_ours(big, args.repeat), None)
    for size in filter(None, args.r_sizes.split(",")):
        hospitals, patients = (int(v) for v in size.split("x"))
        data = simulate_trial(n_hospitals=hospitals, patients_per_hospital=patients, seed=SEED)
        data = data.data
        lme = None if args.no_r else run_lme(data, args.r_timeout)
        report(f"trial {size}", len(data), time_ours(data, args.repeat), lme)


if __name__ == "__main__":
    main()
