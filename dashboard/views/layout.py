"""Layout for small screens and projectors: the page CSS and short sidebar texts.

At 1024 px the default Streamlit sidebar (300 px) took 30% of the window and the main column
kept 80 px of padding on each side, so five metrics in a row cut their values ("1,78…") and
tables scrolled sideways. :data:`APP_CSS` caps the sidebar at :data:`SIDEBAR_SHARE` of the
window, narrows the padding on small windows, and scales metric values with the window;
the sidebar shows each model's formula cut to :data:`SIDEBAR_FORMULA_CHARS` characters
(:func:`short_text`; the full formulas are in the radio's help).

Text contrast (WCAG 2 AA, at least 4.5:1 for normal text): Streamlit draws captions, widget
help lines and the labels of disabled widgets in a faded grey (3.9:1 and 2.3:1 on white) and
colours code with a light syntax palette (2.2:1 to 3.6:1). :data:`APP_CSS` gives them the
darker colours of :data:`CAPTION_COLOR`, :data:`DISABLED_LABEL_COLOR` and
:data:`CODE_TOKEN_COLORS`, each at least 4.5:1 on every background it sits on
(:data:`BACKGROUNDS`; checked by ``tests/e2e/test_browser_a11y.py`` with axe-core and by
``tests/figures/test_colour_blind.py``).

Text meant for screen readers only (the generic description of a chart) has the class
``lmm-sr-only``: visually hidden, out of the page flow, still read aloud.

The room kept for plotly's toolbar is :func:`dashboard.figures.style.reserve_modebar`.

:func:`apply_css` runs first in every script run, so it also records the session for the
operator's log (:func:`dashboard.state.events.track_session`) and, when the browser came back
from a session its server no longer holds (a stopped or restarted replica), keeps
:data:`LOST_SESSION_NOTICE` at the top of the page until the user dismisses it.
"""

from __future__ import annotations

import streamlit as st

from dashboard.state import events

__all__ = [
    "APP_CSS",
    "LOST_SESSION_NOTICE",
    "BACKGROUNDS",
    "CAPTION_COLOR",
    "CODE_TOKEN_COLORS",
    "DISABLED_LABEL_COLOR",
    "SIDEBAR_FORMULA_CHARS",
    "SIDEBAR_SHARE",
    "apply_css",
    "lost_session_notice",
    "short_text",
]

#: Largest share of the window the sidebar may take (it keeps Streamlit's 300 px on wide
#: screens: 21% of 1,400 px is 294 px).
SIDEBAR_SHARE = 0.21
#: Characters of a formula shown under a model's name in the sidebar (one line at 200 px).
SIDEBAR_FORMULA_CHARS = 20

#: Backgrounds text sits on: the page, the sidebar, code blocks and inline code.
BACKGROUNDS = ("#ffffff", "#f8f8f7", "#f7f7f6", "#f4f4f3", "#fafafa", "#f0f2f6")
#: Captions and help lines under widgets (Streamlit's faded grey is 3.9:1 on white).
CAPTION_COLOR = "#5c5a57"
#: Labels of disabled widgets: lighter than text, still 4.5:1 (Streamlit's is 2.3:1).
DISABLED_LABEL_COLOR = "#6b6965"
#: Syntax colours of code blocks (Prism token classes), darker than Streamlit's.
CODE_TOKEN_COLORS = {
    ("comment", "prolog", "doctype", "cdata"): "#5e6168",
    ("keyword", "builtin", "atrule", "important"): "#0b5394",
    ("string", "char", "attr-value", "regex", "inserted"): "#1b6b2f",
    ("boolean", "number", "constant", "symbol"): "#8a4600",
    ("function", "class-name", "selector", "tag"): "#7a2f8f",
    ("operator", "entity", "url", "variable", "deleted"): "#8c2a2a",
}


def _code_token_css() -> str:
    """CSS rules giving the Prism tokens of code blocks the colours of CODE_TOKEN_COLORS."""
    rules = []
    for tokens, color in CODE_TOKEN_COLORS.items():
        selector = ", ".join(f'[data-testid="stCode"] .token.{token}' for token in tokens)
        rules.append(f"{selector} {{ color: {color} !important; }}")
    return "\n".join(rules)


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
[data-testid="stCaptionContainer"], [data-testid="stCaptionContainer"] p,
[data-testid="stCaptionContainer"] code, [data-testid="stSidebar"] code {{
  color: {CAPTION_COLOR} !important;
  opacity: 1 !important;
}}
.lmm-sr-only, [data-testid="stElementContainer"]:has(.lmm-sr-only) {{
  position: absolute !important;
  width: 1px !important;
  height: 1px !important;
  overflow: hidden !important;
  clip-path: inset(50%) !important;
  white-space: nowrap !important;
}}
label[data-testid="stWidgetLabel"][disabled], label[data-testid="stWidgetLabel"][disabled] p {{
  color: {DISABLED_LABEL_COLOR} !important;
  opacity: 1 !important;
}}
{_code_token_css()}
</style>
"""


#: shown after a reconnect that could not resume the session (see the module docstring)
LOST_SESSION_NOTICE = (
    "**Your previous session has ended.** The connection to the server was lost and the "
    "server that held your session was stopped or restarted. Your data, models and results "
    "were kept only in that server's memory and are gone: load your data again (nothing "
    "was saved on disk)."
)
_LOST = "lmm_lost_session_notice"


def apply_css() -> None:
    """Add :data:`APP_CSS` to the page (call once per run, from ``app.py``); track the
    session and show :data:`LOST_SESSION_NOTICE` when it replaced a lost one."""
    st.html(APP_CSS)
    lost_session_notice(events.track_session())


def lost_session_notice(lost_now: bool = False) -> None:
    """Show :data:`LOST_SESSION_NOTICE` from the run where ``lost_now`` until dismissed."""
    if lost_now:
        st.session_state[_LOST] = True
    if st.session_state.get(_LOST):
        with st.container(key="lost_session_notice"):
            st.warning(LOST_SESSION_NOTICE, icon=":material/cloud_off:")
            st.button("Dismiss", on_click=st.session_state.pop, args=(_LOST, None))


def short_text(text: str, limit: int = SIDEBAR_FORMULA_CHARS) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis (whitespace runs collapsed)."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: max(limit - 1, 1)].rstrip() + "…"
