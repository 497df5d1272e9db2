"""Compare page, "Random-effects ladder": models with the same fixed effects, each adding one
piece of random-effects structure, fitted as a job of the runner and tested step by step
(:mod:`dashboard.analysis.ladder`); the verdicts, the table, the figure and the button that
keeps the fits."""

from __future__ import annotations

from functools import partial

import pandas as pd
import streamlit as st

from dashboard.analysis import ladder as lad
from dashboard.analysis.chart_text import ladder_sentence
from dashboard.analysis.compare_glmm import is_glmm
from dashboard.base.markup import code_span
from dashboard.base.numbers import MISSING, styled
from dashboard.help.texts import help_text
from dashboard.state import work
from dashboard.state.fits import active_record
from dashboard.state.session import Keys, current_data, current_roles
from dashboard.views import jobs as jobs_view
from dashboard.views.compare_shared import (
    CRITERIA_COLUMNS,
    LRT_COLUMNS,
    RULES,
    cached_fit,
    keep_fits,
    linear_only,
    show_kept_notice,
)
from dashboard.views.help import column, how_to_read, text_column
from dashboard.views.widgets import DATA_PAGE, show_figure
from lmm_core import LMMError

__all__ = ["LADDER", "ladder_section", "show_ladder"]

LADDER = "ladder"  # job kind
LADDER_COLUMNS = {
    "step": st.column_config.TextColumn("step", help=help_text("re_ladder")),
    **CRITERIA_COLUMNS,
    "Chisq": st.column_config.NumberColumn(
        "Chisq",
        help="Likelihood-ratio statistic against the step above: twice the gain in "
        "log-likelihood (the drop in the criterion).",
    ),
    "Df": LRT_COLUMNS["Df"],
    "p": st.column_config.NumberColumn(
        "p",
        help="p-value of the step: chi-bar-square when it adds a variance (half the "
        "chi-square p-value for one variance), plain chi-square when it adds a correlation.",
    ),
    "reference": st.column_config.TextColumn(
        "reference", help="The distribution the statistic is compared with.", width="medium"
    ),
    "singular": text_column("singular_fit", "singular"),
    "seconds": st.column_config.NumberColumn(
        "seconds", help="Time taken by this fit (0 when it came from the cache)."
    ),
}


def _status(ladder: lad.Ladder) -> tuple[str, str]:
    """The ladder's outcome in one line (:func:`dashboard.analysis.ladder.ladder_status`)."""
    seconds = sum(s.seconds for s in ladder.steps)
    took = f"{seconds:.1f}" if seconds >= 1 else f"{seconds:.2f}"  # fixed: timing
    return lad.ladder_status(ladder.steps, took)


def _start_ladder(
    plan: lad.LadderPlan,
    reml: bool,
    frame: pd.DataFrame,
    fit_key: str,
    settings: lad.LadderSettings,
) -> None:
    """Fit the ladder as a job of the runner (progress per rung, Cancel between rungs; it
    goes on across page switches) and store it for the active dataset."""
    data_key = st.session_state[Keys.DATA_KEY]

    def store(ladder: lad.Ladder) -> str:
        st.session_state[Keys.LADDER] = {
            **st.session_state[Keys.LADDER],
            data_key: lad.StoredLadder(settings, ladder),
        }
        return _status(ladder)[0]

    jobs_view.launch(
        (LADDER, *settings),
        lambda job: work.ladder(plan, cached_fit(fit_key, reml, frame, job), reml, job.report),
        kind=LADDER,
        label=f"Fitting the random-effects ladder ({len(plan.specs)} steps)",
        store=store,
    )


def _add_ladder_fits(data_key: str) -> None:
    """Store the ladder's fits as session fit records; the active model stays active."""
    stored = st.session_state[Keys.LADDER].get(data_key)
    if stored is None:
        return
    keep_fits(
        partial(lad.ladder_records, stored.ladder),
        data_key,
        Keys.LADDER_NOTICE,
        "Every model of the ladder is already among the fitted models.",
    )


def _best_line(ladder: lad.Ladder) -> str:
    fitted = [(i, s.result) for i, s in enumerate(ladder.steps) if s.ok]
    parts = []
    for crit in ("aic", "bic"):
        i, _ = min(fitted, key=lambda pair: getattr(pair[1], crit))
        parts.append(f"lowest {crit.upper()}: step {i + 1} ({ladder.steps[i].spec.label})")
    return "L" + "; ".join(parts)[1:] + "."


def show_ladder(ladder: lad.Ladder, data_key: str, can_add: bool) -> None:
    """Verdicts, problems, the table, the figure and the button to keep the fits."""
    if not ladder.fitted:
        for problem in ladder.problems:
            st.warning(problem)
        return
    st.markdown("**Verdict, step by step**")
    for v in ladder.verdicts:
        st.markdown(
            f"- Step {v.index + 1} vs {v.against + 1}: {v.sentence}",
            help=f"p from the likelihood-ratio test against {v.reference}; AIC and BIC "
            "changes are this step's value minus the step below (negative: better).",
        )
    if not ladder.verdicts:
        st.info("Fewer than two steps could be fitted, so there is nothing to test.")
    st.markdown(
        _best_line(ladder),
        help=help_text("aic") + "\n\n" + help_text("bic"),
    )
    for problem in ladder.problems:
        st.warning(problem)
    table = lad.ladder_table(ladder).drop(columns=["formula"])
    criterion = "REML criterion" if ladder.reml else "deviance"
    config = dict(LADDER_COLUMNS)
    config["criterion"] = column("reml_criterion" if ladder.reml else "deviance", criterion)
    st.dataframe(
        styled(table, RULES),
        hide_index=True,
        key="ladder_table",
        column_config=config,
        placeholder=MISSING,
    )
    show_figure(
        lad.ladder_figure(ladder),
        key="ladder_figure",
        description=ladder_sentence(lad.ladder_table(ladder)),
    )
    st.caption(
        "Each step keeps the fixed effects and adds one piece of random-effects structure, so "
        f"the {'REML' if ladder.reml else 'ML'} fits can be compared by a likelihood-ratio "
        "test and by AIC and BIC (lower is better). Climb while a step is clearly needed."
    )
    show_kept_notice(Keys.LADDER_NOTICE)
    st.button(
        "Add the ladder's models to the fitted models",
        key=Keys.W_LADDER_ADD,
        on_click=_add_ladder_fits,
        args=(data_key,),
        disabled=not can_add,
        help="Keep these fits in the session so the Model, Diagnostics and other pages can "
        "show them (the active model stays as it is)."
        if can_add
        else "Rows with a missing value were left out of the ladder, so its fits do not match "
        "the dataset's rows and cannot be kept.",
    )


def _plan(data: pd.DataFrame) -> lad.LadderPlan | None:
    """The ladder of the active dataset, or ``None`` after saying why there is none."""
    active = active_record()
    why = linear_only("The ladder", active)
    if why is not None and is_glmm(active.result):
        st.info(why)
        return None
    if why is not None:  # an MMRM: the ladder of random effects on its fixed effects
        st.info(why + " Its steps are random-effects models with the same fixed effects.")
    try:
        return lad.plan_ladder(data, current_roles(), active.formula if active else None)
    except LMMError as error:
        st.info(str(error))
        st.page_link(DATA_PAGE, label="Go to the Data page")
        return None


def ladder_section() -> None:
    """Fit the random-effects ladder on request and show it."""
    st.header("Random-effects ladder")
    st.caption(
        "How much random-effects structure do the data support? One click fits a ladder of "
        "models with the same fixed effects, each adding one piece: a random intercept per "
        "subject, a random slope, the correlation between them, and a cluster level. Each "
        "step is tested against the one below it."
    )
    data = current_data()
    plan = _plan(data)
    if plan is None:
        return
    frame, dropped = lad.ladder_data(data, plan)
    data_key = st.session_state[Keys.DATA_KEY]
    fit_key = data_key if not dropped else f"{data_key}|complete:{','.join(plan.complete_columns)}"
    steps_md = "\n".join(f"{i + 1}. {code_span(s.formula)}" for i, s in enumerate(plan.specs))
    st.markdown(steps_md)
    for note in plan.notes:
        st.caption(note)
    if dropped:
        st.caption(
            f"{dropped:,} rows with a missing {', '.join(plan.complete_columns)} are left out "
            "of every step, so that all steps use the same rows."
        )
    stored = st.session_state[Keys.LADDER].get(data_key)
    if stored is not None and Keys.W_LADDER_REML not in st.session_state:
        st.session_state[Keys.W_LADDER_REML] = "REML" if stored.settings.reml else "ML"
    method = st.radio(
        "Fit by",
        ["REML", "ML"],
        horizontal=True,
        key=Keys.W_LADDER_REML,
        help=help_text("reml_vs_ml")
        + "\n\nThe fixed effects are the same in every step, so REML fits may be compared.",
    )
    reml = method == "REML"
    settings = lad.LadderSettings(fit_key, reml, tuple(s.formula for s in plan.specs))
    if st.button("Fit the ladder", key=Keys.W_LADDER_RUN, type="primary"):
        _start_ladder(plan, reml, frame, fit_key, settings)
    jobs_view.show_notice(LADDER)
    if jobs_view.show_progress((LADDER, *settings)):
        return
    stored = st.session_state[Keys.LADDER].get(data_key)
    if stored is None:
        return
    if stored.settings != settings:
        st.info(
            "The ladder was fitted with other settings (method, roles or active model). "
            "Click 'Fit the ladder' to fit it again."
        )
        return
    label, state = _status(stored.ladder)
    (st.caption if state == "complete" else st.warning)(label)
    show_ladder(stored.ladder, data_key, can_add=not dropped)
    how_to_read("re_ladder", "lrt", "chibar", "aic", "bic", label="How to read the ladder")
