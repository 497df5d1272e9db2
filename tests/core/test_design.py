"""build_design against lme4: every reference case, Z blocks, missing rows, new data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lmm_core.design.build import build_design
from lmm_core.errors import DataError
from tests.conftest import load_reference_dataset

CASES = sorted((Path(__file__).parents[1] / "fixtures" / "reference" / "cases").glob("*.json"))


@pytest.fixture(scope="module", params=CASES, ids=[c.stem for c in CASES])
def case(request):
    spec = json.loads(request.param.read_text())
    return spec, build_design(spec["formula"], load_reference_dataset(spec["dataset"]))


def test_fixed_columns_match_lme4(case):
    spec, d = case
    assert list(d.x_names) == spec["X_colnames"]
    assert d.X.shape == (spec["n_obs"], len(spec["X_colnames"]))
    assert d.aliased == ()


def test_rows_and_response_match_lme4(case):
    spec, d = case
    assert d.n == spec["n_obs"] == len(d.rows)
    assert d.n_dropped == 0
    assert d.y.sum() == pytest.approx(spec["data_check"]["response_sum"], rel=1e-12)


def test_random_terms_match_lme4(case):
    spec, d = case
    got = [(t.group, list(t.cnames)) for t in d.reterms]
    assert got == [(t["group"], t["terms"]) for t in spec["random_terms"]["terms"]]
    assert {t.group: t.n_levels for t in d.reterms} == spec["n_levels"]
    assert [nm for t in d.reterms for nm in t.theta_names()] == spec["theta"]["names"]


def test_level_labels_match_lme4(case):
    spec, d = case
    for block in spec["ranef"]:
        levels = [t.levels for t in d.reterms if t.group == block["group"]]
        assert levels, block["group"]
        for lv in levels:
            assert list(lv[: block["levels_stored"]]) == block["levels"]
            assert len(lv) == block["n_levels"]


# --------------------------------------------------------------------------- Z blocks
@pytest.fixture(scope="module")
def sleep():
    return load_reference_dataset("sleepstudy")


def test_sleepstudy_first_ztz_block(sleep) -> None:
    d = build_design("Reaction ~ Days + (Days | Subject)", sleep)
    t = d.reterms[0]
    assert t.levels[0] == "308"
    z = t.z[t.codes == 0]
    np.testing.assert_array_equal(z.T @ z, [[10.0, 45.0], [45.0, 285.0]])
    assert t.codes.dtype.kind == "i" and t.codes.min() == 0 and t.codes.max() == 17


def test_interaction_group_levels_follow_factor_order() -> None:
    data = pd.DataFrame(
        {
            "y": np.arange(12.0),
            "a": ["A", "A-1", "B"] * 4,
            "b": [2, 10] * 6,
        }
    )
    t = build_design("y ~ (1 | a:b)", data).reterms[0]
    # R's `:` orders by a's levels, then b's (numeric), not by the pasted strings
    assert t.levels == ("A:2", "A:10", "A-1:2", "A-1:10", "B:2", "B:10")
    assert t.group == "a:b"


def test_grouping_columns_of_any_dtype() -> None:
    n = 24
    base = pd.DataFrame({"y": np.linspace(0, 1, n) ** 2})
    cases = {
        "int": (np.repeat([10, 2, 3, 4], 6), ("2", "3", "4", "10")),
        "float": (np.repeat([1.0, 2.5, 10.0, 1e5], 6), ("1", "2.5", "10", "1e+05")),
        "str": (np.repeat(["b", "a", "B", "c"], 6), ("B", "a", "b", "c")),
        "bool": (np.repeat([True, False], 12), ("FALSE", "TRUE")),
    }
    for key, (values, levels) in cases.items():
        d = build_design("y ~ (1 | g)", base.assign(g=values))
        assert d.reterms[0].levels == levels, key
    cat = pd.Categorical(
        np.repeat(["lo", "hi", "mid", "hi"], 6), categories=["mid", "lo", "x", "hi"]
    )
    d = build_design("y ~ (1 | g)", base.assign(g=cat))
    assert d.reterms[0].levels == ("mid", "lo", "hi")  # unused "x" dropped, order kept
    np.testing.assert_array_equal(d.reterms[0].codes, np.repeat([1, 2, 0, 2], 6))


def test_term_order_follows_lme4_mkretrms() -> None:
    n = 40
    data = pd.DataFrame(
        {
            "y": np.sin(np.arange(n)),
            "a": np.arange(n) % 5,
            "b": np.arange(n) % 10,
            "c": (np.arange(n) // 4) % 10,
        }
    )
    groups = [t.group for t in build_design("y ~ (1|a) + (1|b) + (1|c)", data).reterms]
    assert groups == ["c", "b", "a"]  # rev(order(c(5, 10, 10)))
    groups = [t.group for t in build_design("y ~ (1|b) + (1|c) + (1|a)", data).reterms]
    assert groups == ["b", "c", "a"]  # never increasing: formula order kept


# --------------------------------------------------------------------------- missing, bad data
def test_missing_rows_dropped_once_and_counted(sleep) -> None:
    data = sleep.copy()
    data.loc[[0, 5], "Reaction"] = np.nan
    data.loc[[5, 7, 9], "Days"] = np.nan
    data.loc[11, "Subject"] = None
    data["unused"] = np.nan
    d = build_design("Reaction ~ Days + (Days | Subject)", data)
    assert d.n_dropped == 5 and d.n == 175
    assert d.messages[0] == "5 rows with missing values in Reaction, Days, Subject were left out"
    expected_rows = np.setdiff1d(np.arange(180), [0, 5, 7, 9, 11])
    np.testing.assert_array_equal(d.rows, expected_rows)
    np.testing.assert_array_equal(d.y, sleep["Reaction"].to_numpy()[expected_rows])
    np.testing.assert_array_equal(d.X[:, 1], sleep["Days"].to_numpy()[expected_rows])


def test_unused_levels_dropped_after_missing(sleep) -> None:
    data = sleep.copy()
    data.loc[data["Subject"] == "308", "Reaction"] = np.nan
    d = build_design("Reaction ~ Days + (1 | Subject)", data)
    assert d.reterms[0].n_levels == 17 and d.reterms[0].levels[0] == "309"


def test_infinite_values_are_data_errors(sleep) -> None:
    data = sleep.astype({"Days": float})
    data.loc[[3, 4], "Days"] = np.inf
    with pytest.raises(DataError, match="`Days` has 2 infinite values"):
        build_design("Reaction ~ Days + (1 | Subject)", data)
    with pytest.raises(DataError, match="log"):
        build_design("Reaction ~ log(Days) + (1 | Subject)", sleep)  # log(0)


def test_no_rows_left(sleep) -> None:
    data = sleep.assign(Days=np.nan)
    with pytest.raises(DataError, match="No rows left.*Days"):
        build_design("Reaction ~ Days + (1 | Subject)", data)
    with pytest.raises(DataError, match="table"):
        build_design("Reaction ~ Days + (1 | Subject)", [1, 2, 3])


# --------------------------------------------------------------------------- rank deficiency
def test_aliased_columns_are_dropped_and_named(sleep) -> None:
    data = sleep.assign(Days2=2 * sleep["Days"] + 0.0, Hours=24 * sleep["Days"] + 1.0)
    d = build_design("Reaction ~ Days + Days2 + Hours + (1 | Subject)", data)
    assert d.x_names == ("(Intercept)", "Days")
    assert d.aliased == ("Days2", "Hours")
    assert d.X.shape == (180, 2)
    assert "rank deficient so dropping 2 columns / coefficients: Days2, Hours" in d.messages[0]
    np.testing.assert_array_equal(d.fixed_matrix(data), d.X)


def test_aliased_interaction_cell() -> None:
    data = pd.DataFrame(
        {"y": np.arange(12.0), "f": list("AB") * 6, "g": list("XXYY") * 3, "s": np.arange(12) % 3}
    )
    d = build_design("y ~ f:g + (1 | s)", data)
    assert d.x_names == ("(Intercept)", "fA:gX", "fB:gX", "fA:gY")
    assert d.aliased == ("fB:gY",)


def test_near_collinear_but_full_rank_kept() -> None:
    t = np.linspace(0, 1, 50)
    data = pd.DataFrame({"y": t, "t": t, "u": t + 1e-5 * np.cos(7 * t), "s": np.arange(50) % 5})
    assert build_design("y ~ t + u + (1 | s)", data).aliased == ()


# --------------------------------------------------------------------------- new data
def test_new_data_reproduces_training_matrices(sleep) -> None:
    f = "Reaction ~ scale(Days) + I(Days^2) + (Days | Subject) + (1 | Subject:grp)"
    data = sleep.assign(grp=np.where(sleep["Days"] < 5, "early", "late"))
    d = build_design(f, data)
    np.testing.assert_allclose(d.fixed_matrix(data), d.X, rtol=0, atol=1e-15)
    for k, term in enumerate(d.reterms):
        codes, z = d.random_matrix(k, data)
        np.testing.assert_array_equal(codes, term.codes)
        np.testing.assert_array_equal(z, term.z)
    np.testing.assert_array_equal(d.response_values(data), d.y)
    # a subset keeps the training centring/scaling, not its own
    sub = data.iloc[[3, 50, 100]]
    np.testing.assert_allclose(d.fixed_matrix(sub), d.X[[3, 50, 100]])


def test_new_data_unseen_and_missing(sleep) -> None:
    d = build_design("Reaction ~ Days + (Days | Subject)", sleep)
    new = pd.DataFrame({"Days": [1.0, np.nan, 3.0], "Subject": ["308", "308", "999"]})
    X = d.fixed_matrix(new)
    assert np.isnan(X[1]).all() and not np.isnan(X[[0, 2]]).any()
    codes, z = d.random_matrix(0, new)
    np.testing.assert_array_equal(codes, [0, 0, -1])
    assert np.isnan(z[1, 1]) and z[2, 1] == 3.0
    codes, _ = d.random_matrix(0, new.assign(Subject=[None, "372", "309"]))
    np.testing.assert_array_equal(codes, [-1, 17, 1])


def test_new_data_unseen_fixed_level_is_an_error() -> None:
    data = pd.DataFrame({"y": np.arange(8.0), "arm": list("ab") * 4, "s": [1, 1, 2, 2] * 2})
    d = build_design("y ~ arm + (1 | s)", data)
    np.testing.assert_array_equal(
        d.fixed_matrix(pd.DataFrame({"arm": ["b", None]})), [[1.0, 1.0], [np.nan, np.nan]]
    )
    with pytest.raises(DataError, match="levels of `arm` not seen.*'c'"):
        d.fixed_matrix(pd.DataFrame({"arm": ["a", "c"]}))
    with pytest.raises(DataError, match="no column `arm`"):
        d.fixed_matrix(pd.DataFrame({"x": [1]}))


# --------------------------------------------------------------------------- invariance
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shuffling_rows_permutes_everything(seed: int) -> None:
    data = load_reference_dataset("sim_small")
    f = "y ~ time * arm + scale(time) + (time | patient) + (1 | hospital/patient_in_hospital)"
    d = build_design(f, data)
    perm = np.random.default_rng(seed).permutation(len(data))
    e = build_design(f, data.iloc[perm].reset_index(drop=True))
    np.testing.assert_array_equal(e.y, d.y[perm])
    np.testing.assert_allclose(e.X, d.X[perm], rtol=1e-12, atol=1e-12)
    assert e.x_names == d.x_names
    for s, t in zip(e.reterms, d.reterms, strict=True):
        assert (s.group, s.levels, s.cnames) == (t.group, t.levels, t.cnames)
        np.testing.assert_array_equal(s.codes, t.codes[perm])
        np.testing.assert_allclose(s.z, t.z[perm], rtol=1e-12, atol=1e-12)


def test_design_pickles_and_rebuilds(sleep) -> None:
    import pickle

    d = build_design("Reaction ~ scale(Days) + (Days | Subject)", sleep)
    e = pickle.loads(pickle.dumps(d))
    np.testing.assert_array_equal(e.X, d.X)
    np.testing.assert_array_equal(e.fixed_matrix(sleep.iloc[:5]), d.X[:5])
    np.testing.assert_array_equal(e.random_matrix(0, sleep)[0], d.reterms[0].codes)
    assert (d.n, d.p) == (180, 2)
