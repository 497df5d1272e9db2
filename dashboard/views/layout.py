"""Layout for small screens and projectors: the page CSS and short sidebar texts.

At 1024 px the default Streamlit sidebar (300 px) took 30% of the window and the main column
kept 80 px of padding on each side, so five metrics in a row cut their values ("1,78…") and
tables scrolled sideways. :data:`APP_CSS` caps the sidebar at :data:`SIDEBAR_SHARE` of the
window, narrows the padding on small windows, and scales metric values with the window;
the sidebar shows each model's formula cut to :data:`SIDEBAR_FORMULA_CHARS` characters
(:func:`short_text`; the full formulas are in the radio's help).

The room kept for plotly's toolbar is :func:`dashboard.figures.style.reserve_modebar`.
"""

from __future__ import annotations

import streamlit as st

__all__ = [
    "APP_CSS",
    "SIDEBAR_FORMULA_CHARS",
    "SIDEBAR_SHARE",
    "apply_css",
    "short_text",
]

#: Largest share of the window the sidebar may take (it keeps Streamlit's 300 px on wide
#: screens: 21% of 1,400 px is 294 px).
SIDEBAR_SHARE = 0.21
#: Characters of a formula shown under a model's name in the sidebar (one line at 200 px).
SIDEBAR_FORMULA_CHARS = 20

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
    st.html(APP_CSS)


def short_text(text: str, limit: int = SIDEBAR_FORMULA_CHARS) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis (whitespace runs collapsed)."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: max(limit - 1, 1)].rstrip() + "…"
