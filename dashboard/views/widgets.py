"""Small render helpers shared by pages (Streamlit, no computation)."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from dashboard.analysis.records import FitRecord
from dashboard.base.markup import code_span, escape_text
from dashboard.figures.style import reserve_modebar
from dashboard.io.roles import Roles, missing_longitudinal_roles
from dashboard.io.validation import ValidationReport
from dashboard.state.session import Keys, current_data, current_roles

__all__ = [
    "DATA_PAGE",
    "EXPLORE_PAGE",
    "dataset_caption",
    "model_caption",
    "render_findings",
    "render_message",
    "require_longitudinal",
    "show_figure",
]

DATA_PAGE = "pages/data.py"
EXPLORE_PAGE = "pages/explore.py"

_RENDER = {"error": st.error, "warning": st.warning, "info": st.info, "success": st.success}


def show_figure(fig: go.Figure, key: str) -> None:
    """Render a plotly figure with the project template (Streamlit's theme off), with room
    for plotly's toolbar above its title (:func:`dashboard.views.layout.reserve_modebar`)."""
    st.plotly_chart(reserve_modebar(fig), theme=None, key=key, config={"displaylogo": False})


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
