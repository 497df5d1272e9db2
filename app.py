"""LMM Explorer: entry point (page config, the menu, state, shared sidebar, navigation).

Run with ``streamlit run app.py``. The pages live in ``pages/`` and are listed, in menu
order, in :data:`dashboard.views.menu.PAGES`.

The first thing every run draws is the app's own menu (:mod:`dashboard.views.menu`); only then are
the dashboard's heavy modules imported (pandas, scipy, plotly figures and the engine: about
1.5 s in a fresh server), so that the first paint shows the menu. Streamlit's own menu is
off (see :mod:`dashboard.views.menu` for why).
"""

from __future__ import annotations

import streamlit as st

from dashboard.views.layout import apply_css
from dashboard.views.menu import PAGES, give_menu_a_head_start, page_list, render_menu
from dashboard.views.signin import account_box, gate

__all__ = ["PAGES", "run"]


def run() -> None:
    """Build the app: config, the sign-in gate (:mod:`dashboard.views.signin`, off by default)
    and menu first, then state, finished work, sidebar and page."""
    st.set_page_config(page_title="LMM Explorer", layout="wide")
    apply_css()  # small screens: sidebar width, padding, metric size (dashboard.views.layout)
    pages = page_list()
    nav = st.navigation(pages, position="hidden")  # the menu is drawn by render_menu
    if not gate():  # sign-in on and not let in: only the sign-in or refusal page was drawn
        return
    render_menu(pages)
    give_menu_a_head_start()  # a session's first run: the browser draws the menu first
    # Imported here, after the menu has been sent: they take seconds in a fresh server.
    from dashboard.state.session import Keys, init_state
    from dashboard.views import jobs as jobs_view
    from dashboard.views import link_restore, sidebar

    init_state()
    jobs_view.runner()  # the first session starts the job runner and its fork server
    st.session_state[Keys.CURRENT_PAGE] = nav.url_path
    link_restore.restore_once()  # first run: the address bar's view, models fitted as a job
    jobs_view.collect(toast=True)  # work finished in the background: store it on any page
    sidebar.render()
    account_box()  # signed in: who, and "Sign out" (drops the session's data at once)
    link_restore.show_notice()
    try:
        nav.run()
    finally:  # also after st.stop() on a page: the address bar follows the view
        link_restore.sync()


if __name__ == "__main__":
    run()
