"""A self-contained HTML report of a fit. Pure function, no Streamlit.

:func:`build_report` returns one HTML document holding everything: the data fingerprint,
formula and estimation settings, every warning, the tables and the figures. Nothing is
fetched when it is opened: figures are either interactive (plotly.js embedded once, about
4.7 MB) or static SVG images in ``data:`` URIs, and a Content-Security-Policy forbids any
network request. Every text that comes from the user (column names, levels, file names,
the formula) is HTML-escaped.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import html
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.analysis.model_summary import data_notes, status_messages
from dashboard.analysis.records import FitRecord
from dashboard.base.constants import CONFIDENCE_LEVEL
from dashboard.base.markup import plain_cells
from dashboard.base.numbers import fmt, fmt_p
from dashboard.export.code import canonical_csv, data_file_name, python_code, r_code
from dashboard.export.results import (
    bases_table,
    fixed_effects_table,
    variance_components_table,
)
from lmm_core import LMMResult

__all__ = ["build_report", "data_fingerprint"]

CSP = (
    "default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; "
    "style-src 'unsafe-inline'; img-src data:; font-src data:"
)
STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#1f2430;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;margin-top:2em;
border-bottom:1px solid #d0d4dc;padding-bottom:.2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}
th,td{border:1px solid #d0d4dc;padding:.25em .6em;text-align:right}
th{background:#f2f4f8}td.t,th.t{text-align:left}
code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em}
pre{background:#f6f8fa;border:1px solid #d0d4dc;padding:.7em;overflow-x:auto}
.meta{color:#5a6172}.warning{color:#8a4b00}.info{color:#2a4d8a}.success{color:#1d6b32}
li{margin:.25em 0}figure{margin:1.2em 0}figcaption{font-weight:600;margin-bottom:.3em}
"""


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _md(text: str) -> str:
    """Escape, then render the two markdown marks the app's messages use (``code``, bold)."""
    out = _esc(text)
    out = re.sub(r"`([^`]*)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)


def _num(x: Any, digits: int | str = 6) -> str:
    """A number by dashboard.base.numbers (significant digits; ``"p"``: a p-value); "" if
    missing."""
    if x is None or (isinstance(x, float | np.floating) and np.isnan(x)):
        return ""
    if isinstance(x, float | np.floating):
        if np.isinf(x):
            return "Inf"
        return fmt_p(x) if digits == "p" else fmt(x, int(digits))
    return _esc(x)


def _table(frame: pd.DataFrame, digits: dict[str, int | str] | None = None) -> str:
    """An HTML table; text cells escaped and left-aligned, numbers right-aligned."""
    digits = digits or {}
    head = "".join(
        f'<th class="{"t" if not pd.api.types.is_numeric_dtype(frame[c]) else ""}">{_esc(c)}</th>'
        for c in frame.columns
    )
    body = []
    for row in frame.itertuples(index=False):
        cells = []
        for col, value in zip(frame.columns, row, strict=True):
            if isinstance(value, bool | np.bool_) or not isinstance(
                value, int | float | np.integer | np.floating
            ):
                text = "" if value is None or value is pd.NA else _esc(value)
                cells.append(f'<td class="t">{text}</td>')
            else:
                cells.append(f"<td>{_num(value, digits.get(col, 6))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def data_fingerprint(data: pd.DataFrame, result: LMMResult | None = None) -> dict[str, Any]:
    """SHA-256 of the canonical CSV bytes, size, groups per grouping factor, missing values.

    The hash is of exactly the bytes the Export page offers as the data download, so a
    reader can check that a file is the one the model was fitted to
    (``sha256sum file.csv``).
    """
    return {
        "sha256": hashlib.sha256(canonical_csv(data)).hexdigest(),
        "rows": len(data),
        "columns": data.shape[1],
        "groups": dict(result.ngroups) if result is not None else {},
        "missing": {str(c): int(n) for c, n in data.isna().sum().items()},
    }


def _figure_html(figures: Sequence[tuple[str, go.Figure]], renderer) -> list[str]:
    parts = []
    first = True
    for title, fig in figures:
        if renderer is not None:
            svg = renderer(fig)
            uri = "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")
            body = f'<img alt="{_esc(title)}" src="{uri}" style="max-width:100%">'
        else:
            body = fig.to_html(
                full_html=False,
                include_plotlyjs=first,  # the whole plotly.js, once, inline: no CDN
                config={"displaylogo": False, "responsive": True},
            )
            first = False
        parts.append(f"<figure><figcaption>{_esc(title)}</figcaption>{body}</figure>")
    return parts


def _settings_rows(record: FitRecord, result: LMMResult, df_method: str) -> pd.DataFrame:
    opt = result.opt
    rows = [
        ("Model", record.name),
        ("Formula", record.formula),
        ("Estimation", "REML (restricted maximum likelihood)" if result.reml else "ML"),
        ("Optimizer", opt.method),
        ("Converged", "yes" if result.converged else "NO"),
        ("Function evaluations", str(opt.n_evals)),
        ("Largest scaled gradient", _num(opt.max_scaled_gradient, 3)),
        ("Singular fit", "yes" if result.is_singular else "no"),
        ("Degrees of freedom (t tests)", df_method),
        ("Fit time (s)", _num(float(record.seconds), 3)),
    ]
    return pd.DataFrame(rows, columns=["Setting", "Value"])


def _criteria(result: LMMResult) -> pd.DataFrame:
    crit = "REML criterion" if result.reml else "Deviance (-2 logLik)"
    rows = [
        ("Observations", float(result.nobs)),
        *[(f"Groups: {g}", float(n)) for g, n in result.ngroups.items()],
        ("Fixed effects", float(len(result.beta))),
        ("Parameters", float(result.npar)),
        (crit, result.objective),
        ("logLik", result.loglik),
        ("AIC", result.aic),
        ("BIC", result.bic),
        ("Residual SD (sigma)", result.sigma),
    ]
    return pd.DataFrame(rows, columns=["Criterion", "Value"])


def build_report(
    record: FitRecord,
    data: pd.DataFrame,
    *,
    df_method: str = "satterthwaite",
    level: float = CONFIDENCE_LEVEL,
    figures: Sequence[tuple[str, go.Figure]] = (),
    svg_renderer: Callable[[go.Figure], bytes] | None = None,
    generated: _dt.datetime | None = None,
) -> str:
    """One self-contained HTML document describing the fit in ``record``.

    Parameters
    ----------
    record
        A fit record (``name``, ``formula``, ``reml``, ``data_name``, ``result``, ``seconds``).
    data
        The data the model was fitted to (all rows, as held by the app).
    df_method, level
        Degrees of freedom and confidence level of the fixed-effects table.
    figures
        ``(title, figure)`` pairs to include.
    svg_renderer
        When given (e.g. ``lambda f: render_image(f, "svg")``), figures are embedded as static
        SVG images; otherwise as interactive plotly charts with plotly.js embedded once.
    generated
        Time stamp shown in the header (default: now, UTC).

    Returns
    -------
    str
        The HTML document.
    """
    result: LMMResult = record.result
    when = (generated or _dt.datetime.now(_dt.UTC)).strftime("%Y-%m-%d %H:%M UTC")
    data_name = record.data_name or "data"
    file_name = data_file_name(data_name)
    title = f"LMM Explorer report: {record.name or record.formula}"
    parts = _head_html(title, when, data_name, record, result)
    parts += _data_html(data, result, file_name)
    parts += _status_html(record, result, df_method)
    parts += _bases_html(result)
    parts += _results_html(result, df_method, level)
    if figures:
        parts.append("<h2>Figures</h2>")
        parts += _figure_html(figures, svg_renderer)
    parts += _reproduce_html(record.formula, result, file_name, data, df_method, title)
    return "\n".join(parts)


def _head_html(
    title: str, when: str, data_name: str, record: FitRecord, result: LMMResult
) -> list[str]:
    """The document's head, title and the line naming formula, method and observations."""
    return [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_esc(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{_esc(title)}</h1>",
        f'<p class="meta">Generated {when} by LMM Explorer. Data: {_esc(data_name)}. '
        "This file is self-contained: it loads nothing from the network.</p>",
        f"<p>Formula: <code>{_esc(record.formula)}</code>, fitted by "
        f"{'REML' if result.reml else 'ML'} to {result.nobs:,} observations.</p>",
    ]


def _data_html(data: pd.DataFrame, result: LMMResult, file_name: str) -> list[str]:
    """The data fingerprint: hash, size, groups and missing values per column."""
    fp = data_fingerprint(data, result)
    missing = pd.DataFrame(
        {"Column": list(fp["missing"]), "Missing values": list(fp["missing"].values())}
    )
    groups = ", ".join(f"{_esc(g)}: {n:,}" for g, n in fp["groups"].items())
    return [
        "<h2>Data fingerprint</h2>",
        f"<p>SHA-256 of the data as CSV (<code>{_esc(file_name)}</code>, the Export page's "
        f"data download): <code>{fp['sha256']}</code></p>",
        f"<p>{fp['rows']:,} rows, {fp['columns']} columns; groups per grouping factor: "
        f"{groups}.</p>",
        _table(missing),
    ]


def _status_html(record: FitRecord, result: LMMResult, df_method: str) -> list[str]:
    """Estimation settings, warnings and status, and the engine's messages."""
    warn_items = [
        f'<li class="{_esc(s.level)}">{_md(s.text)}</li>' for s in status_messages(result)
    ]
    warn_items += [f'<li class="warning">{_md(n)}</li>' for n in data_notes(result)]
    engine = [f"<li>{_esc(m)}</li>" for m in result.messages]
    parts = [
        "<h2>Estimation settings</h2>",
        _table(_settings_rows(record, result, df_method)),
        "<h2>Warnings and status</h2>",
        f"<ul>{''.join(warn_items)}</ul>",
    ]
    if engine:
        parts += ["<p>Messages of the engine:</p>", f"<ul>{''.join(engine)}</ul>"]
    return parts


def _bases_html(result: LMMResult) -> list[str]:
    """The spline and polynomial terms with the knots the fit learned (none: nothing)."""
    table = bases_table(result)
    if table.empty:
        return []
    table.columns = ["Term", "Kind", "Knots", "Boundary knots", "df"]
    return [
        "<h2>Bases</h2>",
        "<p>Spline and polynomial terms as written in the formula, with the knots learned "
        "from the data (interior knots at quantiles of the values, boundary knots at their "
        "range, unless given). Every prediction and the code below use these same knots; "
        "df is the number of columns (coefficients) of the term.</p>",
        _table(table),
    ]


def _results_html(result: LMMResult, df_method: str, level: float) -> list[str]:
    """Fixed effects, variance components and the model-fit criteria."""
    fixed = fixed_effects_table(result, df_method, level).drop(columns=["df_method", "ci_level"])
    fixed = plain_cells(fixed, ["term"])  # names as the user wrote them, no backticks
    vc = plain_cells(variance_components_table(result), ["var1", "var2"])
    return [
        f"<h2>Fixed effects ({_esc(df_method)} df, {level:.0%} confidence intervals)</h2>",
        _table(fixed, {"df": 4, "p_value": "p"}),
        "<h2>Variance components</h2>",
        "<p>vcov: variance (or covariance); sdcor: standard deviation (or correlation).</p>",
        _table(vc),
        "<h2>Model fit</h2>",
        _table(_criteria(result), {"Value": 8}),
    ]


def _reproduce_html(
    formula: str,
    result: LMMResult,
    file_name: str,
    data: pd.DataFrame,
    df_method: str,
    title: str,
) -> list[str]:
    """Python and R code that refit the model, and the end of the document."""
    bases = result.design.bases
    py = python_code(formula, result.reml, file_name, data, title=title, bases=bases)
    rr = r_code(
        formula, result.reml, file_name, data, df_method=df_method, title=title, bases=bases
    )
    return [
        "<h2>Reproduce the fit</h2>",
        "<p>Python (lmm_core):</p>",
        f"<pre>{_esc(py)}</pre>",
        "<p>R (lme4 and lmerTest):</p>",
        f"<pre>{_esc(rr)}</pre>",
        "</body></html>",
    ]
