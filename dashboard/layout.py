"""Layout for small screens and projectors: the page CSS and figure room for plotly's toolbar.

At 1024 px the default Streamlit sidebar (300 px) took 30% of the window and the main column
kept 80 px of padding on each side, so five metrics in a row cut their values ("1,78…") and
tables scrolled sideways. :data:`APP_CSS` caps the sidebar at :data:`SIDEBAR_SHARE` of the
window, narrows the padding on small windows, and scales metric values with the window;
the sidebar shows each model's formula cut to :data:`SIDEBAR_FORMULA_CHARS` characters
(:func:`short_text`; the full formulas are in the radio's help).

Plotly draws its toolbar (the modebar) over the top-right corner of a figure, where long
titles and top legends end. :func:`reserve_modebar` keeps a strip of :data:`MODEBAR_PX` at
the top of every figure free for it: the top margin grows by that much and the title is
pinned left, just below the strip.
"""

from __future__ import annotations

import plotly.graph_objects as go
import plotly.io as pio

__all__ = [
    "APP_CSS",
    "MODEBAR_PX",
    "SIDEBAR_FORMULA_CHARS",
    "SIDEBAR_SHARE",
    "apply_css",
    "reserve_modebar",
    "short_text",
]

#: Largest share of the window the sidebar may take (it keeps Streamlit's 300 px on wide
#: screens: 21% of 1,400 px is 294 px).
SIDEBAR_SHARE = 0.21
#: Characters of a formula shown under a model's name in the sidebar (one line at 200 px).
SIDEBAR_FORMULA_CHARS = 20
#: Height of the strip kept free for plotly's toolbar at the top of a figure.
MODEBAR_PX = 32
#: Top margin of a figure whose layout and template set none (plotly's default).
_PLOTLY_TOP = 100

APP_CSS = f"""
<style>
section[data-testid="stSidebar"] {{
  max-width: {round(100 * SIDEBAR_SHARE)}vw !important;
  min-width: 200px !important;
}}
@media (max-width: 1300px) {{
  [data-testid="stMainBlockContainer"] {{
    padding-left: 1.5rem !important;
    padding-right: 1.5rem !important;
  }}
}}
[data-testid="stMetricValue"] {{
  font-size: clamp(1.25rem, 2.2vw, 2.25rem) !important;
}}
</style>
"""


def apply_css() -> None:
    """Add :data:`APP_CSS` to the page (call once per run, from ``app.py``)."""
    import streamlit as st

    st.html(APP_CSS)


def short_text(text: str, limit: int = SIDEBAR_FORMULA_CHARS) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis (whitespace runs collapsed)."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: max(limit - 1, 1)].rstrip() + "…"


def _top_margin(fig: go.Figure) -> float:
    """The figure's top margin in px: its own, else its template's, else plotly's default."""
    if fig.layout.margin.t is not None:
        return float(fig.layout.margin.t)
    template = fig.layout.template
    if isinstance(template, str):
        template = pio.templates[template]
    if template is not None and template.layout.margin.t is not None:
        return float(template.layout.margin.t)
    return float(_PLOTLY_TOP)


def reserve_modebar(fig: go.Figure) -> go.Figure:
    """Keep the top :data:`MODEBAR_PX` of ``fig`` free for plotly's toolbar.

    The top margin grows by :data:`MODEBAR_PX`, so everything drawn in it (top legends,
    subplot titles) moves down with the plot area; a title is pinned to the left edge of
    the plot area, just below the strip. Idempotent: a figure already treated is returned
    unchanged.

    Parameters
    ----------
    fig
        Any plotly figure; changed in place and returned.
    """
    if fig.layout.meta is not None and isinstance(fig.layout.meta, dict):
        if fig.layout.meta.get("modebar_reserved"):
            return fig
        meta = dict(fig.layout.meta)
    elif fig.layout.meta is None:
        meta = {}
    else:
        return fig  # meta holds something else: leave the figure alone
    top = _top_margin(fig) + MODEBAR_PX
    fig.update_layout(margin={"t": top}, meta={**meta, "modebar_reserved": True})
    if fig.layout.title.text:
        fig.update_layout(
            title={
                "x": 0,
                "xref": "paper",
                "xanchor": "left",
                "y": 1,
                "yref": "container",
                "yanchor": "top",
                "pad": {"t": MODEBAR_PX},
            }
        )
    return fig
