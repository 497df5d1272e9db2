"""Data that cannot support a mixed model give a typed, actionable error, never a traceback."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lmm_core import DataError, fit_lmm


@pytest.fixture
def visits():
    return pd.DataFrame({"g": np.repeat(list("abcdefgh"), 5), "t": np.tile(np.arange(5.0), 8)})


@pytest.mark.parametrize("formula", ["y ~ t + (1 | g)", "y ~ t + (t | g)"])
def test_constant_outcome(visits, formula):
    with pytest.raises(DataError, match="is constant"):
        fit_lmm(formula, visits.assign(y=3.0))


def test_outcome_exactly_explained_by_fixed_effects(visits):
    with pytest.raises(DataError, match="exact function of the fixed effects"):
        fit_lmm("y ~ t + (1 | g)", visits.assign(y=2 * visits["t"] + 1))


def test_outcome_constant_within_groups(visits):
    y = np.repeat(np.arange(8.0) ** 2, 5)
    with pytest.raises(DataError, match="hardly varies within g"):
        fit_lmm("y ~ t + (1 | g)", visits.assign(y=y))


@pytest.mark.parametrize("scale", [1e-12, 1e12])
def test_extreme_scales_fit_cleanly(visits, scale):
    rng = np.random.default_rng(4)
    y = scale * (rng.normal(size=len(visits)) + np.repeat(rng.normal(size=8), 5))
    res = fit_lmm("y ~ t + (1 | g)", visits.assign(y=y))
    assert res.converged and np.isfinite(res.objective)
    assert res.sigma == pytest.approx(scale * np.std(y / scale), rel=0.6)


def test_factor_of_an_expression_that_is_nan_gets_a_message_not_a_traceback():
    """``factor(log(visit - 2))`` is NaN where visit is 1: a DataError saying so (it was a
    LinAlgError from the least-squares start)."""
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"id": np.repeat(np.arange(20), 4), "visit": np.tile([1, 2, 3, 4], 20)})
    df["y"] = rng.normal(size=len(df))
    for formula in (
        "y ~ factor(log(visit - 2)) + (1 | id)",
        "y ~ visit + (factor(sqrt(visit - 2)) | id)",
    ):
        with pytest.raises(DataError, match="is not a finite number in 20 rows"):
            fit_lmm(formula, df)


def test_a_glmm_with_a_covariance_of_the_visits_gets_a_message():
    """In memory and streamed (it was an IndexError in memory)."""
    from lmm_core import ModelError, fit_glmm
    from lmm_core.stream import fit_glmm_stream

    rng = np.random.default_rng(2)
    df = pd.DataFrame({"id": np.repeat(np.arange(30), 4), "visit": np.tile([1, 2, 3, 4], 30)})
    df["y"] = (rng.random(len(df)) < 0.4).astype(int)
    formula = "y ~ visit + us(visit | id)"
    for fit in (fit_glmm, fit_glmm_stream):
        with pytest.raises(ModelError, match=r"`us\(visit \| id\)`: a covariance structure"):
            fit(formula, df, "binomial")
