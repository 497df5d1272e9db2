"""Which optimizer for theta? Measured on the 31 lme4 reference fits.

For every case the profiled criterion is minimised from lme4's start by each candidate and
compared with the best value any of lme4's three optimizers reached (deficit > 0: worse than
lme4). Prints, per optimizer, total criterion evaluations, total seconds and the largest
deficit. Run: ``python benchmarks/compare_optimizers.py``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lmm_core.design.build import build_design  # noqa: E402
from lmm_core.model.deviance import ProfiledDeviance  # noqa: E402
from lmm_core.model.optimize import _CountingObjective, optimize_theta  # noqa: E402
from tests.core.test_reference_lme4 import CASES, load_case, read_dataset  # noqa: E402


def ours(dev):
    opt = optimize_theta(dev)
    return opt.fmin, opt.n_evals


MAX_EVALS = 5_000


def scipy_method(method):
    def run(dev):
        counter = _CountingObjective(dev, np.ones_like(dev.lower), keep_log=False)
        bounds = [(lo if np.isfinite(lo) else None, None) for lo in dev.lower]
        options = {"maxiter": MAX_EVALS}
        if method in ("Nelder-Mead", "Powell"):
            options["maxfev"] = MAX_EVALS
        if method == "Nelder-Mead":
            options.update(xatol=1e-8, fatol=1e-10)
        res = minimize(counter.safe, dev.theta0, method=method, bounds=bounds, options=options)
        return float(res.fun), counter.n_evals

    return run


CANDIDATES = {
    "BOBYQA (NLopt) + checks [chosen]": ours,
    "scipy L-BFGS-B (numerical gradient)": scipy_method("L-BFGS-B"),
    "scipy Powell (bounded)": scipy_method("Powell"),
    "scipy Nelder-Mead (bounded)": scipy_method("Nelder-Mead"),
    "scipy COBYQA": scipy_method("COBYQA"),
}


def main() -> None:
    totals = {name: [0, 0.0, -np.inf] for name in CANDIDATES}
    for case_name in CASES:
        case = load_case(case_name)
        design = build_design(case["formula"], read_dataset(case["dataset"]))
        dev = ProfiledDeviance(design.X, design.y, design.reterms, case["REML"])
        best = min(dev(np.array(o["theta"])) for o in case["reference_fit"]["all_optimizers"])
        for name, run in CANDIDATES.items():
            start = time.perf_counter()
            fmin, evals = run(dev)
            totals[name][0] += evals
            totals[name][1] += time.perf_counter() - start
            totals[name][2] = max(totals[name][2], fmin - best)
    print(f"{len(CASES)} lme4 reference fits; scipy methods capped at {MAX_EVALS} iterations")
    print(f"{'optimizer':40s} {'evals':>7s} {'seconds':>8s} {'worst deficit':>14s}")
    for name, (evals, secs, worst) in totals.items():
        print(f"{name:40s} {evals:7d} {secs:8.2f} {worst:14.2e}")


if __name__ == "__main__":
    main()
