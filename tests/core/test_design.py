"""build_design against lme4: every reference case, Z blocks, missing rows, new data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lmm_core.design import build_design
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
