"""dashboard.analysis.model_summary: tables, ICC and plain-language status from real fits."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from dashboard.analysis import model_summary as ms
from lmm_core import datasets, fit_lmm


@cache
def _fit(formula: str, example: str = "sleepstudy", reml: bool = True):
    data, _ = datasets.load_example(example)
    return fit_lmm(formula, data, reml=reml)


RI = "Reaction ~ Days + (1 | Subject)"
RS = "Reaction ~ Days + (Days | Subject)"
SINGULAR = "Reaction ~ Days + (1 | Subject) + (1 | Days)"
NESTED = "y ~ time * arm + (1 | hospital/patient_in_hospital)"


def test_fixed_and_variance_tables_equal_the_result():
    res = _fit(RS)
    fixed = ms.fixed_effects_table(res)
    np.testing.assert_allclose(fixed["Estimate"], res.fixef)
    np.testing.assert_allclose(fixed["Std. error"], np.sqrt(np.diag(res.vcov)))
    np.testing.assert_allclose(fixed["t value"], res.fixef / np.sqrt(np.diag(res.vcov)))
    var = ms.variance_table(res)
    assert list(var["Random effect"]) == ["intercept", "slope on Days", "residual (within)"]
    vc = res.varcorr_table()
    np.testing.assert_allclose(var["SD"], vc.loc[vc["var2"].isna(), "sdcor"])
    assert var["SD"].iloc[-1] == pytest.approx(res.sigma)
    corr = ms.correlation_table(res)
    assert corr["Correlation"].iloc[0] == pytest.approx(vc.loc[vc["var2"].notna(), "sdcor"].iloc[0])
    assert ms.correlation_table(_fit(RI)).empty


def test_icc_of_a_random_intercept_model_is_the_hand_computation():
    res = _fit(RI)
    vc = res.varcorr_table().set_index("group")["vcov"]
    expected = vc["Subject"] / (vc["Subject"] + vc["Residual"])
    table = ms.icc_table(res)
    assert table["ICC"].iloc[0] == pytest.approx(expected, rel=1e-12)
    assert table["Share"].iloc[0] == pytest.approx(expected, rel=1e-12)
    (sentence,) = ms.icc_sentences(res, "Subject", "Days")
    assert f"ICC = {expected:.2f}" in sentence


def test_nested_icc_adds_the_cluster_share():
    res = _fit(NESTED, "trial_small")
    vc = res.varcorr_table().set_index("group")["vcov"]
    total = vc.sum()
    table = ms.icc_table(res).set_index("Level")
    patient = "patient_in_hospital:hospital"
    assert table.loc["hospital", "ICC"] == pytest.approx(vc["hospital"] / total, rel=1e-12)
    assert table.loc[patient, "ICC"] == pytest.approx(
        (vc[patient] + vc["hospital"]) / total, rel=1e-12
    )
    assert table.loc[patient, "Share"] == pytest.approx(vc[patient] / total, rel=1e-12)
    assert table.loc[patient, "Nested in"] == "hospital"
    assert "includes the hospital share" in " ".join(ms.icc_sentences(res))


def test_slope_models_say_the_icc_depends_on_time():
    res = _fit(RS)
    sentences = ms.icc_sentences(res, "Subject", "Days")
    assert "not one number" in sentences[0] and "Days = 0" in sentences[0]
    vc = res.varcorr_table()
    v0 = vc["vcov"].iloc[0]
    assert ms.icc_table(res)["ICC"].iloc[0] == pytest.approx(v0 / (v0 + res.sigma**2))
    assert not any("not one number" in s for s in ms.icc_sentences(_fit(RI)))


def test_singular_fit_names_the_zero_component_and_the_simpler_model():
    res = _fit(SINGULAR)
    assert res.is_singular
    (zero,) = ms.zero_components(res)
    assert (zero.group, zero.column, zero.kind) == ("Days", "(Intercept)", "variance")
    assert ms.simpler_formula(res) == "Reaction ~ Days + (1 | Subject)"
    texts = [s.text for s in ms.status_messages(res)]
    assert any("random intercept of Days is estimated as zero" in t for t in texts)
    assert any("`Reaction ~ Days + (1 | Subject)`" in t for t in texts)
    assert all(s.level != "success" or "converged" in s.text for s in ms.status_messages(res))


def test_zero_slope_variance_and_perfect_correlation_sentences():
    # a response without slope variation: the slope variance goes to zero
    data, _ = datasets.load_example("sleepstudy")
    rng = np.random.default_rng(1)
    subject_shift = {s: rng.normal(0, 30) for s in data["Subject"].unique()}
    data = data.assign(
        Reaction=250
        + 10 * data["Days"]
        + data["Subject"].map(subject_shift)
        + rng.normal(0, 20, len(data))
    )
    res = fit_lmm("Reaction ~ Days + (Days || Subject)", data)
    zeros = ms.zero_components(res)
    assert [(z.column, z.kind) for z in zeros] == [("Days", "variance")]
    assert ms.simpler_formula(res) == "Reaction ~ Days + (1 | Subject)"
    text = " ".join(s.text for s in ms.status_messages(res))
    assert "random slope on Days for Subject is estimated as zero" in text
    assert "rate of change of Reaction along Days differs" in text

    # correlated: the slope's SD is tiny and its correlation with the intercept is -1
    res = fit_lmm("Reaction ~ Days + (Days | Subject)", data)
    (zero,) = ms.zero_components(res)
    assert (zero.column, zero.kind, zero.partner, zero.value) == (
        "Days",
        "correlation",
        "(Intercept)",
        -1.0,
    )
    assert ms.simpler_formula(res) == "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)"
    text = " ".join(s.text for s in ms.status_messages(res))
    assert "correlation between the intercept and the slope on Days of Subject" in text
    assert "estimated as -1" in text


def test_non_singular_fit_has_no_simpler_model_and_says_converged():
    res = _fit(RS)
    assert ms.zero_components(res) == []
    assert ms.simpler_formula(res) is None
    (status,) = ms.status_messages(res)
    assert status.level == "success" and "converged" in status.text


def test_data_notes_for_missing_rows_and_aliased_columns():
    data, _ = datasets.load_example("sleepstudy")
    data = data.assign(Days2=data["Days"] * 2)
    data.loc[[0, 5, 7], "Reaction"] = np.nan
    res = fit_lmm("Reaction ~ Days + Days2 + (1 | Subject)", data)
    notes = " ".join(ms.data_notes(res))
    assert "3 rows with missing values in Reaction were left out" in notes
    assert "177 of 180 rows" in notes
    assert "`Days2` could not be estimated" in notes
    assert ms.data_notes(_fit(RI)) == []


def test_ols_comparison_design_effect():
    res = _fit(RS)
    table = ms.ols_comparison(res)
    np.testing.assert_allclose(table["Mixed SE"], np.sqrt(np.diag(res.vcov)))
    np.testing.assert_allclose(table["OLS estimate"], res.fixef, rtol=1e-10)  # balanced data
    np.testing.assert_allclose(table["Design effect"], (table["Mixed SE"] / table["OLS SE"]) ** 2)
    # the naive SE is too small for the intercept (between subjects)
    ri = ms.ols_comparison(_fit(RI))
    assert ri.loc["(Intercept)", "Design effect"] > 1
    assert ri.loc["Days", "Design effect"] < 1  # within-subject effect: OLS SE too large


def test_random_curve_words_and_a_singular_curve():
    """A random spline per chick: effects named as curve terms, the ICC taken where the curve
    starts, and a singular 3 x 3 covariance called a dependence (no correlation is +/-1)."""
    data, _ = datasets.load_example("chickweight")
    res = fit_lmm("weight ~ ns(Time, 3) * Diet + (ns(Time, 2) | Chick)", data)
    assert list(ms.variance_table(res)["Random effect"][:3]) == [
        "intercept",
        "curve term ns(Time, 2)1",
        "curve term ns(Time, 2)2",
    ]
    first = ms.icc_sentences(res, "Chick", "Time")[0]
    assert "changes along Time," in first and "at Time = 0." in first
    zeros = ms.zero_components(res)
    assert [(z.column, z.kind) for z in zeros] == [("ns(Time, 2)2", "dependence")]
    assert np.all(np.abs(ms.correlation_table(res)["Correlation"]) < 0.99)
    texts = [s.text for s in ms.status_messages(res)]
    assert any("exact combination" in t for t in texts)
    assert not any("estimated as +1" in t or "without random effects" in t for t in texts)
    assert sum("better optimum" in t for t in texts) <= 1
