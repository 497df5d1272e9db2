"""The Data page's "Server data" section in AppTest: hidden without a data folder; with one,
it lists the files, draws a sample of whole patients as the active dataset, the Model page
fits the whole file by streaming (a job in a child process), and the result pages work on
the sample."""

from __future__ import annotations

import os

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.state import limits
from dashboard.state.session import Keys
from lmm_core.simulation.trial import simulate_trial
from lmm_core.stream.results import StreamedLMMResult
from tests.app.conftest import ROOT, finish_jobs, texts

FORMULA = "y ~ time * arm + (time | patient) + (1 | hospital)"


@pytest.fixture
def data_folder(tmp_path, monkeypatch):
    root = tmp_path / "server"
    root.mkdir()
    trial = simulate_trial(n_hospitals=8, patients_per_hospital=15, seed=5).data
    trial.to_parquet(root / "trial.parquet")
    os.symlink(tmp_path, root / "escape")  # never listed
    lim = limits.Limits(data_folder=str(root))
    monkeypatch.setattr(limits, "current", lambda: lim)
    return root, trial


def _app() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception
    return at


def test_no_folder_no_section(monkeypatch):
    monkeypatch.setattr(limits, "current", lambda: limits.Limits())
    at = _app()
    assert "Server data" not in [s.value for s in at.subheader]


@pytest.mark.job_processes  # the streamed fit in a child process, as on a server
def test_sample_fit_by_streaming_and_result_pages(data_folder):
    root, trial = data_folder
    at = _app()
    assert "Server data" in [s.value for s in at.subheader]
    listed = at.dataframe[0].value  # the section comes before the report's tables
    assert list(listed["file"]) == ["trial.parquet"]
    assert listed["rows"].iloc[0] == f"{len(trial):,}"
    assert f"1 file offered, {len(trial):,} rows in all" in texts(at.caption)
    group = next(s for s in at.selectbox if s.label == "Patient column")
    assert group.value == "patient"  # the app's role guess
    at.number_input(key=Keys.W_SERVER_N).set_value(12)
    at.button(key=Keys.W_SERVER_SAMPLE).click()
    at.run()
    assert not at.exception
    data = at.session_state[Keys.DATASET]
    n_patients = trial["patient"].nunique()
    assert data["patient"].nunique() == 12
    # whole trajectories: every visit of each drawn patient
    drawn = trial[trial["patient"].isin(set(data["patient"]))]
    assert len(data) == len(drawn)
    name = at.session_state[Keys.DATA_NAME]
    assert name == f"trial.parquet: sample of 12 of {n_patients} patients"
    assert "sample of trial.parquet: 12 of 120 patients" in texts(at.success)

    at.switch_page("pages/model.py").run()
    assert not at.exception
    at.text_area(key=Keys.MODEL_W + "typed").input(FORMULA)  # in the form: sent with the button
    at.button(key="model_fit").click().run()
    finish_jobs(at, timeout=180)
    assert not at.exception, at.exception
    fits = at.session_state[Keys.FITS]
    assert len(fits) == 1
    result = fits[0].result
    assert isinstance(result, StreamedLMMResult) and result.is_sample_view
    assert result.nobs == len(trial)  # the whole file was fitted
    assert result.ngroups == {"patient": n_patients, "hospital": 8}
    assert len(result.fitted) == len(data)  # seen on the sample
    assert not at.error  # (the "Fitted M1" notice shows once, in whichever run stored the fit)
    assert any(s.value.startswith("3. Summary of") for s in at.subheader)

    for page in ("trajectories", "shrinkage", "diagnostics", "compare", "explore"):
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception, (page, at.exception)
