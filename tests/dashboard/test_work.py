"""The long computations as job work (dashboard.state.work): same numbers, progress,
cancellation."""

from __future__ import annotations

import numpy as np
import pytest

from dashboard.analysis import ladder as lad
from dashboard.io.roles import Roles
from dashboard.state import jobs, work
from dashboard.state.jobs import Cancelled, JobRunner
from lmm_core import datasets, fit_lmm, parametric_bootstrap, profile_confint
from lmm_core.simulation.teaching_repeat import run_replicates
from lmm_core.simulation.teaching_truth import LabTruth


@pytest.fixture(scope="module")
def sleep():
    data, _ = datasets.load_example("sleepstudy")
    return data, fit_lmm("Reaction ~ Days + (Days | Subject)", data)


class Recorder:
    """A ``report`` that records what it is told and can stop the work after ``stop_after``."""

    def __init__(self, stop_after: int | None = None):
        self.calls: list[tuple[float | None, str]] = []
        self.stop_after = stop_after

    def __call__(self, fraction, text):
        self.calls.append((fraction, text))
        if self.stop_after is not None and len(self.calls) > self.stop_after:
            raise Cancelled


def _fractions_rise_to_one(rec: Recorder) -> None:
    fractions = [f for f, _ in rec.calls]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0


def test_profile_intervals_equal_profile_confint(sleep):
    _, res = sleep
    rec = Recorder()
    table = work.profile_intervals(res, 0.95, rec)
    expected = profile_confint(res, 0.95)
    np.testing.assert_array_equal(table.to_numpy(), expected.to_numpy())
    assert list(table.index) == list(expected.index)
    assert table.attrs["level"] == 0.95 and table.attrs["messages"] == expected.attrs["messages"]
    assert table.attrs["ml_estimates"] == expected.attrs["ml_estimates"]
    _fractions_rise_to_one(rec)
    assert rec.calls[0][1] == "Refitting by ML"  # a REML fit is profiled by ML
    assert rec.calls[1][1] == f"Parameter 1 of {len(table)}"


def test_bootstrap_equals_the_engine_and_reports_every_replicate(sleep):
    _, res = sleep
    rec = Recorder()
    boot = work.bootstrap(res, 20, 3, rec)
    ref = parametric_bootstrap(res, 20, 3)
    np.testing.assert_array_equal(boot.samples.to_numpy(), ref.samples.to_numpy())
    assert len(rec.calls) == 21 and rec.calls[-1] == (1.0, "Replicate 20 of 20")
    _fractions_rise_to_one(rec)


def test_cancel_unwinds_the_bootstrap_between_replicates(sleep):
    _, res = sleep
    rec = Recorder(stop_after=5)
    with pytest.raises(Cancelled):
        work.bootstrap(res, 1000, 1, rec)
    assert len(rec.calls) == 6  # stopped at the sixth report, not after 1,000 refits


def test_teaching_repeat_equals_the_engine_and_stops_on_cancel():
    truth = LabTruth(n_subjects=12, n_visits=4)
    rec = Recorder()
    summary = work.teaching_repeat(truth, 5, 9, 0.95, "subjects", rec)
    ref = run_replicates(truth, 5, seed=9, level=0.95, df="subjects")
    np.testing.assert_array_equal(summary.table["slope"], ref.table["slope"])
    assert rec.calls[-1] == (1.0, "Study 5 of 5")
    with pytest.raises(Cancelled):
        work.teaching_repeat(truth, 500, 9, 0.95, "subjects", Recorder(stop_after=2))


def test_ladder_reports_each_rung_and_stops_between_rungs(sleep):
    data, _ = sleep
    roles = Roles(subject="Subject", time="Days", outcome="Reaction")
    plan = lad.plan_ladder(data, roles)
    fitted = []

    def fit(formula):
        fitted.append(formula)
        return fit_lmm(formula, data)

    rec = Recorder()
    ladder = work.ladder(plan, fit, True, rec)
    assert len(ladder.fitted) == 3 and len(ladder.verdicts) == 2
    assert [t for _, t in rec.calls] == [
        "Step 1 of 3: random intercept",
        "Step 2 of 3: random slope",
        "Step 3 of 3: correlation",
        "3 of 3 steps fitted",
    ]
    fitted.clear()
    with pytest.raises(Cancelled):
        work.ladder(plan, fit, True, Recorder(stop_after=1))
    assert len(fitted) == 1  # the second rung was never started


def test_a_cancelled_job_in_the_runner_keeps_no_result(sleep):
    _, res = sleep
    runner = JobRunner(1)
    job = runner.submit(
        "s", "boot", lambda j: work.bootstrap(res, 1000, 1, j.report), kind="bootstrap", label=""
    )
    deadline = 0
    while (job.fraction or 0) < 0.005 and deadline < 2000:
        job.wait(0.01)
        deadline += 1
    job.cancel()
    assert job.wait(30)
    assert job.state == jobs.CANCELLED and job.result is None
    assert 0 < job.fraction < 1
    runner.shutdown()
