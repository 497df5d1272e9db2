"""Example datasets in data/ and their manifest."""

from __future__ import annotations

import pytest

from lmm_core.datasets import DATA_DIR, list_examples, load_example

EXPECTED = {
    "sleepstudy": 180,
    "orthodont": 108,
    "chickweight": 578,
    "trial_small": 3118,
    "trial_large": 79369,
    "trial_visits": 1543,
    "infections": 1692,
    "seizures": 960,
}


def test_manifest_lists_the_examples_in_order():
    names = [info.name for info in list_examples()]
    assert names == list(EXPECTED)
    for info in list_examples():
        assert info.title and info.description and info.source and info.units
        assert (DATA_DIR / info.file).is_file()


@pytest.mark.parametrize("name", list(EXPECTED))
def test_examples_load_with_roles_and_text_factors(name):
    data, info = load_example(name)
    assert len(data) == EXPECTED[name]
    roles = info.roles
    for role in ("subject", "time", "outcome"):
        assert roles[role] in data.columns
    for col in roles["covariates"]:
        assert col in data.columns
    for col in info.factors:
        assert data[col].map(type).eq(str).all(), col
    assert data[roles["time"]].dtype.kind in "if"
    assert data[roles["outcome"]].dtype.kind in "if"  # chickweight: whole grams
    if info.truth:
        assert (DATA_DIR / info.truth).is_file()


def test_sleepstudy_subject_is_a_label():
    data, _ = load_example("sleepstudy")
    assert data["Subject"].iloc[0] == "308"
    assert data["Subject"].nunique() == 18


def test_unknown_example_names_the_known_ones():
    with pytest.raises(KeyError, match="sleepstudy"):
        load_example("nope")
