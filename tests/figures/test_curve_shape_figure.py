"""Figure of the competing population curves (dashboard.figures.curve_shape): the curves are
the models' population predictions, the points the observed means; panels per arm or the
reference level; irregular times binned; covariates held."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest

from dashboard.figures import curve_shape as fcs
from lmm_core import datasets, fit_lmm

FORMULAS = {
    "straight line": "weight ~ Time * Diet + (Time | Chick)",
    "natural spline (3 df)": "weight ~ ns(Time, 3) * Diet + (Time | Chick)",
}


@cache
def chick():
    return datasets.load_example("chickweight")[0]


@cache
def chick_fits() -> tuple:
    return tuple((label, fit_lmm(f, chick(), reml=False)) for label, f in FORMULAS.items())


def test_curves_are_population_predictions_per_diet():
    prep = fcs.shape_curves(chick_fits(), chick(), "Time", by="Diet", n_points=25)
    assert prep.by == "Diet" and prep.groups == ("1", "2", "3", "4")
    assert len(prep.curves) == 2 * 4 * 25 and not prep.failed
    _, spline = chick_fits()[1]
    rows = prep.curves[(prep.curves["shape"] == "natural spline (3 df)")]
    grid = pd.DataFrame({"Time": rows["time"].to_numpy()})
    grid["Diet"] = rows["group"].to_numpy()
    expected = spline.predict(grid, include_re=False)
    np.testing.assert_allclose(rows["fit"], expected, rtol=1e-12)
    assert rows["time"].min() == 0 and rows["time"].max() == 21
    # the points: the observed mean weight of each diet at each visit day
    observed = chick().groupby(["Diet", "Time"])["weight"].mean()
    means = prep.means.set_index(["group", "time"])["mean"]
    np.testing.assert_allclose(means.loc[("3", 10)], observed.loc[("3", 10)])
    assert len(prep.means) == len(observed)
    assert "per visit time" in prep.notes[0]


def test_too_many_levels_give_the_reference_level():
    prep = fcs.shape_curves(chick_fits(), chick(), "Time", by="Diet", max_panels=3)
    assert prep.by is None and prep.groups == ("all",)
    assert "Diet = 1 (the reference level)" in prep.notes[1]
    _, line = chick_fits()[0]
    first = prep.curves[prep.curves["shape"] == "straight line"].iloc[[0, -1]]
    expected = line.predict(pd.DataFrame({"Time": [0.0, 21.0], "Diet": ["1", "1"]}), False)
    np.testing.assert_allclose(first["fit"], expected, rtol=1e-12)
    diet1 = chick()[chick()["Diet"] == "1"].groupby("Time")["weight"].mean()
    np.testing.assert_allclose(prep.means.sort_values("time")["mean"], diet1.to_numpy())


def test_figure_has_one_colour_per_shape_and_panels():
    prep = fcs.shape_curves(chick_fits(), chick(), "Time", by="Diet", n_points=25)
    fig = fcs.curve_shape_figure(
        prep, time_label="Time", outcome_label="weight", highlight="natural spline (3 df)"
    )
    assert [a.text for a in fig.layout.annotations] == [f"Diet = {d}" for d in "1234"]
    lines = [t for t in fig.data if t.mode == "lines"]
    assert len(lines) == 8 and len({t.line.color for t in lines}) == 2
    shown = sorted((t for t in fig.data if t.showlegend), key=lambda t: t.legendrank)
    assert [t.name for t in shown] == ["observed mean", *FORMULAS]
    widths = {t.name: t.line.width for t in lines}
    assert widths["natural spline (3 df)"] > widths["straight line"]
    assert fig.layout.height == 640  # two rows of two panels
    assert fig.layout.legend.y < 0  # below the plot, under the axis titles
    single = fcs.curve_shape_figure(fcs.shape_curves(chick_fits()[:1], chick(), "Time"))
    assert single.layout.height == 440 and not single.layout.annotations
    assert [t.name for t in single.data] == ["observed mean", "straight line"]


def irregular(seed: int = 3) -> pd.DataFrame:
    """40 subjects seen at irregular times, with a numeric covariate ``age``."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(40):
        age = rng.uniform(30, 70)
        for t in np.sort(rng.uniform(0, 10, 6)):
            rows.append({"id": i, "t": t, "age": age, "y": 5 + 0.8 * t - 0.04 * t**2 + 0.1 * age})
    data = pd.DataFrame(rows)
    data["y"] += rng.normal(0, 0.5, len(data))
    return data


def test_irregular_times_are_binned_and_covariates_held():
    data = irregular()
    fits = [("quadratic", fit_lmm("y ~ poly(t, 2) + age + (1 | id)", data, reml=False))]
    prep = fcs.shape_curves(fits, data, "t")
    assert "per bin of time" in prep.notes[0]
    assert len(prep.means) <= fcs.MAX_TIMES and prep.means["n"].sum() == len(data)
    assert prep.notes[1].startswith("Other covariates are held at typical values: age = ")
    age = data["age"].mean()
    grid = pd.DataFrame({"t": [prep.curves["time"].iloc[0]], "age": [age]})
    expected = fits[0][1].predict(grid, include_re=False)
    assert prep.curves["fit"].iloc[0] == pytest.approx(expected[0], rel=1e-12)


def test_a_curve_that_cannot_be_predicted_is_reported():
    data = irregular()
    good = fit_lmm("y ~ t + (1 | id)", data, reml=False)
    other = fit_lmm("y ~ t + age + (1 | id)", data, reml=False)  # needs a column the grid lacks
    prep = fcs.shape_curves([("line", good), ("with age", other)], data, "t")
    assert prep.failed == ("with age",) and set(prep.curves["shape"]) == {"line"}
    with pytest.raises(ValueError, match="at least one fit"):
        fcs.shape_curves([], data, "t")
