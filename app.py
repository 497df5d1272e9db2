"""LMM Explorer: entry point (page config, state, shared sidebar, navigation).

Run with ``streamlit run app.py``. Pages live in ``pages/`` and are listed explicitly in
:data:`PAGES`; later pages (Model, Trajectories, ...) are added to that list.
"""

from __future__ import annotations

import streamlit as st

from dashboard.state import Keys, init_state

#: (file, title), in menu order. No page icons on purpose: the active page's icon becomes the
#: favicon, and Streamlit fetches ":material/..." favicons from fonts.gstatic.com (a request
#: leaving the machine); emoji need a colour-emoji font that servers often lack.
PAGES: list[tuple[str, str]] = [
    ("pages/data.py", "Data"),
    ("pages/explore.py", "Explore"),
    ("pages/compare.py", "Compare"),
    ("pages/diagnostics.py", "Diagnostics"),
]


def sidebar() -> None:
    """Shared sidebar: the active dataset and the fitted models."""
    with st.sidebar:
        data = st.session_state[Keys.DATASET]
        st.markdown("**Active dataset**")
        st.caption(
            f"{st.session_state[Keys.DATA_NAME]}: {len(data):,} rows x {data.shape[1]} columns"
        )
        st.markdown("**Fitted models**")
        fits = st.session_state[Keys.FITS]
        if fits:
            for record in fits:
                st.caption(f"{record['name']}: `{record['formula']}`")
        else:
            st.caption("No models fitted yet.")


def run() -> None:
    """Build the app: config, state, sidebar and navigation."""
    st.set_page_config(page_title="LMM Explorer", layout="wide")
    init_state()
    nav = st.navigation([st.Page(path, title=title) for path, title in PAGES])
    sidebar()
    nav.run()


if __name__ == "__main__":
    run()
