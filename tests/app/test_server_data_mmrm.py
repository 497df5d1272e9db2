"""A streamed MMRM of a server file in AppTest (issue 18): with a sample of a Parquet file
active, a model with a covariance structure of the visits (``ar1(visit | patient)``) is
fitted on the whole file by streaming (rows sorted by patient, the patterns' sums), the record
is the whole fit seen on the sampled patients, and every result page shows it with no
exception (the "sampled patients" notice where it draws patients)."""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from dashboard.state import limits
from dashboard.state.session import Keys
from lmm_core import fit_lmm
from lmm_core.simulation.trial import simulate_trial
from tests.app.conftest import ROOT, finish_jobs, texts

W = Keys.MODEL_W
N_SAMPLE = 10
FORMULA = "y ~ arm * factor(visit) + ar1(visit | patient)"


@pytest.fixture
def folder(tmp_path, monkeypatch):
    root = tmp_path / "server"
    root.mkdir()
    trial = simulate_trial(n_hospitals=8, patients_per_hospital=15, seed=5).data
    trial = trial.drop(columns=["patient_in_hospital"])
    trial.to_parquet(root / "visits.parquet")
    lim = limits.Limits(data_folder=str(root))
    monkeypatch.setattr(limits, "current", lambda: lim)
    return trial


def test_a_streamed_mmrm_and_the_result_pages(folder):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    at.number_input(key=Keys.W_SERVER_N).set_value(N_SAMPLE)
    at.button(key=Keys.W_SERVER_SAMPLE).click()
    at.run()
    assert not at.exception
    at.switch_page("pages/model.py").run()
    assert not at.exception
    at.text_area(key=W + "typed").input(FORMULA)
    at.button(key="model_fit").click().run()
    finish_jobs(at, timeout=180)
    assert not at.exception, at.exception
    assert not at.error, texts(at.error)
    (record,) = at.session_state[Keys.FITS]
    result = record.result
    ref = fit_lmm(FORMULA, folder)
    assert result.is_sample_view and result.nobs == ref.nobs == len(folder)
    assert result.n_subjects == ref.n_subjects == 120
    assert result.objective == pytest.approx(ref.objective, rel=1e-10)
    np.testing.assert_allclose(result.beta, ref.beta, rtol=1e-6, atol=1e-8)
    assert result.design.residual.n_subjects == N_SAMPLE
    for page in ("trajectories", "shrinkage", "diagnostics", "prediction", "compare", "export"):
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception, (page, at.exception)
