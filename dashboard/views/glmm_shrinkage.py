"""The Shrinkage page's words for a GLMM (link scale) and its view of a model with random
effects above the patient and a covariance of the visits (Streamlit)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard.analysis.mmrm_models import combined_sentence
from dashboard.base.markup import escape_message
from dashboard.base.numbers import MISSING, styled

__all__ = ["glmm_intro", "render_combined_effects"]


def glmm_intro(result, label: str) -> None:
    """What the GLMM's estimates are: on the link scale, own fits that can be infinite."""
    scale = {"logit": "logit (log-odds)", "log": "log (log-rate)"}.get(
        result.link, f"{result.link} link"
    )
    st.info(
        f"**A GLMM: every number on this page is on the {escape_message(scale)} scale**, "
        f"where the {label}s' random effects add up (the probability or rate scale bends). "
        f"A {label}'s own estimate is its own "
        + ("logistic" if result.family.name == "binomial" else "Poisson")
        + f" fit, with the population curve as a fixed offset; the mixed-model estimate is "
        f"the population value plus the {label}'s conditional mode. A {label} whose "
        "outcomes are all 0 or all 1 (counts all 0) has no finite own estimate: it is not "
        "drawn in the arrow plots and is listed at the end of the page, while the mixed "
        "model still gives it a finite estimate, pulled toward the population."
    )


def render_combined_effects(result) -> None:
    """A model with random effects above the patient and a covariance of the visits: the
    sentence why there is no patient-level shrinkage, and its random effects per group."""
    st.info(combined_sentence(result, "shrinkage"))
    for group, frame in result.ranef.items():
        table = frame.copy()
        table.index = table.index.astype(str)
        table = table.sort_values(table.columns[0])
        st.markdown(f"**Random effects per {escape_message(str(group))}** (sorted)")
        st.dataframe(
            styled(pd.DataFrame(table), 3),
            key=f"shrink_combined_{group}",
            height=min(400, 36 + 35 * len(table)),
            placeholder=MISSING,
        )
    st.caption(
        "Each row is a level's predicted deviation from the population mean (BLUP, in the "
        "outcome's units); their spread is smaller than the SD of the Model page's variance "
        "components, because each is pulled toward 0."
    )
