"""Streamed fits (DuckDB) give the in-memory fit's numbers, from every kind of source."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from lmm_core import fit_lmm
from lmm_core.datasets import load_example
from lmm_core.design.build import build_design
from lmm_core.errors import ModelError
from lmm_core.model.deviance import ProfiledDeviance
from lmm_core.stream import Source, fit_lmm_stream

RTOL = 1e-10


def _trial(seed: int = 7, n_hosp: int = 6, per: int = 8, visits: int = 5) -> pd.DataFrame:
    """A small nested trial: patients in hospitals, visits in time (months x 30: days),
    outcome x 1000, a 3-level factor whose last level appears only in the last rows."""
    rng = np.random.default_rng(seed)
    rows = []
    for h in range(n_hosp):
        for i in range(per):
            pid = f"p{h:02d}{i:02d}"
            arm = ("control", "treated")[i % 2]
            bi, bs = rng.normal(0, 2), rng.normal(0, 0.5)
            for v in range(visits):
                t = 30.0 * v + rng.uniform(0, 5)
                y = 120 + 0.1 * h + bi + (0.05 + bs / 30) * t - 0.02 * t * (arm == "treated")
                rows.append((f"H{h}", pid, i, arm, t, 1000.0 * (y + rng.normal(0, 1.5)), v % 3))
    df = pd.DataFrame(rows, columns=["hospital", "patient", "pnum", "arm", "time", "y", "site"])
    df["site"] = np.where(np.arange(len(df)) > len(df) - 40, "s" + df["site"].astype(str), "s0")
    df.loc[df.index[-40:], "site"] = ["s1", "s2"] * 20
    df.loc[[3, 17], "y"] = np.nan
    df.loc[25, "time"] = np.nan
    return df


MODELS = [
    ("sleep", "Reaction ~ Days + (Days | Subject)"),
    ("sleep", "Reaction ~ Days + (Days || Subject)"),
    ("trial", "y ~ time * arm + (1 | hospital/patient)"),
    ("trial", "y ~ time + arm + site + (time | patient) + (1 | hospital)"),
    ("trial", "y ~ ns(time, 3) + arm + (1 | patient) + (1 | pnum)"),
    ("trial", "y ~ poly(time, 2) * arm + (poly(time, 1) | patient)"),  # orthogonal: moments
]


def _data(name: str) -> pd.DataFrame:
    return load_example("sleepstudy")[0] if name == "sleep" else _trial()


def _check_same(formula: str, df: pd.DataFrame, res, reml: bool = True) -> None:
    ref = fit_lmm(formula, df, reml=reml)
    d = build_design(formula, df)
    dev = ProfiledDeviance(d.X, d.y, d.reterms, reml)
    for theta in (ref.theta, ref.theta * 1.3 + 0.01):
        assert res.deviance(theta) == pytest.approx(dev(theta), rel=RTOL)
    assert res.objective == pytest.approx(ref.objective, rel=RTOL)
    assert res.x_names == ref.x_names
    assert res.nobs == ref.nobs and res.ngroups == ref.ngroups
    assert res.messages == ref.messages
    # the same optimum: estimates within a thousandth of their standard errors
    se = ref.std_errors
    assert np.all(np.abs(res.beta - ref.beta) < 1e-3 * se)
    np.testing.assert_allclose(res.theta, ref.theta, rtol=1e-3, atol=1e-4 * np.abs(ref.theta).max())
    # identical solutions at the same theta
    sol, ref_sol = res.deviance.solve(ref.theta), dev.solve(ref.theta)
    np.testing.assert_allclose(sol.beta, ref_sol.beta, rtol=1e-9, atol=1e-9 * se.max())
    np.testing.assert_allclose(sol.vcov_beta, ref_sol.vcov_beta, rtol=1e-8)
    for got, want in zip(sol.b, ref_sol.b, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-9 * np.abs(want).max())
    for g, frame in ref.ranef.items():
        assert list(res.ranef[g].index) == list(frame.index)
        assert list(res.ranef[g].columns) == list(frame.columns)


@pytest.mark.parametrize(("data", "formula"), MODELS)
def test_parquet_matches_in_memory(tmp_path, data, formula):
    df = _data(data)
    path = tmp_path / "d.parquet"
    df.to_parquet(path)
    res = fit_lmm_stream(formula, path, batch_size=37)
    _check_same(formula, df, res)


@pytest.mark.parametrize("kind", ["csv", "duckdb", "arrow", "folder"])
def test_every_source_matches(tmp_path, kind):
    df = _trial()
    formula = "y ~ time * arm + (time | patient) + (1 | hospital)"
    if kind == "csv":
        source = tmp_path / "d.csv"
        df.to_csv(source, index=False)
    elif kind == "duckdb":
        db = str(tmp_path / "d.duckdb")
        con = duckdb.connect(db)
        con.register("frame", df)
        con.execute("CREATE TABLE visits AS SELECT * FROM frame")
        con.close()
        source = Source.duckdb(db, "visits")
    elif kind == "arrow":
        source = pa.Table.from_pandas(df, preserve_index=False)
    else:
        (tmp_path / "parts").mkdir()
        for k in range(3):
            part = df.iloc[k * 80 : (k + 1) * 80 if k < 2 else None]
            part.to_parquet(tmp_path / "parts" / f"part{k}.parquet")
        source = tmp_path / "parts"
    res = fit_lmm(formula, source, batch_size=50)
    _check_same(formula, df, res)


def test_ml_fit_and_satterthwaite_and_rows(tmp_path):
    df = _trial()
    formula = "y ~ time * arm + (time | patient)"
    path = tmp_path / "d.parquet"
    df.to_parquet(path)
    seen = []
    res = fit_lmm(formula, path, reml=False, batch_size=60, progress=lambda *a: seen.append(a))
    _check_same(formula, df, res, reml=False)
    ref = fit_lmm(formula, df, reml=False)
    assert [s[0] for s in seen] == sorted(s[0] for s in seen) and seen[-1][0] == ref.nobs
    assert len(seen) > 3
    np.testing.assert_allclose(res.fixef_table()["df"], ref.fixef_table()["df"], rtol=1e-3)
    np.testing.assert_allclose(res.residual_values(), ref.residuals, rtol=1e-6, atol=1e-3)
    assert "Scaled residuals: not held" in res.summary_text()


def test_too_large_model_is_refused_with_its_estimate(tmp_path):
    rng = np.random.default_rng(1)
    n = 40_000  # a crossed factor with 4,000 levels: q2 = 4,000, dense q2 x q2 blocks
    df = pd.DataFrame(
        {"y": rng.normal(size=n), "a": rng.permutation(n) % 5000, "b": rng.permutation(n) % 4000}
    )
    path = tmp_path / "d.parquet"
    df.to_parquet(path)
    with pytest.raises(
        ModelError, match=r"about 0\.\d GiB .* limit of 0\.01 GiB: .*`b` 4,000 levels"
    ):
        fit_lmm("y ~ 1 + (1 | a) + (1 | b)", path, max_memory_gib=0.01)


def test_glmm_and_mmrm_are_refused_clearly(tmp_path):
    df = _trial().assign(s=1, f=2)
    path = tmp_path / "d.parquet"
    df.to_parquet(path)
    with pytest.raises(ModelError, match="pass over the rows per iteration"):
        fit_lmm("cbind(s, f) ~ time + (1 | patient)", path)


def test_orthogonal_polynomial_coefficients_from_moments_equal_r_qr():
    """``poly()``'s coefficients from the power sums of pass 1 equal the QR of the values."""
    from lmm_core.design.splines import _poly_coefficients
    from lmm_core.stream.plan import poly_from_moments

    rng = np.random.default_rng(1)
    for scale in (1e-3, 1.0, 1e3):  # units of time
        x = np.round(rng.uniform(0, 10, 2000), 3) * scale
        for degree in (1, 2, 3, 4):
            c = x.mean()
            moments = np.array([((x - c) ** k).sum() for k in range(2 * degree + 2)])
            alpha, norm2 = poly_from_moments((c, moments))
            alpha_qr, norm2_qr = _poly_coefficients(x, degree)
            np.testing.assert_allclose(alpha[:degree], alpha_qr, rtol=1e-12, atol=1e-13 * scale)
            np.testing.assert_allclose(norm2, norm2_qr, rtol=1e-11)


def test_a_dataframe_given_stream_options_is_streamed():
    data = _data("sleep")
    formula = "Reaction ~ Days + (Days | Subject)"
    streamed = fit_lmm(formula, data, batch_size=50)  # batches of 50 rows through DuckDB
    memory = fit_lmm(formula, data)
    assert type(streamed).__name__ == "StreamedLMMResult"
    assert streamed.objective == pytest.approx(memory.objective, rel=1e-10)
