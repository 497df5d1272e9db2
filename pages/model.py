"""Model page: build (or type) a mixed model, fit it by REML or ML, read its summary."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import streamlit as st

from dashboard.analysis.glmm_family import KINDS, GLMMChoice, family_label, quadrature_reason
from dashboard.analysis.mmrm_models import NONE as NO_STRUCTURE
from dashboard.analysis.mmrm_models import STRUCTURES, mmrm_label, visit_column
from dashboard.analysis.model_builder import (
    BuilderChoices,
    GroupLevel,
    TimeScale,
    VisitStructure,
    build_formula,
    group_text,
    ids_repeat_across,
    model_rows,
    replaced_levels,
    time_scales,
    time_unit,
)
from dashboard.analysis.model_label import model_label
from dashboard.analysis.records import GAUSSIAN
from dashboard.analysis.time_shape import (
    TimeShape,
    flexibility_note,
    shape_note,
    shape_options,
    typical_visits,
)
from dashboard.base.markup import code_span, escape_message
from dashboard.help.texts import entry, help_text
from dashboard.io.outcome_kind import binary_columns
from dashboard.io.roles import Roles, is_numeric
from dashboard.state import server_data
from dashboard.state.fits import (
    active_record,
    delete_fit,
    find_fit,
    records_for_active_data,
    set_active,
    taken_labels,
)
from dashboard.state.session import Keys, current_roles, init_state, persistent_widget
from dashboard.views import fit_jobs
from dashboard.views import jobs as jobs_view
from dashboard.views import model as model_view
from dashboard.views.glmm_model import (
    Seeder,
    advanced_choice,
    exposure_choice,
    kind_choice,
    require_model_data,
)
from dashboard.views.outcome import render_outcome_note
from dashboard.views.widgets import dataset_caption
from lmm_core import DataError, FormulaError

NONE = "(none)"
TIMES = " x "
W = Keys.MODEL_W


# --------------------------------------------------------------------------- persistence
def _choices() -> dict[str, Any]:
    """Stored builder choices of the active dataset (survive page switches)."""
    store = st.session_state[Keys.MODEL_CHOICES]
    return store.setdefault(st.session_state[Keys.DATA_KEY], {})


def _seed(name: str, default: Any, options: list | None = None) -> dict[str, Any]:
    """Widget ``name`` kept in the builder choices of the active dataset."""
    return persistent_widget(W + name, _choices(), name, default, options=options)


# --------------------------------------------------------------------------- builder
def _level(title: str, name: str, group: str | None, slope_options: list[str]) -> GroupLevel | None:
    """Random-effects controls of one grouping level."""
    if group is None:
        return None
    intercept = st.checkbox(
        f"Random intercept per {group}",
        **_seed(f"{name}_intercept", True),
        help=f"Each {group} has its own baseline level (its line is shifted up or down).\n\n"
        + help_text("random_intercept"),
    )
    slopes = st.multiselect(
        f"Random slopes per {group} on",
        slope_options,
        **_seed(f"{name}_slopes", [], slope_options),
        help=f"Each {group} has its own rate of change along these columns (its own steepness)."
        "\n\n" + help_text("random_slope"),
    )
    correlated = True
    if slopes and intercept:
        correlated = st.checkbox(
            "Intercept and slopes correlated",
            **_seed(f"{name}_correlated", True),
            help="Allow e.g. groups that start high to change faster: `|`; unticked: `||`.\n\n"
            + help_text("uncorrelated_terms"),
        )
    return GroupLevel(group, intercept, tuple(slopes), correlated)


def builder(data, roles: Roles) -> tuple[str, str | None, GLMMChoice]:
    """The builder widgets; returns the formula they describe, a note about nesting and the
    kind of outcome (a linear mixed model or a GLMM's family, link and quadrature)."""
    columns = list(map(str, data.columns))
    numeric = [c for c in columns if is_numeric(data[c])]
    outcomes = numeric + [c for c in binary_columns(data) if c not in numeric]
    left, right = st.columns(2)
    outcome = left.selectbox(
        "Outcome (what is measured)",
        outcomes,
        **_seed("outcome", roles.outcome, outcomes),
    )
    seeder = Seeder(_choices(), W)
    with left:
        family = kind_choice(data[outcome], outcome, seeder)
        exposure = exposure_choice(data, outcome, seeder) if family == "poisson" else None
    candidates = [c for c in columns if c not in (outcome, roles.subject, exposure)]
    default_fixed = [c for c in [roles.time, *roles.covariates] if c in candidates]
    fixed = right.multiselect(
        "Fixed effects (average effects of these columns)",
        candidates,
        **_seed("fixed", default_fixed, candidates),
        help=help_text("fixed_effect"),
    )
    pairs = [f"{a}{TIMES}{b}" for i, a in enumerate(fixed) for b in fixed[i + 1 :]]
    interactions = right.multiselect(
        "Interactions (does the effect of one depend on the other?)",
        pairs,
        **_seed("interactions", [], pairs),  # main effects first: the user adds interactions
        help=help_text("interaction")
        + "\n\nNone is chosen at first: start from the main effects and add an interaction "
        "when the question is whether an effect differs between groups (e.g. the change over "
        "time between treatments).",
    )
    time = roles.time if roles.time in numeric else None
    with left:  # under the outcome: the population curve and the time scale
        shape = population_shape_choice(data, time if time in fixed else None)
        curved = shape is not None and shape.curved
        scale = None if curved else time_scale_choice(roles.time, numeric)
        if curved:
            st.caption(NO_RESCALE)
    visits = model_rows(
        data, BuilderChoices(outcome, tuple(fixed), levels=(GroupLevel(roles.subject),))
    )  # the rows whose visits per subject bound the subject's curve
    curve = CurveContext(data, visits, time, shape)
    levels, note = grouping_levels(data, roles, outcome, numeric, curve)
    visits = visit_structure_choice(data, roles) if family == GAUSSIAN else None
    by_text = {f"{a}{TIMES}{b}": (a, b) for i, a in enumerate(fixed) for b in fixed[i + 1 :]}
    choices = BuilderChoices(
        outcome=outcome,
        fixed=tuple(fixed),
        interactions=tuple(by_text[p] for p in interactions if p in by_text),
        levels=levels,
        time_scale=scale,
        shape=shape,
        visits=visits,
        exposure=exposure,
    )
    replaced = replaced_levels(choices)
    if replaced:
        st.info(replaced_note(replaced, visits))
    try:
        formula = build_formula(choices)
    except FormulaError as err:  # a column name no formula can hold (a backtick in it)
        st.error(escape_message(str(err)))
        st.stop()
    streamed = server_data.active() is not None  # the fit streams the whole server file
    return formula, note, advanced_choice(family, formula, seeder, streamed)


# --------------------------------------------------------------------------- visits
STRUCTURE_HELP = {NO_STRUCTURE: "cov_none", **{k: f"cov_{k}" for k in STRUCTURES}}


def _structure_words(key: str) -> str:
    return "none (random effects only)" if key == NO_STRUCTURE else STRUCTURES[key]


def _structure_what(key: str) -> str:
    return entry(STRUCTURE_HELP[key]).what


def visit_structure_choice(data, roles: Roles) -> VisitStructure | None:
    """The "correlation between a patient's visits" control (an MMRM's covariance
    structure), disabled with the reason when the data have no visit factor."""
    found = visit_column(data, roles.subject, roles.time)
    options = [NO_STRUCTURE, *STRUCTURES]
    picked = st.selectbox(
        "Correlation between a patient's visits",
        options,
        format_func=_structure_words,
        **_seed("visit_structure", NO_STRUCTURE, options),
        disabled=found.column is None,
        help=help_text("visit_correlation")
        + "\n\n"
        + "\n".join(
            f"- **{_structure_words(k)}**: {entry(STRUCTURE_HELP[k]).what}" for k in options
        ),
    )
    if found.column is None:
        st.caption(escape_message(found.reason))
        return None
    if picked == NO_STRUCTURE:
        return None
    st.caption(
        f"{escape_message(_structure_words(picked))}: {entry(STRUCTURE_HELP[picked]).what} "
        + found.note
    )
    return VisitStructure(picked, found.column, roles.subject)


def replaced_note(replaced, visits: VisitStructure) -> str:
    """Why the subject's random effects left the formula."""
    return (
        f"A covariance of the visits ({escape_message(_structure_words(visits.structure))}) "
        f"replaces the random effects of each {escape_message(visits.subject)}: both describe "
        "how one patient's visits are alike, and an MMRM uses the covariance alone, so the "
        f"{escape_message(visits.subject)}-level random terms are left out of the formula. "
        "Random effects of a level above the patient (a hospital) stay."
    )


# --------------------------------------------------------------------------- shape of time
NO_RESCALE = (
    "No time scale with a curve: a spline or a polynomial has no unit, and rescaling time "
    "would give the same curve and the same numbers."
)


def _shape_select(label: str, name: str, shapes: list[TimeShape], help: str) -> TimeShape:
    """A selectbox of shapes by their words, kept in the builder choices."""
    by_words = {s.words(): s for s in shapes}
    words = list(by_words)
    picked = st.selectbox(label, words, **_seed(name, words[0], words), help=help)
    return by_words[picked]


def show_shape_note(data, shape: TimeShape) -> None:
    """What a shape draws: a spline's knots as the engine places them (quantiles of every
    value of the time column), or why the data cannot carry it."""
    unit = time_unit(shape.column, st.session_state[Keys.UNITS].get(shape.column, ""))
    try:
        text = shape_note(shape, data[shape.column], unit)
    except DataError as err:
        st.warning(escape_message(str(err)))
        return
    if text:
        st.caption(text, help=help_text("knots" if shape.kind == "spline" else "polynomial"))


def population_shape_choice(data, time: str | None) -> TimeShape | None:
    """The shape of the population curve over ``time`` (``None`` when time is no fixed
    effect): straight line, quadratic or a natural spline with as many df as the data allow."""
    if time is None:
        return None
    shape = _shape_select(
        f"Shape of {time} (the population curve)",
        "shape",
        shape_options(time, data[time]),
        help_text("shape_of_time"),
    )
    show_shape_note(data, shape)
    return shape


@dataclass(frozen=True)
class CurveContext:
    """What the choice of the subject's own curve needs: the data, the rows whose visits
    per subject bound it, the time column and the population curve."""

    data: Any
    rows: Any
    time: str | None
    population: TimeShape | None


def subject_curve(level: GroupLevel | None, ctx: CurveContext) -> GroupLevel | None:
    """The shape of each subject's own curve when the level has a random slope on time (at
    most the typical visits per subject minus one df); a warning when it is more flexible
    than the population curve (allowed)."""
    time = ctx.time
    if level is None or time is None or time not in level.slopes:
        return level
    visits = typical_visits(ctx.rows, level.columns)
    subject = level.columns[-1]
    curve = _shape_select(
        f"Shape of each {subject}'s own curve over {time}",
        "subject_shape",
        shape_options(time, ctx.data[time], visits - 1),
        f"At most {max(visits - 1, 1)} df here: a typical {subject} has {visits} visits, and "
        "each one's curve is estimated from them (shrunk toward the average).\n\n"
        + help_text("spline_df"),
    )
    show_shape_note(ctx.data, curve)
    warning = flexibility_note(ctx.population, curve, subject)
    if warning:
        st.warning(escape_message(warning))
    return dataclasses.replace(level, curve=curve)


def grouping_levels(
    data, roles: Roles, outcome: str, numeric: list[str], curve: CurveContext
) -> tuple[tuple[GroupLevel, ...], str | None]:
    """The subject, cluster and crossed levels with their random effects (the subject's own
    curve chosen by ``curve``); and a note when the subject ids repeat across clusters (the
    subject is then nested in the cluster)."""
    columns = list(map(str, data.columns))
    slope_options = [c for c in numeric if c not in (outcome, roles.subject)]
    others = [NONE, *[c for c in columns if c not in (outcome, roles.subject)]]
    st.markdown("**Grouping levels and their random effects**", help=help_text("nested_vs_crossed"))
    cols = st.columns(3)
    with cols[0]:
        st.markdown(f"Subject: **{roles.subject}**")
        subject_level = _level("Subject", "subject", roles.subject, slope_options)
    with cols[1]:
        cluster = st.selectbox(
            "Cluster above the subject (nested)",
            others,
            **_seed("cluster", roles.cluster or NONE, others),
            help="A higher level each subject belongs to, such as the hospital.",
        )
        cluster = None if cluster == NONE else cluster
        cluster_level = _level("Cluster", "cluster", cluster, slope_options)
    with cols[2]:
        crossed = st.selectbox(
            "Crossed factor",
            others,
            **_seed("crossed", NONE, others),
            help="A factor whose levels are shared by many subjects, e.g. the rater or the "
            "measurement day.",
        )
        crossed = None if crossed in (NONE, cluster) else crossed
        crossed_level = _level("Crossed", "crossed", crossed, slope_options)

    note = None
    if cluster and subject_level and ids_repeat_across(data, roles.subject, cluster):
        subject_level = dataclasses.replace(subject_level, group=(cluster, roles.subject))
        note = (
            f"The {escape_message(roles.subject)} ids repeat across {escape_message(cluster)} "
            f"levels, so the subject level is written "
            f"{code_span(group_text((cluster, roles.subject)))} "
            f"({escape_message(roles.subject)} within {escape_message(cluster)})."
        )
    with cols[0]:  # under the subject's slopes, knowing whether the ids are nested
        subject_level = subject_curve(subject_level, curve)
    return tuple(lv for lv in (subject_level, cluster_level, crossed_level) if lv), note


AS_IS = "as it is"
OTHER = "divide by another number"
RESCALE_WHY = (
    "Coefficients of time are per unit of time, so in days they are tiny and hard to read "
    "(3 mmHg a year is 0.008 a day); per week, month or year they read easily, and the fit "
    "is the same up to units."
)
SMALL_UNITS = ("minute", "hour", "day")


def time_scale_choice(time: str | None, candidates: list[str]) -> TimeScale | None:
    """The builder's offer to rescale time (per week, month, year...), or ``None``."""
    if time is None or time not in candidates:
        return None
    unit_text = st.session_state[Keys.UNITS].get(time, "")
    scales = {f"per {s.unit} ({time} / {s.divisor:g})": s for s in time_scales(time, unit_text)}
    options = [AS_IS, *scales, OTHER]
    picked = st.selectbox(
        f"Time scale of {time} in the model",
        options,
        **_seed("time_scale", AS_IS, options),
        help=RESCALE_WHY + " The formula divides the column, e.g. `I(time/7)`: the data, the "
        "plots and the predictions keep the original time. Only for a straight line: a curve "
        "(spline or polynomial) has no unit.",
    )
    if picked != AS_IS or time_unit(time, unit_text) in SMALL_UNITS:
        st.caption(RESCALE_WHY)
    if picked in scales:
        return scales[picked]
    if picked == OTHER:
        divisor = st.number_input(
            f"Divide {time} by",
            min_value=1e-6,
            max_value=1e9,
            format="%g",
            **_seed("time_divisor", 10.0),
        )
        return TimeScale(time, float(divisor)) if divisor != 1 else None
    return None


# --------------------------------------------------------------------------- fitting
CARET_CONTEXT = 60  # characters shown on each side of the error in a long formula


def show_formula_error(formula: str, err: FormulaError) -> None:
    """The parser's message and, when it knows the position, a caret under the token
    (in a window of the formula when it is long)."""
    st.error(f"The formula could not be read: {escape_message(str(err))}")
    if err.position is not None:
        start = max(0, err.position - CARET_CONTEXT)
        end = err.position + CARET_CONTEXT
        head = "..." if start else ""
        tail = "..." if end < len(formula) else ""
        shown = f"{head}{formula[start:end]}{tail}"
        st.code(f"{shown}\n{' ' * (len(head) + err.position - start)}^", language=None)


def _label(formula: str, reml: bool, subject: str | None, kind: GLMMChoice) -> str:
    """The new fit's name: the model label, an MMRM's structure, a GLMM's family first."""
    taken = taken_labels()
    if not kind.is_glmm:
        label = model_label(formula, subject, current_roles().time, reml=reml, taken=taken)
        return mmrm_label(formula, label, taken)
    base = model_label(formula, subject, current_roles().time, reml=True, taken=())
    label = candidate = f"{family_label(kind.family, kind.link)} {base}"
    if kind.nagq > 1:
        label = candidate = f"{label} (AGQ {kind.nagq})"
    k = 1
    while candidate in taken:
        k += 1
        candidate = f"{label} #{k}"
    return candidate


def fit(formula: str, reml: bool, subject: str | None, kind: GLMMChoice | None = None) -> None:
    """Validate and start the fit (see :mod:`dashboard.views.fit_jobs`), then rerun.

    A quick fit is stored before the rerun; a long one keeps running in the background
    (progress in the sidebar, on every page) and is stored when it finishes. ``kind``: a
    GLMM's family, link and quadrature points (None: a linear mixed model).
    """
    kind = kind or GLMMChoice()
    reml = reml and not kind.is_glmm  # a GLMM is fitted by maximum likelihood
    try:
        label = _label(formula, reml, subject, kind)
    except FormulaError as err:
        show_formula_error(formula, err)
        return
    if kind.nagq > 1 and quadrature_reason(formula):
        st.error(escape_message(quadrature_reason(formula) or ""))
        return
    existing = find_fit(formula, reml, family=kind.family, link=kind.link, nagq=kind.nagq)
    if existing is not None:  # one fit per model and method: select it, say so
        set_active(existing.name)
        st.session_state[Keys.MODEL_NOTICE] = ("info", fit_jobs.already_fitted_message(existing))
        st.rerun()
    job = fit_jobs.start_fit(formula, reml, label, kind.family, kind.link, kind.nagq)
    if job is None:
        running = fit_jobs.running_job()
        what = fit_jobs.request_of(running).describe() if running else ""
        st.warning(
            f"A fit is already running ({what}): it appears in the sidebar when ready; "
            "then fit the next one."
        )
        return
    if fit_jobs.wait_briefly(job):
        jobs_view.collect(toast=False)
    st.rerun()


def _keep_form() -> None:
    """Copy the form's values to non-widget keys when it is submitted."""
    _choices()["typed"] = st.session_state[W + "typed"]
    st.session_state[Keys.MODEL_REML] = st.session_state[W + "method"] == "REML"


def fit_form(built: str, subject: str | None, kind: GLMMChoice) -> None:
    """Typed formula, REML/ML and the Fit button, in a form so typing does not refit."""
    st.session_state[W + "typed"] = _choices().get("typed", "")
    st.session_state[W + "method"] = "REML" if st.session_state[Keys.MODEL_REML] else "ML"
    with st.form("fit_model"):
        typed = st.text_area(
            "Or type a formula (when filled, it is used instead of the builder's)",
            key=W + "typed",
            placeholder=built,
            height=80,  # wraps: a long formula stays in view at any width
            help=help_text("formula_grammar")
            + "\n\nNames with spaces or symbols go in backticks: `SBP (mmHg)`. Press "
            "**Fit model** (or Ctrl+Enter) to fit.",
        )
        method = st.radio(
            "Estimation",
            ["REML", "ML"],
            key=W + "method",
            horizontal=True,
            help=help_text("reml_vs_ml"),
            captions=[
                "restricted maximum likelihood: unbiased variances (the usual choice)",
                "maximum likelihood: needed to compare fixed effects by likelihood",
            ],
        )
        if kind.is_glmm:
            st.caption(
                f"A {escape_message(KINDS[kind.family])} model is fitted by maximum "
                "likelihood (Laplace, or quadrature when chosen): the REML/ML choice applies "
                "to linear mixed models only. A typed formula is fitted as this kind of "
                "outcome too."
            )
        submitted = st.form_submit_button(
            "Fit model", type="primary", key="model_fit", on_click=_keep_form
        )
    if submitted:
        fit(typed.strip() or built, method == "REML", subject, kind)


def fits_list() -> None:
    """The fitted models of this dataset with delete buttons."""
    records = records_for_active_data()
    if not records:
        return
    with st.expander(f"Your models on this dataset ({len(records)})"):
        for record in records:
            left, right = st.columns([5, 1])
            left.markdown(f"**{escape_message(record.name)}**: {code_span(record.formula)}")
            right.button(
                "Delete",
                key=f"model_delete_{record.name}",
                on_click=delete_fit,
                args=(record.name,),
            )


# --------------------------------------------------------------------------- page
def build_section(data, roles: Roles) -> tuple[str, GLMMChoice]:
    """Section 1: the builder and the formula it writes; returns that formula and the kind
    of outcome."""
    st.subheader("1. Build the model")
    built, note, kind = builder(data, roles)
    st.markdown("Formula written by the builder:")
    st.code(built, language=None, wrap_lines=True)
    if note:
        st.caption(note)
    if _choices().get("typed", "").strip():
        st.caption(
            "The formula box below is filled, so **Fit model** uses the typed formula, not "
            "this one. Clear the box to fit the builder's formula."
        )
    return built, kind


def fit_section(built: str, subject: str | None, kind: GLMMChoice) -> None:
    """Section 2: the fit form, the running fit and the last fit's notice."""
    st.subheader("2. Fit")
    fit_form(built, subject, kind)
    job = fit_jobs.running_job()
    if job is not None:
        request = fit_jobs.request_of(job)
        st.info(
            f"Fitting **{escape_message(request.label)}**: {request.describe()}. Its progress "
            "is in the sidebar; you can use the other pages meanwhile, the fit goes on."
        )
    notice = st.session_state[Keys.MODEL_NOTICE]
    if notice:
        show = {"success": st.success, "info": st.info}.get(notice[0], st.error)
        show(notice[1])
        st.session_state[Keys.MODEL_NOTICE] = None


def summary_section(roles: Roles) -> None:
    """Section 3: the active fit's summary, the OLS comparison and the list of fits."""
    record = active_record()
    if record is None:
        st.info("No model fitted on this dataset yet: start with a random intercept.")
        return
    st.subheader(f"3. Summary of {record.name}")
    simpler = model_view.render_summary(record, roles.subject, roles.time)
    if simpler:
        fit(simpler, record.reml, roles.subject, GLMMChoice(record.family, record.link))
    if not record.is_glmm:
        model_view.render_ols_section(record.result)
    fits_list()


def main() -> None:
    """Render the Model page."""
    init_state()
    jobs_view.collect(toast=False)  # app.py does it too; AppTest reruns only the page
    st.title("Model")
    st.caption(
        "A mixed model describes every measurement as the population trend (the fixed "
        "effects) plus the subject's own deviation from it (the random effects): a random "
        "intercept lets each subject start higher or lower, a random slope lets each subject "
        "change faster or slower. Build a model below (or type one), then fit it."
    )
    data, roles = require_model_data("The Model page")
    st.markdown(dataset_caption())
    render_outcome_note(data, roles.outcome)  # binary or count outcome: say so

    built, kind = build_section(data, roles)
    fit_section(built, roles.subject, kind)
    summary_section(roles)


main()
