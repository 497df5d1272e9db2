"""Teach page, binary outcome: set a logistic truth, simulate, fit, and see the
subject-specific vs population-averaged distinction and the attenuation of the marginal effect.

Sections: 1 the truth, 2 one study (curves, estimates against the truth, attenuation),
3 Laplace vs quadrature on that study (:mod:`dashboard.views.quadrature`).
"""

from __future__ import annotations

import math
from typing import Any

import streamlit as st

from dashboard.analysis import teach_binary as tb
from dashboard.base.numbers import MISSING, fmt, styled
from dashboard.figures.teach_binary import attenuation_figure, binary_curves_figure
from dashboard.help.texts import help_text
from dashboard.state.session import Keys, persistent_widget
from dashboard.views.quadrature import quadrature_section
from dashboard.views.teach import seed_row
from dashboard.views.widgets import show_figure
from lmm_core import LMMError
from lmm_core.simulation.teaching_binary import BinaryTruth, fit_binary, simulate_binary

__all__ = ["OUTCOMES", "binary_lab", "outcome_choice"]

W = Keys.TEACH_BINARY_W
OUTCOMES = {"continuous": "Continuous outcome", "binary": "Binary outcome (yes/no)"}
LEVEL = 0.95


def _settings() -> dict[str, Any]:
    return st.session_state[Keys.TEACH_BINARY_SETTINGS]


def _kept(name: str, default: Any, **kw: Any) -> dict[str, Any]:
    return persistent_widget(W + name, _settings(), name, default, **kw)


def outcome_choice() -> str:
    """The Teach page's choice between the continuous and the binary lab."""
    choices = list(OUTCOMES)
    return st.radio(
        "Outcome",
        choices,
        format_func=OUTCOMES.get,
        horizontal=True,
        help="Continuous: a linear mixed model of a measurement. Binary: a logistic mixed "
        "model (GLMM) of a yes/no outcome, where the curve of the typical subject and the "
        "curve of the population average differ.",
        **persistent_widget(
            Keys.W_TEACH_OUTCOME, _settings(), "outcome", "continuous", options=choices
        ),
    )


def _number(name: str, where) -> None:
    c = tb.BINARY_CONTROLS[name]
    kind = int if name in ("n_subjects", "n_visits") else float
    default = tb.binary_default(name)
    fix = lambda v: kind(min(max(v, c.low), c.high))  # noqa: E731
    kw = _kept(name, default, fix=fix)
    lo, hi, step = kind(c.low), kind(c.high), kind(c.step)
    if kind is int:
        where.number_input(c.label, min_value=lo, max_value=hi, step=step, help=c.help, **kw)
    else:
        where.slider(c.label, min_value=lo, max_value=hi, step=step, help=c.help, **kw)


def _new_seed() -> None:
    _settings()["seed"] = int(_settings().get("seed", tb.BINARY_DEFAULT_SEED)) % 999_999 + 1


def binary_controls() -> None:
    """Section 1: the true logistic model and the design."""
    st.subheader("1. Set the truth")
    with st.container(border=True):
        left, middle, right = st.columns(3)
        left.markdown("**The typical subject**")
        _number("baseline", left)
        left.radio(
            "Effect",
            list(tb.EFFECT_LABELS),
            format_func=tb.EFFECT_LABELS.get,
            horizontal=True,
            help="Treatment: every other subject is treated (the odds ratio compares treated "
            "with untreated). Time: the odds change by the odds ratio from one visit to the "
            "next.",
            **_kept("effect", "treatment", options=list(tb.EFFECT_LABELS)),
        )
        left.select_slider(
            "Odds ratio within a subject",
            options=list(tb.ODDS_RATIOS),
            help="exp(β₁): how the odds of the same subject change with treatment (or per "
            "visit). 1 means no effect.",
            **_kept("odds_ratio", 3.0, options=list(tb.ODDS_RATIOS)),
        )
        middle.markdown("**How subjects differ**")
        _number("sd", middle)
        middle.caption(help_text("population_averaged").split("\n\n")[0])
        right.markdown("**Study design**")
        _number("n_subjects", right)
        _number("n_visits", right)
    seed_row(
        _kept("seed", tb.BINARY_DEFAULT_SEED, fix=int),
        W + "new_study",
        _new_seed,
        "Same truth, new random subjects and outcomes (the seed goes up by one).",
    )


@st.cache_data(max_entries=16, ttl=3600, show_spinner="Simulating and fitting the study...")
def _study(truth: tuple, seed: int):
    study = simulate_binary(BinaryTruth(*truth), seed)
    return study, fit_binary(study)


def _metrics(study, fits) -> None:
    data, g = study.data, fits.glmm
    cols = st.columns(4)
    cols[0].metric("Observations", f"{len(data):,}", help="Subjects × visits.")
    cols[1].metric(
        "Share of 1s", f"{data['y'].mean():.1%}", help="Share of visits with the outcome."
    )
    cols[2].metric(
        "GLMM fit time",
        f"{g.seconds * 1000:.0f} ms",  # fixed: timing
        help="Time to fit the GLMM (Laplace approximation, as glmer's default).",
    )
    cols[3].metric(
        "Singular fit",
        "yes" if g.is_singular else "no",
        help="Yes when the SD between subjects is estimated as zero.",
    )


RECOVERY_COLUMNS = {
    "parameter": st.column_config.TextColumn("parameter"),
    "truth": st.column_config.NumberColumn(
        "truth (subject)", help="The value you set: the subject-specific (conditional) truth."
    ),
    "glmm": st.column_config.NumberColumn(
        "GLMM", help="The logistic mixed model's estimate (Laplace): targets the truth."
    ),
    "glmm_lower": st.column_config.NumberColumn("GLMM lower", help="95% Wald interval."),
    "glmm_upper": st.column_config.NumberColumn("GLMM upper", help="95% Wald interval."),
    "averaged": st.column_config.NumberColumn(
        "truth (averaged)",
        help="The population-averaged truth, by integration: what a logistic regression "
        "ignoring the subjects estimates in a very large study.",
    ),
    "glm": st.column_config.NumberColumn(
        "logistic regression", help="Ordinary logistic regression ignoring who is who."
    ),
    "glm_lower": st.column_config.NumberColumn(
        "LR lower", help="95% Wald interval counting every visit as independent (too narrow)."
    ),
    "glm_upper": st.column_config.NumberColumn("LR upper", help="95% Wald interval."),
}


def one_binary_study(truth: BinaryTruth, seed: int):
    """Section 2: the study, its curves, the estimates and the attenuation."""
    st.subheader("2. One simulated study: subject-specific vs population-averaged")
    try:
        study, fits = _study(tb.binary_truth_key(truth), seed)
    except LMMError as err:
        st.error(f"This study could not be fitted: {err}")
        return None
    _metrics(study, fits)
    curves = tb.binary_curves(study, fits)
    show_figure(
        binary_curves_figure(
            curves.curves, curves.subjects, curves.observed, truth.effect, truth.n_visits
        ),
        key="teach_binary_curves",
    )
    st.caption(
        "Grey: the true curves of 40 subjects (each subject's own probability, untreated and "
        "treated or visit by visit). Black: the typical subject (random effect 0), whose odds "
        "ratio is the one you set. Green: the average of all subjects' probabilities, by "
        "integration over the random effect: flatter, because subjects near 0 or 1 cannot move "
        "much. The GLMM estimates the black curve (and, with its SD, the green one); the "
        "logistic regression ignoring subjects estimates the green one. Circles: the shares "
        "observed in this study. Raise the SD to see the green curve flatten.",
        help=help_text("population_averaged"),
    )
    table = tb.recovery_table(fits, truth, LEVEL)
    st.dataframe(
        styled(table), hide_index=True, column_config=RECOVERY_COLUMNS, placeholder=MISSING
    )
    att = tb.attenuation(truth)
    st.markdown("#### Attenuation of the averaged effect")
    cols = st.columns(4)
    cols[0].metric("Log OR within a subject", fmt(att.conditional, 3), help="β₁ = log(odds ratio).")
    cols[1].metric(
        "Log OR averaged (exact)",
        fmt(att.marginal, 3),
        help=help_text("attenuation"),
    )
    cols[2].metric("Approximation", fmt(att.approximate, 3), help=help_text("attenuation"))
    cols[3].metric("Logistic regression", fmt(fits.glm.beta[1], 3), help="This study's estimate.")
    st.markdown(tb.attenuation_text(truth, att, float(fits.glm.beta[1])))
    if not math.isclose(truth.beta1, 0.0):
        show_figure(
            attenuation_figure(tb.attenuation_curve(truth), truth.sd, float(fits.glm.beta[1])),
            key="teach_binary_attenuation",
        )
    return fits


def binary_lab() -> None:
    """The binary lab: truth, one study, Laplace vs quadrature."""
    binary_controls()
    try:
        truth = tb.settings_to_binary_truth(_settings())
    except LMMError as err:
        st.error(f"These settings cannot be simulated: {err}")
        return
    seed = int(_settings().get("seed", tb.BINARY_DEFAULT_SEED))
    fits = one_binary_study(truth, seed)
    if fits is None:
        return
    st.subheader("3. Laplace vs quadrature")
    quadrature_section(fits.glmm, key=W + "quadrature")
