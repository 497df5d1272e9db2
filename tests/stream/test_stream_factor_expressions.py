"""A factor of an expression (``factor(dose / 2)``, ``C(visit * 2)``) streamed: the levels of
the whole table learned in pass 1 (labels, order, reference level) and the fit equal to the
in-memory fit, on DuckDB and on Spark (local mode; skipped without Java or pyspark, required
in CI as in ``test_stream_spark.py``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lmm_core import fit_lmm
from lmm_core.design.build import build_design
from lmm_core.errors import DataError, FormulaError, ModelError
from lmm_core.model.deviance import ProfiledDeviance
from lmm_core.stream import fit_lmm_stream
from lmm_core.stream import plan as plan_module
from lmm_core.stream.plan import plan_stream
from lmm_core.stream.sources import DuckDBEngine, as_source

RTOL = 1e-10
pytestmark = pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas")


def _visits(seed: int = 5, n_hosp: int = 6, per: int = 8, visits: int = 6) -> pd.DataFrame:
    """Patients in hospitals with visits 0..5 (``visit``), a dose in mg whose largest value
    (8 mg) only appears in the last rows, a week offset, missing values in ``y`` and
    ``dose``; columns with spaces, accents and brackets as well."""
    rng = np.random.default_rng(seed)
    rows = []
    for h in range(n_hosp):
        c0, c1 = rng.normal(0, 0.5), rng.normal(0, 1.5)  # the hospital's shifts
        for i in range(per):
            arm = ("control", "treated")[i % 2]
            dose = (1.0, 2.0, 4.0)[(h + i) % 3]
            shift = i % 2
            b0, b1 = rng.normal(0, 2), rng.normal(0, 0.4)
            for v in range(visits):
                t = 7.0 * v + rng.uniform(0, 3)
                y = 50 + b0 + c0 + c1 * shift + (0.3 + b1) * v + 0.8 * np.log2(dose)
                y -= 0.5 * v * (arm == "treated")
                rows.append((f"H{h}", f"p{h}{i:02d}", arm, v, shift, dose, t, y + rng.normal()))
    cols = ["hospital", "patient", "arm", "visit", "shift", "dose", "time", "y"]
    df = pd.DataFrame(rows, columns=cols)
    df.loc[df.index[-9:], "dose"] = 8.0  # a level that only the last batches have
    df.loc[[4, 30], "y"] = np.nan
    df.loc[11, "dose"] = np.nan
    df["dose (mg)"] = df["dose"]
    df["Visite n°"] = df["visit"]
    df["[week]"] = df["shift"]
    df["patient id"] = df["patient"]
    return df


def _check_same(formula: str, df: pd.DataFrame, res) -> None:
    """The streamed fit is the in-memory fit: criterion at two thetas, optimum, names."""
    ref = fit_lmm(formula, df)
    d = build_design(formula, df)
    dev = ProfiledDeviance(d.X, d.y, d.reterms, True)
    for theta in (ref.theta, ref.theta * 1.3 + 0.01):
        assert res.deviance(theta) == pytest.approx(dev(theta), rel=RTOL)
    assert res.objective == pytest.approx(ref.objective, rel=RTOL)
    assert res.x_names == ref.x_names  # labels, level order and reference level
    assert res.nobs == ref.nobs and res.ngroups == ref.ngroups
    assert res.messages == ref.messages
    se = ref.std_errors
    assert np.all(np.abs(res.beta - ref.beta) < 1e-3 * se)
    sol, ref_sol = res.deviance.solve(ref.theta), dev.solve(ref.theta)
    np.testing.assert_allclose(sol.beta, ref_sol.beta, rtol=1e-9, atol=1e-9 * se.max())
    for g, frame in ref.ranef.items():
        assert list(res.ranef[g].index) == list(frame.index)
        assert list(res.ranef[g].columns) == list(frame.columns)


MODELS = [
    # division: labels 0.5, 1, 2, 4 (integer-valued floats as integers), a level late
    "y ~ factor(dose / 2) * arm + (1 | patient)",
    # an expression of two columns, beside a factor of one of them and a slope on it
    "y ~ factor(visit + shift) + factor(shift) + time + (time | patient)",
    # functions, powers, unary minus; a column both in a factor and numeric elsewhere
    "y ~ C(log2(dose)) + factor(-visit^2) + visit + (1 | hospital/patient)",
    # a factor of an expression in a random term's left side
    "y ~ visit + (1 | patient) + (factor(2 * shift - 1) | hospital)",
    # messy column names in backticks inside the expressions
    "y ~ factor(`dose (mg)` / 2) + factor(`Visite n°` + `[week]`) + (1 | `patient id`)",
]


@pytest.mark.parametrize("formula", MODELS)
def test_factor_of_an_expression_matches_in_memory(tmp_path, formula):
    df = _visits()
    path = tmp_path / "d.parquet"
    df.to_parquet(path)
    res = fit_lmm_stream(formula, path, batch_size=23)  # most batches lack some level
    _check_same(formula, df, res)
    plan = plan_stream(formula, DuckDBEngine(as_source(path)))
    want = build_design(formula, df)
    assert plan.design.fixed_recipe.levels == want.fixed_recipe.levels
    assert [t.rebuild.lhs.levels for t in plan.reterms] == [
        t.rebuild.lhs.levels for t in want.reterms
    ]


def test_levels_are_those_of_the_rows_used_in_numeric_order(tmp_path):
    df = _visits()
    df.loc[df["dose"] == 8.0, "y"] = np.nan  # 8 mg only in rows left out: not a level
    path = tmp_path / "d.parquet"
    df.to_parquet(path)
    formula = "y ~ factor(dose / 2) + factor(10 - visit) + (1 | patient)"
    plan = plan_stream(formula, DuckDBEngine(as_source(path)))
    assert plan.design.fixed_recipe.levels == {
        "factor(dose/2)": ("0.5", "1", "2"),
        "factor(10 - visit)": ("5", "6", "7", "8", "9", "10"),
    }


def test_one_combination_per_level_when_there_are_many(tmp_path, monkeypatch):
    """Beyond TEMPLATE_COMBINATIONS the template keeps one row per level of each factor."""
    df = _visits()
    path = tmp_path / "d.parquet"
    df.to_parquet(path)
    formula = "y ~ factor(visit + shift) * arm + factor(shift) + (visit | patient)"
    monkeypatch.setattr(plan_module, "TEMPLATE_COMBINATIONS", 3)
    _check_same(formula, df, fit_lmm_stream(formula, path, batch_size=40))


@pytest.mark.parametrize(
    "formula",
    [
        "y ~ factor(scale(dose)) + (1 | patient)",
        "y ~ time + factor(round_dose) + (C(center(visit)) | hospital)",
    ],
)
def test_scale_and_center_inside_a_factor_use_the_whole_table(tmp_path, formula):
    """The levels are the standardized values with the whole table's mean and SD (pass 1's
    SQL), as in memory, not the template's."""
    df = _visits().assign(round_dose=lambda d: d["dose"].round())
    path = tmp_path / "d.parquet"
    df.to_parquet(path, row_group_size=50)
    _check_same(formula, df, fit_lmm_stream(formula, path, batch_size=40))


def test_expressions_that_cannot_be_streamed_are_refused_clearly(tmp_path, monkeypatch):
    df = _visits()
    path = tmp_path / "d.parquet"
    df.to_parquet(path)
    # arithmetic on a categorical column: the in-memory path's error
    formula = "y ~ factor(arm + 1) + (1 | patient)"
    with pytest.raises(FormulaError) as mem:
        fit_lmm(formula, df)
    with pytest.raises(FormulaError) as streamed:
        fit_lmm_stream(formula, path)
    assert str(streamed.value) == str(mem.value)
    # log of a negative number: a row without a level (in memory: a failed decomposition)
    with pytest.raises(DataError, match=r"`factor\(log\(visit - 1\)\)` is not a number"):
        fit_lmm_stream("y ~ factor(log(visit - 1)) + (1 | patient)", path)
    monkeypatch.setattr(plan_module, "MAX_FACTOR_COMBINATIONS", 5)
    with pytest.raises(ModelError, match="take more than 5 distinct values"):
        fit_lmm_stream("y ~ factor(visit + shift) + (1 | patient)", path)


def test_spark_learns_the_same_levels(spark, tmp_path):
    df = _visits()
    folder = tmp_path / "parts"
    folder.mkdir()
    for i, part in enumerate(np.array_split(np.arange(len(df)), 3)):
        df.iloc[part].to_parquet(folder / f"part{i}.parquet")
    formula = (
        "y ~ factor(`dose (mg)` / 2) * arm + factor(`Visite n°` + `[week]`) "
        "+ (1 | `patient id`) + (0 + C(1 - 2 * `[week]`) | hospital)"
    )
    got = fit_lmm(formula, folder, engine="spark", spark=spark, batch_size=50)
    _check_same(formula, df, got)
    assert got.timings["partitions"] >= 2
