"""Teach page helpers: settings to truth, and the plain-words texts (dashboard.teach_view)."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pandas as pd
import pytest

from dashboard.teach_view import CONTROLS, naive_text, settings_to_truth, singular_text, truth_key
from lmm_core import LMMError
from lmm_core.teaching import LabTruth
from lmm_core.teaching_repeat import ReplicateSummary


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
    assert text.startswith("In **10%** of the 100 studies the fit was singular")
    assert (
        "slope SD estimated as zero in 3%" in text and "correlation estimated as ±1 in 7%" in text
    )
    assert "Why singular fits happen" in text and "Try it" not in text
    assert "Try it" in singular_text(_summary())
