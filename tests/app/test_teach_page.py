"""Teach page (simulation lab) in AppTest: one study, shared sliders, repeated studies."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashboard.help.texts import help_text
from dashboard.state.session import Keys
from lmm_core.simulation.teaching_curves import lab_formula
from lmm_core.simulation.teaching_shrinkage import expected_slope_weight
from lmm_core.simulation.teaching_truth import CURVATURE_LABEL, LabTruth
from tests.app.conftest import figures_on, finish_jobs, texts

PAGE = "pages/teach.py"
W = Keys.TEACH_W


def _page(at):
    at.switch_page(PAGE).run()
    assert not at.exception
    return at


def _metric(at, label: str) -> str:
    (m,) = [m for m in at.metric if m.label == label]
    return m.value


def test_one_study_truth_vs_estimate(app):
    at = _page(app)
    assert at.title[0].value == "Teach: simulation lab"
    figs = figures_on(at)
    assert len(figs) == 5  # curves, recovery, shrinkage, weight curve, data (in the expander)
    (table,) = [d.value for d in at.dataframe if "truth inside?" in d.value.columns]
    assert len(table) == 6 and list(table["truth"]) == list(LabTruth().values.values())
    assert table["lower"].notna().all()  # profile intervals on by default
    assert set(table["interval"]) == {"Satterthwaite t", "profile likelihood"}
    assert int(_metric(at, "Observations")) <= 180
    truth_markers = [t for t in figs[1]["data"] if t.get("name") == "truth"]
    assert [t["x"][0] for t in truth_markers] == list(table["truth"])
    assert "Press **Repeat 100 times**" in texts(at.info)
    at.toggle(key=W + "profile").set_value(False).run()
    assert not at.exception
    (table,) = [d.value for d in at.dataframe if "truth inside?" in d.value.columns]
    assert table["lower"].isna().sum() == 4


def _recovery_table(at):
    (table,) = [d.value for d in at.dataframe if "truth inside?" in d.value.columns]
    return table


def test_section_three_has_its_own_visits_and_noise(app):
    """Issue 11 item 11: section 3's sliders used to change section 1's truth and redraw
    the study silently. They now draw a study for section 3 only, say so, and can follow
    section 1 again."""
    at = _page(app)
    before = float(_metric(at, "Expected weight"))
    study = _recovery_table(at)
    observations = _metric(at, "Observations")
    assert "These sliders belong to this section" in texts(at.caption)
    at.slider(key=W + "n_visits_shrink").set_value(3).run()
    assert not at.exception
    assert at.slider(key=W + "n_visits").value == LabTruth().n_visits  # section 1 unchanged
    pd.testing.assert_frame_equal(_recovery_table(at), study)  # section 2's study unchanged
    assert _metric(at, "Observations") == observations
    assert "This section shows its own study: 3 visits" in texts(at.info)
    after = float(_metric(at, "Expected weight"))
    truth = LabTruth()
    assert after < before
    assert after == round(float(expected_slope_weight(truth.sd_slope, truth.sigma, 3)), 2)
    at.slider(key=W + "sigma").set_value(10.0).run()  # section 1's noise: section 3 follows
    assert at.slider(key=W + "sigma_shrink").value == 10.0
    assert at.slider(key=W + "n_visits_shrink").value == 3  # its own visits stay
    assert float(_metric(at, "Expected weight")) < after
    at.button(key=W + "shrink_reset").click().run()
    assert not at.exception
    assert at.slider(key=W + "n_visits_shrink").value == LabTruth().n_visits
    assert "These sliders belong to this section" in texts(at.caption)


def test_weight_and_median_factor_are_explained(app):
    at = _page(app)
    weight, factor = _metric(at, "Expected weight"), _metric(at, "Median factor")
    note = texts(at.caption)
    assert f"Why the expected weight ({weight}) and the median factor ({factor}) differ" in note
    assert "true" in note and "estimates" in note and "after dropout" in note
    labels = [m.label for m in at.metric]
    assert all(len(label) <= 20 for label in labels), labels  # short labels (item 10)
    assert all(m.help for m in at.metric)


def test_repeat_the_study(app):
    at = _page(app)
    at.number_input(key=W + "replicates").set_value(20).run()
    at.button(key=W + "run").click().run()
    assert not at.exception
    finish_jobs(at)  # a job of the runner: it may outlast the page's short wait
    assert _metric(at, "Time for 20 studies").endswith(" s")
    assert _metric(at, "Coverage, mixed").endswith("%")
    assert "Why singular fits happen" in texts(at.markdown)
    singular = _metric(at, "Singular fits")  # "k of 20": the same count as text and legend
    k = int(singular.split(" of ")[0])
    assert singular.endswith(" of 20")
    text = texts(at.markdown)
    assert (f"In **{k} of 20 (" in text) if k else ("None of the 20 studies" in text)
    (sd_hist,) = [f for f in figures_on(at) if "τ̂₁" in str(f["layout"].get("xaxis", {}))]
    legend = [t["name"] for t in sd_hist["data"] if t.get("name", "").startswith("singular")]
    assert sum(int(n.split("(")[-1].split(" of")[0]) for n in legend) == k
    assert "naive regression's averaged" in texts(at.markdown)
    assert len(figures_on(at)) == 9  # + histogram, slope SD histogram, coverage, ladder
    at.button(key=W + "new_study").click().run()  # new seed: the run no longer applies
    assert not at.exception
    assert "changed since the last run" in texts(at.info)


def test_bad_settings_give_a_message_not_a_traceback(app):
    app.session_state[Keys.TEACH_SETTINGS] = {"sigma": 0.0}
    at = _page(app)
    assert "cannot be simulated" in texts(at.error)
    app.session_state[Keys.TEACH_SETTINGS] = {"n_subjects": 3, "n_visits": 3, "dropout": 0.5}
    at = _page(app)
    assert at.title[0].value == "Teach: simulation lab"


def test_the_simulated_study_becomes_the_active_dataset(app):
    at = _page(app)
    fits_before = list(at.session_state[Keys.FITS])
    at.button(key=W + "use_study").click().run()
    assert not at.exception
    data = at.session_state[Keys.DATASET]
    assert list(data.columns) == ["subject", "time", "y"]
    assert not isinstance(data["subject"].dtype, pd.CategoricalDtype)
    assert at.session_state[Keys.DATA_NAME].startswith("teach_study_seed")
    roles = at.session_state[Keys.ROLES]
    assert (roles["subject"], roles["time"], roles["outcome"]) == ("subject", "time", "y")
    assert list(at.session_state[Keys.FITS]) == fits_before
    at.switch_page("pages/model.py").run()  # the Model page builds on the study's roles
    assert not at.exception
    assert "teach_study_seed" in " ".join(m.value for m in at.markdown)


# ---------------------------------------------------------------- curved time (issue 13)
def _curves_figure(at) -> dict:
    (fig,) = [f for f in figures_on(at) if "true population curve" in str(f["data"])]
    return fig


def _trace(fig: dict, prefix: str) -> dict:
    (trace,) = [t for t in fig["data"] if str(t.get("name", "")).startswith(prefix)]
    return trace


def _bend_of(y) -> float:
    """Largest distance of a curve from the straight line through its two ends."""
    y = np.asarray(y, float)
    return float(np.abs(y - np.linspace(y[0], y[-1], len(y))).max())


@pytest.mark.parametrize("time_df", [1, 2, 3])
def test_curvature_and_each_shape_of_time(app, time_df):
    at = _page(app)
    at.slider(key=W + "curvature").set_value(6.0).run()
    at.radio(key=W + "time_df").set_value(time_df).run()
    assert not at.exception and not at.error
    assert at.session_state[Keys.TEACH_SETTINGS].get("time_df", 1) == time_df
    formula = lab_formula(time_df)
    assert f"Fitted model: `{formula}`" in texts(at.caption)
    fig = _curves_figure(at)
    truth, fitted = _trace(fig, "true population"), _trace(fig, "fitted population")
    assert len(truth["x"]) == len(fitted["x"]) == 60  # a fine grid, not the 6 visit times
    assert _bend_of(truth["y"]) == pytest.approx(6.0, rel=1e-3)
    table = _recovery_table(at)
    assert len(table) == 7 and table["parameter"].iloc[-1] == CURVATURE_LABEL
    assert table["parameter"].iloc[1] == "Average slope β₁ (time 0 to 5)"
    assert "A curve has no single slope" in texts(at.caption)
    if time_df == 1:
        assert _bend_of(fitted["y"]) < 1e-9
        assert table["interval"].iloc[-1] == "none: a straight line has no bend"
        assert "cannot" in texts(at.caption)
    else:  # the curved fit differs from a straight line and bends with the truth
        assert _bend_of(fitted["y"]) > 3.0
        assert table["interval"].iloc[-1] == "Satterthwaite t"
        assert table["truth inside?"].iloc[-1] in ("yes", "no")
    shapes = fig["layout"].get("shapes", [])
    knots = [s for s in shapes if s.get("line", {}).get("dash") == "dashdot"]
    assert len(knots) == (2 if time_df == 3 else 0)


def test_curvature_and_average_slope_tooltips_are_the_glossary_entries(app):
    at = _page(app)
    assert at.slider(key=W + "curvature").proto.help == help_text("curvature")
    assert not [c for c in at.caption if "A curve has no single slope" in c.value]  # a line
    at.slider(key=W + "curvature").set_value(4.0).run()
    (note,) = [c for c in at.caption if "A curve has no single slope" in c.value]
    assert note.proto.help == help_text("average_slope")


def test_spline_with_three_visits_says_why_not_a_traceback(app):
    at = _page(app)
    at.radio(key=W + "time_df").set_value(3).run()
    at.slider(key=W + "n_visits_shrink").set_value(3).run()  # section 3's own study
    assert not at.exception
    assert "This section's study could not be fitted" in texts(at.error)
    assert "needs at least 4 distinct visit times" in texts(at.error)
    at.slider(key=W + "n_visits").set_value(3).run()  # section 1's study too
    assert not at.exception
    assert "This study could not be fitted" in texts(at.error)
    at.radio(key=W + "time_df").set_value(2).run()  # a quadratic fits three visit times
    assert not at.exception and not at.error
    assert len(_recovery_table(at)) == 7


def test_repeat_a_spline_fit_of_a_bent_truth(app):
    at = _page(app)
    at.slider(key=W + "curvature").set_value(-5.0).run()
    at.radio(key=W + "time_df").set_value(3).run()
    at.number_input(key=W + "replicates").set_value(10).run()
    at.button(key=W + "run").click().run()
    assert not at.exception
    finish_jobs(at)
    assert _metric(at, "Coverage, mixed").endswith("%")
    assert "*slope* here means the **average slope**" in texts(at.caption)
    stored = at.session_state[Keys.TEACH_REPLICATES]
    assert stored.summary.truth.time_df == 3 and stored.summary.n + stored.summary.failures == 10
    at.radio(key=W + "time_df").set_value(1).run()  # another shape: the run no longer applies
    assert "fitted shape" in texts(at.info)
