"""Model page inference in AppTest: df methods, profile and bootstrap intervals, R-squared."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashboard.state.session import Keys
from lmm_core.inference.bootstrap import parametric_bootstrap
from lmm_core.inference.profile import profile_confint
from tests.app.conftest import finish_jobs
from tests.app.test_trajectories_page import SLEEP, _fit, inject

W = Keys.INFER_W
PAGE = "pages/model.py"


def _page(at):
    at.switch_page(PAGE).run()
    assert not at.exception
    return at


def _frame(at, column: str) -> pd.DataFrame:
    (frame,) = [df.value for df in at.dataframe if column in df.value.columns]
    return frame


def test_df_method_choice_shows_fixef_inference(app):
    inference = pytest.importorskip("lmm_core.inference.fixed_effects")
    at = _page(inject(app, "sleepstudy", SLEEP))
    res = _fit("sleepstudy", SLEEP)
    radio = at.radio(key=W + "df_method")
    assert radio.value == "Satterthwaite"
    shown = {}
    methods = [
        ("Wald (normal, no df correction)", "wald"),
        ("Kenward-Roger (slower)", "kenward-roger"),
        ("Satterthwaite", "satterthwaite"),
    ]
    for label, method in methods:
        at.radio(key=W + "df_method").set_value(label).run()
        assert not at.exception
        table = _frame(at, "p value")
        expected = inference.fixef_inference(res, method=method, level=0.95)
        np.testing.assert_allclose(table["p value"], expected["p_value"], rtol=1e-10)
        np.testing.assert_allclose(table["df"], expected["df"], rtol=1e-10)
        np.testing.assert_allclose(table["95% CI low"], expected["ci_lower"], rtol=1e-10)
        shown[method] = table
    np.testing.assert_allclose(shown["satterthwaite"]["df"], 17.0, rtol=1e-4)  # lmerTest
    assert np.all(shown["wald"]["p value"] < shown["satterthwaite"]["p value"])


def test_profile_intervals_on_request(app):
    at = _page(inject(app, "sleepstudy", SLEEP))
    assert not [df for df in at.dataframe if "95% high" in df.value.columns]
    at.button(key=W + "profile").click().run()
    assert not at.exception
    finish_jobs(at)  # a job of the runner: it may outlast the page's short wait
    table = _frame(at, "95% high")
    expected = profile_confint(_fit("sleepstudy", SLEEP))
    assert "sd_(Intercept)|Subject" in table.index
    np.testing.assert_allclose(table["95% low"], expected["lower"], rtol=1e-6)
    at.run()  # still shown after a rerun
    assert "95% high" in _frame(at, "95% high").columns


def test_bootstrap_with_chosen_replicates_and_seed(app):
    at = _page(inject(app, "sleepstudy", SLEEP))
    at.number_input(key=W + "n_boot").set_value(50).run()
    at.number_input(key=W + "seed").set_value(7).run()
    at.button(key=W + "boot").click().run()
    assert not at.exception
    finish_jobs(at)
    table = _frame(at, "estimate")
    boot = parametric_bootstrap(_fit("sleepstudy", SLEEP), 50, 7)
    np.testing.assert_allclose(table["95% low"], boot.confint()["lower"], rtol=1e-8)
    assert any("50 replicates (seed 7)" in c.value for c in at.caption)
    # the panel knows this fit ran a bootstrap (fit keys carry family, link and nagq too):
    # after a page switch it opens expanded on the result
    at.switch_page("pages/explore.py").run()
    at = at.switch_page("pages/model.py").run()
    box = next(e for e in at.expander if e.label == "Parametric bootstrap intervals")
    assert box.proto.expanded


def test_r2_metrics(app):
    ve = pytest.importorskip("lmm_core.inference.variance_explained")
    at = _page(inject(app, "sleepstudy", SLEEP))
    r2 = ve.r2_nakagawa(_fit("sleepstudy", SLEEP))
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Marginal R² (fixed effects)"] == f"{r2.marginal:.3f}"
    assert metrics["Conditional R² (fixed + random)"] == f"{r2.conditional:.3f}"
    assert "ICC" in _frame(at, "ICC").columns
