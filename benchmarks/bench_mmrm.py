"""Speed of MMRM fits (issue 14) side by side with R's ``nlme::gls``.

Fits, in one run, by REML:

* FEV (mmrm's ``fev_data``: 200 patients, 4 visits, 537 rows) with
  ``FEV1 ~ RACE + SEX + ARMCD * AVISIT + <cov>(AVISIT | USUBJID)`` for every structure;
  (``sp_exp`` on the visit number ``VISITN``, where it equals ``ar1``);
* BCVA (mmrm's ``bcva_data``: 1,000 patients, 10 visits, 8,605 rows) with
  ``BCVA_CHG ~ ARMCD * AVISIT + RACE + BCVA_BL + us(AVISIT | USUBJID)`` (55 parameters), the
  fit alone and the fit with its Kenward-Roger coefficient table;

and, where ``Rscript`` with nlme is available, the same model with ``gls``: ``us`` as
``corSymm`` + ``varIdent(~ 1 | AVISIT)``, ``ar1`` as ``corAR1``, ``cs`` as ``corCompSymm``,
their heterogeneous forms with ``varIdent`` added (``toep``, ``ad`` have no gls equivalent).
It reports our wall time (median of ``--repeat`` fits after one warm-up, including building
the design), gls's elapsed time, and our log-likelihood minus gls's (positive: ours is higher).

BLAS runs on one thread (``OPENBLAS_NUM_THREADS=1`` unless set): the problems are small and
the machine is shared. This is a benchmark, not a test: nothing is asserted.

Usage (from the repository root)::

    PYTHONPATH=. .venv/bin/python benchmarks/bench_mmrm.py              # everything (~2 min)
    PYTHONPATH=. .venv/bin/python benchmarks/bench_mmrm.py --no-r       # ours only
    PYTHONPATH=. .venv/bin/python benchmarks/bench_mmrm.py --no-bcva-gls  # skip gls on BCVA
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import pandas as pd  # noqa: E402

from lmm_core import fit_lmm  # noqa: E402
from lmm_core.design.residual_structures import STRUCTURES  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FEV = ROOT / "tests" / "fixtures" / "mmrm" / "data" / "fev_data.csv"
BCVA = ROOT.parent / "shared" / "reference" / "mmrm" / "data" / "bcva_data.csv.gz"
FEV_RHS = "RACE + SEX + ARMCD * AVISIT"
BCVA_RHS = "ARMCD * AVISIT + RACE + BCVA_BL"
GLS = {
    "us": ("corSymm(form = ~ v | USUBJID)", True),
    "ar1": ("corAR1(form = ~ v | USUBJID)", False),
    "ar1h": ("corAR1(form = ~ v | USUBJID)", True),
    "cs": ("corCompSymm(form = ~ 1 | USUBJID)", False),
    "csh": ("corCompSymm(form = ~ 1 | USUBJID)", True),
    "sp_exp": ("corExp(form = ~ v | USUBJID)", False),
}
R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE)
suppressMessages(library(nlme))
d <- read.csv(args[1], stringsAsFactors = TRUE)
d <- d[complete.cases(d[, all.vars(as.formula(args[2]))]), ]
d$AVISIT <- factor(d$AVISIT, levels = sort(unique(as.character(d$AVISIT))))
d$v <- as.integer(d$AVISIT)
cor <- eval(parse(text = args[3]))
w <- if (args[4] == "1") varIdent(form = ~ 1 | AVISIT) else NULL
el <- system.time(fit <- gls(as.formula(args[2]), data = d, correlation = cor, weights = w,
                             method = "REML"))[["elapsed"]]
cat(sprintf("%.17g %.6f\n", as.numeric(logLik(fit)), el))
"""


def read(path: Path, schema: Path) -> pd.DataFrame:
    """A reference data set with its factor levels (schema JSON beside it)."""
    data = pd.read_csv(path)
    for col in json.loads(schema.read_text())["columns"]:
        if col["type"] == "factor":
            data[col["name"]] = pd.Categorical(data[col["name"]].astype(str), col["levels"])
    return data


def time_ours(
    formula: str, data: pd.DataFrame, repeat: int, table: str | None = None
) -> tuple[float, float, bool]:
    """Median wall time of ``fit_lmm`` (and its ``fixef_table(table)`` if given) after a
    warm-up, the log-likelihood, convergence."""
    fit = fit_lmm(formula, data)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fit = fit_lmm(formula, data)
        if table is not None:
            fit.fixef_table(table)
        times.append(time.perf_counter() - start)
    return statistics.median(times), fit.loglik, fit.converged


def run_gls(csv: Path, formula: str, structure: str) -> tuple[float, float] | None:
    """``(logLik, seconds)`` of nlme::gls, or None without R or an equivalent."""
    if structure not in GLS or shutil.which("Rscript") is None:
        return None
    cor, hetero = GLS[structure]
    with tempfile.NamedTemporaryFile("w", suffix=".R", delete=False) as fh:
        fh.write(R_SCRIPT)
    try:
        out = subprocess.run(
            ["Rscript", fh.name, str(csv), formula, cor, "1" if hetero else "0"],
            capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
    finally:
        os.unlink(fh.name)
    if out.returncode != 0:
        print(f"  gls failed: {out.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    loglik, seconds = out.stdout.split()
    return float(loglik), float(seconds)


def report(label: str, ours: tuple[float, float, bool], gls: tuple[float, float] | None) -> None:
    seconds, loglik, converged = ours
    line = f"{label:<14} ours {seconds * 1000:9.1f} ms  logLik {loglik:14.6f}  conv {converged}"
    if gls is not None:
        line += f"  | gls {gls[1] * 1000:9.1f} ms  ours - gls {loglik - gls[0]:+.2e}"
    print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-r", action="store_true", help="skip nlme::gls")
    parser.add_argument("--no-bcva-gls", action="store_true", help="skip gls on BCVA (~75 s)")
    args = parser.parse_args()
    fev = read(FEV, FEV.with_name("fev_data.schema.json"))
    for structure in STRUCTURES:
        visit = "VISITN" if structure == "sp_exp" else "AVISIT"
        formula = f"FEV1 ~ {FEV_RHS} + {structure}({visit} | USUBJID)"
        ours = time_ours(formula, fev, args.repeat)
        gls = None if args.no_r else run_gls(FEV, f"FEV1 ~ {FEV_RHS}", structure)
        report(f"FEV {structure}", ours, gls)
    if not BCVA.exists():
        print(f"BCVA skipped: {BCVA} is missing (mmrm's bcva_data from ../shared/reference).")
        return
    bcva = read(BCVA, BCVA.with_name("bcva_data.schema.json"))
    ours = time_ours(f"BCVA_CHG ~ {BCVA_RHS} + us(AVISIT | USUBJID)", bcva, args.repeat)
    skip = args.no_r or args.no_bcva_gls
    gls = None if skip else run_gls(BCVA, f"BCVA_CHG ~ {BCVA_RHS}", "us")
    report("BCVA us", ours, gls)
    kr = time_ours(
        f"BCVA_CHG ~ {BCVA_RHS} + us(AVISIT | USUBJID)", bcva, args.repeat, "kenward-roger"
    )
    report("BCVA us + KR", kr, None)


if __name__ == "__main__":
    main()
