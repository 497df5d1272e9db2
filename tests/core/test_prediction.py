"""Population curves with Wald bands, partial predictions, grids (lmm_core.prediction)."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest

from lmm_core import datasets, fit_lmm
from lmm_core.prediction import (
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
