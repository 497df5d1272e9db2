"""The tour's presenter view: large type, the app's controls hidden, one chart per screen.

Made for a 1280x720 projector: :data:`PRESENTER_CSS` hides the sidebar, Streamlit's header
and toolbar, narrows the page's padding and enlarges the tour's text; charts are drawn
:data:`CHART_HEIGHT` pixels high with :data:`FONT_SIZE` px text (:func:`presenter_figure`),
so the title, the chart beside its sentences and the Back/Next row fit in 720 pixels.
The keys (Left/Right arrows and PageUp/PageDown, what presentation clickers send, for
Back/Next; Escape to leave the view) are Streamlit button shortcuts
(:mod:`dashboard.views.tour`): one key per button, so PageUp/PageDown belong to a second
Back/Next pair in the container :data:`PAGE_KEYS`, which the view hides. Streamlit's focus
ring of the main region (an inset shadow on ``stMain::before``, drawn once a key moved the
tour on) is removed: on a projector it framed the whole slide in grey.
"""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

__all__ = [
    "CHART_HEIGHT",
    "FONT_SIZE",
    "PAGE_KEYS",
    "PRESENTER_CSS",
    "apply_presenter_css",
    "presenter_figure",
]

#: height of the step's chart in the presenter view (pixels)
CHART_HEIGHT = 500
#: base font size of the chart in the presenter view (pixels)
FONT_SIZE = 18
#: key of the container of the step's sentences (CSS class ``st-key-tour_text``)
TEXT_KEY = "tour_text"
#: key of the container of the PageUp/PageDown buttons (hidden; their shortcuts work)
PAGE_KEYS = "tour_page_keys"

PRESENTER_CSS = f"""
<style>
section[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"],
header[data-testid="stHeader"], [data-testid="stToolbar"], [data-testid="stDecoration"] {{
  display: none !important;
}}
[data-testid="stMainBlockContainer"] {{
  padding: 0.75rem 1.5rem 0.5rem 1.5rem !important;
  max-width: 100% !important;
}}
.st-key-{TEXT_KEY} p, .st-key-{TEXT_KEY} li {{
  font-size: 1.55rem !important;
  line-height: 1.35 !important;
}}
.st-key-tour_head h2 {{
  font-size: 2.1rem !important;
  padding: 0 !important;
}}
.st-key-tour_head p {{
  font-size: 1.2rem !important;
}}
[data-testid="stTable"] th, [data-testid="stTable"] td {{
  font-size: 1.35rem !important;
  padding: 0.35rem 0.6rem !important;
}}
[data-testid="stMain"], [data-testid="stMain"]::before, [data-testid="stAppViewContainer"],
[data-testid="stMainBlockContainer"] {{
  outline: none !important;
  box-shadow: none !important;
}}
.st-key-{PAGE_KEYS} {{
  display: none !important;
}}
</style>
"""


def apply_presenter_css() -> None:
    """Add :data:`PRESENTER_CSS` to the page (this run only: it goes with the view)."""
    st.html(PRESENTER_CSS)


def presenter_figure(fig: go.Figure) -> go.Figure:
    """``fig`` sized for the projector: :data:`CHART_HEIGHT` high, :data:`FONT_SIZE` text,
    without its own title (the step's heading says what it shows; a long chart title was cut
    at the chart column's width) and with its legend in a row above the plot, clear of the
    axis titles."""
    return fig.update_layout(
        height=CHART_HEIGHT,
        font={"size": FONT_SIZE},
        title={"text": ""},
        margin={"t": 60},
        legend={"orientation": "h", "x": 0, "y": 1.02, "xanchor": "left", "yanchor": "bottom"},
    )
