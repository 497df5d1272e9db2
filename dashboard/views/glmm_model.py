"""The Model page's "Kind of outcome" controls: linear mixed model or GLMM, link, quadrature
points and the exposure of counts (Streamlit; the rules are in
:mod:`dashboard.analysis.glmm_family`)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from dashboard.analysis.glmm_family import (
    KIND_HELP,
    KINDS,
    LINKS,
    MAX_NAGQ,
    GLMMChoice,
    exposure_problem,
    guess_exposure,
    quadrature_reason,
)
from dashboard.base.markup import code_span, escape_message
from dashboard.help.texts import entry, help_text
from dashboard.io.outcome_kind import binary_columns, outcome_kind
from dashboard.io.roles import Roles, is_numeric, missing_longitudinal_roles
from dashboard.state.session import current_data, current_roles, persistent_widget
from dashboard.views.widgets import require_longitudinal
from lmm_core.formula.quoting import quote_name

__all__ = [
    "Seeder",
    "advanced_choice",
    "default_family",
    "exposure_choice",
    "kind_choice",
    "require_model_data",
]

NO_EXPOSURE = "(none: counts per row)"
#: widget key of the "Kind of outcome" choice (after the Model page's prefix)
FAMILY = "family"


class Seeder:
    """Keyword arguments of a widget kept in ``store`` under ``name`` with key
    ``prefix + name`` (:func:`dashboard.state.session.persistent_widget`)."""

    def __init__(self, store: dict[str, Any], prefix: str) -> None:
        self.store, self.prefix = store, prefix

    def __call__(self, name: str, default: Any, options: list | None = None, **kw: Any):
        return persistent_widget(
            self.prefix + name, self.store, name, default, options=options, **kw
        )


def default_family(series: pd.Series) -> str:
    """The family the outcome looks like: binomial for yes/no (0/1, logical, two
    categories), Poisson for counts, else a linear mixed model."""
    found = outcome_kind(series)
    if found is None or not found.glmm_ready:
        return "gaussian"
    return found.family


def kind_choice(series: pd.Series, outcome: str, seed: Seeder) -> str:
    """The "Kind of outcome" selectbox (default: what the outcome looks like) with the
    plain explanation of the chosen kind; returns the family.

    The default follows the outcome: choosing another outcome proposes its own kind again.
    """
    if seed.store.get("family_outcome") != outcome:
        seed.store["family_outcome"] = outcome
        seed.store.pop(FAMILY, None)
    options = list(KINDS)
    default = default_family(series)
    numeric = is_numeric(series) and not pd.api.types.is_bool_dtype(series)
    if not numeric:
        options = ["binomial"]  # a yes/no column that is not numbers fits only a logistic model
    family = st.selectbox(
        "Kind of outcome",
        options,
        format_func=lambda f: KINDS[f],
        **seed(FAMILY, default if default in options else options[0], options),
        help="\n\n".join(f"- **{KINDS[f]}**: {entry(KIND_HELP[f]).what}" for f in KINDS),
    )
    seed.store[FAMILY] = family  # the default too: the outcome note reads it
    st.caption(escape_message(entry(KIND_HELP[family]).what), help=help_text(KIND_HELP[family]))
    return family


#: Why a fit streamed from a server file has no quadrature.
STREAMED_REASON = (
    "The fit streams the whole file from the server, by the Laplace approximation only: "
    "quadrature would need every patient's rows in memory."
)


def advanced_choice(family: str, formula: str, seed: Seeder, streamed: bool = False) -> GLMMChoice:
    """Link and quadrature points of a GLMM in an "advanced" expander (nagq disabled, with
    the reason, unless the model has a single random intercept and is fitted in memory;
    ``streamed``: the fit streams a server file)."""
    if family == "gaussian":
        return GLMMChoice()
    links = list(LINKS[family])
    reason = STREAMED_REASON if streamed else quadrature_reason(formula)
    with st.expander("Advanced: link and quadrature", expanded=False):
        link = st.selectbox(
            "Link function",
            links,
            **seed(f"link_{family}", links[0], links),
            help=help_text("glmm_link"),
            disabled=len(links) == 1,
        )
        nagq = st.number_input(
            "Quadrature points (1 = Laplace)",
            min_value=1,
            max_value=MAX_NAGQ,
            step=1,
            **seed("nagq", 1, fix=lambda n: min(max(int(n), 1), MAX_NAGQ)),
            disabled=reason is not None,
            help=help_text("laplace_quadrature"),
        )
        if reason:
            st.caption(escape_message(reason))
    return GLMMChoice(family, link, 1 if reason else int(nagq))


def exposure_choice(data: pd.DataFrame, outcome: str, seed: Seeder) -> str | None:
    """For counts: the optional exposure column (time at risk; default: a column whose name
    says so, :func:`guess_exposure`), refused with the reason when it is zero or negative
    somewhere; returns the column or ``None``."""
    numeric = [c for c in map(str, data.columns) if c != outcome and is_numeric(data[c])]
    options = [NO_EXPOSURE, *numeric]
    picked = st.selectbox(
        "Exposure (time at risk), optional",
        options,
        **seed("exposure", guess_exposure(data, outcome) or NO_EXPOSURE, options),
        help=help_text("exposure_offset"),
    )
    if picked == NO_EXPOSURE:
        return None
    problem = exposure_problem(data[picked], picked)
    if problem:
        st.error(escape_message(problem))
        return None
    st.caption(
        f"Counts per unit of {escape_message(picked)}: the formula holds "
        f"{code_span(f'offset(log({quote_name(picked)}))')}, so the rate ratios compare "
        f"counts per unit of {escape_message(picked)}, which is no fixed effect."
    )
    return picked


def require_model_data(page_label: str) -> tuple[pd.DataFrame, Roles]:
    """``(data, roles)`` for the Model page and the pages of its fits: as
    :func:`dashboard.views.widgets.require_longitudinal`, but an outcome that is a yes/no
    text column ("yes"/"no", two categories) is accepted: a logistic model fits it."""
    data, roles = current_data(), current_roles()
    if data is not None and roles.outcome in binary_columns(data):
        if missing_longitudinal_roles(data, roles) == ["a numeric outcome column"]:
            return data, roles
    return require_longitudinal(page_label)
