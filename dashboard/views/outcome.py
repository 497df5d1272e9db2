"""The Model page's note on outcomes that are binary or counts (one call, one box)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard.base.markup import escape_text
from dashboard.io.outcome_kind import outcome_note
from dashboard.state.session import Keys
from dashboard.views.glmm_model import default_family

__all__ = ["model_outcome", "render_outcome_note"]


def model_outcome(default: str | None) -> str | None:
    """The outcome chosen in the Model page's builder for the active data, else ``default``."""
    choices = st.session_state[Keys.MODEL_CHOICES].get(st.session_state[Keys.DATA_KEY], {})
    return choices.get("outcome", default)


def render_outcome_note(data: pd.DataFrame, outcome: str | None) -> None:
    """Say in one warning box when the model's outcome is binary or looks like counts and
    is modelled as a measurement (no box when the Model page's kind of outcome is a GLMM).

    Parameters
    ----------
    data
        The active dataset.
    outcome
        The outcome role; the builder's own choice, when the user made one, wins.
    """
    outcome = model_outcome(outcome)
    if outcome is None or outcome not in data.columns:
        return
    choices = st.session_state[Keys.MODEL_CHOICES].get(st.session_state[Keys.DATA_KEY], {})
    stored = choices.get("family") if choices.get("family_outcome") == outcome else None
    if (stored or default_family(data[outcome])) != "gaussian":
        return  # fitted as a GLMM: the note on a linear model of it does not apply
    note = outcome_note(data[outcome], escape_text(str(outcome)))
    if note:
        st.warning(note, icon=":material/info:")
