"""Shared test helpers: the lme4 reference datasets read as R read them."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pandas as pd

REFERENCE = Path(__file__).parent / "fixtures" / "reference"


@cache
def _load(name: str) -> pd.DataFrame:
    stem = name.removesuffix(".csv")
    schema = json.loads((REFERENCE / "data" / f"{stem}.schema.json").read_text())
    factors = {c["name"]: str for c in schema["columns"] if c["type"] == "factor"}
    return pd.read_csv(REFERENCE / "data" / f"{stem}.csv", dtype=factors)


def load_reference_dataset(name: str) -> pd.DataFrame:
    """A reference dataset (``"sleepstudy"`` or ``"sleepstudy.csv"``), factor columns as str.

    Returns a fresh copy, so tests may modify it.
    """
    return _load(name).copy()


def pytest_sessionstart(session) -> None:
    """Compile (or load from the cache) the engine's compiled loops once, before any test:
    a clean checkout compiles them in a few seconds, which no timed test should pay."""
    from lmm_core.model.kernels import warm_up

    warm_up()
