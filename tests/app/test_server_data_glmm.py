"""Streamed GLMMs of a server file in AppTest (issue 18): with a sample of a Parquet file with
a 0/1 outcome active, the Model page proposes a logistic model, Fit streams the whole file
through ``lmm_core.fit_glmm`` in a job (the cost sentence, then passes done of passes
estimated), the record is a logistic GLMM of every row seen on the sample, and the result
pages show it with the "sampled patients" notice; a Poisson model of counts too; quadrature
is not offered (the control disabled, with the reason); a streamed linear model shows the
same notice."""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from dashboard.state import limits
from dashboard.state.session import Keys
from lmm_core import fit_glmm
from lmm_core.simulation.trial import simulate_trial
from lmm_core.stream.glmm_sample import SampledGLMMResult
from tests.app.conftest import ROOT, figures_on, finish_jobs, texts

W = Keys.MODEL_W
N_SAMPLE = 10


def _trial() -> object:
    """A seeded trial (8 hospitals x 15 patients, 777 rows) with a 0/1 outcome and counts."""
    trial = simulate_trial(n_hospitals=8, patients_per_hospital=15, seed=5).data
    rng = np.random.default_rng(5)
    trial["event"] = (trial["y"] < trial["y"].median()).astype("int64")
    trial["falls"] = rng.poisson(np.exp(0.3 + 0.1 * trial["time"].to_numpy()))
    return trial.drop(columns=["y", "patient_in_hospital"])


@pytest.fixture
def folder(tmp_path, monkeypatch):
    root = tmp_path / "server"
    root.mkdir()
    trial = _trial()
    trial.to_parquet(root / "events.parquet")
    lim = limits.Limits(data_folder=str(root))
    monkeypatch.setattr(limits, "current", lambda: lim)
    return trial


def _sampled_model_page(outcome: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    at.number_input(key=Keys.W_SERVER_N).set_value(N_SAMPLE)
    at.button(key=Keys.W_SERVER_SAMPLE).click()
    at.run()
    assert not at.exception
    at.switch_page("pages/model.py").run()
    assert not at.exception
    at.selectbox(key=W + "outcome").select(outcome).run()
    return at


def _same_estimates(streamed, ref) -> None:
    """The streamed optimum is the in-memory one: fixed effects within 1e-4 of their
    standard errors (an effect near 0 has no relative precision), the log-likelihood to
    1e-8 relative."""
    assert np.all(np.abs(streamed.beta - ref.beta) < 1e-4 * ref.std_errors)
    np.testing.assert_allclose(streamed.loglik, ref.loglik, rtol=1e-8)
    np.testing.assert_allclose(streamed.std_errors, ref.std_errors, rtol=1e-3)


def _plain(elements) -> str:
    """The texts without Markdown's escapes of ( and )."""
    return texts(elements).replace("\\", "")


def _fit(at: AppTest, formula: str) -> AppTest:
    at.text_area(key=W + "typed").input(formula)
    at.button(key="model_fit").click().run()
    finish_jobs(at, timeout=180)
    assert not at.exception, at.exception
    return at


def test_streamed_logistic_glmm_and_the_result_pages(folder):
    trial = folder
    at = _sampled_model_page("event")
    assert at.selectbox(key=W + "family").value == "binomial"  # what the outcome looks like
    formula = "event ~ time + arm + (1 | patient)"
    at = _fit(at, formula)
    fits = at.session_state[Keys.FITS]
    assert len(fits) == 1, texts(at.error)
    record = fits[0]
    assert record.family == "binomial" and record.link == "logit" and record.nagq == 1
    assert not record.reml and record.data_name == "events.parquet"
    result = record.result
    assert isinstance(result, SampledGLMMResult)
    assert result.nobs == len(trial) and result.ngroups == {"patient": 120}
    assert result.passes > 100 and result.timings["per_pass"] > 0
    # the whole file's estimates (the in-memory fit of every row), seen on the sample
    ref = fit_glmm(formula, trial, family="binomial")
    _same_estimates(result, ref)
    sampled = at.session_state[Keys.DATASET]
    assert len(result.y) == len(sampled) and sampled["patient"].nunique() == N_SAMPLE
    assert any(m.startswith("A GLMM needs one pass over the 777 rows") for m in result.messages)
    assert not at.error, texts(at.error)
    assert any(s.value.startswith("3. Summary of") for s in at.subheader)
    shown = texts(at.info) + texts(at.markdown)
    assert "passes over the 777 rows were made" in shown
    assert "median odds ratio" in texts(at.markdown)

    notice = (
        "Estimates from all 777 rows of events.parquet (streamed); this chart shows the "
        f"{N_SAMPLE} sampled patients (of 120)."
    )
    at.switch_page("pages/trajectories.py").run()
    assert not at.exception, at.exception
    assert notice in _plain(at.info)
    (fig,) = figures_on(at)
    names = [t.get("name", "") for t in fig["data"]]
    assert any(n.startswith("population average") for n in names)
    for page, shows in (
        ("shrinkage", "the own-data fits and plots use"),
        ("diagnostics", "the residual plots need the rows: they show"),
        ("prediction", "the times and patients offered here come from"),
    ):
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception, (page, at.exception)
        assert f"(streamed); {shows} the {N_SAMPLE} sampled patients (of 120)." in _plain(
            at.info
        ), page
    for page in ("compare", "export", "explore"):
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception, (page, at.exception)


def test_streamed_poisson_glmm_and_no_quadrature_offered(folder):
    trial = folder
    at = _sampled_model_page("falls")
    assert at.selectbox(key=W + "family").value == "poisson"
    at.selectbox(key=W + "cluster").select("(none)").run()  # one random intercept
    formula = "falls ~ time + arm + (1 | patient)"
    assert at.code[0].value == formula
    nagq = at.number_input(key=W + "nagq")  # the model allows it, the streamed fit does not
    assert nagq.disabled and nagq.value == 1
    assert "Laplace approximation only" in " ".join(c.value for c in at.caption)
    at = _fit(at, formula)
    (record,) = at.session_state[Keys.FITS]
    assert record.family == "poisson" and record.link == "log" and record.nagq == 1
    ref = fit_glmm(formula, trial, family="poisson")
    _same_estimates(record.result, ref)
    # fitted counts on the sample: the whole fit's, for those rows
    rows = trial["patient"].isin(set(at.session_state[Keys.DATASET]["patient"])).to_numpy()
    np.testing.assert_allclose(record.result.fitted, ref.fitted[rows], rtol=1e-5)
    for page in ("trajectories", "shrinkage", "diagnostics", "prediction", "compare"):
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception, (page, at.exception)


def test_a_streamed_linear_model_shows_the_notice_on_the_patient_pages(folder):
    at = _sampled_model_page("falls")
    at.selectbox(key=W + "family").select("gaussian").run()
    at = _fit(at, "falls ~ time + arm + (1 | patient) + (1 | hospital)")
    (record,) = at.session_state[Keys.FITS]
    assert record.result.is_sample_view and record.result.nobs == 777
    for page in ("trajectories", "shrinkage", "diagnostics", "prediction"):
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception, (page, at.exception)
        assert not at.error, (page, texts(at.error))
        assert "Estimates from all 777 rows of events.parquet (streamed); " in _plain(at.info)
        assert f"the {N_SAMPLE} sampled patients (of 120)." in _plain(at.info), page
