"""A streamed GLMM seen on a sample of patients (lmm_core.stream.glmm_sample) and the
job work that fits one from the server's data folder (dashboard.state.work.stream_glmm_fit):
the sample's fitted values are the in-memory fit's on those rows, the view pickles, the
progress says the cost first and then passes done of passes estimated, Cancel stops it."""

from __future__ import annotations

import pickle
import re

import numpy as np
import pandas as pd
import pytest

from dashboard.state import work
from dashboard.state.jobs import Cancelled
from lmm_core import DataError, ModelError, fit_glmm
from lmm_core.stream.glmm_sample import SampledGLMMResult, glmm_on_sample


def _events(n_pat: int = 40, visits: int = 6, seed: int = 3) -> pd.DataFrame:
    """Patients in 4 clinics with a 0/1 outcome, counts over an exposure, and trials."""
    rng = np.random.default_rng(seed)
    pat = np.repeat(np.arange(n_pat), visits)
    time = np.tile(np.arange(visits, dtype=float), n_pat)
    b = rng.normal(0, 1, n_pat)
    eta = -0.5 + 0.3 * time + b[pat]
    exposure = rng.uniform(0.5, 2.0, pat.size)
    trials = rng.integers(1, 6, pat.size)
    succ = rng.binomial(trials, 1 / (1 + np.exp(-eta)))
    return pd.DataFrame(
        {
            "patient": [f"p{i:03d}" for i in pat],
            "clinic": [f"c{i % 4}" for i in pat],
            "time": time,
            "event": rng.binomial(1, 1 / (1 + np.exp(-eta))),
            "falls": rng.poisson(exposure * np.exp(0.2 * eta)),
            "exposure": exposure,
            "succ": succ,
            "fail": trials - succ,
        }
    )


MODELS = [
    ("event ~ time + (1 | patient)", "binomial"),
    ("falls ~ time + offset(log(exposure)) + (1 | patient) + (1 | clinic)", "poisson"),
    ("cbind(succ, fail) ~ time + (time | patient)", "binomial"),
]


@pytest.mark.parametrize(("formula", "family"), MODELS)
def test_the_view_on_a_sample_is_the_whole_fit_on_those_rows(formula, family):
    df = _events()
    streamed = fit_glmm(formula, df, family=family, batch_size=10_000)  # a DataFrame, streamed
    memory = fit_glmm(formula, df, family=family)  # the oracle: every row in memory
    picked = {"p003", "p010", "p011", "p030"}
    sample = df[df["patient"].isin(picked)].iloc[::-1]  # any order: positions are kept
    view = glmm_on_sample(streamed, sample)
    assert isinstance(view, SampledGLMMResult) and view.is_sample_view
    assert view.nobs == len(df) and view.ngroups == memory.ngroups  # the whole fit's
    assert view.aic == streamed.aic and view.passes == streamed.passes
    assert len(view.y) == len(sample) and set(view.ranef["patient"].index) == picked
    rows = sample.index.to_numpy()  # positions in df (a default RangeIndex)
    np.testing.assert_array_equal(view.y, memory.y[rows])
    np.testing.assert_allclose(view.data.weights, memory.data.weights[rows])
    np.testing.assert_allclose(view.fitted, memory.fitted[rows], rtol=1e-5)
    np.testing.assert_allclose(view.predict(), view.fitted)
    np.testing.assert_allclose(view.predict(sample), view.fitted, rtol=1e-12)
    again = pickle.loads(pickle.dumps(view))  # it travels from the job's child process
    np.testing.assert_array_equal(again.fitted, view.fitted)
    assert glmm_on_sample(view, df.iloc[:6]).whole is streamed  # a view of a view: the whole


def test_rows_with_a_missing_value_are_left_out_and_unseen_patients_refused():
    df = _events()
    streamed = fit_glmm("event ~ time + (1 | patient)", df, family="binomial", batch_size=10_000)
    sample = df[df["patient"].isin({"p001", "p002"})].reset_index(drop=True)
    sample.loc[2, "time"] = np.nan
    view = glmm_on_sample(streamed, sample)
    assert len(view.y) == len(sample) - 1 and 2 not in view.design.rows
    assert view.design.n_dropped == 1
    stranger = pd.concat([sample, sample.iloc[:3].assign(patient="p999")], ignore_index=True)
    with pytest.raises(DataError, match="has not seen"):
        glmm_on_sample(streamed, stranger)
    with pytest.raises(DataError, match="No row of the sample"):
        glmm_on_sample(streamed, sample.assign(time=np.nan))


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    df = _events()
    df.to_parquet(root / "events.parquet")
    return root, df


def test_the_job_work_says_the_cost_then_passes_and_returns_the_view(folder):
    root, df = folder
    sample = df[df["patient"].isin({"p001", "p007"})]
    reports = []
    formula = "event ~ time + (1 | patient)"
    view = work.stream_glmm_fit(
        formula, str(root), "events.parquet", None, "binomial", None, 1, sample, len(df), 0.0,
        lambda *a: reports.append(a),
    )  # fmt: skip
    assert isinstance(view, SampledGLMMResult) and view.nobs == len(df)
    memory = fit_glmm(formula, df, family="binomial")
    assert np.all(np.abs(view.beta - memory.beta) < 1e-4 * memory.std_errors)
    texts = [t for _, t in reports]
    assert texts[0] == "Pass 1: levels, counts and missing values (SQL)"
    assert texts[1].startswith(f"Pass 1, timing the cost of a pass: {len(df):,} of {len(df):,}")
    cost = next(i for i, t in enumerate(texts) if t.startswith("A GLMM needs one pass"))
    assert cost == 2  # said right after the first pass, before the optimizer's passes
    estimate = int(texts[cost].split("about ")[1].split(" passes")[0].replace(",", ""))
    assert f"over the {len(df):,} rows per PIRLS iteration" in texts[cost]
    passes = reports[cost + 1 : -1]
    assert len(passes) == view.passes - 1  # one report per pass (each pass is one batch)
    assert re.match(rf"Pass 2 of about {estimate} \([\d,]+ rows/s\)\. A GLMM", passes[0][1])
    assert all(texts[cost] in t and "rows/s" in t for _, t in passes)
    fractions = [f for f, _ in reports]
    assert fractions == sorted(fractions) and max(fractions[:-1]) <= 0.99
    assert passes[0][0] == pytest.approx(2 / estimate)
    assert reports[-1][0] == 1.0 and f"{view.passes} passes over the" in texts[-1]


def test_cancel_stops_the_streamed_glmm_between_two_passes(folder):
    root, df = folder
    seen = []

    def report(fraction, text):
        seen.append(text)
        if len(seen) > 6:
            raise Cancelled

    with pytest.raises(Cancelled):
        work.stream_glmm_fit(
            "event ~ time + (1 | patient)", str(root), "events.parquet", None, "binomial",
            None, 1, df, len(df), 0.0, report,
        )  # fmt: skip
    assert len(seen) == 7


def test_quadrature_is_refused_with_the_engine_message_and_stream_fit_delegates(folder):
    root, df = folder
    with pytest.raises(ModelError, match="Laplace approximation"):
        work.stream_glmm_fit(
            "event ~ time + (1 | patient)", str(root), "events.parquet", None, "binomial",
            None, 5, df, len(df), 0.0, lambda *a: None,
        )  # fmt: skip
    view = work.stream_fit(
        "falls ~ time + (1 | patient)", str(root), "events.parquet", None, True, "poisson",
        df.iloc[:12], len(df), 0.0, lambda *a: None,
    )  # fmt: skip
    assert isinstance(view, SampledGLMMResult) and view.family.name == "poisson"


def test_the_progress_adapter_counts_passes_of_several_batches():
    calls = []
    progress = work.GLMMProgress(lambda f, t: calls.append((f, t)))
    for done in (40, 80, 100):  # pass 1 in three batches: no estimate yet
        progress(done, 100, 0.0)
    progress(100, 100, 0.0, message="A GLMM needs ...: about 4 passes, about 1 seconds at 0.1 s.")
    for _ in range(5):  # passes 2 to 6, two batches each: more than estimated
        progress(50, 100, 0.0)
        progress(100, 100, 0.0)
    progress(100, 100, 0.0, message="6 passes over the 100 rows were made.")
    assert [f for f, _ in calls[:3]] == [0.0, 0.0, 0.0]
    assert calls[3] == (0.0, "A GLMM needs ...: about 4 passes, about 1 seconds at 0.1 s.")
    assert calls[4][0] == pytest.approx(1.5 / 4)
    assert re.match(r"Pass 2 of about 4: 50 of 100 rows \([\d,]+ rows/s\)\. A GLMM", calls[4][1])
    assert calls[5][0] == pytest.approx(2 / 4)
    assert calls[-1][0] == 0.99 and calls[-1][1].startswith("Pass 6 (about 4 were estimated)")
    assert progress.done_passes == 6
    assert progress.closing == "6 passes over the 100 rows were made; seeing the fit on the sample."


def test_compare_page_refuses_quadrature_refits_of_a_streamed_glmm():
    from dashboard.analysis.quadrature import quadrature_refusal

    df = _events()
    streamed = fit_glmm("event ~ time + (1 | patient)", df, family="binomial", batch_size=10_000)
    view = glmm_on_sample(streamed, df[df["patient"].isin({"p001", "p002"})])
    assert quadrature_refusal(fit_glmm("event ~ time + (1 | patient)", df)) is None
    assert "streaming the whole file" in quadrature_refusal(view)
