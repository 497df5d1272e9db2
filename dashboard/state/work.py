"""The app's long computations, shaped as job work (no Streamlit).

Each function takes a ``report(fraction, text)`` callable and calls it after every unit of
work (a replicate, a refit, a rung of the ladder, a profiled parameter): the job runner's
:meth:`dashboard.state.jobs.Job.report` records the progress and raises
:class:`dashboard.state.jobs.Cancelled` there when the user has cancelled, which unwinds the
computation between two units. Texts are plain (the view escapes them).
"""

from __future__ import annotations

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
    ModelError,
    fit_glmm,
    fit_lmm,
    parametric_bootstrap,
)
from lmm_core.simulation.teaching_repeat import ReplicateSummary, run_replicates
from lmm_core.simulation.teaching_truth import LabTruth
from lmm_core.stream.results import StreamedLMMResult

__all__ = [
    "Report",
    "bootstrap",
    "curve_shapes",
    "fit",
    "ladder",
    "profile_intervals",
    "stream_fit",
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


def teaching_repeat(
    truth: LabTruth, n_replicates: int, seed: int, level: float, df: str, report: Report
) -> ReplicateSummary:
    """:func:`lmm_core.simulation.teaching_repeat.run_replicates` with a report after every
    simulated study."""

    def progress(done: int, total: int) -> None:
        report(done / total, f"Study {done:,} of {total:,}")

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
) -> StreamedLMMResult:
    """A linear mixed model fitted to a whole file of the server's data folder by streaming
    (:func:`lmm_core.fit_lmm` with a source: SQL aggregates, then record batches summed into
    the blocks), reporting rows done and rows per second after every batch; returned as
    seen on ``sample`` (:meth:`~lmm_core.stream.results.StreamedLMMResult.on_sample`), the
    patients the app shows. Batches hold about ``n_rows / 40`` rows (20,000 to 1,000,000), so
    that the progress moves; ``pause`` seconds are waited after each (a test hook, 0 in use).

    Raises
    ------
    lmm_core.LMMError
        A GLMM (``family`` not Gaussian: a streamed GLMM would need a pass per iteration),
        a file that cannot be read, or any model problem (the message says which).
    """
    if family != GAUSSIAN:
        raise ModelError(
            "A server file is fitted by streaming, which covers linear mixed models only: a "
            "yes/no or count outcome would need a pass over every row per iteration. Fit "
            "this kind of outcome on an uploaded table."
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
