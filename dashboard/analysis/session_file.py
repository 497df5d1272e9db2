"""The session file: what "Save session" writes and "Open session" checks. Pure (no Streamlit).

One JSON document (UTF-8)::

    {"format": "lmm-explorer-session", "version": 1,
     "data": {"source": "example" | "upload", "example": "sleepstudy" | null,
              "name": ..., "rows": 180, "fingerprint": "<SHA-256 of the table as CSV>",
              "roles": {...}, "units": {...}, "csv": "<the table as CSV>" | null},
     "settings": {"page": "trajectories", "reml": true, "active": 2},
     "models": [{"label": ..., "formula": ..., "reml": true, "family": "gaussian",
                 "link": null, "nagq": 1,
                 "summary": {"loglik": ..., "aic": ..., "nobs": ...,
                             "fixed_effects": [[term, estimate, std. error], ...],
                             "variance_components": [[group, var1, var2, variance, sd or
                                                      correlation], ...]}}]}

The table is in the file only when the user asks (``csv``); otherwise the file holds its
fingerprint, the SHA-256 of the table written as CSV (:func:`fingerprint`): opening the file on
other data is then refused in words. The summaries are what the fits gave when saved; opening
the file fits the models again from their formulas and :func:`summary_differences` says if a
log-likelihood came out otherwise.

:func:`read` checks, in this order, the size (:data:`MAX_BYTES`), the JSON, the format name,
the version, every field's type and length, every formula (our own grammar, through
:func:`dashboard.analysis.link_codec.check_model`; nothing is evaluated), the table's header
(at most :data:`MAX_COLUMNS` columns, before the rows are parsed) and, when the table is
in the file, that it matches its fingerprint. Any failure raises :class:`SessionFileError`
with one sentence.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from dashboard.analysis.link_codec import MAX_MODELS, NAME_RE, LinkModel, check_model
from dashboard.analysis.records import GAUSSIAN
from dashboard.base.numbers import fmt

__all__ = [
    "FORMAT",
    "MAX_BYTES",
    "MAX_COLUMNS",
    "VERSION",
    "SessionFile",
    "SessionFileError",
    "data_csv",
    "fingerprint",
    "model_summary",
    "read",
    "summary_differences",
    "write",
]

FORMAT = "lmm-explorer-session"
VERSION = 1
MAX_BYTES = 50 * 1024 * 1024  # a session file with its data
MAX_COLUMNS = 2000  # columns of a table in a session file
MAX_TEXT = 4000  # characters of a name, a role or a unit


class SessionFileError(ValueError):
    """A session file that cannot be opened; the message says why, in one sentence."""


@dataclass(frozen=True)
class SessionFile:
    """A checked session file."""

    source: str  # "example" or "upload"
    example: str | None
    name: str
    fingerprint: str
    roles: dict[str, Any]
    units: dict[str, str]
    data: pd.DataFrame | None  # the table, when the file holds it
    models: tuple[LinkModel, ...]
    summaries: tuple[dict[str, Any], ...]
    page: str | None = None
    reml: bool = True
    active: int | None = None  # index into ``models``
    rows: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def data_csv(data: pd.DataFrame) -> str:
    """The table as CSV text (no index, ``\\n`` line ends): what the file holds and hashes."""
    return data.to_csv(index=False, lineterminator="\n")


def fingerprint(data: pd.DataFrame | str) -> str:
    """SHA-256 (hex) of the table's CSV text (:func:`data_csv`)."""
    text = data if isinstance(data, str) else data_csv(data)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _number(x: Any) -> float | None:
    try:
        value = float(x)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def model_summary(result: Any) -> dict[str, Any]:
    """The summary kept of a fit: log-likelihood, AIC, rows, fixed effects (estimate and
    standard error) and variance components (variance and SD, or covariance and
    correlation), as plain numbers (``None`` where not finite)."""
    fixef = result.fixef
    se = list(getattr(result, "std_errors", [None] * len(fixef)))
    summary: dict[str, Any] = {
        "loglik": _number(result.loglik),
        "aic": _number(result.aic),
        "nobs": int(getattr(result, "nobs", 0) or 0),
        "fixed_effects": [
            [str(term), _number(value), _number(s)]
            for term, value, s in zip(fixef.index, fixef.to_numpy(), se, strict=False)
        ],
    }
    table = getattr(result, "varcorr_table", None)
    if callable(table):
        rows = table()
        summary["variance_components"] = [
            [None if pd.isna(v) else (str(v) if not isinstance(v, float) else _number(v))
             for v in row]
            for row in rows.itertuples(index=False)
        ]  # fmt: skip
    return summary


def write(
    *,
    data: pd.DataFrame,
    source: str,
    example: str | None,
    name: str,
    roles: dict[str, Any],
    units: dict[str, str],
    models: list[tuple[LinkModel, Any]],
    page: str | None,
    reml: bool,
    active: int | None,
    include_data: bool,
) -> bytes:
    """The session file (UTF-8 JSON) of a session; ``models`` pairs each model with its fit."""
    csv = data_csv(data)
    document = {
        "format": FORMAT,
        "version": VERSION,
        "data": {
            "source": source,
            "example": example,
            "name": name,
            "rows": len(data),
            "fingerprint": fingerprint(csv),
            "roles": roles,
            "units": units,
            "csv": csv if include_data else None,
        },
        "settings": {"page": page, "reml": bool(reml), "active": active},
        "models": [
            {
                "label": m.label,
                "formula": m.formula,
                "reml": bool(m.reml),
                "family": m.family,
                "link": m.link,
                "nagq": int(m.nagq),
                "summary": model_summary(result),
            }
            for m, result in models[:MAX_MODELS]
        ],
    }
    return json.dumps(document, indent=1, allow_nan=False).encode("utf-8")


def _fail(text: str) -> SessionFileError:
    return SessionFileError(text)


def _load(raw: bytes) -> dict[str, Any]:
    if len(raw) > MAX_BYTES:
        raise _fail(
            f"The file is {fmt(len(raw) / 1024**2, 3)} MB, over the limit of "
            f"{MAX_BYTES / 1024**2:,.0f} MB for a session file."
        )
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(
            f"The file is not a session file of this app (not valid JSON: {exc})."
        ) from None
    except RecursionError:  # the parser refuses deep nesting this way
        raise _fail("The file is not a session file of this app (nested too deeply).") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise _fail("The file is not a session file of this app (its format is not named).")
    version = document.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise _fail("The session file has no valid version number.")
    if version > VERSION:
        raise _fail(
            f"The session file was written by a newer version of the app (format version "
            f"{version}; this app reads version {VERSION})."
        )
    return document


def _text(value: Any, what: str, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise _fail(f"The session file's {what} is not a short text.")
    return value


def _text_map(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict) or len(value) > MAX_COLUMNS:
        raise _fail(f"The session file's {what} are not a table of names.")
    for key, item in value.items():
        _text(key, what)
        if not (item is None or isinstance(item, str | bool) or _is_text_list(item)):
            raise _fail(f"The session file's {what} hold something other than names.")
        if isinstance(item, str):
            _text(item, what)
    return value


def _is_text_list(item: Any) -> bool:
    return (
        isinstance(item, list)
        and len(item) <= MAX_COLUMNS
        and all(isinstance(x, str) and len(x) <= MAX_TEXT for x in item)
    )


def _table(csv: Any, expected: str) -> pd.DataFrame:
    if not isinstance(csv, str):
        raise _fail("The session file's table is not CSV text.")
    header = csv[: csv.find("\n") if "\n" in csv else len(csv)]
    if header.count(",") + 1 > MAX_COLUMNS:
        raise _fail(
            f"The session file's table has {header.count(',') + 1:,} columns, over the limit "
            f"of {MAX_COLUMNS:,}."
        )
    if fingerprint(csv) != expected:
        raise _fail(
            "The session file's table does not match its fingerprint (the file was changed or "
            "damaged after it was saved)."
        )
    try:
        return pd.read_csv(io.StringIO(csv))
    except (ValueError, pd.errors.ParserError) as exc:
        raise _fail(f"The session file's table cannot be read as CSV ({exc}).") from None


def _models(items: Any) -> tuple[tuple[LinkModel, ...], tuple[dict[str, Any], ...]]:
    if not isinstance(items, list) or len(items) > MAX_MODELS:
        raise _fail(f"The session file's models are not a list of at most {MAX_MODELS}.")
    models, summaries = [], []
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise _fail(f"Model {number} of the session file is not a model.")
        nagq, reml = item.get("nagq", 1), item.get("reml", True)
        if not isinstance(nagq, int) or isinstance(nagq, bool) or not isinstance(reml, bool):
            raise _fail(f"Model {number} of the session file has invalid options.")
        model = LinkModel(
            formula=_text(item.get("formula"), "formula") or "",
            label=" ".join((_text(item.get("label", "model"), "label") or "model").split())[:80],
            reml=reml,
            family=_text(item.get("family", GAUSSIAN), "family") or GAUSSIAN,
            link=_text(item.get("link"), "link", optional=True),
            nagq=nagq,
        )
        try:
            models.append(check_model(model))
        except ValueError as exc:
            raise _fail(f"Model {number} of the session file is refused: {exc}.") from None
        summary = item.get("summary")
        summaries.append(summary if isinstance(summary, dict) else {})
    return tuple(models), tuple(summaries)


def _settings(value: Any, n_models: int) -> tuple[str | None, bool, int | None]:
    if not isinstance(value, dict):
        raise _fail("The session file's settings are missing.")
    page = _text(value.get("page"), "page", optional=True)
    if page is not None and not NAME_RE.fullmatch(page):
        raise _fail("The session file names an unknown page.")
    reml, active = value.get("reml", True), value.get("active")
    if not isinstance(reml, bool):
        raise _fail("The session file's REML setting is not true or false.")
    if active is not None and (
        not isinstance(active, int) or isinstance(active, bool) or not 0 <= active < n_models
    ):
        raise _fail("The session file's active model is not one of its models.")
    return page, reml, active


def read(raw: bytes) -> SessionFile:
    """Check and read a session file (see the module docstring for the checks).

    Raises
    ------
    SessionFileError
        With one sentence saying what is wrong.
    """
    document = _load(raw)
    data = document.get("data")
    if not isinstance(data, dict):
        raise _fail("The session file says nothing about its data.")
    source = data.get("source")
    if source not in ("example", "upload"):
        raise _fail("The session file's data source is neither an example nor an upload.")
    example = _text(data.get("example"), "example name", optional=True)
    if source == "example" and (example is None or not NAME_RE.fullmatch(example)):
        raise _fail("The session file's example dataset is not named.")
    print_ = _text(data.get("fingerprint"), "fingerprint") or ""
    if len(print_) != 64 or any(c not in "0123456789abcdef" for c in print_):
        raise _fail("The session file's data fingerprint is not a SHA-256.")
    rows = data.get("rows", 0)
    table = None if data.get("csv") is None else _table(data.get("csv"), print_)
    models, summaries = _models(document.get("models", []))
    page, reml, active = _settings(document.get("settings"), len(models))
    return SessionFile(
        source=source,
        example=example,
        name=_text(data.get("name", "data"), "data name") or "data",
        fingerprint=print_,
        roles=_text_map(data.get("roles", {}), "column roles"),
        units=_text_map(data.get("units", {}), "units"),
        data=table,
        models=models,
        summaries=summaries,
        page=page,
        reml=reml,
        active=active,
        rows=rows if isinstance(rows, int) and not isinstance(rows, bool) else 0,
    )


def summary_differences(
    models: tuple[LinkModel, ...], saved: tuple[dict[str, Any], ...], refitted: list[Any]
) -> list[str]:
    """Models whose refitted log-likelihood differs from the saved one (relative 1e-6)."""
    notes = []
    for model, summary, result in zip(models, saved, refitted, strict=False):
        before, now = _number(summary.get("loglik")), _number(getattr(result, "loglik", None))
        if before is None or now is None:
            continue
        if abs(before - now) > 1e-6 * max(1.0, abs(before)):
            notes.append(
                f"{model.label}: log-likelihood {now:.6g} now, {before:.6g} when saved "
                "(other data or another version of the engine)."
            )
    return notes
