"""Teach page helpers: settings to truth, and the plain-words texts (dashboard.analysis.teach_*)."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pandas as pd
import pytest

from dashboard.analysis.teach_controls import CONTROLS, settings_to_truth, truth_key
from dashboard.analysis.teach_texts import naive_text, singular_text
from lmm_core import LMMError
from lmm_core.simulation.teaching_repeat import ReplicateSummary
from lmm_core.simulation.teaching_truth import LabTruth


def test_every_truth_field_has_a_control_and_defaults_lie_in_range():
    assert set(CONTROLS) == {f.name for f in fields(LabTruth)}
    for name, c in CONTROLS.items():
        assert c.low <= getattr(LabTruth(), name) <= c.high and c.help


def test_settings_to_truth():
    truth = settings_to_truth({"n_visits": 8.0, "sigma": 2, "seed": 5, "profile": True})
    assert truth.n_visits == 8 and isinstance(truth.n_visits, int) and truth.sigma == 2.0
    assert truth.slope == LabTruth().slope
    assert truth_key(truth) == truth_key(settings_to_truth({"n_visits": 8, "sigma": 2.0}))
    with pytest.raises(LMMError):
        settings_to_truth({"sigma": 0.0})


def _summary(se_ols: float = 0.2, zero: int = 0, corr: int = 0) -> ReplicateSummary:
    n = 100
    table = pd.DataFrame(
        {
            "slope": np.linspace(1.5, 2.5, n),
            "se": 0.3,
            "se_ols": se_ols,
            "covered": True,
            "covered_ols": [True] * 80 + [False] * 20,
            "slope_sd_zero": [True] * zero + [False] * (n - zero),
            "corr_boundary": [False] * zero + [True] * corr + [False] * (n - zero - corr),
            "intercept_sd_zero": False,
        }
    )
    table["singular"] = table["slope_sd_zero"] | table["corr_boundary"]
    return ReplicateSummary(LabTruth(), 0.95, "subjects", table, 0, "", 1.0, 0.5)


def test_naive_text_says_which_way_the_naive_intervals_err():
    assert "too narrow** (standard errors 33% too small)" in naive_text(_summary(0.2))
    assert "too wide" in naive_text(_summary(0.4))
    assert "happen to be about right" in naive_text(_summary(0.31))
    assert "**0.2**" in naive_text(_summary(0.2))  # the naive SE, in bold


def test_singular_text():
    text = singular_text(_summary(zero=3, corr=7))
    assert text.startswith("In **10 of 100 (10%)** studies the fit was singular")
    assert "3 with the slope SD estimated as zero" in text
    assert "7 with the correlation estimated as ±1" in text
    assert "Why singular fits happen" in text and "Try it" not in text
    assert "Try it" in singular_text(_summary())
    assert singular_text(_summary()).startswith("None of the 100 studies gave a singular fit")


def test_singular_text_and_legend_use_the_same_counts_and_denominator():
    """Issue 11 item 11: the text said 13% while the legend counted 12. Both now come from
    ReplicateSummary.boundary_counts: exclusive kinds that add up to the singular total,
    over the same n (failed fits left out of both)."""
    from dashboard.figures.teach_repeat import slope_sd_histogram_figure

    s = _summary(zero=1, corr=12)
    s.table["sd_slope"] = np.where(s.table["slope_sd_zero"], 0.0, 1.0)
    s.table["boundary"] = np.select(
        [s.table["slope_sd_zero"], s.table["corr_boundary"]],
        ["slope SD = 0", "correlation = ±1"],
        "none",
    )
    s.table.loc[50, "singular"] = True  # a fit singular by another boundary
    s.table.loc[50, "boundary"] = "other boundary"
    counts = s.boundary_counts()
    assert counts == {"none": 86, "slope SD = 0": 1, "correlation = ±1": 12, "other boundary": 1}
    assert s.singular_count() == 14 == sum(counts.values()) - counts["none"]
    text = singular_text(s)
    assert "**14 of 100 (14%)**" in text
    for label, c in counts.items():
        if label != "none":
            assert f"{c} with" in text
    legend = [t.name for t in slope_sd_histogram_figure(s).data if "of 100)" in (t.name or "")]
    legend_total = sum(int(name.split("(")[-1].split(" of")[0]) for name in legend)
    assert legend_total == 100
    singular_in_legend = sum(
        int(name.split("(")[-1].split(" of")[0]) for name in legend if name.startswith("singular")
    )
    assert singular_in_legend == s.singular_count()


def test_curvature_and_average_slope_are_glossary_entries():
    """The curvature control's tooltip is the glossary's entry, and both terms are found by
    the glossary's search under the words a student would type."""
    from dashboard.help.texts import ENTRIES, help_text, search

    assert CONTROLS["curvature"].help == help_text("curvature")
    assert ENTRIES["curvature"].topic == ENTRIES["average_slope"].topic == "Simulation"
    assert "curvature" in {e.key for e in search("kappa")}
    assert "average_slope" in {e.key for e in search("average slope")}
    assert "(f(T) - f(0)) / T" in help_text("average_slope")
