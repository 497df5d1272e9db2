"""LMM Explorer: entry point (page config, state, shared sidebar, navigation).

Run with ``streamlit run app.py``. Pages live in ``pages/`` and are listed explicitly in
:data:`PAGES`; later pages (Model, Trajectories, ...) are added to that list.
"""

from __future__ import annotations

import streamlit as st

from dashboard import fit_jobs
from dashboard.fits import active_record, delete_fit, records_for_active_data, set_active
from dashboard.layout import apply_css, short_text
from dashboard.markup import code_span, escape_text
from dashboard.state import Keys, init_state

SIDEBAR_ACTIVE = "sidebar_active_fit"  # widget key of the active-model choice

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


def sidebar() -> None:
    """Shared sidebar: the active dataset and the fitted models."""
    with st.sidebar:
        data = st.session_state[Keys.DATASET]
        st.markdown("**Active dataset**")
        st.caption(
            f"{st.session_state[Keys.DATA_NAME]}: {len(data):,} rows x {data.shape[1]} columns"
        )
        fits_sidebar()
        fit_jobs.render_progress()


def _choose_active() -> None:
    set_active(st.session_state[SIDEBAR_ACTIVE])


def fits_sidebar() -> None:
    """The fitted models of the active dataset: choose the active one, delete any."""
    st.markdown("**Fitted models**")
    records = records_for_active_data()
    others = len(st.session_state[Keys.FITS]) - len(records)
    if not records:
        st.caption("No models fitted yet. Build one on the Model page.")
        if others:
            st.caption(f"{others} more model(s) belong to other datasets.")
        return
    names = [r["name"] for r in records]
    active = active_record()
    st.session_state[SIDEBAR_ACTIVE] = active["name"] if active else names[-1]
    st.radio(
        "Active model (shown on the result pages)",
        names,
        key=SIDEBAR_ACTIVE,
        on_change=_choose_active,
        captions=[code_span(short_text(r["formula"])) for r in records],  # one line each
        help="The full formulas:\n\n"
        + "\n\n".join(f"{escape_text(r['name'])}: {code_span(r['formula'])}" for r in records),
    )
    for name in names:
        st.button(
            f"Delete {name.split(':')[0]}",
            key=f"sidebar_delete_{name}",
            on_click=delete_fit,
            args=(name,),
            help=f"Remove {name} from this session.",
        )
    if others:
        st.caption(f"{others} more model(s) belong to other datasets.")


def run() -> None:
    """Build the app: config, state, sidebar and navigation."""
    st.set_page_config(page_title="LMM Explorer", layout="wide")
    apply_css()  # small screens: sidebar width, padding, metric size (dashboard.layout)
    init_state()
    fit_jobs.collect(toast=True)  # a fit finished in the background: store it on any page
    nav = st.navigation([st.Page(path, title=title) for path, title in PAGES])
    sidebar()
    nav.run()


if __name__ == "__main__":
    run()
