"""The look shared by every figure: palette, plotly template, titles, colours, toolbar room.

Pure plotly, no Streamlit. Importing this module registers the ``"lmm"`` template (a light
layout and the Okabe-Ito colour-blind-safe palette); pages render figures with
``st.plotly_chart(fig, theme=None)`` so that the template wins.

Plotly draws its toolbar (the modebar) over the top-right corner of a figure, where long
titles and top legends end. :func:`reserve_modebar` keeps a strip of :data:`MODEBAR_PX` at
the top of every figure free for it: the top margin grows by that much and the title is
pinned left, just below the strip.
"""

from __future__ import annotations

import plotly.graph_objects as go
import plotly.io as pio

__all__ = [
    "MODEBAR_PX",
    "PALETTE",
    "TEMPLATE",
    "WEBGL_ROWS",
    "reserve_modebar",
    "rgba",
    "style_figure",
]

PALETTE = (
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000",
)  # fmt: skip
TEMPLATE = "lmm"
WEBGL_ROWS = 1000  # as plotly express: WebGL above 1,000 points
#: Height of the strip kept free for plotly's toolbar at the top of a figure.
MODEBAR_PX = 32
#: Top margin of a figure whose layout and template set none (plotly's default).
_PLOTLY_TOP = 100

pio.templates[TEMPLATE] = go.layout.Template(
    pio.templates["plotly_white"],
    layout={
        "colorway": list(PALETTE),
        "font": {"family": "Source Sans Pro, Arial, sans-serif", "size": 13},
        "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
        "hoverlabel": {"namelength": -1},
        "legend": {"title": {"font": {"size": 12}}},
        "xaxis": {"zeroline": False},
        "yaxis": {"zeroline": False},
    },
)


def style_figure(fig: go.Figure, title: str, x_title: str, y_title: str) -> go.Figure:
    """The shared template, a title, axis titles and the standard height (440 px)."""
    fig.update_layout(
        template=TEMPLATE,
        title={"text": title},
        xaxis_title=x_title,
        yaxis_title=y_title,
        height=440,
    )
    return fig


def rgba(hex_color: str, alpha: float) -> str:
    """``"#RRGGBB"`` as a plotly ``rgba(r,g,b,alpha)`` colour."""
    r, g, b = (int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


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
