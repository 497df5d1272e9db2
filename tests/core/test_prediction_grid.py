"""Per-subject grids for drawing model curves between visits (prediction.subject_grid)."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest

from lmm_core import datasets, fit_lmm
from lmm_core.predict.prediction import population_curve, predict_groups, subject_grid

LINE = "Reaction ~ Days + (Days | Subject)"
SPLINE = "Reaction ~ ns(Days, 3) + (ns(Days, 2) | Subject)"
CHICK = "weight ~ ns(Time, 3) * Diet + (ns(Time, 2) | Chick)"


@cache
def _fit(name: str, formula: str):
    data = datasets.load_example(name)[0]
    return data, fit_lmm(formula, data)


def _visit_mask(grid: pd.DataFrame, data: pd.DataFrame, subject: str, x: str) -> np.ndarray:
    """Rows of ``grid`` whose ``x`` is one of that subject's visit times."""
    times = data.groupby(subject)[x].apply(lambda s: set(s.astype(float)))
    return np.array(
        [t in times[s] for s, t in zip(grid[subject], grid[x], strict=True)], dtype=bool
    )


def test_straight_line_model_grid_lies_on_the_lines_through_the_fitted_values():
    data, res = _fit("sleepstudy", LINE)
    grid = subject_grid(res, data, "Subject", "Days", ["308", "335", "372"], n_points=37)
    pred = res.predict(grid)
    for sid in ("308", "335", "372"):
        rows = data[data["Subject"] == sid].sort_values("Days")
        fitted = res.predict(rows)
        g = grid["Subject"] == sid
        expected = np.interp(grid.loc[g, "Days"], rows["Days"], fitted)
        np.testing.assert_allclose(pred[g.to_numpy()], expected, rtol=1e-12)


def test_spline_grid_predictions_at_the_visits_equal_the_fitted_values():
    data, res = _fit("sleepstudy", SPLINE)
    subjects = ["308", "309", "350"]
    grid = subject_grid(res, data, "Subject", "Days", subjects, n_points=41)
    pred = res.predict(grid)
    at_visit = _visit_mask(grid, data, "Subject", "Days")
    used = data.iloc[res.design.rows]
    fitted = pd.Series(res.fitted, index=pd.MultiIndex.from_frame(used[["Subject", "Days"]]))
    keys = pd.MultiIndex.from_arrays([grid["Subject"][at_visit], grid["Days"][at_visit]])
    np.testing.assert_allclose(pred[at_visit], fitted.loc[keys].to_numpy(), rtol=1e-10)
    assert at_visit.sum() == 30  # every visit of the three subjects, once
    # between the visits the curve bends: it leaves the straight segments
    g = (grid["Subject"] == "308").to_numpy()
    visits = grid[g & at_visit]
    straight = np.interp(grid.loc[g, "Days"], visits["Days"], pred[g & at_visit])
    assert np.max(np.abs(pred[g] - straight)) > 0.1


def test_grid_spans_each_subjects_visits_in_order_with_even_steps():
    data, res = _fit("chickweight", CHICK)
    short = data.groupby("Chick").size().idxmin()  # a chick lost before day 21
    last = data.loc[data["Chick"] == short, "Time"].max()
    assert last < 21
    grid = subject_grid(res, data, "Chick", "Time", [short, "1", "no such chick", "1"], 30)
    assert list(pd.unique(grid["Chick"])) == [short, "1"]
    one = grid[grid["Chick"] == "1"]
    assert one["Time"].is_monotonic_increasing and one["Time"].is_unique
    assert one["Time"].iloc[0] == 0 and one["Time"].iloc[-1] == 21
    even = np.linspace(0, 21, 30)
    visits = data.loc[data["Chick"] == "1", "Time"].astype(float)
    expected = np.union1d(even, visits)
    near = np.abs(expected[:, None] - visits.to_numpy()[None, :]).min(axis=1)
    expected = expected[(near == 0) | (near > 1e-8)]
    np.testing.assert_allclose(one["Time"], expected)
    lost = grid[grid["Chick"] == short]
    assert lost["Time"].max() == last and len(lost) == 30  # both visits fall on even steps
    assert grid["Time"].dtype == np.float64
    assert (grid.loc[grid["Chick"] == "1", "Diet"] == "1").all()


def test_chick_population_and_own_curves_on_the_grid():
    data, res = _fit("chickweight", CHICK)
    chick = "21"  # diet 2
    grid = subject_grid(res, data, "Chick", "Time", [chick], n_points=50)
    assert (grid["Diet"] == data.loc[data["Chick"] == chick, "Diet"].iloc[0]).all()
    pop = predict_groups(res, grid, [])
    np.testing.assert_allclose(pop, population_curve(res, grid)["fit"], rtol=1e-12)
    own = res.predict(grid)
    b = res.ranef["Chick"].loc[chick].to_numpy()
    basis = res.design.bases["ns(Time, 2)"].evaluate(grid["Time"].to_numpy())
    np.testing.assert_allclose(own - pop, b[0] + basis @ b[1:], rtol=1e-9, atol=1e-9)


def test_a_changing_covariate_is_held_at_the_nearest_visit():
    data = datasets.load_example("sleepstudy")[0].copy()
    data["dose"] = data["Days"] * 10.0 + (data["Subject"] == "308") * 1.0
    res = fit_lmm("Reaction ~ Days + dose + (1 | Subject)", data)
    grid = subject_grid(res, data, "Subject", "Days", ["308"], n_points=19)  # step 0.5
    between = grid[grid["Days"] % 1 != 0]
    expected = np.where(between["Days"] % 1 <= 0.5, np.floor(between["Days"]), 0)
    expected = np.where(between["Days"] % 1 > 0.5, np.ceil(between["Days"]), expected)
    np.testing.assert_allclose(between["dose"], expected * 10 + 1)


def test_one_visit_and_equal_times_and_bad_input():
    data, res = _fit("sleepstudy", LINE)
    single = data[(data["Subject"] != "308") | (data["Days"] == 4)]
    res1 = fit_lmm(LINE, single)
    grid = subject_grid(res1, single, "Subject", "Days", ["308"])
    assert list(grid["Days"]) == [4.0]
    np.testing.assert_allclose(res1.predict(grid), res1.predict(single[single["Subject"] == "308"]))
    with pytest.raises(ValueError, match="n_points"):
        subject_grid(res, data, "Subject", "Days", ["308"], n_points=1)
    with pytest.raises(ValueError, match="`Week` is not a column"):
        subject_grid(res, data, "Subject", "Week", ["308"])
    empty = subject_grid(res, data, "Subject", "Days", ["nobody"])
    assert empty.empty and list(empty.columns) == list(data.columns)
