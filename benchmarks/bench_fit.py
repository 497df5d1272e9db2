"""Speed and scale of ``lmm_core`` side by side with statsmodels ``MixedLM``.

Fits, in one run:

* sleepstudy ``Reaction ~ Days + (Days | Subject)`` (180 rows);
* a simulated trial of about 80k rows (100 hospitals x 125 patients) with
  ``y ~ time * arm + (time | patient)`` and with ``... + (1 | hospital)``;
* a simulated trial of about 1M rows (100 hospitals x 1,600 patients) with ``(time | patient)``,
  in a fresh subprocess that reports wall time and peak memory (``ru_maxrss``);
* a crossed design the size of lme4's ``InstEval`` (73,421 ratings of 1,128 teachers by
  2,972 students, 14 departments; each teacher has a home department), simulated with a seed:
  ``y ~ 1 + (1 | student) + (1 | teacher) + (1 | department)``;

each with lmm_core and, where the model has one grouping factor (sleepstudy and the 80k
``(time | patient)`` model), with statsmodels in a subprocess killed after ``--peer-cap``
seconds. It also times the profiled criterion at a fixed ``theta`` (evaluations per second) for
``(time | patient)`` at 10k and 1M rows: once with the number of patients growing with the
rows, and once with 1M rows over the SAME patients as the 10k design (the 10k rows stacked 100
times), which isolates the dependence on the number of rows.

Times are wall-clock medians after one warm-up fit; the machine is shared, so expect noise.
This is a benchmark, not a test: nothing is asserted.

Usage (from the repository root)::

    /work/venv/bin/python benchmarks/bench_fit.py            # everything (~5 min)
    /work/venv/bin/python benchmarks/bench_fit.py --quick    # no 1M rows, no statsmodels
    /work/venv/bin/python benchmarks/bench_fit.py --no-peer  # everything but statsmodels
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SEED = 20240601
PEER_CAP_S = 90.0
MIB = 1024.0 * 1024.0


# ---------------------------------------------------------------------------------- data
def load_sleepstudy() -> pd.DataFrame:
    """lme4's sleepstudy; ``Subject`` read as a string label."""
    for path in (
        ROOT / "data" / "sleepstudy.csv",
        ROOT / "tests" / "fixtures" / "reference" / "data" / "sleepstudy.csv",
    ):
        if path.exists():
            return pd.read_csv(path, dtype={"Subject": str})
    raise FileNotFoundError("sleepstudy.csv not found in data/ or tests/fixtures/reference/data/")


def load_trial(n_hospitals: int, patients_per_hospital: int, seed: int = SEED) -> pd.DataFrame:
    from lmm_core.simulation.trial import simulate_trial

    return simulate_trial(
        n_hospitals=n_hospitals, patients_per_hospital=patients_per_hospital, seed=seed
    ).data


def simulate_insteval(
    seed: int = SEED,
    n_ratings: int = 73_421,
    n_students: int = 2_972,
    n_teachers: int = 1_128,
    n_departments: int = 14,
) -> pd.DataFrame:
    """A crossed design with the dimensions of lme4's ``InstEval``.

    Every teacher has one home department (so ``department`` is constant within teacher),
    every student and every teacher has at least one rating, and the numbers of ratings per
    student and per teacher are skewed (log-normal popularity), as in course evaluations.
    The outcome uses the variance components of lme4's fit to ``InstEval``
    (SDs 0.32 student, 0.51 teacher, 0.08 department, 1.18 residual; intercept 3.2).
    """
    rng = np.random.default_rng(seed)
    extra = rng.integers(0, n_departments, n_teachers - n_departments)
    home = rng.permutation(np.r_[np.arange(n_departments), extra])

    def draw(n_levels: int, sigma: float) -> np.ndarray:
        weight = rng.lognormal(0.0, sigma, n_levels)
        extra = rng.choice(n_levels, n_ratings - n_levels, p=weight / weight.sum())
        return rng.permutation(np.r_[np.arange(n_levels), extra])

    student = draw(n_students, 0.6)
    teacher = draw(n_teachers, 1.0)
    department = home[teacher]
    y = (
        3.2
        + 0.32 * rng.normal(size=n_students)[student]
        + 0.51 * rng.normal(size=n_teachers)[teacher]
        + 0.08 * rng.normal(size=n_departments)[department]
        + 1.18 * rng.normal(size=n_ratings)
    )

    def labels(prefix: str, codes: np.ndarray, n: int) -> np.ndarray:
        names = np.array([f"{prefix}{k:0{len(str(n))}d}" for k in range(1, n + 1)], dtype=object)
        return names[codes]

    return pd.DataFrame(
        {
            "student": labels("S", student, n_students),
            "teacher": labels("T", teacher, n_teachers),
            "department": labels("D", department, n_departments),
            "y": y,
        }
    )


@dataclass(frozen=True)
class Case:
    """One benchmark model."""

    key: str
    label: str
    formula: str
    load: Callable[[], pd.DataFrame]
    target_s: float
    repeats: int
    subprocess: bool = False  # fitted in a fresh process (time and peak memory)
    warm_up: bool = True  # one untimed fit first (off for the slow crossed model)
    peer: dict | None = None  # statsmodels MixedLM spec, or None
    peer_na: str = ""  # why statsmodels is not run


CASES: dict[str, Case] = {
    c.key: c
    for c in [
        Case(
            "sleep",
            "sleepstudy (Days | Subject)",
            "Reaction ~ Days + (Days | Subject)",
            load_sleepstudy,
            0.005,
            repeats=31,
            peer={"fe": "Reaction ~ Days", "group": "Subject", "re": "~Days"},
        ),
        Case(
            "trial80k",
            "trial 80k (time | patient)",
            "y ~ time * arm + (time | patient)",
            lambda: load_trial(100, 125),
            0.25,
            repeats=5,
            peer={"fe": "y ~ time * arm", "group": "patient", "re": "~time"},
        ),
        Case(
            "trial80k_h",
            "trial 80k (time | patient) + (1 | hospital)",
            "y ~ time * arm + (time | patient) + (1 | hospital)",
            lambda: load_trial(100, 125),
            0.25,
            repeats=5,
            peer_na="two grouping factors; MixedLM has one (its vc_formula cannot hold the "
            "correlated patient intercept and slope)",
        ),
        Case(
            "trial1m",
            "trial 1M (time | patient)",
            "y ~ time * arm + (time | patient)",
            lambda: load_trial(100, 1600),
            3.0,
            repeats=3,
            subprocess=True,
            peer_na="one grouping factor, but not run: MixedLM takes tens of seconds already "
            "at 80k rows (row above)",
        ),
        Case(
            "crossed",
            "crossed InstEval-size (1|s)+(1|t)+(1|dept)",
            "y ~ 1 + (1 | student) + (1 | teacher) + (1 | department)",
            simulate_insteval,
            6.0,
            repeats=3,
            warm_up=False,
            peer_na="crossed factors; MixedLM has one grouping factor (crossed terms need one "
            "all-rows group with dense n x n blocks)",
        ),
    ]
}


# ---------------------------------------------------------------------------------- lmm_core
def _fit_record(res, seconds: float) -> dict:
    return {
        "seconds": seconds,
        "opt_seconds": float(res.opt.seconds),
        "n_evals": int(res.opt.n_evals),
        "converged": bool(res.converged),
        "objective": float(res.objective),
        "loglik": float(res.loglik),
        "fixef": {k: float(v) for k, v in res.fixef.items()},
        "theta": [float(t) for t in res.theta],
    }


def time_lmm(case: Case, data: pd.DataFrame, repeats: int) -> dict:
    """Median wall time of ``fit_lmm`` (design + cross-products + optimization + results)."""
    from lmm_core import fit_lmm

    if case.warm_up:
        fit_lmm(case.formula, data, reml=True)  # lazy imports, caches
    times, fits = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fits.append(fit_lmm(case.formula, data, reml=True))
        times.append(time.perf_counter() - t0)
    mid = int(np.argsort(times)[len(times) // 2])  # the median run (odd repeats)
    rec = _fit_record(fits[mid], times[mid])
    rec["seconds"] = statistics.median(times)
    rec["all_seconds"] = times
    return rec


def _current_rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / MIB


def worker_lmm(key: str) -> dict:
    """In a fresh process: simulate the data, fit once, report time and peak memory."""
    from lmm_core import fit_lmm

    case = CASES[key]
    fit_lmm("Reaction ~ Days + (Days | Subject)", load_sleepstudy())  # lazy imports
    data = case.load()
    rss_data = _current_rss_mib()
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    t0 = time.perf_counter()
    res = fit_lmm(case.formula, data, reml=True)
    seconds = time.perf_counter() - t0
    rec = _fit_record(res, seconds)
    rec.update(
        rows=len(data),
        rss_after_data_mib=rss_data,
        peak_before_fit_mib=peak_before,
        peak_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    )
    return rec


def run_lmm_subprocess(case: Case, repeats: int) -> dict:
    runs = [_run_worker(f"lmm:{case.key}", timeout=None)[1] for _ in range(repeats)]
    runs = [r for r in runs if r is not None]
    if not runs:
        return {"error": "worker failed"}
    times = [r["seconds"] for r in runs]
    rec = dict(runs[int(np.argsort(times)[len(times) // 2])])
    rec["seconds"] = statistics.median(times)
    rec["all_seconds"] = times
    rec["peak_mib"] = max(r["peak_mib"] for r in runs)
    return rec


# ---------------------------------------------------------------------------------- statsmodels
def _lme4_name(name: str) -> str:
    """statsmodels/patsy coefficient name -> lme4's (``arm[T.treatment]`` -> ``armtreatment``)."""
    return "(Intercept)" if name == "Intercept" else re.sub(r"\[T\.([^\]]+)\]", r"\1", name)


def worker_peer(key: str, repeats: int) -> dict:
    """In a fresh process: fit with statsmodels MixedLM (REML, its default optimizer)."""
    import statsmodels.formula.api as smf

    case = CASES[key]
    spec = case.peer
    data = case.load()
    times, fit = [], None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(repeats):
            t0 = time.perf_counter()
            model = smf.mixedlm(spec["fe"], data, groups=data[spec["group"]], re_formula=spec["re"])
            fit = model.fit(reml=True)
            times.append(time.perf_counter() - t0)
    return {
        "seconds": statistics.median(times),
        "all_seconds": times,
        "converged": bool(fit.converged),
        "loglik": float(fit.llf),
        "fixef": {_lme4_name(k): float(v) for k, v in fit.fe_params.items()},
        "warnings": sorted({type(w.message).__name__ for w in caught}),
    }


def _run_worker(task: str, timeout: float | None, extra: tuple[str, ...] = ()):
    """Run this script as ``--worker task``; return (status, record or None)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", task, *extra]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return "capped", None
    if out.returncode != 0:
        sys.stderr.write(out.stderr[-2000:])
        return "failed", None
    return "ok", json.loads(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------- evaluations
def eval_rate(data: pd.DataFrame, formula: str, theta: np.ndarray, batch_s: float = 0.3) -> dict:
    """Criterion evaluations per second at a fixed theta (median over 5 batches)."""
    from lmm_core.design.build import build_design
    from lmm_core.model.deviance import ProfiledDeviance

    design = build_design(formula, data)
    with _fit_blas_context():  # the BLAS threading fit_lmm uses around the optimizer
        t0 = time.perf_counter()
        dev = ProfiledDeviance(design.X, design.y, design.reterms, True)
        setup = time.perf_counter() - t0
        dev(theta)
        t0 = time.perf_counter()
        dev(theta)
        per = max(time.perf_counter() - t0, 1e-6)
        calls = max(5, int(batch_s / per))
        rates = []
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(calls):
                dev(theta)
            rates.append(calls / (time.perf_counter() - t0))
    levels = design.reterms[0].n_levels
    rate = statistics.median(rates)
    return {
        "rows": len(design.y),
        "levels": levels,
        "evals_per_s": rate,
        "us_per_eval": 1e6 / rate,
        "ns_per_level": 1e9 / rate / levels,
        "setup_s": setup,
    }


def _fit_blas_context():
    """``lmm_core.model.linalg.single_threaded_blas()`` where the engine has it, else a no-op."""
    import contextlib

    from lmm_core.model import linalg

    make = getattr(linalg, "single_threaded_blas", None)
    return make() if make is not None else contextlib.nullcontext()


def true_theta() -> np.ndarray:
    """theta of the trial's patient term at the simulated truth (lower Cholesky / sigma)."""
    from lmm_core.simulation.trial import TrialParameters

    p = TrialParameters()
    lam = np.linalg.cholesky(p.patient_cov) / p.sigma
    return np.array([lam[0, 0], lam[1, 0], lam[1, 1]])


def run_eval_rates(quick: bool) -> list[dict]:
    formula = "y ~ time * arm + (time | patient)"
    theta = true_theta()
    small = load_trial(20, 80)
    out = [dict(label="10k rows", **eval_rate(small, formula, theta))]
    out.append(dict(label="100k rows", **eval_rate(load_trial(100, 160), formula, theta)))
    if not quick:
        out.append(dict(label="1M rows", **eval_rate(load_trial(100, 1600), formula, theta)))
        stacked = pd.concat([small] * 100, ignore_index=True)
        out.append(
            dict(label="1M rows, same patients as 10k", **eval_rate(stacked, formula, theta))
        )
    return out


# ---------------------------------------------------------------------------------- report
@dataclass
class Row:
    case: Case
    rows: int
    lmm: dict
    peer_status: str = "n/a"
    peer: dict | None = None
    notes: list[str] = field(default_factory=list)


def _fmt_s(s: float) -> str:
    return f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.2f} s"


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def format_table(rows: list[Row], peer_cap: float) -> str:
    notes: list[str] = []
    head = (
        "| model | rows | lmm_core | target | met | opt only | evals | statsmodels | ratio "
        "| converged | max abs diff fixef | logLik ours - sm | peak RSS |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        c, lm = r.case, r.lmm
        if "error" in lm:
            lines.append(f"| {_md(c.label)} | {r.rows:,} | failed | | | | | | | | | | |")
            continue
        met = lm["seconds"] <= c.target_s
        peak = "-"
        target = f"<= {_fmt_s(c.target_s)}"
        if "peak_mib" in lm:
            peak = f"{lm['peak_mib']:.0f} MiB"
            met = met and lm["peak_mib"] <= 1024
            target += ", <= 1 GiB"
        peer_s = ratio = dfix = dll = "-"
        if r.peer_status == "ok":
            peer_s = _fmt_s(r.peer["seconds"])
            ratio = f"{r.peer['seconds'] / lm['seconds']:.0f}x"
            common = set(lm["fixef"]) & set(r.peer["fixef"])
            dfix = f"{max(abs(lm['fixef'][k] - r.peer['fixef'][k]) for k in common):.1e}"
            dll = f"{lm['loglik'] - r.peer['loglik']:+.1e}"
            if not r.peer["converged"]:
                peer_s += " (not converged)"
        elif r.peer_status == "capped":
            peer_s = f">{peer_cap:.0f} s (capped)"
            ratio = f">{peer_cap / lm['seconds']:.0f}x"
        elif r.peer_status == "skipped":
            peer_s = "skipped"
        elif r.peer_status == "failed":
            peer_s = "failed"
        else:
            notes.append(c.peer_na)
            peer_s = f"n/a [{len(notes)}]"
        lines.append(
            f"| {_md(c.label)} | {r.rows:,} | {_fmt_s(lm['seconds'])} | {target} | "
            f"{'yes' if met else 'NO'} | {_fmt_s(lm['opt_seconds'])} | {lm['n_evals']} | "
            f"{peer_s} | {ratio} | {'yes' if lm['converged'] else 'NO'} | {dfix} | {dll} | "
            f"{peak} |"
        )
    lines.append("")
    lines.extend(f"[{k}] statsmodels n/a: {text}." for k, text in enumerate(notes, 1))
    return "\n".join(lines)


def format_rates(rates: list[dict]) -> str:
    lines = [
        "| (time \\| patient), REML, fixed theta | rows | patients | evals/s | us/eval "
        "| ns per patient per eval | cross-products (once) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rates:
        lines.append(
            f"| {r['label']} | {r['rows']:,} | {r['levels']:,} | {r['evals_per_s']:,.0f} | "
            f"{r['us_per_eval']:,.0f} | {r['ns_per_level']:.0f} | {_fmt_s(r['setup_s'])} |"
        )
    return "\n".join(lines)


def _git_revision() -> str:
    """Commit of the checkout, with ``+dirty`` if lmm_core has uncommitted changes."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "lmm_core"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip()
    except OSError:
        return "?"
    return (rev or "?") + ("+dirty" if dirty else "")


def _loadavg() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="skip the 1M-row run and statsmodels")
    ap.add_argument("--no-peer", action="store_true", help="skip statsmodels")
    ap.add_argument("--peer-cap", type=float, default=PEER_CAP_S, help="seconds per peer fit")
    ap.add_argument("--only", nargs="*", choices=list(CASES), help="run only these models")
    ap.add_argument(
        "--blas-threads",
        type=int,
        default=None,
        help="set OPENBLAS_NUM_THREADS/OMP_NUM_THREADS (re-executes the script)",
    )
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--repeats", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        kind, key = args.worker.split(":")
        rec = worker_lmm(key) if kind == "lmm" else worker_peer(key, args.repeats or 1)
        print(json.dumps(rec))
        return 0

    if args.blas_threads and os.environ.get("OPENBLAS_NUM_THREADS") != str(args.blas_threads):
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(args.blas_threads)
        script = str(Path(__file__).resolve())
        os.execv(sys.executable, [sys.executable, script, *(argv or sys.argv[1:])])

    run_peer = not (args.quick or args.no_peer)
    keys = args.only or list(CASES)
    if args.quick:
        keys = [k for k in keys if not CASES[k].subprocess]
    print(
        f"# bench_fit  {time.strftime('%Y-%m-%d %H:%M')}  commit {_git_revision()}  "
        f"{platform.node()}  "
        f"{os.cpu_count()} cores  Python {platform.python_version()}  numpy {np.__version__}  "
        f"BLAS threads {os.environ.get('OPENBLAS_NUM_THREADS', 'default')}  "
        f"load average {_loadavg()}",
        flush=True,
    )
    rows: list[Row] = []
    for key in keys:
        case = CASES[key]
        print(f"... {case.label}", flush=True)
        if case.subprocess:
            lm = run_lmm_subprocess(case, case.repeats)
            n = lm.get("rows", 0)
        else:
            data = case.load()
            n = len(data)
            lm = time_lmm(case, data, case.repeats)
        row = Row(case, n, lm)
        if case.peer is not None:
            if run_peer:
                reps = "5" if case.key == "sleep" else "1"
                row.peer_status, row.peer = _run_worker(
                    f"peer:{case.key}", args.peer_cap, ("--repeats", reps)
                )
            else:
                row.peer_status = "skipped"
        rows.append(row)
        print(f"    {json.dumps({k: v for k, v in lm.items() if k != 'fixef'})}", flush=True)
        if row.peer is not None:
            print(f"    statsmodels: {json.dumps(row.peer)}", flush=True)
    print("... evaluations per second", flush=True)
    rates = run_eval_rates(args.quick)
    print(f"load average at the end {_loadavg()}")
    print()
    print(format_table(rows, args.peer_cap))
    print()
    print(format_rates(rates))
    return 0


if __name__ == "__main__":
    sys.exit(main())
