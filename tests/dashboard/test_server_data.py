"""The server data folder: what is listed, what is refused (hostile names, links out of the
folder), the limits-file setting, and the streamed fit as job work."""

from __future__ import annotations

import os

import duckdb
import numpy as np
import pandas as pd
import pytest

from dashboard.analysis import server_data as sd
from dashboard.analysis.records import GAUSSIAN
from dashboard.state import limits, work
from lmm_core import DataError, fit_lmm
from lmm_core.stream import Source


def _visits(n_pat: int = 30, visits: int = 4, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    pat = np.repeat(np.arange(n_pat), visits)
    time = np.tile(np.arange(visits, dtype=float), n_pat)
    b = rng.normal(0, 1, n_pat)
    y = 5 + 0.5 * time + b[pat] + rng.normal(0, 0.5, pat.size)
    return pd.DataFrame({"patient": [f"p{i:03d}" for i in pat], "time": time, "y": y})


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    df = _visits()
    df.to_parquet(root / "visits.parquet")
    df.to_csv(root / "visits.csv", index=False)
    con = duckdb.connect(str(root / "store.duckdb"))
    con.register("frame", df)
    con.execute("CREATE TABLE visits AS SELECT * FROM frame; CREATE TABLE empty (a INTEGER)")
    con.close()
    (root / "parts").mkdir()
    df.iloc[:60].to_parquet(root / "parts" / "a.parquet")
    (root / "parts" / "sub").mkdir()
    df.iloc[60:].to_parquet(root / "parts" / "sub" / "b.parquet")
    (root / "parts" / "_SUCCESS").write_text("")
    # what must not be offered
    outside = tmp_path / "secret"
    outside.mkdir()
    df.to_parquet(outside / "secret.parquet")
    (outside / "passwd.csv").write_text("user,hash\nroot,x\n")
    os.symlink(outside / "secret.parquet", root / "link.parquet")
    os.symlink(outside, root / "linked_folder")
    (root / "mixed").mkdir()
    df.to_parquet(root / "mixed" / "ok.parquet")
    os.symlink(outside / "secret.parquet", root / "mixed" / "evil.parquet")
    (root / ".hidden.parquet").write_bytes((root / "visits.parquet").read_bytes())
    (root / "notes.txt").write_text("hello")
    (root / "empty_folder").mkdir()
    (root / "broken.parquet").write_text("not parquet")
    return root


def test_the_folder_lists_only_what_is_offered(folder):
    files = sd.list_folder(folder)
    labels = [f.label for f in files]
    assert labels == [
        "broken.parquet",
        "parts",
        "store.duckdb: empty",
        "store.duckdb: visits",
        "visits.csv",
        "visits.parquet",
    ]
    by = {f.label: f for f in files}
    n = len(_visits())
    assert by["visits.parquet"].rows == by["visits.csv"].rows == by["parts"].rows == n
    assert by["store.duckdb: visits"].rows == n and by["store.duckdb: empty"].rows == 0
    assert by["parts"].kind == "parquet folder"
    assert by["visits.parquet"].size_bytes == (folder / "visits.parquet").stat().st_size
    assert by["broken.parquet"].rows is None and "Cannot read" in by["broken.parquet"].problem


def test_a_large_csv_is_listed_without_counting(folder, monkeypatch):
    monkeypatch.setattr(sd, "CSV_COUNT_MAX_BYTES", 10)
    by = {f.label: f for f in sd.list_folder(folder)}
    assert by["visits.csv"].rows is None and by["visits.csv"].problem == ""
    assert by["visits.parquet"].rows == len(_visits())


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("../secret/secret.parquet", "a path, not a name"),
        ("/etc/passwd", "a path, not a name"),
        ("..", "relative name"),
        (".", "relative name"),
        ("", "relative name"),
        ("parts/a.parquet", "a path, not a name"),
        ("..\\secret.parquet", "a path, not a name"),
        ("visits.parquet\x00.csv", "a path, not a name"),
        (".hidden.parquet", "hidden"),
        ("link.parquet", "is a link"),
        ("linked_folder", "is a link"),
        ("mixed", "contains a link"),
        ("notes.txt", "not a .parquet, .csv or .duckdb"),
        ("empty_folder", "not a folder of Parquet files"),
        ("gone.parquet", "no longer in the data folder"),
    ],
)
def test_hostile_or_unlisted_names_are_refused(folder, name, words):
    with pytest.raises(DataError, match=words):
        sd.resolve(folder, name)
    with pytest.raises(DataError):
        sd.source_of(folder, name)


def test_listed_names_resolve_to_sources(folder):
    assert sd.source_of(folder, "visits.parquet") == Source.parquet(folder / "visits.parquet")
    assert sd.source_of(folder, "visits.csv").kind == "csv"
    assert sd.source_of(folder, "parts") == Source.parquet(folder / "parts")
    assert sd.source_of(folder, "store.duckdb", "visits").table == "visits"
    with pytest.raises(DataError, match="no table"):
        sd.source_of(folder, "store.duckdb", "other")
    with pytest.raises(DataError, match="no table"):
        sd.source_of(folder, "store.duckdb")


def test_a_missing_or_relative_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        sd.list_folder(tmp_path / "absent")
    with pytest.raises(DataError, match="absolute path"):
        sd.list_folder("data")


def test_the_signature_changes_with_the_files(folder):
    before = sd.folder_signature(folder)
    _visits(seed=2).to_parquet(folder / "more.parquet")
    assert sd.folder_signature(folder) != before


def test_data_folder_in_the_limits_file():
    assert limits.DEFAULTS.data_folder is None
    got = limits.parse('[lmm_explorer]\ndata_folder = "/srv/data"\n')
    assert got == limits.Limits(data_folder="/srv/data")
    for bad in ('"data"', "3", '""'):
        with pytest.raises(limits.LimitsError, match="data_folder must be an absolute path"):
            limits.parse(f"[lmm_explorer]\ndata_folder = {bad}\n", source="limits.toml")


def test_the_streamed_fit_work_reports_rows_and_returns_the_sample_view(folder):
    df = _visits()
    sample = df[df["patient"].isin(["p001", "p007"])].reset_index(drop=True)
    reports = []  # report(fraction, text)
    formula = "y ~ time + (time | patient)"
    result = work.stream_fit(
        formula,
        str(folder),
        "parts",
        None,
        True,
        GAUSSIAN,
        sample,
        len(df),
        0.0,
        lambda *a: reports.append(a),
    )
    ref = fit_lmm(formula, df)
    assert result.nobs == len(df) and result.is_sample_view
    assert result.objective == pytest.approx(ref.objective, rel=1e-10)
    assert reports[0] == (0.0, "Pass 1: levels, counts and missing values (SQL)")
    assert reports[-1][0] == 1.0 and reports[-1][1].startswith(f"{len(df):,} of {len(df):,} rows")
    assert "rows/s; estimating the model" in reports[-1][1]
    with pytest.raises(DataError, match="values other than 0 and 1"):  # a GLMM now streams
        work.stream_fit(formula, str(folder), "parts", None, True, "binomial", sample, 1, 0, print)
    with pytest.raises(DataError, match="is a link"):
        work.stream_fit(
            formula, str(folder), "link.parquet", None, True, GAUSSIAN, sample, 1, 0, print
        )
