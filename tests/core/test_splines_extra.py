"""More spline fits against lme4 (``tests/fixtures/splines_extra``, made by its R script):
growth data with splines in the random part, ``||``, explicit knots inside a random term,
raw polynomials by a factor. Our REML criterion is never worse than the best of lme4's three
optimizers, and where both reach the same optimum the fixed effects and the population and
subject predictions (between and beyond the data) agree."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lmm_core import fit_lmm
from lmm_core.datasets import load_example

CASES = json.loads(
    (Path(__file__).resolve().parents[1] / "fixtures" / "splines_extra" / "cases.json").read_text()
)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_spline_fit_matches_lme4(case):
    data, _ = load_example(case["data"])
    res = fit_lmm(case["formula"], data)
    ref = case["reml_criterion"]
    assert res.objective <= ref + 1e-8 * abs(ref)
    assert list(res.fixef.index) == case["beta_names"]
    same_optimum = abs(res.objective - ref) <= 1e-6 * abs(ref)
    rtol = 1e-5 if same_optimum else 1e-2
    np.testing.assert_allclose(res.fixef, case["beta"], rtol=rtol, atol=1e-6 * abs(res.fixef).max())
    grid = pd.DataFrame({case["time"]: case["grid"], **case["extra"]})
    np.testing.assert_allclose(res.predict(grid, include_re=False), case["population"], rtol=rtol)
    both = pd.concat([grid.assign(**{case["subject"]: s}) for s in case["subjects"]])
    np.testing.assert_allclose(res.predict(both), case["subject_pred"], rtol=rtol)
