"""Layering: pure modules import no Streamlit; lmm_core modules of this layer no plotly."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.app.conftest import ROOT

PURE = (
    "dashboard.io.loading, dashboard.io.roles, dashboard.io.validation, dashboard.io.reshape, "
    "dashboard.io.dates, dashboard.io.outcome_kind"
)
CORE = "lmm_core.simulation.trial, lmm_core.datasets"


@pytest.mark.parametrize(
    ("modules", "forbidden"),
    [(f"{PURE}, {CORE}", ("streamlit", "plotly")), ("dashboard.figures.explore", ("streamlit",))],
)
def test_modules_do_not_import(modules, forbidden):
    code = f"import sys, {modules}; print(','.join(m for m in {forbidden!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""
