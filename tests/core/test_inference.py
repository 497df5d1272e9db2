"""Degrees of freedom, p-values and F tests against lmerTest and pbkrtest (every reference case).

Tolerances (issue 5), on our own fit of each case:
- Satterthwaite (lmerTest ``summary``): df within 1e-2 relative, p-values within 1e-3 absolute;
- Kenward-Roger (pbkrtest, REML cases): df within 1e-2 relative, p within 1e-3 absolute, the
  adjusted standard error within 1e-3 relative;
- type-III ANOVA (lmerTest ``anova``): denominator df 1e-2 relative, F 1e-3 relative, p 1e-3
  absolute, numerator df exact.
Measured deviations are far smaller (about 1e-3 relative in df at worst, from the small
differences between our optimum and lme4's; 1e-6 at lme4's own theta).
"""

from __future__ import annotations

import numpy as np
import pytest
from test_reference_lme4 import CASES, fitted, load_case, read_dataset

from lmm_core import LMMError, anova_table, contrast_test, fixef_inference
from lmm_core.design.build import build_design
from lmm_core.inference.fixed_effects import type3_contrasts
from lmm_core.inference.kenward_roger import MAX_RANDOM_EFFECTS, KenwardRogerTooLarge, kr_adjustment
from lmm_core.inference.satterthwaite import satterthwaite_row_df, varpar_derivatives
from lmm_core.model.deviance import ProfiledDeviance
from lmm_core.model.fit import result_at_theta

KR_CASES = [c for c in CASES if "df" in (load_case(c).get("kenward_roger") or {})]
ANOVA_CASES = [c for c in CASES if "names" in (load_case(c).get("anova_type3_satterthwaite") or {})]


def _fit(name):
    case = load_case(name)
    return case, fitted(case["dataset"], case["formula"], case["REML"])


def _rel(a, b):
    return np.abs(np.asarray(a, float) / np.asarray(b, float) - 1.0)


@pytest.mark.parametrize("name", CASES)
def test_satterthwaite_matches_lmertest(name):
    case, res = _fit(name)
    ref = case["satterthwaite"]
    table = fixef_inference(res, "satterthwaite")
    assert list(table.index) == ref["names"]
    assert np.all(_rel(table["df"], ref["df"]) <= 1e-2)
    assert np.all(np.abs(table["p_value"] - np.array(ref["Pr(>|t|)"])) <= 1e-3)
    assert np.all(_rel(table["t_value"], ref["t value"]) <= 1e-3)


@pytest.mark.parametrize("name", KR_CASES)
def test_kenward_roger_matches_pbkrtest(name):
    case, res = _fit(name)
    ref = case["kenward_roger"]
    table = fixef_inference(res, "kenward-roger")
    assert np.all(_rel(table["df"], ref["df"]) <= 1e-2)
    assert np.all(_rel(table["std_error"], ref["Std. Error"]) <= 1e-3)
    assert np.all(np.abs(table["p_value"] - np.array(ref["Pr(>|t|)"])) <= 1e-3)


@pytest.mark.parametrize("name", ANOVA_CASES)
def test_anova_type3_matches_lmertest(name):
    case, res = _fit(name)
    ref = case["anova_type3_satterthwaite"]
    table = anova_table(res)
    assert list(table.index) == ref["names"]
    assert list(table["num_df"]) == ref["NumDF"]
    assert np.all(_rel(table["den_df"], ref["DenDF"]) <= 1e-2)
    assert np.all(_rel(table["F"], ref["F value"]) <= 1e-3)
    assert np.all(np.abs(table["p_value"] - np.array(ref["Pr(>F)"])) <= 1e-3)


def test_satterthwaite_exact_at_lme4_theta():
    """At lme4's own estimates the finite differences agree with lmerTest to 1e-5."""
    for name in ("sleepstudy_slope_corr_reml", "orthodont_int_slope_ml", "pastes_nested_reml"):
        case = load_case(name)
        design = build_design(case["formula"], read_dataset(case["dataset"]))
        res = result_at_theta(design, np.array(case["theta"]["values"]), reml=case["REML"])
        dev = ProfiledDeviance(design.X, design.y, design.reterms, res.reml)
        deriv = varpar_derivatives(dev, res.theta, res.sigma)
        df = [satterthwaite_row_df(deriv, res.vcov_beta, e) for e in np.eye(design.p)]
        assert np.all(_rel(df, case["satterthwaite"]["df"]) <= 1e-5)


def test_singular_fit_gets_n_minus_p():
    """Dyestuff2 (theta = 0): lmerTest's df n - p (REML) and n (ML)."""
    for name, expected in (("dyestuff2_reml", 29.0), ("dyestuff2_ml", 30.0)):
        _, res = _fit(name)
        assert res.is_singular
        assert fixef_inference(res)["df"].iloc[0] == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("method", ["satterthwaite", "kenward-roger", "wald"])
def test_unit_contrast_is_the_coefficient_t_test(method):
    _, res = _fit("orthodont_int_slope_reml")
    table = fixef_inference(res, method)
    for j, name in enumerate(table.index):
        row = np.eye(len(res.beta))[j]
        test = contrast_test(res, row, method=method)
        assert test.F == pytest.approx(table.loc[name, "t_value"] ** 2, rel=1e-10)
        assert test.den_df == pytest.approx(table.loc[name, "df"], rel=1e-10)
        assert test.p_value == pytest.approx(table.loc[name, "p_value"], rel=1e-8, abs=1e-300)
        two = contrast_test(res, np.vstack([row, 2 * row]), method=method)  # rank 1
        assert two.num_df == 1
        if method != "kenward-roger":  # KR scales its F by lambda (Kenward & Roger 1997)
            assert two.F == pytest.approx(test.F, rel=1e-8)


@pytest.mark.parametrize("name", CASES)
def test_df_between_one_and_n_minus_p(name):
    _, res = _fit(name)
    df = fixef_inference(res)["df"].to_numpy()
    upper = res.nobs - len(res.beta) if res.reml else res.nobs  # ML: n (dyestuff2_ml)
    assert np.all(df >= 1.0) and np.all(df <= upper * (1 + 1e-6))


def test_table_shape_intervals_and_wald():
    _, res = _fit("sleepstudy_slope_corr_reml")
    table = res.fixef_table()
    assert list(table.columns) == [
        "estimate",
        "std_error",
        "df",
        "t_value",
        "p_value",
        "ci_lower",
        "ci_upper",
    ]
    assert table.notna().all().all()
    wald = res.fixef_table("wald", level=0.9)
    assert np.isinf(wald["df"]).all()
    half = (wald["ci_upper"] - wald["ci_lower"]) / 2
    np.testing.assert_allclose(half, 1.6448536269514722 * wald["std_error"], rtol=1e-10)
    bare = res.fixef_table(None)
    assert bare["df"].isna().all() and bare["t_value"].notna().all()
    assert "satterthwaite" in res.derived  # the derivatives, computed once
    first = res.fixef_table()
    first.loc[:, "df"] = -1.0  # a caller's copy: the kept table is untouched
    assert res.fixef_table()["df"].gt(0).all()
    assert ("fixef_table", "satterthwaite", 0.95) in res.derived
    with pytest.raises(LMMError):
        res.fixef_table("containment")


def test_f_test_several_rows_and_anova_type3_contrast():
    _, res = _fit("orthodont_int_slope_reml")
    contrasts = type3_contrasts(res.design)
    # `age` in `age * Sex`: the slope averaged over the two sexes (lmerTest type III)
    np.testing.assert_allclose(contrasts["age"], [[0, 1, 0, 0.5]])
    np.testing.assert_allclose(contrasts["Sex"], [[0, 0, 1, 0]])
    test = contrast_test(res, np.eye(4)[[2, 3]])
    assert test.num_df == 2 and 1 < test.den_df < res.nobs
    for method in ("kenward-roger", "wald"):
        other = contrast_test(res, np.eye(4)[[2, 3]], method=method)
        assert other.num_df == 2 and 0 <= other.p_value <= 1


def test_kenward_roger_refits_ml_and_refuses_huge_models(monkeypatch):
    _, ml = _fit("sleepstudy_intercept_ml")
    case, _ = _fit("sleepstudy_intercept_reml")
    adj = kr_adjustment(ml)
    assert adj.refitted_reml
    se = np.sqrt(np.diag(adj.vcov_adj))
    np.testing.assert_allclose(se, case["kenward_roger"]["Std. Error"], rtol=1e-3)
    monkeypatch.setattr("lmm_core.inference.kenward_roger.MAX_RANDOM_EFFECTS", 10)
    kr_adjustment(ml)  # one grouping factor: computed level by level, no size limit
    _, nested = _fit("pastes_nested_reml")  # several factors: dense q x q, refused above it
    with pytest.raises(KenwardRogerTooLarge, match="Satterthwaite"):
        kr_adjustment(nested)
    assert MAX_RANDOM_EFFECTS >= 1000
