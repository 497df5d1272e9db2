"""The Model page's verdicts do not depend on units: the same zero variances and +-1
correlations are named whether time is in seconds, days or years (issue 10)."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

from dashboard.analysis.model_summary import zero_components
from lmm_core import fit_lmm

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
from stress_corpus import make_case  # noqa: E402


@pytest.mark.parametrize("unit", [1 / 365.25, 1.0, 86400.0])
def test_interior_fit_has_no_zero_component_in_any_unit(unit):
    df = pd.read_csv(ROOT / "data" / "sleepstudy.csv", dtype={"Subject": str})
    df["T"] = df["Days"] * unit
    assert zero_components(fit_lmm("Reaction ~ T + (T | Subject)", df)) == []


@pytest.mark.parametrize("unit", [1e-3, 1.0, 3600.0])
def test_correlation_at_the_boundary_is_named_in_any_unit(unit):
    case = make_case(12)  # best optimum: intercept and slope perfectly correlated
    data = case.data.assign(t=case.data["t"] * unit)
    found = zero_components(fit_lmm(case.formula, data, reml=case.reml))
    assert [(z.group, z.column, z.kind) for z in found] == [("id", "t", "correlation")]
