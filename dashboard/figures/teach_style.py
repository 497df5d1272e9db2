"""The simulation lab's figures, shared look: colours, top legends, legend-only entries, the
word for the slope.

Pure functions, no Streamlit. Used by :mod:`dashboard.figures.teach` (one study),
:mod:`dashboard.figures.teach_curves` (its curves) and :mod:`dashboard.figures.teach_repeat`
(many studies).
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from dashboard.figures.style import PALETTE
from lmm_core.simulation.teaching_curves import is_curved
from lmm_core.simulation.teaching_truth import LabTruth

__all__ = ["EST", "GREY", "MISS", "OWN", "TRUTH", "legend_entry", "legend_top", "slope_word"]

#: the estimate (blue), a subject's own value (orange), the truth (black), an interval that
#: misses the truth (red) and what only helps to read the figure (grey)
EST, OWN, TRUTH, MISS, GREY = PALETTE[0], PALETTE[1], "#000000", PALETTE[3], "#999999"


def legend_top(fig: go.Figure, y: float = 1.02) -> None:
    """A horizontal legend above the plot, starting at its left edge (its bottom at ``y``)."""
    fig.update_layout(legend={"orientation": "h", "yanchor": "bottom", "y": y, "x": 0})


def legend_entry(fig: go.Figure, name: str, *, line: Any = None, **trace: Any) -> None:
    """A legend entry with nothing drawn: a trace without points, a line sample when ``line``
    is given (else a marker: pass ``marker=``); ``trace`` adds other Scatter properties
    (``legendrank``, ``legendgroup``...)."""
    mode = "lines" if line is not None else "markers"
    fig.add_trace(go.Scatter(x=[None], y=[None], mode=mode, name=name, line=line, **trace))


def slope_word(truth: LabTruth) -> str:
    """``"average slope"`` when the truth or the fit is curved, else ``"slope"``."""
    return "average slope" if is_curved(truth) else "slope"
