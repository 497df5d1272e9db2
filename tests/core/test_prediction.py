"""Population curves with Wald bands, partial predictions, grids (lmm_core.predict.prediction)."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest

from lmm_core import datasets, fit_lmm
from lmm_core.predict.prediction import (
    fixed_variables,
    population_curve,
    population_grid,
    predict_groups,
    random_part,
)

TRIAL = "y ~ time * arm + (time | patient) + (1 | hospital)"


@cache
def _trial():
    data = datasets.load_example("trial_small")[0]
    return data, fit_lmm(TRIAL, data)


def test_population_curve_against_hand_computation():
    data, res = _trial()
    new = pd.DataFrame({"time": [0.0, 3.0, 6.0], "arm": ["control", "treatment", "treatment"]})
    out = population_curve(res, new, level=0.95)
    fe, V = res.fixef, res.vcov
    for i, (t, a) in enumerate(zip(new["time"], new["arm"], strict=True)):
        x = pd.Series(0.0, index=fe.index)
        x["(Intercept)"], x["time"] = 1.0, t
        if a == "treatment":
            x["armtreatment"], x["time:armtreatment"] = 1.0, t
        fit = float(x @ fe)
        se = float(np.sqrt(x @ V @ x))
        assert out["fit"].iloc[i] == pytest.approx(fit, rel=1e-12)
        assert out["se"].iloc[i] == pytest.approx(se, rel=1e-12)
        assert out["lower"].iloc[i] == pytest.approx(fit - 1.959963984540054 * se, rel=1e-12)
        assert out["upper"].iloc[i] == pytest.approx(fit + 1.959963984540054 * se, rel=1e-12)
    wide = population_curve(res, new, level=0.99)
    assert (wide["upper"] - wide["lower"] > out["upper"] - out["lower"]).all()


def test_predict_groups_population_cluster_and_all():
    data, res = _trial()
    rows = data.iloc[res.design.rows].head(40)
    np.testing.assert_allclose(predict_groups(res, rows, []), res.design.X[:40] @ res.beta)
    np.testing.assert_allclose(
        predict_groups(res, rows, ["patient", "hospital"]), res.predict(rows), rtol=1e-12
    )
    hosp = predict_groups(res, rows, ["hospital"])
    b_h = res.ranef["hospital"]["(Intercept)"].reindex(rows["hospital"]).to_numpy()
    np.testing.assert_allclose(hosp, res.design.X[:40] @ res.beta + b_h, rtol=1e-12)


def test_random_part_and_fixed_variables():
    _, res = _trial()
    np.testing.assert_allclose(random_part(res), res.fitted - res.predict(include_re=False))
    assert fixed_variables(res) == ["time", "arm"]


def test_population_grid_by_arm_and_held_values():
    data, res = _trial()
    grid, held = population_grid(res, data, "time", by="arm", n_points=11)
    assert held == {}
    assert list(pd.unique(grid["arm"])) == ["control", "treatment"]
    assert grid["time"].min() == pytest.approx(data["time"].min())
    assert grid["time"].max() == pytest.approx(data["time"].max())
    grid, held = population_grid(res, data, "time", n_points=5)
    assert held == {"arm": data["arm"].mode().iloc[0]}
    assert len(grid) == 5 and np.isfinite(population_curve(res, grid)["fit"]).all()


def _sleep_with_age() -> pd.DataFrame:
    """sleepstudy plus an integer Age per subject (whole numbers, mean not whole)."""
    data = datasets.load_example("sleepstudy")[0].copy()
    subjects = sorted(data["Subject"].unique())
    ages = [23, 31, 45, 52, 38, 27, 61, 44, 35, 29, 50, 41, 33, 58, 47, 26, 39, 55]
    age = dict(zip(subjects, ages, strict=True))
    data["Age"] = data["Subject"].map(age).astype("int64")
    return data


def test_population_grid_holds_an_integer_covariate_at_its_mean_as_float():
    """Issue 11 item 1: an integer column held at its (non-whole) mean must not be coerced
    back to int64 ('Trying to coerce float values to integers')."""
    data = _sleep_with_age()
    assert data["Age"].dtype == np.int64 and data["Age"].mean() % 1 != 0
    res = fit_lmm("Reaction ~ Days + Age + (Days | Subject)", data)
    grid, held = population_grid(res, data, "Days", n_points=7)
    assert held == {"Age": pytest.approx(data["Age"].mean())}
    assert grid["Age"].dtype == np.float64
    np.testing.assert_allclose(grid["Age"], data["Age"].mean())
    curve = population_curve(res, grid)
    fe = res.fixef
    expected = fe["(Intercept)"] + fe["Days"] * grid["Days"] + fe["Age"] * data["Age"].mean()
    np.testing.assert_allclose(curve["fit"], expected, rtol=1e-12)
    # an integer column on the axis or as the curve variable keeps working too
    grid_by, held_by = population_grid(res, data, "Age", by=None, n_points=5)
    assert held_by["Days"] == pytest.approx(data["Days"].mean())
    assert np.isfinite(population_curve(res, grid_by)["fit"]).all()


def test_held_column_dtypes():
    from lmm_core.predict.prediction import held_column

    ints = pd.Series([1, 2, 4], dtype="int64")
    assert held_column(ints, 7 / 3, 2).tolist() == [7 / 3, 7 / 3]
    assert held_column(pd.Series([1, 2], dtype="Int64"), 1.5, 1).dtype == np.float64
    cat = pd.Series(pd.Categorical(["b", "a"], categories=["b", "a"]))
    out = held_column(cat, "a", 3)
    assert isinstance(out.dtype, pd.CategoricalDtype) and list(out.cat.categories) == ["b", "a"]
    assert held_column(pd.Series([True, False]), True, 2).dtype == bool
