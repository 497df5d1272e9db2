"""Example datasets shipped in ``data/`` and described by ``data/manifest.json``.

Each manifest entry gives a short name, a title, a description, units per column, the source
or citation, the column roles (``subject``, ``cluster``, ``time``, ``outcome``,
``covariates``) and the factor columns, which are read as strings so that an id such as
sleepstudy's ``Subject`` "308" stays a label and never becomes a number.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from lmm_core.errors import DataError

__all__ = ["DATA_DIR", "ExampleInfo", "list_examples", "load_example", "example_info"]

#: Folder holding the example CSV files and ``manifest.json`` (next to the package).
DATA_DIR = Path(__file__).resolve().parent.parent / "data"
ROLE_NAMES = ("subject", "cluster", "time", "outcome", "covariates")


@dataclass(frozen=True)
class ExampleInfo:
    """Metadata of one example dataset.

    Attributes
    ----------
    name
        Short identifier used by :func:`load_example`.
    title, description
        Human-readable title and one-paragraph description.
    file
        CSV file name inside ``data/``.
    units
        Column name -> unit or meaning.
    source
        Citation or generator.
    roles
        ``subject``, ``cluster``, ``time``, ``outcome`` (column name or ``None``) and
        ``covariates`` (tuple of column names).
    factors
        Columns read as strings (labels, never numbers).
    truth
        File name of the true parameters for simulated data, else ``None``.
    """

    name: str
    title: str
    description: str
    file: str
    units: dict[str, str] = field(default_factory=dict)
    source: str = ""
    roles: dict[str, Any] = field(default_factory=dict)
    factors: tuple[str, ...] = ()
    truth: str | None = None


def _manifest_path(data_dir: Path | None) -> Path:
    path = (data_dir or DATA_DIR) / "manifest.json"
    if not path.is_file():
        raise DataError(
            f"No example datasets at {path.parent}: they ship with the LMM Explorer repository "
            "(its data/ folder), not with the installed lmm_core package. Pass "
            "data_dir=<path to data/ of a checkout>, or read your own file with pandas."
        )
    return path


@lru_cache(maxsize=4)
def _read_manifest(path: Path) -> tuple[ExampleInfo, ...]:
    raw = json.loads(path.read_text(encoding="utf-8"))
    infos = []
    for entry in raw["datasets"]:
        roles = {key: entry["roles"].get(key) for key in ROLE_NAMES}
        roles["covariates"] = tuple(roles["covariates"] or ())
        infos.append(
            ExampleInfo(
                name=entry["name"],
                title=entry["title"],
                description=entry["description"],
                file=entry["file"],
                units=dict(entry.get("units", {})),
                source=entry.get("source", ""),
                roles=roles,
                factors=tuple(entry.get("factors", ())),
                truth=entry.get("truth"),
            )
        )
    return tuple(infos)


def list_examples(data_dir: Path | None = None) -> list[ExampleInfo]:
    """Return the example datasets in manifest order.

    Parameters
    ----------
    data_dir
        Folder with ``manifest.json``; the shipped ``data/`` folder by default.

    Returns
    -------
    list of ExampleInfo
    """
    return list(_read_manifest(_manifest_path(data_dir)))


def example_info(name: str, data_dir: Path | None = None) -> ExampleInfo:
    """Return the manifest entry called ``name``.

    Raises
    ------
    KeyError
        If no example has that name; the message lists the known names.
    """
    for info in list_examples(data_dir):
        if info.name == name:
            return info
    known = ", ".join(i.name for i in list_examples(data_dir))
    raise KeyError(f"No example dataset called {name!r}; known: {known}.")


def load_example(name: str, data_dir: Path | None = None) -> tuple[pd.DataFrame, ExampleInfo]:
    """Read one example dataset.

    Parameters
    ----------
    name
        Manifest name, e.g. ``"sleepstudy"``.
    data_dir
        Folder with the CSV files; the shipped ``data/`` folder by default.

    Returns
    -------
    data : pandas.DataFrame
        The rows, factor columns as strings.
    info : ExampleInfo
        The manifest entry.
    """
    info = example_info(name, data_dir)
    path = (data_dir or DATA_DIR) / info.file
    data = pd.read_csv(path, dtype={col: str for col in info.factors})
    return data, info
