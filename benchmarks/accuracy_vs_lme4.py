"""Accuracy against lme4: the largest deviation per reference case, as a Markdown table.

For each of the 31 lme4 fits in tests/fixtures/reference/cases: our objective minus lme4's
(negative = our optimum is lower, i.e. better), and the largest relative deviation of fixed
effects, standard errors, sigma and variance components (vcov and SD rows of the VarCorr
table), and of conditional modes and conditional SDs (relative to each column's largest
value), both at our own optimum and when our engine is evaluated at lme4's theta.
Run: ``python benchmarks/accuracy_vs_lme4.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lmm_core.design.build import build_design  # noqa: E402
from lmm_core.model.fit import fit_design, result_at_theta  # noqa: E402
from tests.core.test_reference_lme4 import CASES, load_case, read_dataset  # noqa: E402


def rel(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12)))


def deviations(res, case) -> tuple[float, float]:
    """(largest relative deviation of beta/SE/sigma/variances, of ranef modes/SDs)."""
    vc = res.varcorr_table()
    is_var = vc["var2"].isna().to_numpy()
    ref = case["varcorr"]["table"]
    est = max(
        rel(res.beta, case["beta"]["values"]),
        rel(res.std_errors, case["beta_se"]["values"]),
        rel(res.sigma, case["sigma"]),
        rel(vc["vcov"].to_numpy(float)[is_var], np.array(ref["vcov"], float)[is_var]),
    )
    re = 0.0
    for block in case["ranef"]:
        k = block["levels_stored"]
        for mine, key in ((res.ranef, "values"), (res.ranef_sd, "cond_sd")):
            got = mine[block["group"]].to_numpy()[:k]
            want = np.array(block[key], float)
            scale = np.maximum(np.max(np.abs(want), axis=0), 1e-300)
            re = max(re, float(np.max(np.abs(got - want) / scale)))
    return est, re


def main() -> None:
    print(
        "| case | objective: ours - lme4 | estimates (ours) | BLUPs (ours) "
        "| estimates at lme4 theta | BLUPs at lme4 theta |"
    )
    print("|---|---|---|---|---|---|")
    for name in CASES:
        case = load_case(name)
        design = build_design(case["formula"], read_dataset(case["dataset"]))
        ours = fit_design(design, reml=case["REML"])
        at_ref = result_at_theta(design, np.array(case["theta"]["values"]), reml=case["REML"])
        expected = case["REML_criterion"] if case["REML"] else case["deviance"]
        e1, r1 = deviations(ours, case)
        e2, r2 = deviations(at_ref, case)
        print(
            f"| {name} | {ours.objective - expected:+.1e} | {e1:.1e} | {r1:.1e} "
            f"| {e2:.1e} | {r2:.1e} |"
        )


if __name__ == "__main__":
    main()
