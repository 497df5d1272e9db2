"""Spline models cost what straight-line models of the same size cost (issue 13).

On the 80k-row trial (``data/trial_large.csv``: 79,369 visits of 12,500 patients) fits, in one
run and each the median of ``--repeats`` fits after a warm-up:

* ``y ~ ns(time, 3) * arm + (ns(time, 2) | patient)`` (8 fixed columns, 3 random per patient);
* the same sizes with plain powers: ``y ~ (time + I(time^2) + I(time^3)) * arm +
  (time + I(time^2) | patient)``;
* the straight line ``y ~ time * arm + (time | patient)`` (4 and 2 columns);

with lmm_core and, when ``Rscript`` with lme4 is installed, with lme4 (``lmer``, REML, default
optimizer) on the same CSV in a subprocess: it reports lme4's fit time (``system.time`` of
``lmer`` alone, data already read) and its REML criterion, so that the ratio is measured in
the same run and the criteria can be compared. It also times building the spline design alone
(the basis is computed once per fit, before the optimizer). Nothing is asserted.

Usage (from the repository root)::

    PYTHONPATH=. .venv/bin/python benchmarks/bench_splines.py [--repeats 2] [--no-lme4]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lmm_core import fit_lmm  # noqa: E402
from lmm_core.design.build import build_design  # noqa: E402

MODELS = {
    "spline": "y ~ ns(time, 3) * arm + (ns(time, 2) | patient)",
    "powers": "y ~ (time + I(time^2) + I(time^3)) * arm + (time + I(time^2) | patient)",
    "straight": "y ~ time * arm + (time | patient)",
}

R_SCRIPT = r"""
suppressMessages({library(lme4); library(splines)})
args <- commandArgs(TRUE)
d <- read.csv(args[1], stringsAsFactors = TRUE)
forms <- strsplit(args[2], "\n", fixed = TRUE)[[1]]
reps <- as.integer(args[3])
for (f in forms) {
  invisible(lmer(as.formula(f), d))  # warm-up
  secs <- replicate(reps, system.time(fit <<- lmer(as.formula(f), d))[["elapsed"]])
  cat(sprintf("%s\t%.4f\t%.10f\n", f, median(secs), REMLcrit(fit)))
}
"""


def median_seconds(fn, repeats: int) -> tuple[float, object]:
    fn()  # warm-up
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def run_lme4(csv: Path, repeats: int) -> dict[str, tuple[float, float]]:
    with tempfile.NamedTemporaryFile("w", suffix=".R", delete=False) as fh:
        fh.write(R_SCRIPT)
    proc = subprocess.run(
        ["Rscript", fh.name, str(csv), "\n".join(MODELS.values()), str(repeats)],
        capture_output=True,
        text=True,
    )
    if proc.returncode:
        raise SystemExit(f"lme4 run failed:\n{proc.stderr}")
    out = {}
    for line in proc.stdout.strip().splitlines():
        formula, secs, crit = line.split("\t")
        out[formula] = (float(secs), float(crit))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-lme4", action="store_true")
    args = parser.parse_args()
    csv = ROOT / "data" / "trial_large.csv"
    data = pd.read_csv(csv, dtype={"hospital": str, "patient": str, "arm": str})
    rows = {}
    for name, formula in MODELS.items():
        secs, res = median_seconds(lambda f=formula: fit_lmm(f, data), args.repeats)
        design_secs, _ = median_seconds(lambda f=formula: build_design(f, data), args.repeats)
        rows[name] = {
            "formula": formula,
            "ours_s": round(secs, 3),
            "design_s": round(design_secs, 3),
            "evaluations": res.opt.n_evals,
            "objective": res.objective,
        }
    if not args.no_lme4 and shutil.which("Rscript"):
        for name, (secs, crit) in zip(MODELS, run_lme4(csv, args.repeats).values(), strict=True):
            rows[name].update(
                lme4_s=round(secs, 3),
                ratio=round(secs / rows[name]["ours_s"], 1),
                lme4_minus_ours=crit - rows[name]["objective"],
            )
    print(json.dumps({"rows": len(data), "models": rows}, indent=1))


if __name__ == "__main__":
    main()
