"""Teach page: a simulation lab. Set the truth, simulate a study, fit it, compare, repeat.

For a continuous outcome the sections are drawn by :mod:`dashboard.views.teach` (1: the truth
and the fitted shape of time, 2: one study), :mod:`dashboard.views.teach_shrinkage` (3) and
:mod:`dashboard.views.teach_repeat` (4); for a binary outcome by
:mod:`dashboard.views.teach_binary` (with :mod:`dashboard.views.quadrature`).
"""

from __future__ import annotations

import streamlit as st

from dashboard.analysis.teach_binary import BINARY_INTRO
from dashboard.analysis.teach_controls import DEFAULT_SEED, settings_to_truth
from dashboard.analysis.teach_texts import INTRO
from dashboard.state.session import init_state
from dashboard.views.teach import one_study, settings, truth_controls
from dashboard.views.teach_binary import binary_lab, outcome_choice
from dashboard.views.teach_repeat import repeat_section
from dashboard.views.teach_shrinkage import shrinkage_section
from lmm_core import LMMError


def continuous_lab() -> None:
    """The lab of a continuous outcome (a linear mixed model)."""
    st.markdown(INTRO)
    truth_controls()
    try:
        truth = settings_to_truth(settings())
    except LMMError as err:
        st.error(f"These settings cannot be simulated: {err}")
        st.stop()
    seed = int(settings().get("seed", DEFAULT_SEED))
    lab, result = one_study(truth, seed)
    shrinkage_section(truth, seed, lab, result)
    repeat_section(truth, seed)


def main() -> None:
    """Render the Teach page."""
    init_state()
    st.title("Teach: simulation lab")
    if outcome_choice() == "binary":
        st.markdown(BINARY_INTRO)
        binary_lab()
    else:
        continuous_lab()


main()
