"""Stress corpus for the optimizer: does every fit reach the best optimum, in any units?

A seeded generator of longitudinal datasets that are hard for an optimizer: random slopes on
time spans from 1 to 365 in units from 1e-3 to 86,400 per day, with the time origin at 0 or
far from it (age); slope SDs from 0 to 100 % of the residual SD per time span, intercept SDs
from 0; correlations up to +-0.95; 6 to 120 subjects with 3 to 12 visits, regular or
irregular, up to 30 % missing; outcomes in units from 1e-3 to 1e3; and six model families:

``slope``    ``y ~ t + (t | id)``
``arm``      ``y ~ t * arm + (t | id)``
``uncorr``   ``y ~ t + (t || id)``
``nested``   ``y ~ t * arm + (t | id) + (1 | site)``
``crossed``  ``y ~ x + (1 | a) + (1 | b)``
``quad``     ``y ~ t + I(t^2) + (t | id)``

each by REML and ML. Every case is fitted by ``fit_lmm`` and compared with the best
criterion found by any method tried: ``fit_lmm`` itself, BOBYQA from ``--starts`` random
starting points (unit-free, tight tolerances), and, when ``--lme4 FILE`` is given, lme4's
three optimizers (``benchmarks/stress_corpus_lme4.R`` writes that file from the CSVs that
``--export DIR`` writes). A fit is *worse than the best* when its criterion exceeds the best
by more than ``1e-6 + 1e-9 |best|``.

Run::

    .venv/bin/python benchmarks/stress_corpus.py                    # 240 cases, ~2 min
    .venv/bin/python benchmarks/stress_corpus.py --cases 60 --json artifacts/new.json
    .venv/bin/python benchmarks/stress_corpus.py --export /tmp/corpus   # then the R script
    .venv/bin/python benchmarks/stress_corpus.py --lme4 /tmp/corpus/lme4.json
    .venv/bin/python benchmarks/stress_corpus.py --compare old.json new.json

``--compare`` prints, between two runs (for example this script run with ``PYTHONPATH``
pointing at an older checkout of ``lmm_core``), the evaluations and seconds per fit and the
fits whose singular or converged verdict changed. ``tests/core/test_stress_corpus.py`` runs a
fixed subset in CI.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import nlopt
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if importlib.util.find_spec("lmm_core") is None:  # PYTHONPATH may name another checkout
    sys.path.insert(0, str(ROOT))

from lmm_core import fit_lmm  # noqa: E402
from lmm_core.design.build import build_design  # noqa: E402
from lmm_core.design.reterms import theta_scale  # noqa: E402
from lmm_core.model.deviance import ProfiledDeviance  # noqa: E402

FAMILIES = ("slope", "arm", "uncorr", "nested", "crossed", "quad")
FORMULAS = {
    "slope": "y ~ t + (t | id)",
    "arm": "y ~ t * arm + (t | id)",
    "uncorr": "y ~ t + (t || id)",
    "nested": "y ~ t * arm + (t | id) + (1 | site)",
    "crossed": "y ~ x + (1 | a) + (1 | b)",
    "quad": "y ~ t + I(t^2) + (t | id)",
}


@dataclass(frozen=True)
class Case:
    """One dataset and model of the corpus."""

    index: int
    family: str
    formula: str
    reml: bool
    data: pd.DataFrame
    description: str


def make_case(index: int) -> Case:
    """The corpus case ``index`` (deterministic: seeded by the index)."""
    rng = np.random.default_rng(20261205 + index)
    family = FAMILIES[index % len(FAMILIES)]
    reml = bool((index // len(FAMILIES)) % 2 == 0)
    if family == "crossed":
        data, desc = _crossed(rng)
    else:
        data, desc = _longitudinal(rng, family)
    return Case(index, family, FORMULAS[family], reml, data, desc)


def _longitudinal(rng: np.random.Generator, family: str) -> tuple[pd.DataFrame, str]:
    n_id = int(rng.choice([6, 12, 20, 40, 80, 120]))
    n_vis = int(rng.integers(3, 13))
    span = float(rng.choice([1.0, 7.0, 30.0, 365.0]))
    unit = float(rng.choice([1e-3, 1.0, 24.0, 1440.0, 86400.0]))  # time units per day
    origin = float(rng.choice([0.0, 0.0, 0.0, 5.0 * span]))
    irregular = bool(rng.random() < 0.5)
    missing = float(rng.choice([0.0, 0.1, 0.3]))
    y_unit = float(rng.choice([1e-3, 1.0, 1e3]))
    sd_int = float(rng.choice([0.0, 0.1, 0.5, 2.0]))
    sd_slope = float(rng.choice([0.0, 0.005, 0.02, 0.1, 0.25, 1.0]))  # per time span
    corr = float(rng.choice([-0.9, -0.3, 0.0, 0.6, 0.95]))
    sd_site = float(rng.choice([0.0, 0.05, 0.3]))
    n_site = int(rng.choice([3, 5, 10]))
    rows = []
    cov = np.array([[sd_int**2, corr * sd_int * sd_slope], [corr * sd_int * sd_slope, sd_slope**2]])
    b = rng.multivariate_normal([0.0, 0.0], cov, size=n_id, method="eigh")
    site_eff = rng.normal(0.0, sd_site, n_site)
    for i in range(n_id):
        times = np.linspace(0.0, span, n_vis)
        if irregular:
            times = np.sort(rng.uniform(0.0, span, n_vis))
        arm = i % 2
        site = i % n_site
        for tday in times:
            frac = tday / span
            mu = 1.0 + 0.5 * frac + 0.3 * arm * frac + b[i, 0] + b[i, 1] * frac + site_eff[site]
            if family == "quad":
                mu += 0.8 * frac**2
            rows.append((f"s{i:03d}", f"h{site}", arm, (origin + tday) * unit, mu + rng.normal()))
    df = pd.DataFrame(rows, columns=["id", "site", "arm", "t", "y"])
    df["y"] *= y_unit
    df["arm"] = df["arm"].map({0: "ctl", 1: "trt"})
    if missing:
        keep = rng.random(len(df)) >= missing
        df = df[keep].reset_index(drop=True)
    desc = (
        f"{n_id} ids x {n_vis} visits, span {span:g} d, unit {unit:g}/d, origin {origin:g}, "
        f"{'irregular' if irregular else 'regular'}, {missing:.0%} missing, y x{y_unit:g}, "
        f"sd_int {sd_int:g}, sd_slope {sd_slope:g}, corr {corr:g}"
        + (f", sd_site {sd_site:g} ({n_site} sites)" if family == "nested" else "")
    )
    return df, desc


def _crossed(rng: np.random.Generator) -> tuple[pd.DataFrame, str]:
    na, nb = int(rng.choice([5, 10, 30])), int(rng.choice([4, 8, 20]))
    sd_a, sd_b = float(rng.choice([0.0, 0.05, 0.5, 2.0])), float(rng.choice([0.0, 0.1, 1.0]))
    x_unit = float(rng.choice([1e-3, 1.0, 1e4]))
    reps = int(rng.integers(1, 4))
    fill = float(rng.choice([0.5, 0.8, 1.0]))
    ea, eb = rng.normal(0, sd_a, na), rng.normal(0, sd_b, nb)
    rows = []
    for i in range(na):
        for j in range(nb):
            if rng.random() > fill:
                continue
            for _ in range(reps):
                x = rng.normal()
                rows.append(
                    (f"a{i}", f"b{j}", x * x_unit, 2.0 + 0.4 * x + ea[i] + eb[j] + rng.normal())
                )
    df = pd.DataFrame(rows, columns=["a", "b", "x", "y"])
    desc = (
        f"{na} x {nb} crossed, {reps} reps, fill {fill:g}, sd_a {sd_a:g}, sd_b {sd_b:g}, "
        f"x x{x_unit:g}"
    )
    return df, desc


def _rms_scale(dev: ProfiledDeviance) -> np.ndarray:
    """Unit-free scale of theta (:func:`lmm_core.design.reterms.theta_scale`)."""
    return theta_scale(dev.reterms)


def best_of_starts(case: Case, n_starts: int, seed: int = 0) -> tuple[float, np.ndarray]:
    """Lowest criterion reached by tight BOBYQA runs from random unit-free starting points."""
    design = build_design(case.formula, case.data)
    dev = ProfiledDeviance(design.X, design.y, design.reterms, case.reml)
    scale = _rms_scale(dev)
    lower = dev.lower
    rng = np.random.default_rng(seed)
    diag = lower == 0
    best_f, best_theta = np.inf, dev.theta0
    starts = [dev.theta0.copy()]  # lme4's start in raw theta (not unit-free)
    for _ in range(n_starts):
        phi = np.where(
            diag, np.exp(rng.normal(-0.5, 1.5, lower.size)), rng.normal(0, 1, lower.size)
        )
        phi[diag & (rng.random(lower.size) < 0.25)] = 0.0
        starts.append(phi / scale)
    for theta0 in starts:
        theta, f = _tight_bobyqa(dev, theta0 * scale, scale, lower)
        if f < best_f:
            best_f, best_theta = f, theta
    return best_f, best_theta


def _tight_bobyqa(dev, phi0, scale, lower) -> tuple[np.ndarray, float]:
    def fun(phi, grad):
        try:
            value = dev(phi / scale)
        except (np.linalg.LinAlgError, ValueError, FloatingPointError):
            return 1e300
        return value if np.isfinite(value) else 1e300

    if phi0.size == 1:
        from scipy.optimize import minimize_scalar

        res = minimize_scalar(
            lambda v: fun(np.array([v]), None),
            bounds=(0, 100),
            method="bounded",
            options={"xatol": 1e-12},
        )
        cands = [(res.fun, np.array([res.x])), (fun(np.zeros(1), None), np.zeros(1))]
        f, phi = min(cands, key=lambda c: c[0])
        return phi / scale, float(f)
    opt = nlopt.opt(nlopt.LN_BOBYQA, phi0.size)
    opt.set_min_objective(fun)
    opt.set_lower_bounds(lower)
    opt.set_ftol_rel(1e-14)
    opt.set_xtol_abs(1e-10)
    opt.set_maxeval(20_000)
    opt.set_initial_step(np.full(phi0.size, 0.5))
    try:
        phi = opt.optimize(np.maximum(phi0, lower))
        f = opt.last_optimum_value()
    except (nlopt.RoundoffLimited, RuntimeError):
        phi, f = np.maximum(phi0, lower), fun(np.maximum(phi0, lower), None)
    return phi / scale, float(f)


def tolerance(best: float) -> float:
    """How much worse than the best a fit may be: ``1e-6 + 1e-9 |best|``."""
    return 1e-6 + 1e-9 * abs(best)


def run_case(case: Case, n_starts: int, lme4: dict | None = None) -> dict:
    start = time.perf_counter()
    fit = fit_lmm(case.formula, case.data, reml=case.reml)
    seconds = time.perf_counter() - start
    best, _ = best_of_starts(case, n_starts)
    methods = {"ours": fit.objective, "starts": best}
    if lme4 and str(case.index) in lme4:
        methods.update({f"lme4_{k}": v for k, v in lme4[str(case.index)].items() if v is not None})
    best_all = min(methods.values())
    return {
        "index": case.index,
        "family": case.family,
        "reml": case.reml,
        "description": case.description,
        "objective": fit.objective,
        "best": best_all,
        "best_by": min(methods, key=methods.get),
        "deficit": fit.objective - best_all,
        "worse": bool(fit.objective - best_all > tolerance(best_all)),
        "lme4_best_deficit": (
            min(v for k, v in methods.items() if k.startswith("lme4")) - best_all
            if any(k.startswith("lme4") for k in methods)
            else None
        ),
        "n_evals": int(fit.opt.n_evals),
        "seconds": seconds,
        "singular": bool(fit.is_singular),
        "converged": bool(fit.converged),
    }


def export(n_cases: int, folder: Path) -> None:
    """Write every case as CSV plus a manifest for the lme4 script."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest = []
    for i in range(n_cases):
        case = make_case(i)
        case.data.to_csv(folder / f"case{i:03d}.csv", index=False)
        manifest.append(
            {"index": i, "formula": case.formula, "reml": case.reml, "file": f"case{i:03d}.csv"}
        )
    (folder / "manifest.json").write_text(json.dumps(manifest))


def compare(old_path: Path, new_path: Path) -> None:
    old = {r["index"]: r for r in json.loads(old_path.read_text())}
    new = {r["index"]: r for r in json.loads(new_path.read_text())}
    common = sorted(set(old) & set(new))
    for key in ("n_evals", "seconds"):
        o = np.array([old[i][key] for i in common])
        n = np.array([new[i][key] for i in common])
        print(
            f"{key:8s} median old {np.median(o):.4g}  new {np.median(n):.4g}  "
            f"(median ratio new/old {np.median(n / o):.3f}, total ratio {n.sum() / o.sum():.3f})"
        )
    for label, path in (("old", old), ("new", new)):
        worse = [i for i in common if path[i]["worse"]]
        print(f"{label}: {len(worse)} of {len(common)} fits worse than the best: {worse}")
    for key in ("singular", "converged"):
        changed = [i for i in common if old[i][key] != new[i][key]]
        print(f"{key} verdict changed in {len(changed)} fits:")
        for i in changed:
            print(
                f"  case {i} ({new[i]['family']}, {'REML' if new[i]['reml'] else 'ML'}): "
                f"{old[i][key]} -> {new[i][key]}; criterion old {old[i]['objective']:.6f} "
                f"new {new[i]['objective']:.6f}; {new[i]['description']}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=240)
    parser.add_argument("--starts", type=int, default=8)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--export", type=Path)
    parser.add_argument("--lme4", type=Path)
    parser.add_argument("--compare", nargs=2, type=Path)
    args = parser.parse_args()
    if args.compare:
        compare(*args.compare)
        return
    if args.export:
        export(args.cases, args.export)
        return
    lme4 = json.loads(args.lme4.read_text()) if args.lme4 else None
    results = []
    for i in range(args.cases):
        results.append(run_case(make_case(i), args.starts, lme4))
        r = results[-1]
        if r["worse"]:
            print(
                f"case {i} ({r['family']}, {'REML' if r['reml'] else 'ML'}) worse by "
                f"{r['deficit']:.3g} than {r['best_by']}: {r['description']}"
            )
    worse = sum(r["worse"] for r in results)
    secs = np.array([r["seconds"] for r in results])
    evals = np.array([r["n_evals"] for r in results])
    print(
        f"{len(results)} cases: {worse} worse than the best of all methods "
        f"(tolerance 1e-6 + 1e-9 |criterion|); singular {sum(r['singular'] for r in results)}, "
        f"not converged {sum(not r['converged'] for r in results)}; median fit "
        f"{np.median(secs) * 1e3:.1f} ms, {np.median(evals):.0f} evaluations"
    )
    if lme4:
        lw = [r for r in results if r["lme4_best_deficit"] is not None]
        n_l = sum(r["lme4_best_deficit"] > tolerance(r["best"]) for r in lw)
        ours_vs = [r["objective"] - (r["best"] + r["lme4_best_deficit"]) for r in lw]
        print(
            f"lme4 (best of its three optimizers) worse than the best in {n_l} of {len(lw)}; "
            f"ours minus lme4's best: max {max(ours_vs):.3g}, min {min(ours_vs):.3g}"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
