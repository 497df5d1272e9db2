"""Nesting of fitted models and the boundary (chi-bar-square) reference of the LRT."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from lmm_core import chibar_pvalue, fit_lmm, lrt
from lmm_core.inference.nesting import boundary_test_info, check_nesting, is_nested
from tests.conftest import load_reference_dataset

LRT_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "reference" / "lrt"
LRT_CASES = sorted(p.stem for p in LRT_DIR.glob("*.json"))
INTERCEPT = "Reaction ~ Days + (1 | Subject)"
UNCORRELATED = "Reaction ~ Days + (Days || Subject)"
CORRELATED = "Reaction ~ Days + (Days | Subject)"


@cache
def fit(dataset: str, formula: str, reml: bool = True):
    return fit_lmm(formula, load_reference_dataset(dataset), reml=reml)


def case_fits(name: str) -> list:
    case = json.loads((LRT_DIR / f"{name}.json").read_text())
    return [fit(case["dataset"], f) for f in case["models"]]


@pytest.mark.parametrize("name", LRT_CASES)
def test_reference_pairs_are_nested_and_not_the_other_way(name):
    fits = case_fits(name)
    for small, large in zip(fits[:-1], fits[1:], strict=True):
        check = check_nesting(small, large)
        assert check.nested, check.reason
        assert is_nested(small, large)
        assert not is_nested(large, small)  # swapped: the larger has more parameters


def test_correlated_term_is_not_inside_uncorrelated_pair():
    small = fit("sleepstudy", CORRELATED)
    big = fit_lmm(
        "Reaction ~ Days + I(Days^2) + (Days || Subject)", load_reference_dataset("sleepstudy")
    )  # more parameters than `small`, still no correlation
    check = check_nesting(small, big)
    assert not check.nested
    assert "correlated" in check.reason


def test_different_fixed_effects_are_not_nested():
    data = load_reference_dataset("Orthodont")
    a = fit_lmm("distance ~ age + (1 | Subject)", data)
    b = fit_lmm("distance ~ Sex + (age | Subject)", data)
    check = check_nesting(a, b)
    assert not check.nested
    assert "age" in check.reason


def test_same_column_space_with_other_names_is_nested():
    data = load_reference_dataset("Orthodont")
    a = fit_lmm("distance ~ 0 + Sex + (1 | Subject)", data)  # SexFemale, SexMale
    b = fit_lmm("distance ~ Sex + age + (1 | Subject)", data)  # (Intercept), SexMale, age
    assert is_nested(a, b)


def test_different_rows_or_groups_are_not_nested():
    data = load_reference_dataset("sleepstudy")
    fewer = fit_lmm(INTERCEPT, data.iloc[:-10])
    check = check_nesting(fewer, fit("sleepstudy", CORRELATED))
    assert not check.nested
    assert "different rows" in check.reason
    data["Other"] = data["Subject"].astype(str).str[-1]
    other = fit_lmm("Reaction ~ Days + (1 | Other)", data)
    assert not is_nested(other, fit("sleepstudy", CORRELATED))


def test_boundary_one_added_variance_gives_half_the_naive_p():
    small, large = fit("sleepstudy", INTERCEPT), fit("sleepstudy", UNCORRELATED)
    info = boundary_test_info(small, large)
    assert info.on_boundary
    assert info.added_variances == ("Subject: Days",)
    assert info.added_covariances == ()
    assert info.mixture_df == 1
    table = lrt(small, large, names=["a", "b"])
    chisq, naive = table["Chisq"].iloc[1], table["Pr(>Chisq)"].iloc[1]
    assert chibar_pvalue(chisq, info.mixture_df) == pytest.approx(naive / 2, rel=1e-12)


def test_boundary_variance_with_its_covariance_gives_df_two():
    info = boundary_test_info(fit("sleepstudy", INTERCEPT), fit("sleepstudy", CORRELATED))
    assert info.on_boundary
    assert info.added_covariances == ("Subject: (Intercept) x Days",)
    assert info.mixture_df == 2


def test_added_covariance_only_is_not_on_the_boundary():
    info = boundary_test_info(fit("sleepstudy", UNCORRELATED), fit("sleepstudy", CORRELATED))
    assert not info.on_boundary
    assert info.added_variances == ()
    assert info.mixture_df is None


def test_added_fixed_effects_are_not_a_boundary_test():
    small, large = case_fits("orthodont_fixed_intercept")
    info = boundary_test_info(small, large)
    assert info.added_fixed == ("age:SexMale",)
    assert not info.on_boundary
    assert info.mixture_df is None


def test_hospital_level_is_a_one_variance_boundary_test():
    small, large = case_fits("sim_small_hospital_level")
    info = boundary_test_info(small, large)
    assert info.added_variances == ("hospital: (Intercept)",)
    assert info.mixture_df == 1


def test_two_added_variances_have_no_simple_mixture():
    data = load_reference_dataset("sim_small")
    small = fit_lmm("y ~ time * arm + (1 | patient)", data)
    large = fit_lmm("y ~ time * arm + (time || patient) + (1 | hospital)", data)
    assert is_nested(small, large)
    info = boundary_test_info(small, large)
    assert info.on_boundary
    assert len(info.added_variances) == 2
    assert info.mixture_df is None
    assert np.isfinite(large.aic)
