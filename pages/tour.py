"""Tour page: a guided story of a mixed model in about eight steps, on the active data."""

from __future__ import annotations

from dashboard.state.session import init_state
from dashboard.views.tour import render_tour

init_state()
render_tour()
