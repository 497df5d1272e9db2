"""The Spark engine of a streamed fit gives DuckDB's numbers (Spark in local mode).

The SparkSession is tests/stream/conftest.py's ``spark`` (one for the package).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from lmm_core import fit_lmm
from lmm_core.datasets import load_example
from lmm_core.errors import DataError
from lmm_core.stream import fit_lmm_stream
from lmm_core.stream.batches import batch_blocks
from lmm_core.stream.plan import plan_stream
from lmm_core.stream.sources import DuckDBEngine, as_source
from lmm_core.stream.spark import BlockSum, pack_blocks

RTOL = 1e-10
pytestmark = pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas")


def _trial(seed: int = 11, n_hosp: int = 6, per: int = 8, visits: int = 5) -> pd.DataFrame:
    """Patients in hospitals, visits in time (days), outcome x 1000, a 3-level factor whose
    last levels appear only in the last rows, missing values in y and time."""
    rng = np.random.default_rng(seed)
    rows = []
    for h in range(n_hosp):
        for i in range(per):
            arm = ("control", "treated")[i % 2]
            bi, bs = rng.normal(0, 2), rng.normal(0, 0.5)
            for v in range(visits):
                t = 30.0 * v + rng.uniform(0, 5)
                y = 120 + 0.1 * h + bi + (0.05 + bs / 30) * t - 0.02 * t * (arm == "treated")
                rows.append(
                    (f"H{h}", f"p{h:02d}{i:02d}", i, arm, t, 1000.0 * (y + rng.normal(0, 1.5)))
                )
    df = pd.DataFrame(rows, columns=["hospital", "patient", "pnum", "arm", "time", "y"])
    df["site"] = "s0"
    df.loc[df.index[-40:], "site"] = ["s1", "s2"] * 20
    df.loc[[3, 17], "y"] = np.nan
    df.loc[25, "time"] = np.nan
    return df


def _parts(df: pd.DataFrame, folder: Path, k: int = 3) -> Path:
    """``df`` as a folder of ``k`` Parquet files (Spark reads them as ``k`` partitions)."""
    folder.mkdir()
    for i, part in enumerate(np.array_split(np.arange(len(df)), k)):
        df.iloc[part].to_parquet(folder / f"part{i}.parquet")
    return folder


def _same(got, want) -> None:
    """Spark's fit equals DuckDB's: criterion at fixed theta, optimum, solution."""
    for theta in (want.theta, want.theta * 1.3 + 0.01):
        assert got.deviance(theta) == pytest.approx(want.deviance(theta), rel=RTOL)
    assert got.objective == pytest.approx(want.objective, rel=RTOL)
    assert got.x_names == want.x_names
    assert got.nobs == want.nobs and got.ngroups == want.ngroups
    assert got.messages == want.messages
    se = want.std_errors
    assert np.all(np.abs(got.beta - want.beta) < 1e-3 * se)
    np.testing.assert_allclose(
        got.theta, want.theta, rtol=1e-3, atol=1e-4 * np.abs(want.theta).max()
    )
    sol, ref = got.deviance.solve(want.theta), want.deviance.solve(want.theta)
    np.testing.assert_allclose(sol.beta, ref.beta, rtol=1e-9, atol=1e-9 * se.max())
    for b, b_ref in zip(sol.b, ref.b, strict=True):
        np.testing.assert_allclose(b, b_ref, rtol=1e-7, atol=1e-9 * np.abs(b_ref).max())
    for g, frame in want.ranef.items():
        assert list(got.ranef[g].index) == list(frame.index)
        assert list(got.ranef[g].columns) == list(frame.columns)


MODELS = [
    "y ~ poly(time, 2) * arm + (1 | hospital/patient)",  # orthogonal poly: power sums
    "y ~ time + arm + site + (time | patient) + (1 | hospital)",
    "y ~ ns(time, 3) + scale(time / 30) + arm + (1 | patient) + (1 | pnum)",
]


@pytest.mark.parametrize("formula", MODELS)
def test_parquet_folder_matches_duckdb(spark, tmp_path, formula):
    folder = _parts(_trial(), tmp_path / "parts")
    want = fit_lmm_stream(formula, folder, engine="duckdb")
    seen = []
    got = fit_lmm(
        formula,
        folder,
        engine="spark",
        spark=spark,
        batch_size=100,
        progress=lambda *a: seen.append(a),
    )
    _same(got, want)
    assert got.timings["partitions"] >= 2  # blocks summed over partitions on the driver
    assert seen[-1][:2] == (want.nobs, want.nobs)


def test_sleepstudy_from_spark_and_pandas_frames(spark):
    df = load_example("sleepstudy")[0]
    formula = "Reaction ~ Days + (Days | Subject)"
    want = fit_lmm(formula, df)
    got = fit_lmm(formula, spark.createDataFrame(df).repartition(2))  # Spark: from the frame
    assert got.timings["partitions"] == 2
    _same(got, fit_lmm_stream(formula, pa.Table.from_pandas(df), engine="duckdb"))
    assert got.objective == pytest.approx(want.objective, rel=RTOL)
    from_pandas = fit_lmm(formula, df, engine="spark", spark=spark)
    assert from_pandas.objective == pytest.approx(want.objective, rel=RTOL)
    np.testing.assert_allclose(
        np.sort(got.residual_values()), np.sort(want.residuals), rtol=1e-6, atol=1e-6
    )


def test_csv_with_missing_values_and_errors_from_the_executors(spark, tmp_path):
    df = _trial()
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False)  # missing values as empty fields
    formula = "y ~ time * arm + (time | patient) + (1 | hospital)"
    _same(
        fit_lmm(formula, path, engine="spark", spark=spark),
        fit_lmm(formula, path, engine="duckdb"),
    )
    df.loc[5, "time"] = 0.0  # log(0) in pass 2: the executor's error, raised as DuckDB's
    parquet = tmp_path / "d.parquet"
    df.to_parquet(parquet)
    with pytest.raises(DataError, match="not a finite number in 1 row"):
        fit_lmm("y ~ log(time) + (1 | patient)", parquet, engine="duckdb")
    with pytest.raises(DataError, match="not a finite number in 1 row"):
        fit_lmm("y ~ log(time) + (1 | patient)", parquet, engine="spark", spark=spark)


def test_packed_blocks_sum_to_the_blocks_of_every_row(tmp_path):
    """The wire format (levels seen, nonzero entries) loses nothing (no Spark needed)."""
    df = _trial()
    path = tmp_path / "d.parquet"
    df.to_parquet(path)
    formula = "y ~ time + arm + (time | patient) + (1 | hospital)"
    eng = DuckDBEngine(as_source(path))
    plan = plan_stream(formula, eng)
    acc, whole = BlockSum(), None
    for frame in eng.batches(plan.columns, plan.where, 45):
        part = batch_blocks(plan, frame)
        whole = part if whole is None else whole + part
        packed = pack_blocks(part)
        assert packed["seen"].size < plan.reterms[0].n_levels  # only the patients of the batch
        acc.add(packed)
    got = acc.total()
    assert acc.parts > 3 and got.cp.n == whole.cp.n == plan.n_used
    for name in ("a11_flat", "a1xy", "axy", "a22", "a2xy"):
        np.testing.assert_allclose(getattr(got.cp, name), getattr(whole.cp, name), rtol=1e-12)
    np.testing.assert_allclose(got.cp.a21.toarray(), whole.cp.a21.toarray(), rtol=1e-12)
    np.testing.assert_allclose(np.abs(got.r), np.abs(whole.r), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize(
    "formula",
    [
        "FEV1 ~ RACE + ARMCD * AVISIT + us(AVISIT | USUBJID)",
        "FEV1 ~ ARMCD * AVISIT + sp_exp(VISITN | ARMCD / USUBJID)",
    ],
)
def test_mmrm_on_spark_matches_duckdb_and_memory(spark, fev, tmp_path, formula):
    """Visit covariance structures: rows partitioned and sorted by subject on Spark, the
    partitions' pattern sums merged on the driver; the same fit as DuckDB and in memory."""
    df = fev
    folder = _parts(df.sample(frac=1.0, random_state=1), tmp_path / "parts")
    want = fit_lmm_stream(formula, folder, engine="duckdb", batch_size=64)
    got = fit_lmm(formula, folder, engine="spark", spark=spark, batch_size=64)
    mem = fit_lmm(formula, df)
    for other in (want, mem):
        assert got.objective == pytest.approx(other.objective, rel=RTOL)
        np.testing.assert_allclose(got.beta, other.beta, rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(got.theta, other.theta, rtol=1e-7, atol=1e-7)
        assert (got.nobs, got.n_subjects) == (other.nobs, other.n_subjects)
    # an empirical covariance streams the rows again: partitions of whole patients
    np.testing.assert_allclose(
        got.fixef_table(vcov_method="CR2").to_numpy(),
        mem.fixef_table(vcov_method="CR2").to_numpy(),
        rtol=1e-5,
    )
