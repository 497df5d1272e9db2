"""What the app needs of a streamed fit: it pickles, it stops cleanly when the progress
callback raises, whole groups can be sampled reproducibly, some groups' fitted values can be
streamed, the fit can be seen on a sample, and refitted by ML from its blocks."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from lmm_core import fit_lmm, lrt
from lmm_core.errors import DataError, ModelError
from lmm_core.stream import Source, fit_lmm_stream
from lmm_core.stream.results import StreamedLMMResult
from lmm_core.stream.sources import RowStream, count_rows, database_tables, sample_groups

FORMULA = "y ~ time * arm + (time | patient) + (1 | hospital)"


def _trial(seed: int = 11, n_hosp: int = 5, per: int = 12, visits: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for h in range(n_hosp):
        hosp = rng.normal(0, 1.0)
        for i in range(per):
            arm = ("control", "treated")[i % 2]
            bi, bs = rng.normal(0, 2), rng.normal(0, 0.4)
            for v in range(visits):
                t = float(v)
                y = 10 + hosp + bi + (0.5 + bs) * t - 0.3 * t * (arm == "treated")
                rows.append((f"H{h}", f"p{h}_{i:02d}", arm, t, y + rng.normal(0, 0.7)))
    df = pd.DataFrame(rows, columns=["hospital", "patient", "arm", "time", "y"])
    df.loc[5, "y"] = np.nan  # a row the fit leaves out
    return df


@pytest.fixture(scope="module")
def parquet(tmp_path_factory):
    path = tmp_path_factory.mktemp("stream_app") / "trial.parquet"
    _trial().to_parquet(path)
    return path


@pytest.fixture(scope="module")
def fitted(parquet):
    return fit_lmm_stream(FORMULA, parquet, batch_size=50)


def test_a_streamed_fit_pickles_and_streams_its_rows_after(fitted):
    assert isinstance(fitted.rows, RowStream)  # the closure became a picklable value
    copy = pickle.loads(pickle.dumps(fitted))
    assert isinstance(copy, StreamedLMMResult)
    assert copy.objective == fitted.objective
    np.testing.assert_array_equal(copy.beta, fitted.beta)
    np.testing.assert_array_equal(copy.residual_values(), fitted.residual_values())
    ref = fit_lmm(FORMULA, _trial())
    np.testing.assert_allclose(copy.residual_values(), ref.residuals, rtol=1e-6, atol=1e-5)


def test_a_raising_progress_stops_the_fit_and_the_next_fit_works(parquet):
    class Stop(Exception):
        pass

    calls = []

    def progress(done, total, rate):
        calls.append(done)
        if len(calls) == 2:
            raise Stop

    with pytest.raises(Stop):
        fit_lmm(FORMULA, parquet, batch_size=40, progress=progress)
    assert len(calls) == 2  # stopped at once, no batch read after the raise
    again = fit_lmm(FORMULA, parquet, batch_size=40)  # nothing left locked or half-done
    assert again.nobs == len(_trial()) - 1


def test_sample_groups_gives_whole_groups_reproducibly(parquet):
    df = _trial()
    one = sample_groups(parquet, "patient", 7, seed=3)
    two = sample_groups(Source.parquet(parquet), "patient", 7, seed=3, threads=1)
    other = sample_groups(parquet, "patient", 7, seed=4)
    pd.testing.assert_frame_equal(one, two)
    chosen = sorted(one["patient"].unique())
    assert len(chosen) == 7 and chosen != sorted(other["patient"].unique())
    # every row of each chosen patient, in the table's order
    expected = df[df["patient"].isin(chosen)].reset_index(drop=True)
    pd.testing.assert_frame_equal(one, expected, check_dtype=False)
    assert one.attrs == {
        "group": "patient",
        "n_groups": 60,
        "n_sampled": 7,
        "seed": 3,
        "n_rows": len(df),
    }
    # the draw is numpy's: the same positions of the sorted ids
    ids = np.sort(df["patient"].unique())
    pos = np.sort(np.random.default_rng(3).choice(len(ids), 7, replace=False))
    assert chosen == list(ids[pos])


def test_sample_groups_more_than_there_are_and_bad_input(parquet):
    every = sample_groups(parquet, "hospital", 50, seed=1)
    assert len(every) == len(_trial()) and every.attrs["n_sampled"] == 5
    with pytest.raises(DataError, match="No column `patients`"):
        sample_groups(parquet, "patients", 3, seed=1)
    with pytest.raises(DataError, match="at least one"):
        sample_groups(parquet, "patient", 0, seed=1)


def test_fitted_values_of_some_patients(fitted):
    ref = fit_lmm(FORMULA, _trial())
    used = _trial().iloc[ref.design.rows].reset_index(drop=True)
    want = ["p0_00", "p3_07"]  # p0_00 holds the row left out
    got = fitted.fitted_of("patient", want, columns=("patient", "time"))
    mask = used["patient"].isin(want).to_numpy()
    assert list(got["patient"]) == list(used.loc[mask, "patient"])
    np.testing.assert_allclose(got["fitted"], ref.fitted[mask], rtol=1e-6)
    np.testing.assert_allclose(got["residual"], ref.residuals[mask], rtol=1e-5, atol=1e-6)
    assert fitted.fitted_of("patient", ["nobody"]).empty
    with pytest.raises(ModelError, match="not a column the model uses"):
        fitted.fitted_of("sex", ["F"])


def test_the_fit_seen_on_a_sample(parquet, fitted):
    ref = fit_lmm(FORMULA, _trial())
    sample = sample_groups(parquet, "patient", 9, seed=5)
    assert sample["y"].isna().any()  # the sample holds the row the fit leaves out
    view = fitted.on_sample(sample)
    assert view.is_sample_view and not fitted.is_sample_view
    # the estimates of the whole fit
    assert view.nobs == ref.nobs and view.ngroups == ref.ngroups
    np.testing.assert_array_equal(view.beta, fitted.beta)
    # the sample's rows, their fitted values and residuals as the in-memory fit's
    df = _trial()
    key = list(zip(df["patient"], df["time"], strict=True))
    where = [key.index(k) for k in zip(sample["patient"], sample["time"], strict=True)]
    rows_used = sample["y"].notna().to_numpy()
    np.testing.assert_array_equal(view.design.rows, np.flatnonzero(rows_used))
    idx = np.searchsorted(ref.design.rows, np.array(where)[rows_used])
    np.testing.assert_allclose(view.fitted, ref.fitted[idx], rtol=1e-6)
    np.testing.assert_allclose(view.residuals, ref.residuals[idx], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(view.y, ref.y[idx])
    # random effects of the sampled patients only, the same modes
    assert sorted(view.ranef["patient"].index) == sorted(sample["patient"].unique())
    pd.testing.assert_frame_equal(
        view.ranef["patient"], ref.ranef["patient"].loc[view.ranef["patient"].index], rtol=1e-4
    )
    # predictions: a sampled patient with its curve, another one at the population's
    new = pd.DataFrame(
        {"patient": [sample["patient"].iloc[0], "p9_99"], "hospital": ["H0", "H0"],
         "arm": ["control", "control"], "time": [2.0, 2.0]}
    )  # fmt: skip
    np.testing.assert_allclose(view.predict(new), ref.predict(new), rtol=1e-6)
    np.testing.assert_allclose(view.predict(), view.fitted)
    assert pickle.loads(pickle.dumps(view)).sample.equals(view.sample)


def test_ml_refit_from_the_blocks_and_lrt(parquet, fitted):
    df = _trial()
    ml = fitted.refit_ml()
    ref_ml = fit_lmm(FORMULA, df, reml=False)
    assert not ml.reml
    assert ml.objective == pytest.approx(ref_ml.objective, rel=1e-8)
    np.testing.assert_allclose(ml.beta, ref_ml.beta, rtol=1e-5)
    simple = "y ~ time + arm + (time | patient) + (1 | hospital)"
    simpler = fit_lmm_stream(simple, parquet)
    sample = sample_groups(parquet, "patient", 6, seed=2)
    table = lrt(simpler.on_sample(sample), fitted.on_sample(sample))
    ref = lrt(fit_lmm(simple, df), fit_lmm(FORMULA, df))
    np.testing.assert_allclose(table["Chisq"].iloc[1], ref["Chisq"].iloc[1], rtol=1e-5)
    np.testing.assert_allclose(table["deviance"], ref["deviance"], rtol=1e-8)


def test_metadata_for_a_file_list(tmp_path, parquet):
    import duckdb

    assert count_rows(parquet) == len(_trial())
    csv = tmp_path / "t.csv"
    _trial().to_csv(csv, index=False)
    assert count_rows(csv) == len(_trial())
    db = tmp_path / "d.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE visits AS SELECT 1 AS a; CREATE TABLE b_other AS SELECT 2 AS a")
    con.close()
    assert database_tables(db) == ["b_other", "visits"]
    assert count_rows(Source.duckdb(db, "visits")) == 1
    bad = tmp_path / "x.duckdb"
    bad.write_text("not a database")
    with pytest.raises(DataError, match="Cannot open"):
        database_tables(bad)
