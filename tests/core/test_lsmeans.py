"""LS-means (emmeans' estimated marginal means), their contrasts and type-III F tests.

Oracles:
- mmrm 0.3.18 + emmeans 1.8.4 on the FEV data (``tests/fixtures/mmrm``): LS-means per arm
  within visit and ``TRT - PBO`` per visit, equal and proportional weights over RACE x SEX,
  Satterthwaite and Kenward-Roger df (an ML fit refuses Kenward-Roger); estimates 1e-4
  relative to their scale, SEs 1e-3, df 1e-2;
- lme4 + lmerTest/pbkrtest + emmeans (``tests/fixtures/lsmeans``, made by
  ``make_lsmeans_reference.R``): Orthodont (a covariate at its mean, ``factor(age)`` as ``by``)
  and ChickWeight with ``ns(Time, 3) * Diet`` (a spline argument at its mean), Satterthwaite
  and Kenward-Roger;
- nlme::gls + emmeans on FEV (ar1, cs): type-III F (emmeans ``joint_tests``) and mmrm's
  ``df_md`` denominator df of the same hypothesis matrix.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lmm_core import LMMError, fit_lmm, lsmeans, lsmeans_contrasts, type3_tests
from lmm_core.inference.estimable import md_denominator_df, mmrm_f_test
from tests.core.test_mmrm import MMRM, fev

ROOT = Path(__file__).resolve().parents[2]
REF = json.loads((ROOT / "tests" / "fixtures" / "lsmeans" / "lsmeans_reference.json").read_text())
CASES = sorted(p.stem for p in (MMRM / "cases").glob("*.json"))
LMM_CASES = {c["name"]: c for c in REF["lmm"]}
GLS_CASES = {c["name"]: c for c in REF["mmrm_type3"]}


@pytest.fixture(scope="module")
def fev_data() -> pd.DataFrame:
    return fev()


@pytest.fixture(scope="module")
def fits(fev_data):
    cache: dict = {}

    def get(name: str):
        if name not in cache:
            case = json.loads((MMRM / "cases" / f"{name}.json").read_text())
            cache[name] = (case, fit_lmm(case["formula"], fev_data, reml=case["REML"]))
        return cache[name]

    return get


def _scaled(actual, expected, rtol: float) -> None:
    actual, expected = np.asarray(actual, float), np.asarray(expected, float)
    err = np.max(np.abs(actual - expected)) / np.max(np.abs(expected))
    assert err <= rtol, err


def _check(table: pd.DataFrame, ref: dict, keys: list[str], est: str = "estimate") -> None:
    """Match rows by their labels, then compare estimate, SE, df and the interval."""
    ref_frame = pd.DataFrame(ref)
    for k in keys:
        ref_frame[k] = ref_frame[k].astype(str)
    got = table.copy()
    for k in keys:
        got[k] = got[k].astype(str)
    merged = got.merge(ref_frame, on=keys, how="inner")
    assert len(merged) == len(ref_frame) == len(table)
    _scaled(merged["estimate"], merged[est], 1e-4)
    np.testing.assert_allclose(merged["std_error"], merged["SE"], rtol=1e-3)
    np.testing.assert_allclose(merged["df"], merged["df_y"], rtol=1e-2)
    _scaled(merged["ci_lower"], merged["lower.CL"], 1e-4)
    _scaled(merged["ci_upper"], merged["upper.CL"], 1e-4)


def _mmrm_ref(block: dict) -> dict:
    return {k: v for k, v in block.items() if k != "note"}


@pytest.mark.parametrize(
    "method, weights",
    [("satterthwaite", "equal"), ("satterthwaite", "proportional"), ("kenward-roger", "equal")],
)
@pytest.mark.parametrize("name", CASES)
def test_mmrm_lsmeans_match_emmeans(name, method, weights, fits, fev_data):
    case, res = fits(name)
    key = "emmeans_" + method.replace("-", "_")
    if key not in case:
        assert not case["REML"]
        with pytest.raises(LMMError, match="REML"):
            lsmeans(res, "ARMCD", by="AVISIT", df_method=method)
        return
    block = case[key]
    suffix = "" if weights == "equal" else "_proportional"
    kw = {"weights": weights, "data": fev_data, "df_method": method}
    table = lsmeans(res, "ARMCD", by="AVISIT", **kw)
    assert list(table.columns) == [
        "AVISIT", "ARMCD", "estimate", "std_error", "df", "ci_lower", "ci_upper",
    ]  # fmt: skip
    ref = pd.DataFrame(block["lsmeans" + suffix]).rename(columns={"df": "df_y"})
    _check(table, ref.to_dict("list"), ["ARMCD", "AVISIT"], est="emmean")
    con = lsmeans_contrasts(res, "ARMCD", by="AVISIT", **kw)
    ref = pd.DataFrame(_mmrm_ref(block["contrasts" + suffix])).rename(
        columns={"df": "df_y", "estimate": "est_ref"}
    )
    _check(con, ref.to_dict("list"), ["contrast", "AVISIT"], est="est_ref")
    merged = con.merge(ref, on=["AVISIT"])
    np.testing.assert_allclose(merged["t_value"], merged["t.ratio"], rtol=1e-3)
    np.testing.assert_allclose(merged["p_value"], merged["p.value"], rtol=2e-2, atol=1e-6)


def test_mmrm_equal_weights_need_no_data(fits, fev_data):
    _, res = fits("mmrm_fev_ar1_reml")
    with_data = lsmeans(res, ["ARMCD", "AVISIT"], data=fev_data)
    without = lsmeans(res, ["ARMCD", "AVISIT"])
    pd.testing.assert_frame_equal(with_data, without)
    assert len(without) == 8


def _lmm_data(name: str) -> pd.DataFrame:
    if name.startswith("orthodont"):
        return pd.read_csv(ROOT / "data" / "orthodont.csv")
    data = pd.read_csv(ROOT / "data" / "chickweight.csv")
    data["Diet"] = data["Diet"].astype(str)
    data["Chick"] = data["Chick"].astype(str)
    return data


def _strip_factor_prefix(label: str, factor: str) -> str:
    return label.replace(factor, "")


@pytest.mark.parametrize("method", ["satterthwaite", "kenward-roger"])
@pytest.mark.parametrize("name", sorted(LMM_CASES))
def test_random_effects_lsmeans_match_emmeans(name, method):
    case = LMM_CASES[name]
    data = _lmm_data(name)
    res = fit_lmm(case["formula"], data, reml=True)
    spec, by = case["spec"], case.get("by") or None
    keys = [spec] + ([by] if by else [])
    block = case[method.replace("-", "_")]
    table = lsmeans(res, spec, by=by, df_method=method, data=data)
    ref = pd.DataFrame(block["lsmeans"]).rename(columns={"df": "df_y"})
    _check(table, ref.to_dict("list"), keys, est="emmean")
    con = lsmeans_contrasts(res, spec, by=by, df_method=method, data=data)
    ref = pd.DataFrame(block["contrasts"]).rename(columns={"df": "df_y", "estimate": "est"})
    ref["contrast"] = [_strip_factor_prefix(c, spec) for c in ref["contrast"]]
    _check(con, ref.to_dict("list"), ["contrast"] + ([by] if by else []), est="est")


def test_spline_covariate_mean_needs_data_or_at():
    case = LMM_CASES["chick_spline_diet"]
    data = _lmm_data("chick_spline_diet")
    res = fit_lmm(case["formula"], data, reml=True)
    with pytest.raises(LMMError, match="Pass `data=`.*Time"):
        lsmeans(res, "Diet")
    at_mean = lsmeans(res, "Diet", at={"Time": float(data["Time"].mean())})
    np.testing.assert_allclose(
        at_mean["estimate"], lsmeans(res, "Diet", data=data)["estimate"], rtol=1e-12
    )
    later = lsmeans(res, "Diet", at={"Time": 20.0})
    assert (later["estimate"] > at_mean["estimate"]).all()


@pytest.mark.parametrize("name", sorted(GLS_CASES))
def test_mmrm_type3_f_tests(name, fits):
    ref = GLS_CASES[name]
    _, res = fits(f"mmrm_fev_{name}_reml")
    table = type3_tests(res)
    assert list(table.index) == [t["term"] for t in ref["type3"]]
    for term in ref["type3"]:
        row = table.loc[term["term"]]
        assert row["num_df"] == term["num_df"]
        assert row["F"] == pytest.approx(term["F"], rel=1e-3)
        assert term["L_columns"] == res.x_names
        test = mmrm_f_test(res, np.array(term["L"], float).reshape(term["num_df"], -1))
        assert test.F == pytest.approx(term["F"], rel=1e-3)
        assert test.den_df == pytest.approx(term["den_df"], rel=1e-2)
        if term["num_df"] == 1:
            assert row["den_df"] == pytest.approx(term["den_df"], rel=1e-2)


def test_f_test_of_one_row_is_the_t_test(fits):
    _, res = fits("mmrm_fev_ar1_reml")
    table = res.fixef_table()
    row = np.eye(len(res.beta))[4]
    test = mmrm_f_test(res, row)
    assert test.F == pytest.approx(table["t_value"].iloc[4] ** 2, rel=1e-10)
    assert test.den_df == pytest.approx(table["df"].iloc[4], rel=1e-10)
    assert test.p_value == pytest.approx(table["p_value"].iloc[4], rel=1e-8)


def test_kenward_roger_f_test_of_one_row_is_the_t_test(fits):
    _, res = fits("mmrm_fev_us_reml")
    table = res.fixef_table(df_method="kenward-roger")
    for j in (0, 4, 8):
        test = mmrm_f_test(res, np.eye(len(res.beta))[j], method="kenward-roger")
        assert test.F == pytest.approx(table["t_value"].iloc[j] ** 2, rel=1e-8)
        assert test.den_df == pytest.approx(table["df"].iloc[j], rel=1e-8)
    kr = type3_tests(res, df_method="kenward-roger")
    sat = type3_tests(res)
    assert list(kr.index) == list(sat.index)
    np.testing.assert_allclose(kr["num_df"], sat["num_df"])
    assert (kr["p_value"].between(0, 1)).all()


def test_md_denominator_df():
    assert md_denominator_df(np.array([10.0, 10.0])) == 10.0
    assert md_denominator_df(np.array([1.5, 30.0])) == 2.0
    nu = np.array([20.0, 40.0])
    e = 20 / 18 + 40 / 38
    assert md_denominator_df(nu) == pytest.approx(2 * e / (e - 2))


def test_random_effects_type3_is_lmertest_anova():
    data = _lmm_data("orthodont_age_sex")
    res = fit_lmm("distance ~ age * Sex + (1 | Subject)", data)
    table = type3_tests(res)
    assert list(table.index) == ["age", "Sex", "age:Sex"]
    assert {"num_df", "den_df", "F", "p_value"} <= set(table.columns)


def test_lsmeans_do_not_depend_on_units(fits, fev_data):
    case, res = fits("mmrm_fev_ar1_reml")
    scaled = fev_data.assign(FEV1=fev_data["FEV1"] * 1000.0)
    res_ml = fit_lmm(case["formula"], scaled, reml=True)
    a = lsmeans(res, "ARMCD", by="AVISIT")
    b = lsmeans(res_ml, "ARMCD", by="AVISIT")
    np.testing.assert_allclose(b["estimate"], a["estimate"] * 1000.0, rtol=1e-5)
    np.testing.assert_allclose(b["std_error"], a["std_error"] * 1000.0, rtol=1e-4)
    np.testing.assert_allclose(b["df"], a["df"], rtol=1e-3)


def test_bad_specs_give_clear_messages(fits, fev_data):
    _, res = fits("mmrm_fev_ar1_reml")
    with pytest.raises(LMMError, match="no factor `ARM`.*`ARMCD`"):
        lsmeans(res, "ARM")
    with pytest.raises(LMMError, match="twice"):
        lsmeans(res, "ARMCD", by="ARMCD")
    with pytest.raises(LMMError, match="weights"):
        lsmeans(res, "ARMCD", weights="cells")
    with pytest.raises(LMMError, match="Pass `data=`"):
        lsmeans(res, "ARMCD", weights="proportional")
    with pytest.raises(LMMError, match="not available for LS-means"):
        lsmeans(res, "ARMCD", df_method="between-within")
    with pytest.raises(LMMError, match="confidence level"):
        lsmeans(res, "ARMCD", level=95)
    with pytest.raises(LMMError, match="reference"):
        lsmeans_contrasts(res, "ARMCD", method="trt.vs.ctrl", reference="XYZ")
    data = _lmm_data("orthodont_age_sex")
    lmm = fit_lmm("distance ~ age * Sex + (1 | Subject)", data)
    with pytest.raises(LMMError, match="`age` is a numeric covariate"):
        lsmeans(lmm, "age")
    with pytest.raises(LMMError, match="`at` sets numeric covariates"):
        lsmeans(lmm, "Sex", at={"Sex": 1.0})


def test_treatment_versus_control(fits):
    _, res = fits("mmrm_fev_ar1_reml")
    rev = lsmeans_contrasts(res, "AVISIT", by="ARMCD")
    ctrl = lsmeans_contrasts(res, "AVISIT", by="ARMCD", method="trt.vs.ctrl")
    assert len(rev) == 2 * 6 and len(ctrl) == 2 * 3
    assert list(ctrl["contrast"][:3]) == ["VIS2 - VIS1", "VIS3 - VIS1", "VIS4 - VIS1"]
    same = rev.merge(ctrl, on=["ARMCD", "contrast"])
    assert len(same) == 6
    np.testing.assert_allclose(same["estimate_x"], same["estimate_y"], rtol=1e-12)
    means = lsmeans(res, "AVISIT", by="ARMCD")
    pbo = means[means["ARMCD"] == "PBO"].set_index("AVISIT")["estimate"]
    assert ctrl["estimate"].iloc[0] == pytest.approx(pbo["VIS2"] - pbo["VIS1"], rel=1e-12)
