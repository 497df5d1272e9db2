"""The Tour page: the guided tour's panel, its navigation and the fits it needs.

The steps (:mod:`dashboard.analysis.tour`) are built from the roles of the active data
(subject, time, outcome). Each step fits the models it needs through the app's cached fit
(:func:`dashboard.state.cached.fit_model`, or :func:`~dashboard.state.cached.fit_glmm_model`
on a yes/no or count outcome, with the Model page's family and canonical link; instant on
the examples) and stores them as the
session's fit records, so that leaving the tour at any step opens the step's page with its
model active and every fit kept for exploring. Next and Back move between the steps (the
right and left arrow keys, PageDown and PageUp too in the presenter view,
:mod:`dashboard.views.presenter`;
Escape leaves that view); the step shown is kept per dataset.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from dashboard.analysis.glmm_family import guess_exposure
from dashboard.analysis.records import FitRecord
from dashboard.analysis.tour import SLOPE, StepSpec, TourColumns, TourPlan, plan_tour
from dashboard.base.markup import code_span, escape_message, escape_text
from dashboard.base.numbers import styled
from dashboard.io.outcome_kind import outcome_kind
from dashboard.io.roles import is_numeric
from dashboard.state import cached
from dashboard.state.fits import add_fit, find_fit, next_name, set_active
from dashboard.state.session import Keys, current_data, current_roles, persistent_widget
from dashboard.views import presenter
from dashboard.views.help import how_to_read
from dashboard.views.tour_steps import StepView, TourContext, build_step
from dashboard.views.widgets import DATA_PAGE, dataset_caption, show_figure
from lmm_core import LMMError

__all__ = ["LABELS", "render_tour", "tour_columns"]

#: labels of the tour's fit records (``M<k>: <label>``)
LABELS = {"intercept": "random intercept (tour)", SLOPE: "random slope (tour)"}


def tour_columns() -> tuple[TourColumns | None, str]:
    """The roles of the active data as :class:`TourColumns`, or ``None`` and what is missing
    (a subject and a numeric or yes/no outcome are needed; a time that is not numeric is left
    out). A yes/no outcome (0/1, logical, two categories) or counts make a GLMM tour
    (:func:`dashboard.io.outcome_kind.outcome_kind`), counts with the exposure column the Model
    page would guess."""
    data, roles = current_data(), current_roles()
    missing = []
    if not roles.subject or roles.subject not in data.columns:
        missing.append("a subject column")
    kind = outcome_kind(data[roles.outcome]) if roles.outcome in data.columns else None
    glmm = kind is not None and kind.kind != "continuous" and kind.glmm_ready
    if (
        not roles.outcome
        or roles.outcome not in data.columns
        or not (is_numeric(data[roles.outcome]) or glmm)
    ):
        missing.append("a numeric outcome")
    if missing:
        return None, " and ".join(missing)
    time = roles.time if roles.time in data.columns and is_numeric(data[roles.time]) else None
    family = kind.family if glmm else "gaussian"
    exposure = guess_exposure(data, roles.outcome) if family == "poisson" else None
    return TourColumns(roles.subject, roles.outcome, time, family, exposure), ""


def _fit(name: str, formula: str, columns: TourColumns) -> FitRecord | str:
    """The tour's model ``name``: an existing fit record of the same model (REML; a GLMM's
    Laplace fit of the tour's family and link), else a new fit stored as a record; a
    failure as its message."""
    family, link = columns.family, columns.link
    reml = not columns.is_glmm
    record = find_fit(formula, reml, family=family, link=link)
    if record is not None:
        return record
    data = current_data()
    key = st.session_state[Keys.DATA_KEY]
    try:
        with st.spinner(f"Fitting {formula}..."):
            if columns.is_glmm:
                result = cached.fit_glmm_model(key, formula, family, link, 1, data)
            else:
                result = cached.fit_model(key, formula, True, data)
    except LMMError as exc:
        return f"the model {code_span(formula)} could not be fitted: {escape_message(str(exc))}"
    except (ArithmeticError, ValueError, np.linalg.LinAlgError) as exc:
        return f"the fit of {code_span(formula)} failed numerically ({type(exc).__name__})"
    record = FitRecord(
        name=next_name(LABELS[name]),
        formula=result.formula,
        reml=reml,
        data_key=key,
        data_name=st.session_state[Keys.DATA_NAME],
        result=result,
        seconds=0.0,
        family=family,
        link=link,
    )
    add_fit(record)
    return record


def fits_for(step: StepSpec, columns: TourColumns) -> tuple[dict[str, FitRecord], list[str]]:
    """The fits ``step`` needs (those the roles allow), and the failures' messages."""
    formulas = columns.formulas()
    fits: dict[str, FitRecord] = {}
    errors: list[str] = []
    for name in step.models:
        if name in formulas:
            got = _fit(name, formulas[name], columns)
            if isinstance(got, str):
                errors.append(got)
            else:
                fits[name] = got
    return fits, errors


def _index(plan: TourPlan) -> int:
    store = st.session_state[Keys.TOUR_STEP]
    return plan.clamp(store.get(st.session_state[Keys.DATA_KEY], 0))


def _move(plan: TourPlan, delta: int) -> None:
    key = st.session_state[Keys.DATA_KEY]
    store = dict(st.session_state[Keys.TOUR_STEP])
    store[key] = plan.clamp(store.get(key, 0) + delta) if delta else 0
    st.session_state[Keys.TOUR_STEP] = store


def _end_presenter() -> None:
    st.session_state[Keys.TOUR_PRESENT] = False


def _read_address() -> None:
    """``?present=1`` in the address opens the presenter view (read once a session)."""
    if st.session_state[Keys.TOUR_URL_SEEN]:
        return
    st.session_state[Keys.TOUR_URL_SEEN] = True
    if st.query_params.get("present") == "1":
        st.session_state[Keys.TOUR_PRESENT] = True


def _header(plan: TourPlan, index: int, present: bool) -> None:
    step = plan.steps[index]
    with st.container(key="tour_head"):
        st.markdown(f"## {escape_text(step.title)}")
        st.caption(f"Step {index + 1} of {plan.n} · {dataset_caption()}")
    if not present:
        return
    st.button(
        "Leave the presenter view", key=Keys.W_TOUR_END_PRESENT, on_click=_end_presenter,
        shortcut="Esc", type="tertiary",
    )  # fmt: skip


def _navigation(plan: TourPlan, index: int, present: bool) -> bool:
    """Back, Next, Restart and Leave; True when Leave was clicked."""
    cols = st.columns([1, 1, 1, 3] if not present else [1, 1, 1, 2])
    cols[0].button(
        "Back", key=Keys.W_TOUR_BACK, on_click=_move, args=(plan, -1), disabled=index == 0,
        shortcut="Left" if present else None, width="stretch",
    )  # fmt: skip
    cols[1].button(
        "Next", key=Keys.W_TOUR_NEXT, on_click=_move, args=(plan, 1), type="primary",
        disabled=index >= plan.n - 1, shortcut="Right" if present else None, width="stretch",
    )  # fmt: skip
    cols[2].button(
        "Start again", key=Keys.W_TOUR_RESTART, on_click=_move, args=(plan, 0),
        disabled=index == 0, width="stretch",
    )  # fmt: skip
    if present:  # a clicker's keys: a second Back/Next pair, hidden (one shortcut a button)
        with st.container(key=presenter.PAGE_KEYS):
            st.button(
                "Back (Page Up)", key="tour_page_back", on_click=_move, args=(plan, -1),
                disabled=index == 0, shortcut="PageUp",
            )  # fmt: skip
            st.button(
                "Next (Page Down)", key="tour_page_next", on_click=_move, args=(plan, 1),
                disabled=index >= plan.n - 1, shortcut="PageDown",
            )  # fmt: skip
    page = plan.steps[index].page.removeprefix("pages/").removesuffix(".py").capitalize()
    return cols[3].button(
        f"Leave the tour: explore on the {page} page", key=Keys.W_TOUR_LEAVE,
        help="Opens that page with this step's model active; the tour's fits stay in the "
        "list of fitted models, and the tour resumes here when you come back.",
    )  # fmt: skip


def _show(view: StepView, step: StepSpec, present: bool) -> None:
    """The sentences and the chart: side by side in the presenter view, else stacked."""
    if present:
        chart_col, text_col = st.columns([3, 2], gap="medium")
    else:
        text_col, chart_col = st.container(), st.container()
    with text_col.container(key=presenter.TEXT_KEY):
        for sentence in view.sentences:
            st.markdown(sentence)
        for note in view.notes:
            st.caption(note)
    with chart_col:
        if view.figure is not None:
            fig = presenter.presenter_figure(view.figure) if present else view.figure
            # presenter view: one chart per screen, no data switch under it
            show_figure(
                fig,
                key=f"tour_chart_{step.key}",
                description=None if present else view.description,
                data_switch=not present,
            )
        elif view.table is not None and present:  # large type: a static table, 4 digits
            st.table(styled(view.table, 4))
        elif view.table is not None:
            st.dataframe(styled(view.table, 4), key=f"tour_table_{step.key}")


def _leave(view: StepView | None, fits: dict[str, FitRecord], step: StepSpec) -> None:
    if view is not None and view.model in fits:
        set_active(fits[view.model].name)
    st.session_state[Keys.TOUR_PRESENT] = False
    st.switch_page(step.page)


def _intro(plan: TourPlan, present: bool) -> None:
    if present:
        return
    st.title("Tour")
    st.toggle(
        "Presenter view",
        help="Large type, the sidebar and controls hidden, one chart per screen (for a "
        "1280x720 projector). Right and left arrows (or Page Down and Page Up, as a "
        "presentation clicker sends): Next and Back; Escape: leave the view.",
        **persistent_widget(Keys.W_TOUR_PRESENT, st.session_state, Keys.TOUR_PRESENT, False),
    )
    for step, reason in plan.skipped:
        st.caption(f"Skipped: *{escape_text(step.title)}*: {reason}.")
    how_to_read("guided_tour", "presenter_view", "ols_vs_mixed", label="About the tour")


def render_tour() -> None:
    """Draw the Tour page: the current step with its chart and the navigation."""
    _read_address()
    columns, missing = tour_columns()
    if columns is None:
        st.info(
            f"The tour needs {missing}. Set the column roles of "
            f"{st.session_state[Keys.DATA_NAME]} on the Data page."
        )
        st.page_link(DATA_PAGE, label="Go to the Data page")
        st.stop()
    plan = plan_tour(columns)
    present = bool(st.session_state[Keys.TOUR_PRESENT])
    if present:
        presenter.apply_presenter_css()
    _intro(plan, present)
    index = _index(plan)
    step = plan.steps[index]
    _header(plan, index, present)
    fits, errors = fits_for(step, columns)
    view = None
    if errors:
        st.warning(
            "This step cannot be made on these data: " + "; ".join(errors) + ". Press Next "
            "to go on."
        )
    else:
        view = build_step(
            step, TourContext(current_data(), columns, fits, st.session_state[Keys.DATA_KEY])
        )
        _show(view, step, present)
    if _navigation(plan, index, present):
        _leave(view, fits, step)
