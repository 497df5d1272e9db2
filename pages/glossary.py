"""Glossary page: every term and number of the app in plain language, searchable."""

from __future__ import annotations

import streamlit as st

from dashboard.help.texts import ENTRIES, by_topic, search
from dashboard.state.session import init_state
from dashboard.views.help import entry_markdown

SEARCH = "glossary_search"


def main() -> None:
    """Render the Glossary page."""
    init_state()
    st.title("Glossary")
    st.caption(
        "What every number in the app is and how to read it, grouped by topic. The same texts "
        "appear in the (?) tooltips and 'How to read this' boxes of the other pages."
    )
    query = st.text_input(
        "Search the glossary",
        key=SEARCH,
        placeholder="e.g. shrinkage, AIC, singular, prediction interval",
        help="Shows the entries that contain every word you type (term, explanation, formula "
        "or another name for it, such as lme4's).",
    )
    found = search(query)
    if not found:
        st.info(f"No entry contains '{query}'. Try a shorter or different word.")
        return
    grouped = by_topic(found)
    if query.strip():
        st.caption(f"{len(found)} of {len(ENTRIES)} entries match.")
    else:
        st.caption(f"{len(ENTRIES)} entries. Topics: " + " · ".join(f"{t}" for t in grouped) + ".")
    for topic, entries in grouped.items():
        st.subheader(topic)
        for e in entries:
            st.markdown(entry_markdown(e))


main()
