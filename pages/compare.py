"""Compare page: likelihood-ratio tests, AIC and BIC of fitted models; the random-effects ladder."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard.analysis import compare as compare_view
from dashboard.analysis import curve_shape as cs
from dashboard.analysis import ladder as lad
from dashboard.analysis.records import FitRecord
from dashboard.base.markup import code_span, escape_message, plain_name
from dashboard.base.numbers import MISSING, styled
from dashboard.figures import curve_shape as fcs
from dashboard.help.texts import ENTRIES, help_text
from dashboard.io.roles import is_numeric
from dashboard.state import cached, work
from dashboard.state.fits import (
    MODEL_PAGE,
    active_record,
    add_fit,
    next_name,
    records_for_active_data,
    same_model_groups,
    set_active,
)
from dashboard.state.session import Keys, current_data, current_roles, init_state, persistent_widget
from dashboard.views import jobs as jobs_view
from dashboard.views.help import column, how_to_read, text_column
from dashboard.views.widgets import DATA_PAGE, dataset_caption, show_figure
from lmm_core import LMMError

P_CHIBAR_HELP = help_text("chibar")
LADDER = "ladder"  # job kind
#: How the numbers of this page's tables are shown (dashboard.base.numbers.styled): criteria with
#: two decimals (read as differences), p-values by the p rule, statistics by 4 digits.
RULES: dict[str, int | str] = {
    **dict.fromkeys(["AIC", "BIC", "logLik", "deviance", "criterion"], "criterion"),
    **dict.fromkeys(["delta_AIC", "delta_BIC"], "criterion"),
    **dict.fromkeys(["Pr(>Chisq)", "p (chi-square)", "p (chi-bar-square)", "p"], "p"),
    **dict.fromkeys(["npar", "Df"], "int"),
    "Chisq": 4,
    "seconds": 2,
}
LRT_COLUMNS = {
    "npar": column("parameters", "npar"),
    "AIC": column("aic", "AIC"),
    "BIC": column("bic", "BIC"),
    "logLik": column("loglik", "logLik"),
    "deviance": column("deviance", "deviance"),
    "Chisq": column("lrt", "Chisq"),
    "Df": st.column_config.NumberColumn(
        "Df", help="Number of parameters the model adds to the row above."
    ),
    "Pr(>Chisq)": column("p_value", "Pr(>Chisq)"),
}
DELTA_HELP = (
    "How much higher this model's {0} is than the lowest {0} in the table: 0 is the "
    "preferred model; under 2 is a tie, above 10 a clear difference."
)


# --------------------------------------------------------------------------- fitted models
def choose_models(records: list[FitRecord]) -> list[FitRecord]:
    """The multiselect of models; new fits join the selection, removed ones leave it."""
    names = [r.name for r in records]
    known = set(st.session_state[Keys.COMPARE_KNOWN])
    stored = st.session_state[Keys.COMPARE_SELECTION]
    chosen = [n for n in stored if n in names] + [n for n in names if n not in known]
    if not known and not chosen:
        chosen = names
    st.session_state[Keys.COMPARE_SELECTION] = chosen
    st.session_state[Keys.COMPARE_KNOWN] = sorted(known | set(names))
    picked = st.multiselect(
        "Models to compare",
        names,
        **persistent_widget(
            Keys.W_COMPARE_PICK, st.session_state, Keys.COMPARE_SELECTION, chosen, options=names
        ),
        help="All fitted models of the active dataset are chosen at first.",
    )
    return [r for r in records if r.name in picked]


def show_not_comparable(comparison: compare_view.Comparison) -> None:
    """The warning and the criteria as fitted, without deltas or preferences."""
    st.warning(
        f"These models cannot be compared: {comparison.problem} AIC and BIC are comparable "
        "only between fits of the same observations, so neither the test nor the criteria "
        "below can pick a model."
    )
    table = comparison.criteria.drop(columns=["delta_AIC", "delta_BIC"])
    st.dataframe(
        styled(table, RULES),
        column_config={
            "AIC": LRT_COLUMNS["AIC"],
            "BIC": LRT_COLUMNS["BIC"],
            "npar": LRT_COLUMNS["npar"],
            "method": text_column("reml_vs_ml", "method"),
        },
        key="compare_as_fitted",
        placeholder=MISSING,
    )
    st.caption("AIC and BIC of each model as fitted (not comparable across these models).")


def show_tests(comparison: compare_view.Comparison) -> None:
    """lme4's table, the refit note, and the consecutive tests with their validity."""
    st.subheader("Likelihood-ratio tests (lme4's anova table)")
    if comparison.refit_note:
        st.info(comparison.refit_note)
    st.dataframe(
        styled(comparison.lrt_table, RULES),
        column_config=LRT_COLUMNS,
        key="compare_lrt",
        placeholder=MISSING,
    )
    st.caption(
        "Models are ordered by their number of parameters (npar). Each row is tested against "
        "the row above it: Chisq is twice the gain in log-likelihood, Df the number of added "
        "parameters, Pr(>Chisq) the p-value. A small p-value (below 0.05) says the extra "
        "parameters improve the fit by more than chance would."
    )
    for step in comparison.not_nested:
        st.warning(
            f"{step.smaller} and {step.larger} are not nested. {step.reason} The "
            "likelihood-ratio test between them is not valid: compare them by AIC and BIC only."
        )
    same = [s for s in comparison.steps if s.df == 0]
    if same:
        pairs = "; ".join(f"{s.smaller} and {s.larger}" for s in same)
        st.info(
            f"Same number of parameters, so no likelihood-ratio test: {pairs}. Models with "
            "the same formula are the same model; otherwise compare them by AIC and BIC."
        )
    steps = compare_view.steps_frame(comparison)
    if len(steps):
        st.dataframe(
            styled(steps, RULES),
            hide_index=True,
            key="compare_steps",
            column_config={
                "Chisq": LRT_COLUMNS["Chisq"],
                "Df": LRT_COLUMNS["Df"],
                "p (chi-square)": column("p_value", "p (chi-square)"),
                "p (chi-bar-square)": column("chibar", "p (chi-bar-square)"),
                "nested": st.column_config.TextColumn(
                    help="Is the smaller model a special case of the larger one? Only then "
                    "is the likelihood-ratio test valid."
                ),
                "verdict": st.column_config.TextColumn(),
            },
            placeholder=MISSING,
        )
    if comparison.boundary_steps:
        tested = "; ".join(
            f"{s.smaller} vs {s.larger} adds the variance of "
            + ", ".join(plain_name(v).replace(": ", " ") for v in s.boundary.added_variances)
            + (" and its correlation" if s.boundary.added_covariances else "")
            + f", chi-bar-square with df {s.boundary.mixture_df}"
            for s in comparison.boundary_steps
        )
        st.markdown(f"**Testing a variance on the boundary** ({tested}).", help=P_CHIBAR_HELP)
        st.caption(compare_view.CHIBAR_EXPLANATION)
    elif any(s.boundary.on_boundary for s in comparison.steps if s.nested):
        st.caption(
            "Some tests add several variances at once: their chi-square p-values are too large "
            "(cautious), and no simple correction applies."
        )


def show_criteria(comparison: compare_view.Comparison) -> None:
    """AIC/BIC table with deltas, the figure and the verdicts."""
    st.subheader("Information criteria: AIC and BIC")
    criteria = comparison.criteria.rename(columns={"method": "fitted by"})
    st.dataframe(
        styled(criteria, RULES),
        key="compare_criteria",
        column_order=[  # numbers first, the long formula last (a 1024 px screen)
            c
            for c in dict.fromkeys(
                ["npar", "AIC", "BIC", "delta_AIC", "delta_BIC", "fitted by", *criteria.columns]
            )
            if c in criteria.columns
        ],
        column_config={
            "npar": LRT_COLUMNS["npar"],
            "AIC": LRT_COLUMNS["AIC"],
            "BIC": LRT_COLUMNS["BIC"],
            "fitted by": text_column("reml_vs_ml", "fitted by"),
            "delta_AIC": st.column_config.NumberColumn("delta AIC", help=DELTA_HELP.format("AIC")),
            "delta_BIC": st.column_config.NumberColumn("delta BIC", help=DELTA_HELP.format("BIC")),
        },
        placeholder=MISSING,
    )
    show_figure(compare_view.criteria_figure(comparison.criteria), key="compare_figure")
    st.caption(
        "AIC and BIC balance fit against complexity: lower is better, and only differences "
        "matter. delta is the distance from the best model: under 2 is a tie, 4 to 7 is "
        "moderate, above 10 is strong. BIC penalises extra parameters more than AIC, so it "
        "leans to simpler models. Unlike the test, they also compare models that are not "
        "nested."
    )
    st.subheader("Verdict")
    for sentence in compare_view.verdict_sentences(comparison):
        st.markdown(
            f"- {sentence}",
            help="delta = how much higher the next best model's criterion is; p-values from "
            "the likelihood-ratio tests above (chi-bar-square where a variance is tested).",
        )


def fitted_models_section() -> None:
    """Compare the fitted models of the active dataset (guidance when there are too few)."""
    st.header("Fitted models")
    records = records_for_active_data()
    if not records:
        st.info(
            "Comparing shows fitted models. Fit one on the Model page first "
            f"(the active dataset is {st.session_state[Keys.DATA_NAME]}), or fit the "
            "random-effects ladder below."
        )
        st.page_link(MODEL_PAGE, label="Go to the Model page")
        return
    if len(records) < 2:
        st.info(
            "Comparing needs at least two fitted models of this dataset; there is "
            f"{len(records)}. Fit another one on the Model page, e.g. the same model with a "
            "random slope, or without it, or fit the random-effects ladder below."
        )
        st.page_link(MODEL_PAGE, label="Go to the Model page")
        return
    chosen = choose_models(records)
    if len(chosen) < 2:
        st.info("Choose at least two models above.")
        return
    for names in same_model_groups(chosen):
        st.info(
            f"{' and '.join(escape_message(n) for n in names)} are the same model, fitted by "
            "REML and by ML: after the ML refits below they tie. Keep one of them to compare "
            "different models."
        )
    key = tuple((r.name, r.formula, bool(r.reml)) for r in chosen)
    comparison = cached.compare_models(st.session_state[Keys.DATA_KEY], key, tuple(chosen))
    if not comparison.comparable:
        show_not_comparable(comparison)
        return
    show_tests(comparison)
    show_criteria(comparison)


# --------------------------------------------------------------------------- curve shape
CURVES = "curves"  # job kind
CURVE_STATE = "curve_shapes"  # session: data key -> cs.StoredCurves, fitted on request
CURVE_NOTICE = "curve_shapes_notice"  # text shown once after adding the shapes' fits
W_CURVE_RUN = "curve_run"  # widget: the button that fits the shapes
W_CURVE_ADD = "curve_add"  # widget: add the shapes' fits to the fitted models
CURVE_HELP = "curve_comparison"  # glossary entry of this section (when there is one)
CURVE_COLUMNS = {
    "shape": st.column_config.TextColumn("shape"),
    "npar": LRT_COLUMNS["npar"],
    "logLik": LRT_COLUMNS["logLik"],
    "AIC": LRT_COLUMNS["AIC"],
    "BIC": LRT_COLUMNS["BIC"],
    "delta_AIC": st.column_config.NumberColumn("delta AIC", help=DELTA_HELP.format("AIC")),
    "delta_BIC": st.column_config.NumberColumn("delta BIC", help=DELTA_HELP.format("BIC")),
    "Chisq": st.column_config.NumberColumn(
        "Chisq",
        help="Likelihood-ratio statistic against the straight line: twice the gain in "
        "log-likelihood.",
    ),
    "Df": st.column_config.NumberColumn(
        "Df", help="Parameters the shape adds to the straight line."
    ),
    "p": st.column_config.NumberColumn(
        "p vs line",
        help="p-value of the likelihood-ratio test against the straight line (chi-square with "
        "Df degrees of freedom). A small p says the curve fits better than chance would give.",
    ),
    "formula": st.column_config.TextColumn("formula"),
}


def _curve_state() -> dict:
    if CURVE_STATE not in st.session_state:
        st.session_state[CURVE_STATE] = {}
    return st.session_state[CURVE_STATE]


def _start_curves(plan: cs.CurvePlan, data, settings: cs.CurveSettings) -> None:
    """Fit the shapes by ML as a job of the runner (progress per shape, Cancel between
    shapes) and store the comparison for the active dataset."""
    fit = _ladder_fit(settings.data_key, False, data)

    def store(comparison: cs.CurveComparison) -> str:
        st.session_state[CURVE_STATE] = {
            **_curve_state(),
            settings.data_key: cs.StoredCurves(settings, comparison),
        }
        return f"Shapes of the curve compared ({len(comparison.fitted)} fitted)"

    jobs_view.launch(
        (CURVES, *settings),
        lambda job: work.curve_shapes(plan, fit, job.report),
        kind=CURVES,
        label=f"Fitting {len(plan.shapes)} shapes of the curve of {escape_message(plan.time)}",
        store=store,
    )


def _add_curve_fits(data_key: str) -> None:
    """Store the shapes' ML fits as session fit records; the active model stays active."""
    stored = _curve_state().get(data_key)
    if stored is None:
        return
    before = active_record()
    records = cs.curve_records(
        stored.comparison,
        data_key=data_key,
        data_name=st.session_state[Keys.DATA_NAME],
        existing=st.session_state[Keys.FITS],
    )
    names = []
    for record in records:
        record = record.renamed(next_name(record.name))
        add_fit(record)
        names.append(record.name)
    if before is not None:
        set_active(before.name)
    st.session_state[CURVE_NOTICE] = (
        f"Added {', '.join(names)} to the fitted models (see the sidebar)."
        if names
        else "Every shape is already among the fitted models."
    )


def _curve_figure(comparison: cs.CurveComparison, data) -> None:
    """The competing population curves over the observed means, with what is held fixed."""
    plan = comparison.plan
    fits = [(f.shape.label, f.result) for f in comparison.fitted]
    try:
        prep = fcs.shape_curves(fits, data, plan.time, by=plan.by)
    except (LMMError, ValueError, KeyError) as error:
        st.warning(f"The curves could not be drawn: {escape_message(str(error))}")
        return
    fig = fcs.curve_shape_figure(
        prep,
        time_label=plan.time,
        outcome_label=plan.outcome,
        highlight=comparison.recommended.label if comparison.recommended else None,
    )
    show_figure(fig, key="curve_figure")
    lines = [*prep.notes]
    if prep.failed:
        lines.append(f"No curve could be drawn for: {', '.join(prep.failed)}.")
    lines.append(
        "The curves are population averages (every random effect at zero); the thick one is "
        "the recommended shape."
    )
    st.caption(" ".join(escape_message(line) for line in lines))


def show_curves(comparison: cs.CurveComparison, data, data_key: str) -> None:
    """Verdict, advice, problems, the table, the figure and the button to keep the fits."""
    st.markdown("**Verdict**")
    st.markdown("\n".join(f"- {sentence}" for sentence in comparison.verdict))
    if comparison.advice:
        st.info(comparison.advice)
    for problem in comparison.problems:
        st.warning(problem)
    if not comparison.fitted:
        return
    table = cs.curve_table(comparison)
    st.dataframe(
        styled(table, RULES),
        hide_index=True,
        key="curve_table",
        column_order=[c for c in table.columns if c != "formula"] + ["formula"],  # 1024 px
        column_config=CURVE_COLUMNS,
        placeholder=MISSING,
    )
    st.caption(
        "All shapes are fitted by maximum likelihood (their fixed effects differ, so REML "
        "criteria could not be compared). AIC and BIC: lower is better; delta is the distance "
        "from the best shape. Each curve is tested against the straight line, which it "
        "contains."
    )
    _curve_figure(comparison, data)
    notice = st.session_state.get(CURVE_NOTICE)
    if notice:
        st.success(notice)
        st.session_state[CURVE_NOTICE] = None
    st.button(
        "Add the shapes' models to the fitted models",
        key=W_CURVE_ADD,
        on_click=_add_curve_fits,
        args=(data_key,),
        help="Keep these ML fits in the session so the Model, Diagnostics and other pages can "
        "show them (the active model stays as it is).",
    )


def _curve_plan(data, roles) -> tuple[cs.CurvePlan, FitRecord] | None:
    """The shapes to compare, or ``None`` after saying what is missing."""
    time = roles.time
    if time is None or time not in data.columns or not is_numeric(data[time]):
        st.info(
            "Comparing shapes of the curve needs a numeric time column: set it on the Data page."
        )
        st.page_link(DATA_PAGE, label="Go to the Data page")
        return None
    active = active_record()
    if active is None:
        st.info(
            "Comparing shapes of the curve starts from a fitted model: fit one on the Model "
            "page first (its formula is kept, only the shape of time changes)."
        )
        st.page_link(MODEL_PAGE, label="Go to the Model page")
        return None
    try:
        return cs.plan_curves(active.formula, data, time), active
    except LMMError as error:
        st.info(str(error))
        return None


def curve_section() -> None:
    """Compare shapes of the population curve of time on request and show them."""
    help_md = help_text(CURVE_HELP) if CURVE_HELP in ENTRIES else None
    st.header("Does the curve earn its keep?", help=help_md)
    st.caption(
        "Is a curved population trend worth its extra parameters? One click refits the "
        "active model with time as a straight line, a quadratic and natural splines "
        "(everything else as it is) and tests each curve against the straight line."
    )
    data = current_data()
    planned = _curve_plan(data, current_roles())
    if planned is None:
        return
    plan, active = planned
    st.markdown(
        f"Active model: {code_span(active.formula)}. Shapes of {escape_message(plan.time)}:"
    )
    st.markdown(
        "\n".join(
            f"{i + 1}. {s.label}{' (active model)' if s.active and s.key != 'active' else ''}: "
            f"{code_span(s.formula)}"
            for i, s in enumerate(plan.shapes)
        )
    )
    for note in plan.notes:
        st.caption(note)
    data_key = st.session_state[Keys.DATA_KEY]
    settings = cs.CurveSettings(
        data_key, active.formula, plan.time, tuple(s.formula for s in plan.shapes)
    )
    if st.button("Compare the shapes", key=W_CURVE_RUN, type="primary"):
        _start_curves(plan, data, settings)
    jobs_view.show_notice(CURVES)
    if jobs_view.show_progress((CURVES, *settings)):
        return
    stored = _curve_state().get(data_key)
    if stored is None:
        return
    if stored.settings != settings:
        st.info(
            "The shapes were compared for another active model or time column. Click "
            "'Compare the shapes' to compare them again."
        )
        return
    show_curves(stored.comparison, data, data_key)
    keys = [k for k in (CURVE_HELP, "lrt", "aic", "bic") if k in ENTRIES]
    how_to_read(*keys, label="How to read the comparison of shapes")


# --------------------------------------------------------------------------- ladder
LADDER_COLUMNS = {
    "step": st.column_config.TextColumn("step", help=help_text("re_ladder")),
    "npar": LRT_COLUMNS["npar"],
    "logLik": LRT_COLUMNS["logLik"],
    "AIC": LRT_COLUMNS["AIC"],
    "BIC": LRT_COLUMNS["BIC"],
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


def _ladder_fit(data_key: str, reml: bool, frame) -> Any:
    return lambda formula: cached.fit_model(data_key, formula, reml, frame)


def _status(ladder: lad.Ladder) -> tuple[str, str]:
    """The ladder's outcome in one line (:func:`dashboard.analysis.ladder.ladder_status`)."""
    seconds = sum(s.seconds for s in ladder.steps)
    took = f"{seconds:.1f}" if seconds >= 1 else f"{seconds:.2f}"  # fixed: timing
    return lad.ladder_status(ladder.steps, took)


def _start_ladder(
    plan: lad.LadderPlan, reml: bool, frame, fit_key: str, settings: lad.LadderSettings
) -> None:
    """Fit the ladder as a job of the runner (progress per rung, Cancel between rungs; it
    goes on across page switches) and store it for the active dataset."""
    data_key = st.session_state[Keys.DATA_KEY]
    fit = _ladder_fit(fit_key, reml, frame)

    def store(ladder: lad.Ladder) -> str:
        st.session_state[Keys.LADDER] = {
            **st.session_state[Keys.LADDER],
            data_key: lad.StoredLadder(settings, ladder),
        }
        return _status(ladder)[0]

    jobs_view.launch(
        (LADDER, *settings),
        lambda job: work.ladder(plan, fit, reml, job.report),
        kind=LADDER,
        label=f"Fitting the random-effects ladder ({len(plan.specs)} steps)",
        store=store,
    )


def _add_ladder_fits(data_key: str) -> None:
    """Store the ladder's fits as session fit records; the active model stays active."""
    stored = st.session_state[Keys.LADDER].get(data_key)
    if stored is None:
        return
    before = active_record()
    records = lad.ladder_records(
        stored.ladder,
        data_key=data_key,
        data_name=st.session_state[Keys.DATA_NAME],
        existing=st.session_state[Keys.FITS],
    )
    names = []
    for record in records:
        record = record.renamed(next_name(record.name))
        add_fit(record)
        names.append(record.name)
    if before is not None:
        set_active(before.name)
    st.session_state[Keys.LADDER_NOTICE] = (
        f"Added {', '.join(names)} to the fitted models (see the sidebar)."
        if names
        else "Every model of the ladder is already among the fitted models."
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
    show_figure(lad.ladder_figure(ladder), key="ladder_figure")
    st.caption(
        "Each step keeps the fixed effects and adds one piece of random-effects structure, so "
        f"the {'REML' if ladder.reml else 'ML'} fits can be compared by a likelihood-ratio "
        "test and by AIC and BIC (lower is better). Climb while a step is clearly needed."
    )
    notice = st.session_state[Keys.LADDER_NOTICE]
    if notice:
        st.success(notice)
        st.session_state[Keys.LADDER_NOTICE] = None
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


def ladder_section() -> None:
    """Fit the random-effects ladder on request and show it."""
    st.header("Random-effects ladder")
    st.caption(
        "How much random-effects structure do the data support? One click fits a ladder of "
        "models with the same fixed effects, each adding one piece: a random intercept per "
        "subject, a random slope, the correlation between them, and a cluster level. Each "
        "step is tested against the one below it."
    )
    data, roles = current_data(), current_roles()
    active = active_record()
    try:
        plan = lad.plan_ladder(data, roles, active.formula if active else None)
    except LMMError as error:
        st.info(str(error))
        st.page_link(DATA_PAGE, label="Go to the Data page")
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


def main() -> None:
    """Render the Compare page."""
    init_state()
    st.title("Compare")
    st.caption(
        "Is the more complex model worth it? Compare fitted models with likelihood-ratio "
        "tests (for models where one is a special case of the other) and with AIC and BIC, "
        "test whether time needs a curve, or fit the random-effects ladder."
    )
    st.markdown(dataset_caption())
    fitted_models_section()
    st.divider()
    curve_section()
    st.divider()
    ladder_section()


main()
