"""The shared sidebar under the menu: the active dataset, this session's running work (with
progress and Cancel), the fitted models (choose the active one, delete any) and the session
(share, save, open: :mod:`dashboard.views.session_panel`)."""

from __future__ import annotations

import streamlit as st

from dashboard.base.markup import code_span, escape_text
from dashboard.state.fits import active_record, delete_fit, records_for_active_data
from dashboard.state.session import Keys, persistent_widget
from dashboard.views import jobs as jobs_view
from dashboard.views import session_panel
from dashboard.views.layout import short_text

__all__ = ["SIDEBAR_ACTIVE", "fits_sidebar", "render"]

SIDEBAR_ACTIVE = "sidebar_active_fit"  # widget key of the active-model choice


def render() -> None:
    """The sidebar below the menu (every page)."""
    with st.sidebar:
        st.divider()
        data = st.session_state[Keys.DATASET]
        st.markdown("**Active dataset**")
        st.caption(
            f"{st.session_state[Keys.DATA_NAME]}: {len(data):,} rows x {data.shape[1]} columns"
        )
        jobs_view.sidebar_status()
        fits_sidebar()
        session_panel.render()


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
    names = [r.name for r in records]
    active = active_record()
    st.radio(
        "Active model (shown on the result pages)",
        names,
        **persistent_widget(
            SIDEBAR_ACTIVE,
            st.session_state,
            Keys.ACTIVE_FIT,
            active.name if active else names[-1],
            options=names,
        ),
        captions=[code_span(short_text(r.formula)) for r in records],  # one line each
        help="The full formulas:\n\n"
        + "\n\n".join(f"{escape_text(r.name)}: {code_span(r.formula)}" for r in records),
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
