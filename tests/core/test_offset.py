"""A Gaussian LMM with an offset: ``y = X beta + Z b + o + e`` (lme4's ``offset()``).

Oracles: the same model fitted to ``y - o`` without offset (identical estimates and
log-likelihood), and lme4::lmer with ``offset()`` terms and the ``offset =`` argument
(``tests/fixtures/offset``: data, R script, JSON): logLik 1e-6 relative and never below
lme4's, fixed effects 1e-4 relative to their scale, SEs and theta 1e-3, residuals 1e-4.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lmm_core import DataError, FormulaError, ModelError, fit_lmm
from lmm_core.design.build import build_design

HERE = Path(__file__).resolve().parents[1] / "fixtures" / "offset"
REF = json.loads((HERE / "reference.json").read_text())
DATA = pd.read_csv(HERE / "offset_data.csv")
FORMULAS = {
    "intercept_reml": "y ~ x + time + offset(log(exposure)) + (1 | patient)",
    "slope_ml": "y ~ x + time + offset(log(exposure) + 0.5 * x) + (time | patient)",
    "two_offsets_reml": "y ~ x + offset(log(exposure)) + offset(0.5 * time) + (1 | patient)",
}


def _scaled_close(actual, expected, rtol: float) -> None:
    actual, expected = np.asarray(actual, float), np.asarray(expected, float)
    assert np.max(np.abs(actual - expected)) <= rtol * np.max(np.abs(expected))


@pytest.mark.parametrize("case", sorted(FORMULAS))
def test_matches_lme4_offset(case):
    ref = REF[case]
    res = fit_lmm(FORMULAS[case], DATA, reml=ref["reml"])
    assert res.loglik >= ref["logLik"] - 1e-9 * abs(ref["logLik"])
    assert res.loglik == pytest.approx(ref["logLik"], rel=1e-6)
    assert list(res.x_names) == ref["beta"]["names"]
    _scaled_close(res.beta, ref["beta"]["values"], 1e-4)
    np.testing.assert_allclose(res.std_errors, ref["se"], rtol=1e-3)
    np.testing.assert_allclose(res.theta, np.ravel(ref["theta"]), rtol=1e-3, atol=1e-3)
    assert res.sigma == pytest.approx(ref["sigma"], rel=1e-3)
    # residuals are y - (X beta + Z b + offset), as lme4's
    _scaled_close(res.residuals[:5], ref["resid_head"], 1e-3)
    offset = build_design(FORMULAS[case], DATA).offset
    _scaled_close(res.fitted[:5] + offset[:5], ref["fitted_head"], 1e-4)


@pytest.mark.parametrize("reml", [True, False])
def test_offset_equals_fit_of_y_minus_offset(reml):
    with_offset = fit_lmm(FORMULAS["intercept_reml"], DATA, reml=reml)
    shifted = DATA.assign(z=DATA["y"] - np.log(DATA["exposure"]))
    plain = fit_lmm("z ~ x + time + (1 | patient)", shifted, reml=reml)
    assert with_offset.loglik == pytest.approx(plain.loglik, rel=1e-10)
    np.testing.assert_allclose(with_offset.beta, plain.beta, rtol=1e-8)
    np.testing.assert_allclose(with_offset.theta, plain.theta, rtol=1e-6)
    np.testing.assert_allclose(with_offset.residuals, plain.residuals, rtol=1e-7, atol=1e-10)
    assert any("offset" in m for m in with_offset.messages)
    assert not any("offset" in m for m in plain.messages)


def test_design_carries_the_offset_and_zeros_without_one():
    design = build_design(FORMULAS["two_offsets_reml"], DATA)
    expected = np.log(DATA["exposure"]) + 0.5 * DATA["time"]
    np.testing.assert_allclose(design.offset, expected, rtol=1e-14)
    np.testing.assert_allclose(design.offset_values(DATA.iloc[:4]), expected[:4], rtol=1e-14)
    plain = build_design("y ~ x + (1 | patient)", DATA)
    assert plain.offset.shape == (len(DATA),) and not plain.offset.any()
    assert plain.trials is None


def test_offset_rows_with_missing_values_are_left_out():
    holes = DATA.assign(exposure=DATA["exposure"].where(DATA.index % 10 != 0))
    res = fit_lmm(FORMULAS["intercept_reml"], holes)
    assert res.nobs == int(holes["exposure"].notna().sum())
    assert any("left out" in m for m in res.messages)


def test_refit_by_ml_keeps_the_offset_once():
    from lmm_core.model.fit import fit_design

    reml = fit_lmm(FORMULAS["intercept_reml"], DATA)
    ml_again = fit_design(reml.design, reml=False)
    ml = fit_lmm(FORMULAS["intercept_reml"], DATA, reml=False)
    assert ml_again.loglik == pytest.approx(ml.loglik, rel=1e-10)


def test_bad_offsets_and_cbind_give_clear_messages():
    with pytest.raises(ModelError, match="two-column response is for binomial GLMMs: use fit_glmm"):
        fit_lmm("cbind(y, x) ~ time + (1 | patient)", DATA.assign(y=1, x=2))
    with pytest.raises(FormulaError, match="Unknown column `exposur` at position 26"):
        fit_lmm("y ~ x + time + offset(log(exposur)) + (1 | patient)", DATA)
    with pytest.raises(DataError, match="not a finite number"):
        fit_lmm("y ~ x + offset(log(x)) + (1 | patient)", DATA)
    with pytest.raises(FormulaError, match="categorical"):
        fit_lmm("y ~ x + offset(patient) + (1 | patient)", DATA)


def test_predict_adds_the_offset_as_lme4():
    ref = REF["intercept_reml"]
    res = fit_lmm(FORMULAS["intercept_reml"], DATA, reml=True)
    _scaled_close(res.predict()[:5], ref["fitted_head"], 1e-4)
    _scaled_close(res.predict(DATA.head(5)), ref["fitted_head"], 1e-4)
    offset = np.log(DATA["exposure"].to_numpy())
    np.testing.assert_allclose(
        res.predict(DATA, include_re=False), res.design.X @ res.beta + offset, rtol=1e-12
    )
    new = DATA.head(3).assign(exposure=DATA["exposure"].head(3) * np.e)
    np.testing.assert_allclose(res.predict(new), res.predict(DATA.head(3)) + 1.0, rtol=1e-12)
