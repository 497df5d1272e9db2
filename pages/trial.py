"""Trial page: a randomized study with scheduled visits, analysed by an MMRM.

The drop-out per arm and visit, the MMRM fitted with every covariance structure (comparison
table and the analysis plan's verdict), the primary model's coefficients and its correlation
between visits beside the observed one; drawn by :mod:`dashboard.views.trial`.
"""

from __future__ import annotations

import streamlit as st

from dashboard.state.session import init_state
from dashboard.views.trial import trial_page
from dashboard.views.widgets import dataset_caption


def main() -> None:
    """Render the Trial page."""
    init_state()
    st.title("Trial")
    st.caption(
        "A randomized trial with scheduled visits, analysed as in its analysis plan: a mixed "
        "model for repeated measures (MMRM) with one mean per arm and visit and a structured "
        "covariance between a patient's visits."
    )
    st.markdown(dataset_caption())
    trial_page()


main()
