"""The app's long computations, shaped as job work (no Streamlit).

Each function takes a ``report(fraction, text)`` callable and calls it after every unit of
work (a replicate, a refit, a rung of the ladder, a profiled parameter): the job runner's
:meth:`dashboard.state.jobs.Job.report` records the progress and raises
:class:`dashboard.state.jobs.Cancelled` there when the user has cancelled, which unwinds the
computation between two units. Texts are plain (the view escapes them).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from typing import Any

import pandas as pd

from dashboard.analysis import curve_shape as cs
from dashboard.analysis import ladder as lad
from dashboard.analysis import trial as tr
from dashboard.analysis.records import GAUSSIAN
from dashboard.analysis.server_data import source_of
from lmm_core import (
    BootstrapResult,
    LikelihoodProfile,
    LMMResult,
    fit_glmm,
    fit_lmm,
    parametric_bootstrap,
)
from lmm_core.simulation.teaching_repeat import ReplicateSummary, run_replicates
from lmm_core.simulation.teaching_truth import LabTruth
from lmm_core.stream.glmm_sample import SampledGLMMResult, glmm_on_sample
from lmm_core.stream.results import StreamedLMMResult

__all__ = [
    "GLMMProgress",
    "Report",
    "bootstrap",
    "curve_shapes",
    "fit",
    "ladder",
    "profile_intervals",
    "stream_fit",
    "stream_glmm_fit",
    "teaching_repeat",
    "trial_structures",
]

#: ``report(fraction done or None, short text)``; raises to stop the work
Report = Callable[[float | None, str], None]


def bootstrap(result: LMMResult, n_boot: int, seed: int, report: Report) -> BootstrapResult:
    """:func:`lmm_core.parametric_bootstrap` with a report after every replicate."""

    def progress(i: int, n: int) -> None:
        report(i / n, f"Replicate {i:,} of {n:,}")

    report(0.0, f"Replicate 0 of {n_boot:,}")
    return parametric_bootstrap(result, int(n_boot), int(seed), progress)


def profile_intervals(result: LMMResult, level: float, report: Report) -> pd.DataFrame:
    """:func:`lmm_core.profile_confint`, one parameter at a time with a report between them.

    The same numbers as ``profile_confint(result, level)`` (one profile object, the same
    order); ``attrs`` hold the level, the ML estimates, the messages, the seconds and the
    number of deviance evaluations of the whole run.
    """
    report(0.0, "Refitting by ML" if result.reml else "Preparing the profile")
    profile = LikelihoodProfile(result)
    names = list(profile.parameters)
    parts = []
    for i, name in enumerate(names):
        report(i / len(names), f"Parameter {i + 1} of {len(names)}")
        parts.append(profile.confint(level, [name]))
    report(1.0, f"Parameter {len(names)} of {len(names)}")
    table = pd.concat(parts)
    table.attrs.update(parts[-1].attrs)  # messages and evaluations are cumulative
    table.attrs.update(
        ml_estimates={n: profile.parameters[n].estimate for n in names},
        seconds=sum(p.attrs["seconds"] for p in parts),
    )
    return table


#: Test hook: seconds to wait after each simulated study of the Teach page's repeat (a browser
#: test needs the run to last while it switches pages; 100 studies take 0.2 s).
STUDY_DELAY_ENV = "LMM_EXPLORER_STUDY_DELAY"


def teaching_repeat(
    truth: LabTruth, n_replicates: int, seed: int, level: float, df: str, report: Report
) -> ReplicateSummary:
    """:func:`lmm_core.simulation.teaching_repeat.run_replicates` with a report after every
    simulated study."""

    pause = float(os.environ.get(STUDY_DELAY_ENV) or 0)  # test hook: a visible progress

    def progress(done: int, total: int) -> None:
        report(done / total, f"Study {done:,} of {total:,}")
        if pause > 0:
            time.sleep(pause)

    report(0.0, f"Study 0 of {int(n_replicates):,}")
    return run_replicates(
        truth, int(n_replicates), seed=int(seed), level=level, df=df, progress=progress
    )


def ladder(
    plan: lad.LadderPlan, fit: Callable[[str], LMMResult], reml: bool, report: Report
) -> lad.Ladder:
    """Fit the rungs of ``plan`` with ``fit(formula)`` (a report before each) and test them
    (:func:`dashboard.analysis.ladder.run_ladder`,
    :func:`~dashboard.analysis.ladder.analyse_ladder`)."""
    n = len(plan.specs)

    def on_step(i: int, spec: lad.LadderSpec) -> None:
        report(i / n, f"Step {i + 1} of {n}: {spec.label.lstrip('+ ')}")

    steps = lad.run_ladder(plan.specs, fit, on_step)
    report(1.0, f"{n} of {n} steps fitted")
    return lad.analyse_ladder(steps, reml, plan.notes)


def curve_shapes(
    plan: cs.CurvePlan, fit: Callable[[str], LMMResult], report: Report
) -> cs.CurveComparison:
    """Fit the competing shapes of the population curve of ``plan`` with ``fit(formula)`` (an
    ML fit; a report before each) and compare them
    (:func:`dashboard.analysis.curve_shape.fit_shapes`,
    :func:`~dashboard.analysis.curve_shape.analyse_curves`)."""
    n = len(plan.shapes)

    def on_shape(i: int, shape: cs.Shape) -> None:
        report(i / n, f"Shape {i + 1} of {n}: {shape.label}")

    fits = cs.fit_shapes(plan.shapes, fit, on_shape)
    report(1.0, f"{n} of {n} shapes fitted")
    return cs.analyse_curves(plan, fits)


def trial_structures(plan: tr.TrialPlan, report: Report) -> list[tr.StructureFit]:
    """Fit the MMRM of ``plan`` with every covariance structure of
    :data:`dashboard.analysis.trial.STRUCTURES` by REML (a report before each;
    :func:`dashboard.analysis.trial.fit_structures`)."""
    names = list(tr.STRUCTURES)
    n = len(names)

    def on_step(i: int, structure: str) -> None:
        report(i / n, f"Structure {i + 1} of {n}: {tr.STRUCTURES[structure]}")

    fits = tr.fit_structures(plan, names, on_step)
    report(1.0, f"{n} of {n} structures fitted")
    return fits


def fit(
    formula: str,
    data: pd.DataFrame,
    reml: bool,
    family: str,
    link: str | None,
    nagq: int,
    report: Report,
) -> Any:
    """One fit: :func:`lmm_core.fit_lmm` for a Gaussian outcome, else
    :func:`lmm_core.fit_glmm` with ``family``, ``link`` and ``nagq`` (no progress to report;
    the job shows a spinner)."""
    report(None, "Fitting the model")
    if family == GAUSSIAN:
        return fit_lmm(formula, data, reml=reml)
    return fit_glmm(formula, data, family=family, link=link, nagq=nagq)


def stream_fit(
    formula: str,
    folder: str,
    name: str,
    table: str | None,
    reml: bool,
    family: str,
    sample: pd.DataFrame,
    n_rows: int,
    pause: float,
    report: Report,
) -> StreamedLMMResult | SampledGLMMResult:
    """A linear mixed model fitted to a whole file of the server's data folder by streaming
    (:func:`lmm_core.fit_lmm` with a source: SQL aggregates, then record batches summed into
    the blocks), reporting rows done and rows per second after every batch; returned as
    seen on ``sample`` (:meth:`~lmm_core.stream.results.StreamedLMMResult.on_sample`), the
    patients the app shows. Batches hold about ``n_rows / 40`` rows (20,000 to 1,000,000), so
    that the progress moves; ``pause`` seconds are waited after each (a test hook, 0 in use).
    A ``family`` other than Gaussian is a GLMM: :func:`stream_glmm_fit` (canonical link).

    Raises
    ------
    lmm_core.LMMError
        A file that cannot be read, or any model problem (the message says which).
    """
    if family != GAUSSIAN:
        return stream_glmm_fit(
            formula, folder, name, table, family, None, 1, sample, n_rows, pause, report
        )
    source = source_of(folder, name, table)
    report(0.0, "Pass 1: levels, counts and missing values (SQL)")

    def progress(done: int, total: int, rate: float) -> None:
        more = "" if done < total else "; estimating the model"
        report(done / max(total, 1), f"{done:,} of {total:,} rows, {int(rate):,} rows/s{more}")
        if pause > 0 and done < total:
            time.sleep(pause)

    batch = min(1_000_000, max(20_000, int(n_rows) // 40))
    result = fit_lmm(formula, source, reml=reml, progress=progress, batch_size=batch)
    return result.on_sample(sample)


def stream_glmm_fit(
    formula: str,
    folder: str,
    name: str,
    table: str | None,
    family: str,
    link: str | None,
    nagq: int,
    sample: pd.DataFrame,
    n_rows: int,
    pause: float,
    report: Report,
) -> SampledGLMMResult:
    """A GLMM (binomial or Poisson, by Laplace) fitted to a whole file of the server's data
    folder by streaming (:func:`lmm_core.fit_glmm` with a source: one pass over the rows per
    iteration of penalized IRLS), returned as seen on ``sample``
    (:func:`lmm_core.stream.glmm_sample.glmm_on_sample`).

    Progress (:class:`GLMMProgress`): during the first pass, rows and rows per second; then
    the engine's cost sentence (about N passes, about M minutes) stays in the text, and the
    fraction is the passes made over the passes estimated. ``pause`` seconds are waited once,
    when the cost is known (a test hook, 0 in use: it keeps the sentence on screen). Batches
    hold a quarter of the file (20,000 to 1,000,000 rows): a pass is a few batches.

    Raises
    ------
    lmm_core.LMMError
        ``nagq > 1`` (the engine's message: a streamed GLMM is fitted by Laplace), an outcome
        the family cannot model, a file that cannot be read, any model problem.
    """
    source = source_of(folder, name, table)
    report(0.0, "Pass 1: levels, counts and missing values (SQL)")
    progress = GLMMProgress(report, pause)
    batch = min(1_000_000, max(20_000, int(n_rows) // 4))
    result = fit_glmm(
        formula,
        source,
        family=family,
        link=link,
        nagq=int(nagq),
        progress=progress,
        batch_size=batch,
    )
    report(1.0, progress.closing or "Done")
    return glmm_on_sample(result, sample)


#: the number of passes in the engine's cost sentence ("about 297 passes")
_PASSES = re.compile(r"about ([\d,]+) passes")


class GLMMProgress:
    """The engine's ``progress(done, total, rate, message=None)`` of a streamed GLMM as
    ``report(fraction, text)`` calls, pass by pass.

    A pass ends with the batch whose ``done`` reaches ``total``; rows per second are this
    pass's rows over the time since the previous pass ended (the engine's own rate starts
    its clock at a pass's first batch). The first ``message`` is the cost sentence (the
    estimate of passes is read from it); a later one, the passes made, is kept as
    :attr:`closing`. Fractions: 0 in the first pass, then ``(passes done + share of this
    pass) / passes estimated``, at most 0.99 until the end.
    """

    def __init__(self, report: Report, pause: float = 0.0) -> None:
        self.report, self.pause = report, pause
        self.done_passes = 0
        self.estimate: int | None = None
        self.cost = ""
        self.closing = ""
        self._pass_start = time.perf_counter()

    def __call__(self, done: int, total: int, rate: float, message: str | None = None) -> None:
        if message is not None:
            self._message(message.rstrip("."))
            return
        now = time.perf_counter()
        speed = f"{int(done / max(now - self._pass_start, 1e-9)):,} rows/s"
        k = self.done_passes + 1
        if done >= total:
            self.done_passes += 1
            self._pass_start = now
        if self.estimate is None:
            self.report(0.0, f"Pass {k}, timing the cost of a pass: {done:,} of {total:,} rows")
            return
        rows = f": {done:,} of {total:,} rows" if done < total else ""  # a pass in batches
        of = (
            f"of about {self.estimate:,}"
            if k <= self.estimate
            else f"(about {self.estimate:,} were estimated)"
        )
        share = (k - 1 + done / max(total, 1)) / self.estimate
        self.report(min(share, 0.99), f"Pass {k:,} {of}{rows} ({speed}). {self.cost}.")

    def _message(self, text: str) -> None:
        if self.estimate is not None:
            self.closing = text + "; seeing the fit on the sample."
            return
        found = _PASSES.search(text)
        self.estimate = max(int(found.group(1).replace(",", "")), 1) if found else 1
        self.cost = text
        self.report(0.0, text + ".")
        if self.pause > 0:
            time.sleep(self.pause)
