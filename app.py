"""LMM Explorer: entry point (page config, state, shared sidebar, navigation).

Run with ``streamlit run app.py``. Pages live in ``pages/`` and are listed explicitly in
:data:`PAGES`.
"""

from __future__ import annotations

import streamlit as st

from dashboard import jobs_view, sidebar
from dashboard.layout import apply_css
from dashboard.state import init_state

#: (file, title), in menu order. No page icons on purpose: the active page's icon becomes the
#: favicon, and Streamlit fetches ":material/..." favicons from fonts.gstatic.com (a request
#: leaving the machine); emoji need a colour-emoji font that servers often lack.
PAGES: list[tuple[str, str]] = [
    ("pages/data.py", "Data"),
    ("pages/explore.py", "Explore"),
    ("pages/model.py", "Model"),
    ("pages/trajectories.py", "Trajectories"),
    ("pages/prediction.py", "Prediction"),
    ("pages/shrinkage.py", "Shrinkage"),
    ("pages/compare.py", "Compare"),
    ("pages/diagnostics.py", "Diagnostics"),
    ("pages/teach.py", "Teach"),
    ("pages/glossary.py", "Glossary"),
    ("pages/export.py", "Export"),
]


def run() -> None:
    """Build the app: config, state, finished work, sidebar and navigation."""
    st.set_page_config(page_title="LMM Explorer", layout="wide")
    apply_css()  # small screens: sidebar width, padding, metric size (dashboard.layout)
    init_state()
    jobs_view.collect(toast=True)  # work finished in the background: store it on any page
    nav = st.navigation([st.Page(path, title=title) for path, title in PAGES])
    sidebar.render()
    nav.run()


if __name__ == "__main__":
    run()
