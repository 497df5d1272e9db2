"""Real browser, issue 18: the operator's data folder holds a Parquet trial of about 200k
rows; the Data page lists it, draws a sample of whole patients, the Model page fits
``y ~ time * arm + (time | patient) + (1 | hospital)`` to the whole file by streaming with a
progress bar (rows done, rows per second), and the summary and the sampled patients'
trajectories follow. Screenshots at 1400 and 1024 px wide."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lmm_core.simulation.trial import simulate_trial
from tests.e2e import support

pytestmark = pytest.mark.browser

FORMULA = "y ~ time * arm + (time | patient) + (1 | hospital)"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> tuple[Path, int, int]:
    """A data folder with a seeded trial (100 hospitals x 300 patients: about 189k rows) and
    the limits file naming it."""
    base = tmp_path_factory.mktemp("server_data")
    folder = base / "data"
    folder.mkdir()
    trial = simulate_trial(n_hospitals=100, patients_per_hospital=300, seed=18).data
    trial.to_parquet(folder / "registry_trial.parquet")
    (base / "limits.toml").write_text(f'[lmm_explorer]\ndata_folder = "{folder}"\n')
    return base / "limits.toml", len(trial), trial["patient"].nunique()


@pytest.mark.parametrize("width", [1400, 1024])
def test_fit_a_server_parquet_file_by_streaming(browser, server, width):
    limits_file, n_rows, n_patients = server
    env = {"LMM_LIMITS": str(limits_file), "LMM_EXPLORER_FIT_DELAY": "8"}
    with support.running_app(timeout=120, env=env) as url:
        page = browser.new_context(viewport={"width": width, "height": 1100}).new_page()
        support.open_app(page, url)
        section = page.get_by_role("heading", name="Server data")
        section.wait_for(timeout=60_000)
        support.wait_for_text(page, f"1 file offered, {n_rows:,} rows in all")
        section.scroll_into_view_if_needed()
        support.screenshot(page, f"server_data_list_{width}")

        patients = page.get_by_role("spinbutton", name="Patients")
        patients.fill("300")
        patients.press("Enter")
        support.wait_idle(page)
        page.get_by_role("button", name="Sample patients").click()
        label = f"sample of 300 of {n_patients:,} patients"
        support.wait_for_text(page, label)
        support.wait_for_text(page, f"streams all {n_rows:,} rows of the file")
        assert not support.exceptions_on(page)
        support.screenshot(page, f"server_data_sample_{width}")

        support.go_to(page, "Model")
        page.get_by_role("textbox", name="Or type a formula").fill(FORMULA)
        page.get_by_role("button", name="Fit model").click()
        bar = page.locator('[data-testid="stProgress"]').first
        bar.wait_for(timeout=120_000)
        support.wait_for_text(page, "rows/s")
        text = page.locator(".st-key-job_sidebar_fit").inner_text()
        assert re.search(r"[\d,]+ of " + f"{n_rows:,}" + r" rows, [\d,]+ rows/s", text), text
        support.screenshot(page, f"server_data_progress_{width}")

        support.wait_for_text(page, "Summary of", timeout_ms=300_000)
        assert not support.exceptions_on(page)
        body = page.locator("body").inner_text()
        assert "streaming every row of the file" in body or "Fitted" in body
        assert f"{n_rows:,}" in body  # the summary counts every row of the file
        support.screenshot(page, f"server_data_summary_{width}")

        support.go_to(page, "Trajectories")
        assert not support.exceptions_on(page)
        assert page.locator('[data-testid="stPlotlyChart"]').count() >= 1
        assert label in page.locator("body").inner_text()
        support.screenshot(page, f"server_data_trajectories_{width}")
        page.context.close()


GLMM_FORMULA = "event ~ time * arm + (1 | patient)"


@pytest.fixture(scope="module")
def glmm_server(tmp_path_factory) -> tuple[Path, int, int]:
    """A data folder with a seeded trial whose outcome is 0/1 (30 hospitals x 100 patients:
    about 19k rows) and the limits file naming it."""
    base = tmp_path_factory.mktemp("server_glmm")
    folder = base / "data"
    folder.mkdir()
    trial = simulate_trial(n_hospitals=30, patients_per_hospital=100, seed=18).data
    trial["event"] = (trial["y"] < trial["y"].median()).astype("int64")
    trial = trial.drop(columns=["y", "visit", "patient_in_hospital"])
    trial.to_parquet(folder / "events.parquet")
    (base / "limits.toml").write_text(f'[lmm_explorer]\ndata_folder = "{folder}"\n')
    return base / "limits.toml", len(trial), trial["patient"].nunique()


def test_a_streamed_logistic_glmm_with_its_cost_and_passes(browser, glmm_server):
    """A yes/no outcome: the Model page proposes a logistic model, Fit streams the file with
    the cost said first and a bar of passes; the summary, and Trajectories with the notice
    of the sampled patients (screenshots at 1400, then 1024 px)."""
    limits_file, n_rows, n_patients = glmm_server
    env = {"LMM_LIMITS": str(limits_file), "LMM_EXPLORER_FIT_DELAY": "20"}  # 2 s on the cost
    with support.running_app(timeout=120, env=env) as url:
        page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        support.open_app(page, url)
        support.wait_for_text(page, f"1 file offered, {n_rows:,} rows in all")
        patients = page.get_by_role("spinbutton", name="Patients")
        patients.fill("200")
        patients.press("Enter")
        support.wait_idle(page)
        page.get_by_role("button", name="Sample patients").click()
        support.wait_for_text(page, f"sample of 200 of {n_patients:,} patients")

        support.go_to(page, "Model")
        support.wait_for_text(
            page, "logistic (binomial)"
        )  # the kind of outcome the 0/1 column suggests
        page.get_by_text("Advanced: link and quadrature").click()  # no quadrature here
        support.wait_for_text(page, "by the Laplace approximation only")
        assert page.get_by_role("spinbutton", name="Quadrature points (1 = Laplace)").is_disabled()
        support.screenshot(page, "stream_glmm_model_advanced_1400")
        page.get_by_role("textbox", name="Or type a formula").fill(GLMM_FORMULA)
        page.get_by_role("button", name="Fit model").click()
        sidebar = page.locator(".st-key-job_sidebar_fit")
        support.wait_for_text(page, "A GLMM needs one pass over the")
        cost = sidebar.inner_text()
        assert f"A GLMM needs one pass over the {n_rows:,} rows per PIRLS iteration" in cost
        assert re.search(r"about [\d,]+ passes, about \d+ (seconds|minutes)", cost), cost
        support.screenshot(page, "stream_glmm_cost_1400")
        support.go_to(page, "Data")  # the fit goes on: its progress in the sidebar and here
        assert page.get_by_role("spinbutton", name="Patients").input_value() == "200"
        inline = page.locator(".st-key-job_inline_fit")
        inline.wait_for(timeout=30_000)
        support.wait_for_text(page, "Pass 2")
        inline.scroll_into_view_if_needed()
        assert "A GLMM needs one pass" in inline.inner_text()
        passes = sidebar.inner_text()
        assert re.search(r"Pass [\d,]+ of about [\d,]+ \([\d,]+ rows/s\)", passes), passes
        assert "A GLMM needs one pass" in passes
        assert page.locator('.st-key-job_sidebar_fit [data-testid="stProgress"]').count() == 1
        support.screenshot(page, "stream_glmm_data_progress_1400")

        support.wait_for_jobs(page)
        support.go_to(page, "Model")
        support.wait_for_text(page, "Summary of")
        page.get_by_role("heading", name=re.compile("Summary of")).scroll_into_view_if_needed()
        body = page.locator("body").inner_text()
        assert not support.exceptions_on(page)
        assert f"{n_rows:,}" in body and "passes over the" in body and "Odds ratio" in body
        support.screenshot(page, "stream_glmm_summary_1400")

        support.go_to(page, "Trajectories")
        notice = (
            f"Estimates from all {n_rows:,} rows of events.parquet (streamed); this chart "
            f"shows the 200 sampled patients (of {n_patients:,})."
        )
        support.wait_for_text(page, notice)
        assert not support.exceptions_on(page)
        assert page.locator('[data-testid="stPlotlyChart"]').count() >= 1
        support.screenshot(page, "stream_glmm_trajectories_1400")
        page.set_viewport_size({"width": 1024, "height": 900})
        support.go_to(page, "Data")
        support.screenshot(page, "stream_glmm_data_1024")
        support.go_to(page, "Trajectories")  # drawn again at this width
        support.screenshot(page, "stream_glmm_trajectories_1024")
        page.context.close()


MMRM_FORMULA = "y ~ arm * factor(visit) + ar1(visit | patient)"


def test_a_streamed_mmrm_of_a_server_file(browser, server):
    """A covariance structure of the visits on the whole file: the rows are streamed sorted
    by patient into the patterns' sums; the summary counts every row and patient, the
    diagnostics show the sampled patients (screenshots at 1400 and 1024 px)."""
    limits_file, n_rows, n_patients = server
    with support.running_app(timeout=120, env={"LMM_LIMITS": str(limits_file)}) as url:
        page = browser.new_context(viewport={"width": 1400, "height": 1100}).new_page()
        support.open_app(page, url)
        support.wait_for_text(page, f"1 file offered, {n_rows:,} rows in all")
        patients = page.get_by_role("spinbutton", name="Patients")
        patients.fill("100")
        patients.press("Enter")
        support.wait_idle(page)
        page.get_by_role("button", name="Sample patients").click()
        support.wait_for_text(page, f"sample of 100 of {n_patients:,} patients")
        support.go_to(page, "Model")
        page.get_by_role("textbox", name="Or type a formula").fill(MMRM_FORMULA)
        page.get_by_role("button", name="Fit model").click()
        support.wait_for_text(page, "Summary of", timeout_ms=300_000)
        assert not support.exceptions_on(page)
        body = page.locator("body").inner_text()
        assert f"{n_rows:,}" in body and f"{n_patients:,}" in body
        summary = page.get_by_role("heading", name=re.compile("Summary of"))
        summary.scroll_into_view_if_needed()
        support.screenshot(page, "server_data_mmrm_summary_1400")
        for width in (1400, 1024):
            page.set_viewport_size({"width": width, "height": 1100})
            support.go_to(page, "Diagnostics")
            assert not support.exceptions_on(page)
            support.wait_for_text(page, "the 100 sampled patients")
            assert page.locator('[data-testid="stPlotlyChart"]').count() >= 1
            support.screenshot(page, f"server_data_mmrm_diagnostics_{width}")
        support.go_to(page, "Model")
        support.wait_for_text(page, "Summary of")
        page.get_by_role("heading", name=re.compile("Summary of")).scroll_into_view_if_needed()
        support.screenshot(page, "server_data_mmrm_summary_1024")
        page.context.close()
