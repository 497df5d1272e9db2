"""Small render helpers shared by pages (Streamlit, no computation).

Every figure goes through :func:`show_figure`, which gives it a text alternative (WCAG 1.1.1):
a one-sentence description (the caller's, else one made from the figure's title, axis titles
and series by :func:`figure_sentence`) and a "Data of this chart" switch that shows the
plotted values as a table on request (:func:`figure_table`, read generically from the
traces' x, y and z).
"""

from __future__ import annotations

import html
import re

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard.analysis.records import FitRecord
from dashboard.base.markup import code_span, escape_text
from dashboard.figures.style import reserve_modebar
from dashboard.io.roles import Roles, missing_longitudinal_roles
from dashboard.io.validation import ValidationReport
from dashboard.state.session import Keys, current_data, current_roles

__all__ = [
    "DATA_KEY_SUFFIX",
    "DATA_PAGE",
    "DATA_TOGGLE",
    "EXPLORE_PAGE",
    "TABLE_ROWS",
    "dataset_caption",
    "figure_sentence",
    "figure_table",
    "model_caption",
    "render_findings",
    "render_message",
    "require_longitudinal",
    "show_figure",
]

DATA_PAGE = "pages/data.py"
EXPLORE_PAGE = "pages/explore.py"

#: Label of the switch under each chart that shows its data as a table (on request: the
#: table is built and sent only when switched on).
DATA_TOGGLE = "Data of this chart"
#: Key of that switch: the chart's key and this suffix.
DATA_KEY_SUFFIX = "__data"
#: Rows of a chart's data table at most (the first rows are shown, the total is said).
TABLE_ROWS = 1000
#: Series named in a generic description at most.
_NAMED_SERIES = 4

_RENDER = {"error": st.error, "warning": st.warning, "info": st.info, "success": st.success}
_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")


def show_figure(
    fig: go.Figure, key: str, description: str | None = None, *, data_switch: bool = True
) -> None:
    """Render a plotly figure with its text alternative.

    The figure is drawn with the project template (Streamlit's theme off) and room for
    plotly's toolbar above its title (:func:`dashboard.figures.style.reserve_modebar`). Above
    it, ``description`` (a caption everyone sees) or, without one, the generic sentence of
    :func:`figure_sentence` (read by screen readers only); below it, a switch
    :data:`DATA_TOGGLE` that shows :func:`figure_table` when on.

    Parameters
    ----------
    fig
        The plotly figure.
    key
        Streamlit element key of the chart (unique on the page).
    description
        One sentence saying what the chart shows and what to read from it.
    data_switch
        Show the "Data of this chart" switch (False where controls are hidden, e.g. a
        presenter view).
    """
    if description:
        st.caption(description)
    else:
        st.markdown(
            f'<span class="lmm-sr-only">{html.escape(figure_sentence(fig))}</span>',
            unsafe_allow_html=True,
        )
    st.plotly_chart(reserve_modebar(fig), theme=None, key=key, config={"displaylogo": False})
    if data_switch and fig.data and st.toggle(DATA_TOGGLE, key=f"{key}{DATA_KEY_SUFFIX}"):
        table, total = figure_table(fig)
        if total > len(table):
            st.caption(f"First {len(table):,} of {total:,} rows.")
        st.dataframe(table, hide_index=True, width="stretch")


def _plain(text: object) -> str:
    """Text of a plotly title without its HTML tags and entities."""
    text = _TAG.sub("", _BREAK.sub(" ", str(text or "")))
    return " ".join(html.unescape(text).split())


def _axis_titles(fig: go.Figure) -> tuple[str, str]:
    """Titles of the figure's first x and y axes (empty when none)."""
    return _plain(fig.layout.xaxis.title.text), _plain(fig.layout.yaxis.title.text)


def figure_sentence(fig: go.Figure) -> str:
    """One sentence describing ``fig`` from its title, axis titles and named series.

    E.g. "Chart: Reaction over Days, Days on the horizontal axis and Reaction on the vertical
    axis, 18 series (308, 309, 310, 330 and 14 more)."
    """
    title = _plain(fig.layout.title.text) or "a chart"
    x_title, y_title = _axis_titles(fig)
    parts = [f"Chart: {title}"]
    if x_title or y_title:
        parts.append(
            f"{x_title or 'unnamed values'} on the horizontal axis and "
            f"{y_title or 'unnamed values'} on the vertical axis"
        )
    names = list(dict.fromkeys(_plain(t.name) for t in fig.data if _plain(t.name)))
    if names:
        shown = ", ".join(names[:_NAMED_SERIES])
        more = f" and {len(names) - _NAMED_SERIES} more" if len(names) > _NAMED_SERIES else ""
        parts.append(f"{len(names)} series ({shown}{more})")
    return ", ".join(parts) + "."


def _values(trace: object, name: str) -> np.ndarray | None:
    """The trace's ``x``, ``y`` or ``z`` values as an array, or None when it has none."""
    values = getattr(trace, name, None) if name in getattr(trace, "_valid_props", ()) else None
    if values is None:
        return None
    return np.asarray(values, dtype=object)


def _trace_rows(trace: object) -> dict[str, np.ndarray]:
    """Columns x, y (and z) of one trace; a 2-D z (heatmap) in long form."""
    x, y, z = (_values(trace, name) for name in ("x", "y", "z"))
    if z is not None and z.ndim == 2:
        rows, cols = z.shape
        x = x if x is not None and len(x) == cols else np.arange(cols, dtype=object)
        y = y if y is not None and len(y) == rows else np.arange(rows, dtype=object)
        return {"x": np.tile(x, rows), "y": np.repeat(y, cols), "z": z.ravel()}
    columns = {k: v.ravel() for k, v in (("x", x), ("y", y), ("z", z)) if v is not None}
    n = max((len(v) for v in columns.values()), default=0)
    return {k: v for k, v in columns.items() if len(v) == n}


def figure_table(fig: go.Figure, max_rows: int = TABLE_ROWS) -> tuple[pd.DataFrame, int]:
    """The values plotted in ``fig`` as one table, and the number of rows in all.

    One row per plotted point: the series (the trace's name), then its x, y and, for
    heatmaps and 3-D traces, z. Columns are named after the axis titles when every trace
    uses the first pair of axes, else "x" and "y". Only the first ``max_rows`` rows are
    built; the total counts them all.

    Parameters
    ----------
    fig
        Any plotly figure.
    max_rows
        Largest number of rows returned.
    """
    parts, total = [], 0
    for i, trace in enumerate(fig.data):
        columns = _trace_rows(trace)
        n = len(next(iter(columns.values()))) if columns else 0
        if n == 0:
            continue
        total += n
        room = max_rows - sum(len(p) for p in parts)
        if room > 0:
            name = _plain(getattr(trace, "name", "")) or f"series {i + 1}"
            part = pd.DataFrame({k: v[:room] for k, v in columns.items()}).infer_objects()
            part.insert(0, "series", name)
            parts.append(part)
    if not parts:
        return pd.DataFrame(), 0
    table = pd.concat(parts, ignore_index=True).infer_objects()
    single_axes = all(
        getattr(t, "xaxis", None) in (None, "x") and getattr(t, "yaxis", None) in (None, "y")
        for t in fig.data
    )
    x_title, y_title = _axis_titles(fig)
    if single_axes and x_title and y_title and x_title != y_title:
        table = table.rename(columns={"x": x_title, "y": y_title})
    return table, total


def render_message() -> None:
    """Show the outcome of the last upload, if any."""
    message = st.session_state.get(Keys.UPLOAD_MESSAGE)
    if message:
        level, text = message
        _RENDER[level](text)


def render_findings(report: ValidationReport) -> None:
    """Show each finding as an error, warning or info box; a success box when clean."""
    if not report.findings:
        st.success("No problems found: the data are ready for modelling.")
    for finding in report.findings:
        _RENDER[finding.level](finding.message)


def dataset_caption() -> str:
    """One line naming the active dataset and its size."""
    data = current_data()
    name = st.session_state[Keys.DATA_NAME]
    title = st.session_state[Keys.DATA_TITLE]
    head = f"**{name}**" + (f" ({title})" if title and title != name else "")
    return f"{head}: {len(data):,} rows x {data.shape[1]} columns"


def model_caption(record: FitRecord) -> str:
    """One line naming the fitted model a page shows: its name and formula (Markdown)."""
    return f"Model **{escape_text(record.name)}**: {code_span(record.formula)}"


def require_longitudinal(page_label: str) -> tuple[object, Roles]:
    """Return ``(data, roles)`` or stop the page with a message and a link to the Data page.

    The page needs a subject column and a numeric time and outcome.
    """
    data = current_data()
    roles = current_roles()
    missing = missing_longitudinal_roles(data, roles)
    if missing:
        st.info(
            f"{page_label} needs {', '.join(missing)}. Set the column roles of "
            f"{st.session_state[Keys.DATA_NAME]} on the Data page."
        )
        st.page_link(DATA_PAGE, label="Go to the Data page")
        st.stop()
    return data, roles
