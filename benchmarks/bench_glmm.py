"""Speed of GLMM fits (issue 15) side by side with lme4's ``glmer``.

For every reference case of ``tests/fixtures/glmm`` (cbpp binomial as ``cbind()`` and as a
proportion with weights, Laplace, nAGQ 7 and 25, probit; grouseticks Poisson with three
random intercepts; a simulated binary random-slope trial and its probit random-intercept
model; simulated counts with an exposure offset) it reports our wall time (median of
``--repeat`` fits after one warm-up, building the design included), glmer's elapsed time in
the same way (default control, data in memory), their ratio, and our log-likelihood minus
glmer's with every constant (glmer's nAGQ > 1 value gets its missing saturated constant
back; positive: ours is higher).

BLAS runs on one thread (``OPENBLAS_NUM_THREADS=1`` unless set): the problems are small and
the machine is shared. This is a benchmark, not a test: nothing is asserted.

Usage (from the repository root)::

    PYTHONPATH=. .venv/bin/python benchmarks/bench_glmm.py          # with glmer (~1 min)
    PYTHONPATH=. .venv/bin/python benchmarks/bench_glmm.py --no-r   # ours only
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
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import pandas as pd  # noqa: E402

from lmm_core import fit_glmm  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GLMM = ROOT / "tests" / "fixtures" / "glmm"

R_SCRIPT = r"""
suppressMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1])
schema <- jsonlite::fromJSON(args[2], simplifyVector = FALSE)
for (col in schema$columns) {
  if (col$type == "factor") d[[col$name]] <- factor(as.character(d[[col$name]]),
                                                   levels = unlist(col$levels))
}
fam <- get(args[4])(link = args[5])
nagq <- as.integer(args[6])
w <- if (args[7] == "") NULL else d[[args[7]]]
fit1 <- function() {
  if (is.null(w)) glmer(as.formula(args[3]), data = d, family = fam, nAGQ = nagq)
  else glmer(as.formula(args[3]), data = d, family = fam, nAGQ = nagq, weights = w)
}
fit <- fit1()
times <- replicate(as.integer(args[8]), system.time(fit1())[["elapsed"]])
cat(median(times), format(as.numeric(logLik(fit)), digits = 17), "\n")
"""


def dataset(file: str) -> pd.DataFrame:
    schema = json.loads((GLMM / "data" / file.replace(".csv", ".schema.json")).read_text())
    data = pd.read_csv(GLMM / "data" / file)
    for col in schema["columns"]:
        if col["type"] == "factor":
            data[col["name"]] = pd.Categorical(
                data[col["name"]].astype(str), categories=col["levels"]
            )
    return data


def ours(case: dict, repeat: int) -> tuple[float, float]:
    """Median wall time of our fit and its log-likelihood."""
    data = dataset(case["dataset"])
    args = (case["formula"], data, case["glm_family"], case["link"], case["nAGQ"])
    fit = fit_glmm(*args, weights=case["weights"])
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fit_glmm(*args, weights=case["weights"])
        times.append(time.perf_counter() - start)
    return statistics.median(times), fit.loglik


def glmer(case: dict, repeat: int) -> tuple[float, float] | None:
    """Median elapsed time of glmer and its log-likelihood (all constants), or None."""
    if shutil.which("Rscript") is None:
        return None
    csv = GLMM / "data" / case["dataset"]
    schema = csv.with_name(case["dataset"].replace(".csv", ".schema.json"))
    with tempfile.NamedTemporaryFile("w", suffix=".R", delete=False) as fh:
        fh.write(R_SCRIPT)
    try:
        out = subprocess.run(
            [
                "Rscript",
                fh.name,
                str(csv),
                str(schema),
                case["formula"],
                case["glm_family"],
                case["link"],
                str(case["nAGQ"]),
                case["weights"] or "",
                str(repeat),
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )
    except (subprocess.SubprocessError, OSError):
        return None
    finally:
        os.unlink(fh.name)
    seconds, loglik = (float(v) for v in out.stdout.split())
    if case["nAGQ"] > 1:
        loglik += case["independent_loglik"]["at_default_fit"]["saturated_loglik"]
    return seconds, loglik


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-r", action="store_true", help="skip glmer")
    args = parser.parse_args()
    print(f"{'case':28s} {'ours s':>8s} {'glmer s':>8s} {'glmer/ours':>10s} {'dlogLik':>10s}")
    for path in sorted((GLMM / "cases").glob("*.json")):
        case = json.loads(path.read_text())
        t_ours, ll_ours = ours(case, args.repeat)
        ref = None if args.no_r else glmer(case, args.repeat)
        if ref is None:
            print(f"{path.stem:28s} {t_ours:8.3f} {'-':>8s} {'-':>10s} {'-':>10s}")
            continue
        t_r, ll_r = ref
        print(
            f"{path.stem:28s} {t_ours:8.3f} {t_r:8.3f} {t_r / t_ours:10.2f} {ll_ours - ll_r:10.2e}"
        )


if __name__ == "__main__":
    main()
