"""Speed of GLMM fits (issue 15) side by side with lme4's ``glmer``.

For every reference case of ``tests/fixtures/glmm`` (cbpp binomial as ``cbind()`` and as a
proportion with weights, Laplace, nAGQ 7 and 25, probit; grouseticks Poisson with three
random intercepts; a simulated binary random-slope trial and its probit random-intercept
model; simulated counts with an exposure offset; lme4's VerbAgg example with crossed subjects
and items) it reports our wall time (median of
``--repeat`` fits after one warm-up, building the design included), glmer's elapsed time in
the same way (default control, data in memory), their ratio, and our log-likelihood minus
glmer's with every constant (glmer's nAGQ > 1 value gets its missing saturated constant back;
positive: ours is higher). Our median CPU time (``time.process_time``) is shown too: the
machine may be shared.

BLAS runs on one thread (``OPENBLAS_NUM_THREADS=1`` unless set): the problems are small and
the machine is shared. This is a benchmark, not a test: nothing is asserted.

``--large`` adds a simulated binary trial of 80,000 rows (10,000 patients x 8 visits, seeded:
logit link, random intercept SD 1 and slope SD 0.2 on the visit number) fitted with
``y ~ time * arm + (time | patient)``; glmer is timed on it once (``--no-r`` skips it).

Usage (from the repository root)::

    PYTHONPATH=. .venv/bin/python benchmarks/bench_glmm.py          # with glmer (~1 min)
    PYTHONPATH=. .venv/bin/python benchmarks/bench_glmm.py --no-r   # ours only
    PYTHONPATH=. .venv/bin/python benchmarks/bench_glmm.py --large  # and the 80k trial
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

import numpy as np  # noqa: E402
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


def simulated_trial(seed: int = 20240515) -> pd.DataFrame:
    """10,000 patients x 8 visits, binary outcome: ``logit P(y) = -0.5 + 0.1 t + 0.3 arm -
    0.15 t arm + b0 + b1 t`` with ``b0 ~ N(0, 1)``, ``b1 ~ N(0, 0.2^2)`` independent."""
    rng = np.random.default_rng(seed)
    n_pat, n_vis = 10_000, 8
    patient = np.repeat(np.arange(n_pat), n_vis)
    t = np.tile(np.arange(n_vis, dtype=float), n_pat)
    arm = np.repeat(rng.integers(0, 2, n_pat), n_vis)
    eta = -0.5 + 0.1 * t + 0.3 * arm - 0.15 * t * arm
    eta = eta + rng.normal(0, 1.0, n_pat)[patient] + rng.normal(0, 0.2, n_pat)[patient] * t
    y = rng.binomial(1, 1 / (1 + np.exp(-eta)))
    return pd.DataFrame({"y": y, "time": t, "arm": arm, "patient": [f"p{k}" for k in patient]})


LARGE_FORMULA = "y ~ time * arm + (time | patient)"

R_LARGE = r"""
suppressMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1])
d$patient <- factor(d$patient)
e <- system.time(fit <- glmer(as.formula(args[2]), data = d, family = binomial))[["elapsed"]]
cat(e, format(as.numeric(logLik(fit)), digits = 17), "\n")
"""


def large(use_r: bool) -> None:
    """The 80k-row trial: our time (one fit) and glmer's."""
    data = simulated_trial()
    start, cpu = time.perf_counter(), time.process_time()
    fit = fit_glmm(LARGE_FORMULA, data)
    t_ours = time.perf_counter() - start
    c_ours = time.process_time() - cpu
    ref = None
    if use_r and shutil.which("Rscript") is not None:
        with tempfile.TemporaryDirectory() as tmp:
            csv, script = Path(tmp) / "trial.csv", Path(tmp) / "large.R"
            data.to_csv(csv, index=False)
            script.write_text(R_LARGE)
            try:
                out = subprocess.run(
                    ["Rscript", str(script), str(csv), LARGE_FORMULA],
                    capture_output=True,
                    text=True,
                    timeout=1800,
                    check=True,
                )
                ref = tuple(float(v) for v in out.stdout.split())
            except (subprocess.SubprocessError, OSError):
                ref = None
    name = "sim_trial_80k (1 fit)"
    if ref is None:
        print(f"{name:28s} {t_ours:8.3f} {c_ours:8.3f} {'-':>8s} {'-':>10s} {'-':>10s}")
    else:
        print(
            f"{name:28s} {t_ours:8.3f} {c_ours:8.3f} {ref[0]:8.3f} {ref[0] / t_ours:10.2f} "
            f"{fit.loglik - ref[1]:10.2e}"
        )


def ours(case: dict, repeat: int) -> tuple[float, float, float]:
    """Median wall time, median CPU time (``time.process_time``: the machine may be shared)
    of our fit and its log-likelihood."""
    data = dataset(case["dataset"])
    args = (case["formula"], data, case["glm_family"], case["link"], case["nAGQ"])
    fit = fit_glmm(*args, weights=case["weights"])
    times, cpus = [], []
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        fit_glmm(*args, weights=case["weights"])
        times.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return statistics.median(times), statistics.median(cpus), fit.loglik


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
    parser.add_argument("--large", action="store_true", help="add the 80k-row binary trial")
    parser.add_argument("--only", default="", help="only the cases whose name contains this")
    args = parser.parse_args()
    print(
        f"{'case':28s} {'ours s':>8s} {'ours cpu':>8s} {'glmer s':>8s} {'glmer/ours':>10s} "
        f"{'dlogLik':>10s}"
    )
    for path in sorted((GLMM / "cases").glob("*.json")):
        if args.only not in path.stem:
            continue
        case = json.loads(path.read_text())
        t_ours, c_ours, ll_ours = ours(case, args.repeat)
        ref = None if args.no_r else glmer(case, args.repeat)
        if ref is None:
            print(f"{path.stem:28s} {t_ours:8.3f} {c_ours:8.3f} {'-':>8s} {'-':>10s} {'-':>10s}")
            continue
        t_r, ll_r = ref
        print(
            f"{path.stem:28s} {t_ours:8.3f} {c_ours:8.3f} {t_r:8.3f} {t_r / t_ours:10.2f} "
            f"{ll_ours - ll_r:10.2e}"
        )
    if args.large:
        large(not args.no_r)


if __name__ == "__main__":
    main()
