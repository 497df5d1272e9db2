"""Streamed GLMMs (lmm_core.stream.glmm): the same fit as the in-memory fit_glmm, from
Parquet and from a DuckDB table, with the cost said before fitting."""

from __future__ import annotations

import pickle

import duckdb
import numpy as np
import pandas as pd
import pytest

from lmm_core import fit_glmm as fit_glmm_any  # sends a source to the stream
from lmm_core.errors import DataError, ModelError
from lmm_core.glmm import fit_glmm
from lmm_core.stream import Source, StreamedGLMMResult, fit_glmm_stream, fit_lmm_stream


def _binary(seed: int = 3, m: int = 150, k: int = 8) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    pat = np.repeat(np.arange(m), k)
    t = np.tile(np.arange(k), m) / 2.0
    arm = np.repeat(rng.integers(0, 2, m), k)
    b0, b1 = rng.normal(0, 1.0, m), rng.normal(0, 0.4, m)
    eta = -0.5 + 0.3 * t - 0.4 * arm + b0[pat] + b1[pat] * t
    y = (rng.random(m * k) < 1 / (1 + np.exp(-eta))).astype(float)
    return pd.DataFrame({"patient": [f"p{i:03d}" for i in pat], "time": t, "arm": arm, "y": y})


def _counts(seed: int = 5, m: int = 120, k: int = 6, sites: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    pat = np.repeat(np.arange(m), k)
    site = pat % sites
    t = np.tile(np.arange(k), m).astype(float)
    exposure = rng.uniform(0.5, 2.0, m * k)
    eta = 0.2 + 0.1 * t + rng.normal(0, 0.5, m)[pat] + rng.normal(0, 0.3, sites)[site]
    y = rng.poisson(exposure * np.exp(eta)).astype(float)
    return pd.DataFrame(
        {"patient": pat, "site": [f"s{i}" for i in site], "time": t, "exposure": exposure, "y": y}
    )


def _same(stream, memory, beta_rtol=1e-5, theta_rtol=1e-5) -> None:
    """The streamed fit is the in-memory one: -2 log L and lme4's deviance to 1e-8
    (relative), beta and theta to ~1e-5 (theta relative to its largest element), the
    conditional modes, SEs (finite-difference vs analytic Hessian) to 1e-2."""
    assert stream.objective == pytest.approx(memory.objective, rel=1e-8)
    assert stream.lme4_deviance == pytest.approx(memory.lme4_deviance, rel=1e-8)
    assert stream.deviance == pytest.approx(memory.deviance, rel=1e-5)
    np.testing.assert_allclose(stream.beta, memory.beta, rtol=beta_rtol)
    tol = theta_rtol * np.max(np.abs(memory.theta))
    np.testing.assert_allclose(stream.theta, memory.theta, rtol=0, atol=tol)
    np.testing.assert_allclose(stream.std_errors, memory.std_errors, rtol=1e-2)
    assert stream.x_names == memory.x_names
    assert stream.nobs == memory.nobs
    assert stream.aic == pytest.approx(memory.aic, rel=1e-8)
    assert stream.bic == pytest.approx(memory.bic, rel=1e-8)
    for g, table in memory.ranef.items():
        got = stream.ranef[g].loc[table.index]
        scale = np.max(np.abs(table.to_numpy()))
        np.testing.assert_allclose(got.to_numpy(), table.to_numpy(), rtol=0, atol=1e-4 * scale)


@pytest.fixture(scope="module")
def binary(tmp_path_factory):
    df = _binary()
    path = tmp_path_factory.mktemp("glmm") / "visits.parquet"
    df.to_parquet(path)
    return df, str(path)


def test_binary_slope_parquet_equals_in_memory(binary):
    df, path = binary
    form = "y ~ time + arm + (time | patient)"
    said: list[str] = []

    def progress(done, total, rate, message=None):
        assert 0 < done <= total == len(df)
        if message:
            said.append(message)

    stream = fit_glmm_stream(form, path, progress=progress, batch_size=500)
    memory = fit_glmm(form, df)
    _same(stream, memory)
    assert isinstance(stream, StreamedGLMMResult)
    assert said[0].startswith(f"A GLMM needs one pass over the {len(df):,} rows per PIRLS")
    assert "passes, about" in said[0] and "s per pass" in said[0]
    assert said[0].rstrip(".") in stream.messages
    assert f"{stream.passes} passes over the {len(df):,} rows were made" in said[-1]
    assert stream.passes > 20
    back = pickle.loads(pickle.dumps(stream))
    np.testing.assert_array_equal(back.beta, stream.beta)
    np.testing.assert_allclose(stream.predict(df.head(20)), memory.predict(df.head(20)), rtol=1e-4)


def test_binary_duckdb_table_and_rescaled_time(binary, tmp_path):
    df, _ = binary
    db = tmp_path / "registry.duckdb"
    scaled = df.assign(time=df["time"] * 1000.0)
    with duckdb.connect(str(db)) as con:
        con.register("d", df)
        con.register("s", scaled)
        con.execute("CREATE TABLE visits AS SELECT * FROM d")
        con.execute("CREATE TABLE visits_ms AS SELECT * FROM s")
    form = "y ~ time + arm + (1 | patient)"
    memory = fit_glmm(form, df)
    stream = fit_glmm_any(form, Source.duckdb(db, "visits"), family="binomial")
    _same(stream, memory)
    rescaled = fit_glmm_stream(form, Source.duckdb(db, "visits_ms"))
    assert rescaled.objective == pytest.approx(memory.objective, rel=1e-8)
    assert rescaled.beta[1] * 1000 == pytest.approx(memory.beta[1], rel=1e-5)
    # a DataFrame with a stream option is streamed too (through an Arrow table)
    via = fit_glmm_any(form, df, family="binomial", batch_size=700)
    assert isinstance(via, StreamedGLMMResult)
    assert via.objective == pytest.approx(memory.objective, rel=1e-8)


def test_poisson_offset_two_factors(tmp_path):
    df = _counts()
    path = tmp_path / "counts.parquet"
    df.to_parquet(path)
    form = "y ~ time + offset(log(exposure)) + (1 | patient) + (1 | site)"
    memory = fit_glmm(form, df, family="poisson")
    stream = fit_glmm_stream(form, str(path), family="poisson", batch_size=300)
    _same(stream, memory)
    assert list(stream.ngroups) == ["patient", "site"]


def test_cbind_binomial(tmp_path):
    rng = np.random.default_rng(11)
    m, k = 60, 5
    g = np.repeat(np.arange(m), k)
    n = rng.integers(1, 9, m * k)
    p = 1 / (1 + np.exp(-(-0.3 + rng.normal(0, 0.8, m)[g])))
    events = rng.binomial(n, p)
    x = rng.normal(size=m * k)
    df = pd.DataFrame({"g": g, "x": x, "events": events, "n": n})
    path = tmp_path / "trials.parquet"
    df.to_parquet(path)
    form = "cbind(events, n - events) ~ x + (1 | g)"
    _same(fit_glmm_stream(form, str(path)), fit_glmm(form, df))


def test_refusals(binary):
    df, path = binary
    with pytest.raises(ModelError, match='engine="duckdb"'):
        fit_glmm_stream("y ~ time + (1 | patient)", path, engine="spark")
    with pytest.raises(ModelError, match="Laplace"):
        fit_glmm_any("y ~ time + (1 | patient)", path, nagq=5)
    with pytest.raises(ModelError, match="fit_glmm"):
        fit_lmm_stream("cbind(y, 1 - y) ~ time + (1 | patient)", path)
    with pytest.raises(DataError, match="values other than 0 and 1"):
        fit_glmm_stream("time ~ arm + (1 | patient)", path)
    with pytest.raises(DataError, match="whole numbers"):
        fit_glmm_stream("time ~ arm + (1 | patient)", path, family="poisson")
