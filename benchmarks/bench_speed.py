"""Speed of ``lmm_core`` beside lme4, in one run (issue 19: every fit 10 times faster).

Times, each side the median of a few runs (small fits are timed in batches so that the
clock's resolution does not matter), and reports ``ratio = lme4 / ours``:

* every reference model (``tests/fixtures/reference/cases``, the copy of
  ``../shared/reference/cases``: sleepstudy, Dyestuff, Orthodont, Pastes, Penicillin crossed,
  the simulated three-level trial, ...), REML or ML as the reference was fitted;
* the 80k-row trial ``y ~ time * arm + (time | patient)`` and ``... + (1 | hospital)``;
* the 1M-row three-level trial (``(time | patient) + (1 | hospital)``) in a fresh process:
  wall time and peak memory (``ru_maxrss``: interpreter, data and fit);
* an InstEval-size crossed model (73,421 rows, 2,972 x 1,128 x 14 levels;
  :func:`bench_fit.simulate_insteval`);
* the Teach page's 100 refits of 30 subjects x 6 visits
  (:func:`lmm_core.simulation.teaching_repeat.run_replicates`; lme4: ``lmer`` on the same
  100 data sets);
* on the 80k trial: Satterthwaite df (lmerTest), likelihood-profile intervals
  (``confint(method = "profile")``), the random-effects ladder (four fits); Kenward-Roger
  (pbkrtest) on growing trials, to show where it stops scaling;
* scaling curves: fit time against rows (10k to ``--max-rows``) and against the levels of a
  crossed factor, ours and lme4's, as a table and a figure (``benchmarks/results/``).

lme4 runs in one ``Rscript`` subprocess per batch of tasks, timed inside R (``proc.time``)
on the same data written to a temporary CSV; each R task is capped (``--lme4-cap``). The
project never needs R: without ``Rscript`` (or with ``--no-lme4``) only our side is timed.
``--quick`` runs a small real subset (a few reference models, sleepstudy, 10 Teach refits);
its correctness part (:func:`quick_correctness`: the timed fits reach lme4's reference
criterion and estimates) is what ``tests/core/test_bench_speed_quick.py`` runs in CI.

Usage (from the repository root)::

    PYTHONPATH=. .venv/bin/python benchmarks/bench_speed.py            # everything
    PYTHONPATH=. .venv/bin/python benchmarks/bench_speed.py --quick
    PYTHONPATH=. .venv/bin/python benchmarks/bench_speed.py --max-rows 10000000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
for _p in (str(ROOT), str(ROOT / "benchmarks")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from bench_fit import load_sleepstudy, load_trial, simulate_insteval  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
REFERENCE = ROOT / "tests" / "fixtures" / "reference"
QUICK_CASES = ("dyestuff_reml", "penicillin_crossed_reml", "pastes_nested_ml")
TRIAL = "y ~ time * arm"
MIB = 1024.0 * 1024.0


# ---------------------------------------------------------------------------------- tasks
@dataclass
class Task:
    """One thing to time on both sides.

    ``kind`` is ``fit`` (one model), ``satt``, ``kr``, ``profile`` (inference after a fit),
    ``teach`` (one fit per value of column ``rep``) or ``ladder`` (``formula`` holds several
    formulas separated by ``;``).
    """

    key: str
    label: str
    kind: str
    formula: str
    data: Callable[[], pd.DataFrame]
    reml: bool = True
    factors: tuple[str, ...] = ()
    goal: str = "10x"  # "10x" or an absolute goal in seconds ("<0.3 s")
    goal_s: float | None = None
    reference: dict | None = None  # lme4's reference fit (criterion, theta, beta)
    repeats: int = 3
    ours: dict = field(default_factory=dict)
    lme4: dict = field(default_factory=dict)


def _reference_data(filename: str) -> tuple[Callable[[], pd.DataFrame], tuple[str, ...]]:
    stem = filename.removesuffix(".csv")
    schema = json.loads((REFERENCE / "data" / f"{stem}.schema.json").read_text())
    factors = tuple(c["name"] for c in schema["columns"] if c["type"] == "factor")

    def load() -> pd.DataFrame:
        return pd.read_csv(REFERENCE / "data" / filename, dtype=dict.fromkeys(factors, str))

    return load, factors


def reference_tasks(names: tuple[str, ...] | None = None) -> list[Task]:
    """One task per reference case (all, or ``names``)."""
    tasks = []
    for path in sorted((REFERENCE / "cases").glob("*.json")):
        if names is not None and path.stem not in names:
            continue
        case = json.loads(path.read_text())
        load, factors = _reference_data(case["dataset"])
        reml = bool(case["REML"])
        crit = case["REML_criterion"] if reml else case["deviance"]
        ref = {"objective": float(crit), "theta": case["theta"]["values"], "beta": case["beta"]}
        tasks.append(
            Task(
                path.stem,
                path.stem,
                "fit",
                case["formula"],
                load,
                reml,
                factors,
                reference=ref,
                repeats=5,
            )
        )
    return tasks


def _trial80k() -> pd.DataFrame:
    return load_trial(100, 125)


def teach_data(n: int = 100, seed: int = 1) -> pd.DataFrame:
    """The Teach page's ``n`` studies (default truth: 30 subjects x 6 visits), stacked."""
    from lmm_core.simulation.teaching import simulate_lab
    from lmm_core.simulation.teaching_truth import LabTruth

    truth = LabTruth()
    children = np.random.SeedSequence(seed).spawn(n)
    parts = [simulate_lab(truth, c).data.assign(rep=r) for r, c in enumerate(children)]
    return pd.concat(parts, ignore_index=True)


def main_tasks(quick: bool) -> list[Task]:
    tasks = reference_tasks(QUICK_CASES if quick else None)
    tasks.insert(
        0,
        Task(
            "sleepstudy",
            "sleepstudy (Days | Subject)",
            "fit",
            "Reaction ~ Days + (Days | Subject)",
            load_sleepstudy,
            repeats=7,
        ),
    )
    n_teach = 10 if quick else 100
    tasks.append(
        Task(
            "teach",
            f"Teach: {n_teach} refits, 30 subjects x 6 visits",
            "teach",
            "y ~ time + (time | subject)",
            lambda: teach_data(n_teach),
            goal="<0.3 s" if not quick else "10x",
            goal_s=0.3 if not quick else None,
        )
    )
    if quick:
        return tasks
    p1, p2 = f"{TRIAL} + (time | patient)", f"{TRIAL} + (time | patient) + (1 | hospital)"
    tasks += [
        Task("trial80k", "trial 80k (time | patient)", "fit", p1, _trial80k),
        Task("trial80k_h", "trial 80k + (1 | hospital)", "fit", p2, _trial80k),
        Task(
            "crossed",
            "InstEval-size crossed (1|s)+(1|t)+(1|dept)",
            "fit",
            "y ~ 1 + (1 | student) + (1 | teacher) + (1 | department)",
            simulate_insteval,
            goal="~1 s",
            goal_s=1.0,
            repeats=1,
        ),
        Task(
            "satt80k",
            "Satterthwaite df, trial 80k",
            "satt",
            p1,
            _trial80k,
            goal="<0.3 s",
            goal_s=0.3,
        ),
        Task(
            "profile80k",
            "profile intervals, trial 80k",
            "profile",
            p1,
            _trial80k,
            goal="<2 s",
            goal_s=2.0,
            repeats=1,
        ),
        Task(
            "ladder80k",
            "ladder (4 fits), trial 80k",
            "ladder",
            ";".join([f"{TRIAL} + (1 | patient)", f"{TRIAL} + (time || patient)", p1, p2]),
            _trial80k,
            goal="<2 s",
            goal_s=2.0,
            repeats=1,
        ),
    ]
    return tasks


def kr_tasks() -> list[Task]:
    """Kenward-Roger on growing trials ``(time | patient)``."""
    out = []
    for hosp, per in ((10, 10), (20, 25), (50, 40), (100, 125)):
        out.append(
            Task(
                f"kr_{hosp * per}",
                f"Kenward-Roger, {hosp * per:,} patients",
                "kr",
                f"{TRIAL} + (time | patient)",
                lambda h=hosp, p=per: load_trial(h, p),
                repeats=1,
            )
        )
    return out


# ---------------------------------------------------------------------------------- ours
def clock() -> float:
    """Seconds of the chosen clock: wall time, or with ``--cpu`` (``BENCH_CPU=1``, inherited by
    the worker and R processes) this process's CPU time, which a loaded shared host disturbs
    far less (R's side then uses ``proc.time()`` user + system)."""
    return time.process_time() if os.environ.get("BENCH_CPU") == "1" else time.perf_counter()


def _median_time(run: Callable[[], object], repeats: int, batch_s: float = 0.05):
    """Median seconds of ``run()`` over ``repeats`` batches (small runs batched), last value."""
    t0 = clock()
    value = run()  # warm-up
    first = clock() - t0
    per = max(1, int(batch_s / max(first, 1e-6))) if first < batch_s else 1
    times = []
    for _ in range(repeats):
        t0 = clock()
        for _ in range(per):
            value = run()
        times.append((clock() - t0) / per)
    return statistics.median(times), value


def run_ours(task: Task, data: pd.DataFrame) -> dict:
    """Time ``task`` with lmm_core; returns seconds and what the fit reached."""
    from lmm_core import fit_lmm
    from lmm_core.inference.kenward_roger import kr_adjustment
    from lmm_core.inference.profile import profile_confint
    from lmm_core.simulation.teaching import fit_lab
    from lmm_core.simulation.teaching_repeat import run_replicates
    from lmm_core.simulation.teaching_truth import LabTruth

    if task.kind == "fit":
        secs, res = _median_time(lambda: fit_lmm(task.formula, data, reml=task.reml), task.repeats)
        return {
            "seconds": secs,
            "objective": float(res.objective),
            "n_evals": res.opt.n_evals,
            "theta": res.theta.tolist(),
            "beta": res.beta.tolist(),
        }
    if task.kind == "teach":
        n = int(data["rep"].max()) + 1
        truth = LabTruth()
        secs, summary = _median_time(lambda: run_replicates(truth, n, seed=1), task.repeats)
        fits = [fit_lab(d.drop(columns="rep")) for _, d in data.groupby("rep")][:3]
        return {
            "seconds": secs,
            "fit_seconds": summary.fit_seconds,
            "objective": float(sum(f.objective for f in fits)),
        }
    formulas = task.formula.split(";")
    # the fit whose criterion is compared with lme4's: a ladder's third (as the R side)
    res = fit_lmm(formulas[2 if task.kind == "ladder" else 0], data, reml=task.reml)
    if task.kind == "satt":
        from lmm_core.inference.fixed_effects import fixef_inference

        times = []  # the first call on a fresh fit: later calls reuse its cached derivatives
        for _ in range(task.repeats):
            fresh = fit_lmm(task.formula, data, reml=task.reml)
            t0 = clock()
            fixef_inference(fresh, "satterthwaite", 0.95)
            times.append(clock() - t0)
        secs = statistics.median(times)
    elif task.kind == "kr":
        t0 = clock()
        try:
            kr_adjustment(res)
        except Exception as err:  # noqa: BLE001 - the benchmark reports where KR stops
            return {"seconds": float("nan"), "status": type(err).__name__}
        secs = clock() - t0
    elif task.kind == "profile":
        secs, _ = _median_time(lambda: profile_confint(res), task.repeats)
    elif task.kind == "ladder":
        secs, _ = _median_time(
            lambda: [fit_lmm(f, data, reml=task.reml) for f in task.formula.split(";")],
            task.repeats,
        )
    else:
        raise ValueError(task.kind)
    return {"seconds": secs, "objective": float(res.objective)}


def _peak_mib() -> float:
    """This process's peak resident memory (``VmHWM``, MiB). Not ``ru_maxrss``: on Linux that
    survives ``exec`` and so starts at the parent's size when the worker is spawned."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def worker_big(rows: int, formula: str) -> dict:
    """In a fresh process: simulate ``rows`` trial rows, fit once; time and peak memory."""
    from lmm_core import fit_lmm

    fit_lmm("Reaction ~ Days + (Days | Subject)", load_sleepstudy())  # imports, warm-up
    fit_lmm(formula, load_trial(20, 10))  # and this model's first calls (compiled loops)
    data = load_trial(100, max(1, round(rows / 632)))
    t0 = clock()
    res = fit_lmm(formula, data, reml=True)
    secs = clock() - t0
    return {
        "seconds": secs,
        "rows": len(data),
        "objective": float(res.objective),
        "peak_mib": _peak_mib(),
        "n_evals": res.opt.n_evals,
    }


def run_big(rows: int, formula: str, timeout: float = 1800.0) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(rows), formula]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        out = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env
        )
    except subprocess.TimeoutExpired:
        return {"seconds": float("nan"), "status": "capped"}
    if out.returncode != 0:
        return {"seconds": float("nan"), "status": out.stderr.strip().splitlines()[-1][:200]}
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------- lme4
R_SCRIPT = r"""
suppressMessages({library(lme4)})
tasks <- read.delim(commandArgs(TRUE)[1], stringsAsFactors = FALSE, quote = "",
                    colClasses = c(factors = "character"))
clk <- if (Sys.getenv("BENCH_CPU") == "1") function() sum(proc.time()[1:2]) else
  function() proc.time()[[3]]
timeit <- function(f, reps) {
  t0 <- clk(); val <- f(); first <- clk() - t0
  per <- if (first < 0.05) max(1, ceiling(0.05 / max(first, 1e-4))) else 1
  ts <- numeric(reps)
  for (k in seq_len(reps)) {
    t0 <- clk(); for (j in seq_len(per)) val <- f()
    ts[k] <- (clk() - t0) / per
  }
  list(t = median(ts), val = val)
}
crit <- function(m) -2 * as.numeric(logLik(m))
for (i in seq_len(nrow(tasks))) {
  tk <- tasks[i, ]
  d <- read.csv(tk$csv, stringsAsFactors = TRUE)
  fac <- if (is.na(tk$factors)) character(0) else strsplit(tk$factors, ",")[[1]]
  for (v in fac) d[[v]] <- factor(d[[v]])
  fs <- strsplit(tk$formula, ";")[[1]]
  out <- tryCatch({
    setTimeLimit(elapsed = tk$cap, transient = TRUE)
    r <- switch(tk$kind,
      fit = { x <- timeit(function() lmer(as.formula(fs[1]), d, REML = tk$reml), tk$reps)
              c(x$t, crit(x$val)) },
      teach = { parts <- split(d, d$rep)
                x <- timeit(function() lapply(parts, function(p) lmer(as.formula(fs[1]), p)),
                            tk$reps)
                c(x$t, sum(sapply(x$val[1:3], crit))) },
      ladder = { x <- timeit(function() lapply(fs, function(f) lmer(as.formula(f), d,
                                                                      REML = tk$reml)), tk$reps)
                 c(x$t, crit(x$val[[3]])) },
      { m <- lmer(as.formula(fs[1]), d, REML = tk$reml)
        g <- switch(tk$kind,
          satt = function() summary(lmerTest::as_lmerModLmerTest(m), ddf = "Satterthwaite"),
          kr = function() pbkrtest::vcovAdj(m),
          profile = function() confint(m, method = "profile", oldNames = FALSE))
        x <- timeit(g, tk$reps); c(x$t, crit(m)) })
    setTimeLimit()
    sprintf("%.6f\t%.10f\tok", r[1], r[2])
  }, error = function(e) {
    setTimeLimit()
    msg <- gsub("[\t\n]", " ", conditionMessage(e))
    sprintf("NaN\tNaN\t%s", if (grepl("time limit", msg)) "capped" else substr(msg, 1, 80))
  })
  cat(sprintf("RESULT\t%s\t%s\n", tk$key, out)); flush(stdout())
}
"""


def have_r() -> bool:
    return shutil.which("Rscript") is not None


def run_lme4(
    items: list[tuple[str, str, str, bool, tuple[str, ...], pd.DataFrame, int]], cap: float
) -> dict[str, dict]:
    """Time ``(key, kind, formula, reml, factors, data, reps)`` items in one Rscript."""
    out: dict[str, dict] = {}
    if not items or not have_r():
        return out
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for key, kind, formula, reml, factors, data, reps in items:
            csv = Path(tmp) / f"{key}.csv"
            data.to_csv(csv, index=False)
            rows.append(
                {
                    "key": key,
                    "kind": kind,
                    "formula": formula,
                    "reml": "TRUE" if reml else "FALSE",
                    "factors": ",".join(factors),
                    "csv": str(csv),
                    "reps": reps,
                    "cap": cap,
                }
            )
        table = Path(tmp) / "tasks.tsv"
        pd.DataFrame(rows).to_csv(table, sep="\t", index=False)
        script = Path(tmp) / "bench.R"
        script.write_text(R_SCRIPT)
        proc = subprocess.run(
            ["Rscript", str(script), str(table)],
            capture_output=True,
            text=True,
            timeout=cap * len(items) * 4 + 600,
        )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT\t"):
            _, key, secs, crit, status = line.split("\t", 4)
            out[key] = {"seconds": float(secs), "objective": float(crit), "status": status}
    if proc.returncode != 0 and not out:
        sys.stderr.write(proc.stderr[-2000:])
    return out


# ---------------------------------------------------------------------------------- checks
def quick_correctness(names: tuple[str, ...] = QUICK_CASES) -> list[dict]:
    """The quick mode's fits against lme4's reference fits (no timing, no R).

    For each case: our criterion minus lme4's (``d_objective``: at most ``1e-6`` and never
    meaningfully worse is the exactness bar of ``tests/core/test_reference_lme4.py``), the
    largest relative difference of the fixed effects and of ``theta`` (scaled by the largest
    element), and whether the benchmark's timed fit equals an ordinary fit exactly.
    """
    from lmm_core import fit_lmm

    rows = []
    for task in reference_tasks(names):
        data = task.data()
        ours = run_ours(
            Task(task.key, task.label, "fit", task.formula, lambda d=data: d, task.reml, repeats=1),
            data,
        )
        plain = fit_lmm(task.formula, data, reml=task.reml)
        ref = task.reference
        beta_ref = np.asarray(ref["beta"]["values"], float)
        theta_ref = np.asarray(ref["theta"], float)
        rows.append(
            {
                "case": task.key,
                "d_objective": ours["objective"] - ref["objective"],
                "beta_rel": float(
                    np.max(np.abs(np.asarray(ours["beta"]) - beta_ref))
                    / max(np.max(np.abs(beta_ref)), 1e-300)
                ),
                "theta_rel": float(
                    np.max(np.abs(np.asarray(ours["theta"]) - theta_ref))
                    / max(np.max(np.abs(theta_ref)), 1e-300)
                ),
                "same_as_plain_fit": bool(
                    ours["objective"] == plain.objective
                    and np.array_equal(ours["beta"], plain.beta)
                ),
            }
        )
    return rows


# ---------------------------------------------------------------------------------- report
def _fmt(s: float) -> str:
    if not np.isfinite(s):
        return "-"
    return f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.2f} s"


def verdict(task: Task) -> tuple[str, str]:
    """(ratio, met) of a task."""
    ours, lme4 = task.ours.get("seconds", np.nan), task.lme4.get("seconds", np.nan)
    ratio = lme4 / ours if np.isfinite(ours) and np.isfinite(lme4) and ours > 0 else np.nan
    r = f"{ratio:.1f}x" if np.isfinite(ratio) else "-"
    if task.goal_s is not None:
        met = np.isfinite(ours) and ours <= task.goal_s
        if task.goal == "10x+mem":
            met = met and task.ours.get("peak_mib", np.inf) <= 1024
    else:
        met = np.isfinite(ratio) and ratio >= 10
    return r, "yes" if met else ("?" if not np.isfinite(ratio) and task.goal_s is None else "NO")


def table(tasks: list[Task]) -> str:
    head = (
        "| model | rows | ours | lme4 | lme4 / ours | goal | met | evals | criterion ours - lme4 |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for t in tasks:
        r, met = verdict(t)
        lstat = t.lme4.get("status", "not run")
        lme4 = _fmt(t.lme4.get("seconds", np.nan)) if lstat == "ok" else lstat
        ours = _fmt(t.ours.get("seconds", np.nan))
        if "peak_mib" in t.ours:
            ours += f", peak {t.ours['peak_mib']:.0f} MiB"
        if "status" in t.ours:
            ours = t.ours["status"]
        d = t.ours.get("objective", np.nan) - t.lme4.get("objective", np.nan)
        dtxt = f"{d:+.1e}" if np.isfinite(d) and t.kind in ("fit", "ladder") else "-"
        label = t.label.replace("|", "\\|")
        lines.append(
            f"| {label} | {t.ours.get('rows', '')} | {ours} | {lme4} | {r} "
            f"| {t.goal} | {met} | {t.ours.get('n_evals', '')} | {dtxt} |"
        )
    return "\n".join(lines)


def scaling(max_rows: int, lme4: bool, cap: float) -> pd.DataFrame:
    """Fit time against rows (trial, two terms) and against levels of a crossed factor."""
    from lmm_core import fit_lmm

    formula = f"{TRIAL} + (time | patient) + (1 | hospital)"
    recs = []
    lme4_on = lme4
    for rows in (10_000, 30_000, 100_000, 300_000, 1_000_000, 3_000_000, 10_000_000):
        if rows > max_rows:
            break
        ours = run_big(rows, formula)
        rec = {
            "curve": "rows",
            "x": ours.get("rows", rows),
            "ours_s": ours["seconds"],
            "peak_mib": ours.get("peak_mib", np.nan),
            "lme4_s": np.nan,
        }
        if lme4_on:
            data = load_trial(100, max(1, round(rows / 632)))
            got = run_lme4([("s", "fit", formula, True, (), data, 1)], cap).get("s", {})
            rec["lme4_s"] = got.get("seconds", np.nan)
            lme4_on = got.get("status") == "ok"
        recs.append(rec)
        print(f"    {rec}", flush=True)
    lme4_on = lme4
    f = "y ~ 1 + (1 | student) + (1 | teacher) + (1 | department)"
    for teachers in (100, 300, 1_128, 3_000):
        data = simulate_insteval(n_teachers=teachers)
        secs, _ = _median_time(lambda d=data: fit_lmm(f, d), 1, 0.0)
        rec = {
            "curve": "teachers",
            "x": teachers,
            "ours_s": secs,
            "peak_mib": np.nan,
            "lme4_s": np.nan,
        }
        if lme4_on:
            got = run_lme4([("s", "fit", f, True, (), data, 1)], cap).get("s", {})
            rec["lme4_s"] = got.get("seconds", np.nan)
            lme4_on = got.get("status") == "ok"
        recs.append(rec)
        print(f"    {rec}", flush=True)
    return pd.DataFrame(recs)


def scaling_table(curves: pd.DataFrame) -> str:
    """The scaling curves as a markdown table."""
    lines = [
        "| curve | x | ours | lme4 | lme4 / ours | peak memory (ours) |",
        "|---|---|---|---|---|---|",
    ]
    for r in curves.itertuples(index=False):
        ratio = r.lme4_s / r.ours_s if np.isfinite(r.lme4_s) else np.nan
        peak = f"{r.peak_mib:.0f} MiB" if np.isfinite(r.peak_mib) else "-"
        lines.append(
            f"| {r.curve} | {int(r.x):,} | {_fmt(r.ours_s)} | {_fmt(r.lme4_s)} | "
            f"{'-' if not np.isfinite(ratio) else f'{ratio:.1f}x'} | {peak} |"
        )
    return "\n".join(lines)


def scaling_figure(curves: pd.DataFrame, path: Path) -> Path | None:
    """Two log-log panels (rows, crossed levels), ours and lme4's; PNG through kaleido."""
    try:
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots
    except ImportError:
        return None
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=(
            "trial (time | patient) + (1 | hospital): rows",
            "InstEval-size crossed: teachers (73k rows)",
        ),
    )
    for col, curve in ((1, "rows"), (2, "teachers")):
        part = curves[curves["curve"] == curve]
        for name, column, dash, colour in (
            ("lmm_core", "ours_s", "solid", "#0072B2"),  # Okabe-Ito blue
            ("lme4", "lme4_s", "dash", "#D55E00"),  # Okabe-Ito vermillion
        ):
            fig.add_trace(
                go.Scatter(
                    x=part["x"],
                    y=part[column],
                    name=name,
                    mode="lines+markers",
                    line={"dash": dash, "color": colour},
                    marker={"color": colour},
                    showlegend=col == 1,
                ),
                row=1,
                col=col,
            )
        fig.update_xaxes(type="log", title_text=curve, row=1, col=col)
        fig.update_yaxes(type="log", title_text="fit time (s)", row=1, col=col)
    fig.update_layout(width=1100, height=450, template="plotly_white")
    try:
        fig.write_image(str(path))
    except Exception as err:  # noqa: BLE001 - a missing browser only loses the picture
        print(f"    figure not written: {err}")
        return None
    return path


def _header() -> str:
    rev = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    return (
        f"# bench_speed {time.strftime('%Y-%m-%d %H:%M')} commit {rev} {platform.node()} "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, numpy "
        f"{np.__version__}, load {' '.join(f'{x:.1f}' for x in os.getloadavg())}, clock "
        f"{'CPU time (--cpu)' if os.environ.get('BENCH_CPU') == '1' else 'wall'}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a small real subset")
    ap.add_argument("--no-lme4", action="store_true", help="time our side only")
    ap.add_argument("--lme4-cap", type=float, default=300.0, help="seconds per R task")
    ap.add_argument("--max-rows", type=int, default=1_000_000, help="largest scaling point")
    ap.add_argument("--no-scaling", action="store_true", help="skip the scaling curves")
    ap.add_argument("--only", nargs="*", help="task keys to run")
    ap.add_argument("--cpu", action="store_true", help="time CPU seconds (both sides), not wall")
    ap.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.cpu:
        os.environ["BENCH_CPU"] = "1"
    if args.worker:
        print(json.dumps(worker_big(int(args.worker[0]), args.worker[1])))
        return 0
    from lmm_core.model.linalg import single_threaded_blas

    use_r = have_r() and not args.no_lme4
    print(_header(), flush=True)
    tasks = main_tasks(args.quick)
    if not args.quick:
        tasks.insert(
            len(tasks) - 3,
            Task(
                "trial1m",
                "trial 1M three-level (fresh process)",
                "big",
                f"{TRIAL} + (time | patient) + (1 | hospital)",
                lambda: load_trial(100, round(1_000_000 / 632)),  # the worker's rows
                goal="<1.5 s, <1 GiB",
                goal_s=1.5,
                repeats=1,
            ),
        )
        tasks += kr_tasks()
    if args.only:
        tasks = [t for t in tasks if t.key in args.only]
    for t in tasks:
        print(f"... {t.label}", flush=True)
        data = t.data()
        if t.kind == "big":
            t.ours = run_big(1_000_000, t.formula)
            t.goal = "10x+mem"
        else:
            with single_threaded_blas():
                t.ours = run_ours(t, data)
            t.ours["rows"] = f"{len(data):,}"
        if use_r:
            got = run_lme4(
                [
                    (
                        t.key,
                        "fit" if t.kind == "big" else t.kind,
                        t.formula,
                        t.reml,
                        t.factors,
                        data,
                        t.repeats,
                    )
                ],
                args.lme4_cap,
            )
            t.lme4 = got.get(t.key, {"status": "failed"})
        print(
            f"    ours {json.dumps({k: v for k, v in t.ours.items() if k != 'theta'})}"
            f"  lme4 {json.dumps(t.lme4)}",
            flush=True,
        )
    if args.quick:
        print(json.dumps(quick_correctness(), indent=1))
    out = [_header(), "", table(tasks)]
    if not (args.quick or args.no_scaling):
        print("... scaling curves", flush=True)
        curves = scaling(args.max_rows, use_r, args.lme4_cap)
        RESULTS.mkdir(parents=True, exist_ok=True)
        curves.to_csv(RESULTS / "scaling.csv", index=False)
        fig = scaling_figure(curves, RESULTS / "scaling.png")
        out += [
            "",
            scaling_table(curves),
            "",
            f"figure: {fig.relative_to(ROOT) if fig else 'not written'}",
        ]
    text = "\n".join(out)
    print()
    print(text)
    if not args.quick:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "bench_speed.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
