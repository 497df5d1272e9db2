"""Fixtures of the streamed-fit tests: one local Spark session for the package, and the
mmrm package's FEV trial (as a DataFrame, and as a Parquet file with its rows shuffled in
small row groups, so that batches cut patients)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
FEV = ROOT / "tests" / "fixtures" / "mmrm" / "data" / "fev_data.csv"


@pytest.fixture(scope="package")
def spark():
    """``local[2]``, no UI, small driver memory; started once for tests/stream (its start
    takes seconds). Without Java or pyspark the tests are skipped on a developer machine and
    fail in CI (``LMM_REQUIRE_BROWSER=1``, set by ``.ci/run``, which installs Java)."""
    missing = [
        what
        for what, ok in (
            ("java", shutil.which("java") is not None),
            ("pyspark", importlib.util.find_spec("pyspark") is not None),
        )
        if not ok
    ]
    if missing:
        reason = f"Spark tests need {' and '.join(missing)}"
        if os.environ.get("LMM_REQUIRE_BROWSER") == "1":
            pytest.fail(f"{reason} (LMM_REQUIRE_BROWSER=1: .ci/run installs Java).")
        pytest.skip(reason)
    from pyspark.sql import SparkSession

    # the executors' Python workers: this interpreter, with the repository importable
    os.environ["PYSPARK_PYTHON"] = sys.executable
    path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), path]) if path else str(ROOT)
    session = (
        SparkSession.builder.master("local[2]")
        .appName("lmm-stream-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.driver.memory", "512m")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "64")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="package")
def fev() -> pd.DataFrame:
    return pd.read_csv(FEV)


@pytest.fixture(scope="package")
def fev_parquet(fev, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("fev") / "fev.parquet"
    fev.sample(frac=1.0, random_state=3).to_parquet(path, row_group_size=40)  # rows shuffled
    return path


def same_residual_covariance(mem, streamed) -> None:
    """The streamed fit's covariance of the visits (per group for a group-specific structure)
    is the in-memory one: the same visits, the same matrix to the optimizer's tolerance."""
    cov_a, cov_b = mem.residual_covariance(), streamed.residual_covariance()
    pairs = cov_a.items() if isinstance(cov_a, dict) else [("", cov_a)]
    for key, frame in pairs:
        other = cov_b[key] if key else cov_b
        assert list(other.index) == list(frame.index)
        np.testing.assert_allclose(other.to_numpy(), frame.to_numpy(), rtol=1e-6)
