"""Shrinkage page: each subject's own estimate, the mixed model's estimate, the population."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st

from dashboard.analysis.chart_text import caterpillar_sentence, shrinkage_sentence
from dashboard.analysis.mmrm_models import has_random_effects, is_mmrm
from dashboard.base.markup import escape_text, plain_estimates, plain_name
from dashboard.base.numbers import MISSING, fmt, styled
from dashboard.figures import shrinkage as fs
from dashboard.figures import shrinkage_curves as fsc
from dashboard.figures.model_inputs import subject_group
from dashboard.help.texts import help_text
from dashboard.state import cached
from dashboard.state.fits import require_fit
from dashboard.state.session import Keys, init_state, persistent_widget
from dashboard.views.glmm_model import require_model_data
from dashboard.views.glmm_shrinkage import glmm_intro, render_combined_effects
from dashboard.views.help import column, how_to_read
from dashboard.views.mmrm import needs_random_effects
from dashboard.views.streamed_notice import show_sample_notice
from dashboard.views.widgets import model_caption, show_figure

if TYPE_CHECKING:  # annotations only: the estimates come from dashboard.state.cached
    from lmm_core.predict.per_group import ShrinkageEstimates

INTRO = """
A **mixed model does not simply fit each {s} on its own.** For every {s} it compares three
numbers per random effect (for example an intercept and a slope over time):

- **own data only**: {fit} of the same effects to that {s}'s observations
  alone (its own intercept and slope, say), ignoring every other {s};
- **population value**: the fixed effects, the value for a typical {s} with the same
  covariates (for example the same treatment arm);
- **mixed model**: the model's estimate for that {s} (fixed effects plus the {s}'s random
  effect, {pred}).

The mixed-model estimate lies between the other two: it is a weighted compromise. The weight
on the {s}'s own data grows with the number of its observations and with how much {s}s truly
differ, and falls with the measurement noise. A {s} with many observations keeps nearly its
own estimate; a {s} with few observations is pulled strongly toward the population, because
its own estimate rests on little data and extreme values are more likely to be noise. This
**shrinkage** ("borrowing strength" from the other {s}s) gives better estimates on average
than either extreme.
"""


def _settings() -> dict[str, Any]:
    return st.session_state[Keys.SHRINK_SETTINGS]


def _select(label: str, name: str, options: list, default: Any, where=st, **kw) -> Any:
    """A selectbox whose choice survives page switches (stored in the settings dict)."""
    kept = persistent_widget(Keys.SHRINK_W + name, _settings(), name, default, options=options)
    return where.selectbox(label, options, **kept, **kw)


def intercept_weights(est: ShrinkageEstimates, sigma: float) -> str:
    """For a random intercept alone: the weight n tau^2 / (n tau^2 + sigma^2) for a few n."""
    tau2 = float(est.covariance[0, 0])
    weights = ", ".join(
        f"{n} obs. → {fmt(n * tau2 / (n * tau2 + sigma**2), 2)}" for n in (1, 2, 5, 10, 20)
    )
    return (
        f"For a random intercept the weight on a subject's own data is exactly "
        f"n·τ² / (n·τ² + σ²), with τ = {fmt(tau2**0.5, 3)} (how much subjects differ) and "
        f"σ = {fmt(sigma, 3)} (measurement noise). In this model: {weights}."
    )


def choose_group(result, subject: str | None) -> tuple[str, list[str]]:
    """The grouping factor whose estimates are compared (a choice when there are several)
    and the model's other grouping factors."""
    groups = list(result.ngroups)
    group = groups[0]
    if len(groups) > 1:
        group = _select(
            "Grouping factor",
            "group",
            groups,
            subject_group(result, subject),
            help="Whose estimates to compare (each grouping factor has its own random effects).",
        )
    return group, [g for g in groups if g != group]


def intro_section(
    est: ShrinkageEstimates, label: str, others: list[str], family: str = "gaussian"
) -> list:
    """What the page compares (a GLMM's own fits are logistic or Poisson fits, its random
    effects conditional modes), and which levels the arrow plots draw (returned)."""
    fit = {"binomial": "a logistic fit", "poisson": "a Poisson fit"}.get(
        family, "a least-squares fit"
    )
    pred = "its BLUP" if family == "gaussian" else "its conditional mode"
    st.markdown(INTRO.format(s=label, fit=fit, pred=pred))
    how_to_read(
        "own_estimate",
        "population_value",
        "blup",
        "shrinkage_factor",
        "conditional_sd",
        label="The terms on this page",
    )
    if others:
        st.caption(
            f"This model also has random effects for {', '.join(others)}: the mixed-model "
            f"estimate of a {label} includes them too (for example its {others[0]}'s "
            f"intercept), so it is the model's whole estimate for that {label}."
        )
    n_fitted = int(est.table["fitted_own"].sum())
    levels = fs.sample_levels(est)
    if n_fitted > len(levels):
        st.caption(
            f"The arrow plots show a random sample of {len(levels):,} of the {n_fitted:,} "
            f"{label}s with an own fit, so the browser stays fast; the caterpillar plot below "
            "covers all of them."
        )
    return levels


def one_effect_section(
    est: ShrinkageEstimates, label: str, levels: list, sigma: float | None, link: str | None = None
) -> None:
    """Own vs mixed-model estimate of each effect, and who moves most."""
    cols = list(est.columns)
    st.subheader("One effect at a time", help=help_text("shrinkage_factor"))
    st.caption(
        "Upper row: each subject's own estimate (bigger dot = more observations). Lower row: "
        "the mixed-model estimate. The arrow shows how far the model moved it; the dashed "
        "line is the population value. Hover over a dot for the numbers; the factor is the "
        "share of the subject's own distance from the population that the model keeps "
        "(1 = not moved, 0 = moved all the way to the population)."
    )
    show_figure(
        fs.shrinkage_1d_figure(est, levels=levels, subject_label=label),
        key="shrink_1d",
        description=shrinkage_sentence(est, label, link),
    )
    if len(cols) == 1 and sigma is not None:  # a GLMM has no residual SD
        st.info(intercept_weights(est, sigma))
    by_n = fs.shrinkage_by_n(est)
    if len(by_n) > 1:
        st.markdown(
            f"**Who moves most?** Medians by number of observations: the share of the own "
            f"deviation the model keeps, and how far the estimate moved. {label.capitalize()}s "
            "with few observations keep less and move further."
        )
        st.dataframe(
            styled(by_n, {"observations": "int", "subjects": "int"}),
            hide_index=True,
            width="content",
            column_config={
                "observations": column("visits_per_subject"),
                "subjects": column("subjects"),
                **{f"kept: {c}": column("shrinkage_factor") for c in cols},
                **{f"moved: {c}": column("moved") for c in cols},
            },
            placeholder=MISSING,
        )
        kept = by_n[[f"kept: {c}" for c in cols]].to_numpy(dtype=float)
        if len(cols) > 1 and ((kept < 0) | (kept > 1)).any():
            st.caption(
                "A share below 0 or above 1 is no error: with several correlated random "
                "effects the model moves them together, so one coefficient can be pulled past "
                "the population value or away from it by the others (and a median over few "
                f"{label}s is itself noisy)."
            )


def curve_axis(result, data: pd.DataFrame, curved: list[str]) -> str | None:
    """The data column the random part's spline or polynomial is a function of (None when
    it is not one plain numeric column)."""
    columns = result.design.basis_columns()
    for label, cols in columns.items():
        if len(cols) == 1 and any(c.startswith(plain_name(label)) for c in curved):
            col = cols[0]
            if col in data.columns and pd.api.types.is_numeric_dtype(data[col]):
                return col
    return None


def curves_section(result, data, est: ShrinkageEstimates, label: str, curved: list[str]) -> None:
    """For a spline or polynomial random part: what its coefficients are, and whole curves."""
    bases = result.design.bases
    x = curve_axis(result, data, curved)
    calls = "; ".join(
        f"`{state.r_call(x)}`" for name, state in bases.items() if x and any(
            c.startswith(plain_name(name)) for c in curved
        )
    )  # fmt: skip
    st.subheader("Whole curves: own fit → mixed model", help=help_text("own_estimate"))
    st.markdown(
        f"Here each {label}'s random effects are an intercept and **curve coefficients** "
        f"({', '.join(escape_text(c) for c in curved)}): each one multiplies a smooth "
        "basis curve"
        + (f" over {x} ({calls})" if x else "")
        + ". A coefficient is not a slope and means little on its own; together they give "
        f"the shape of the {label}'s curve. The panels below compare whole curves: the "
        f"{label}'s own fit on the same basis (its data alone), the mixed model's curve and "
        "the population curve; the arrows and the caterpillar plot further down compare the "
        "coefficients one by one."
    )
    if x is None or est.group not in data.columns:
        return
    levels = fsc.curve_levels(est)
    curves, points = fsc.prepare_curves(result, data, est, x, levels)
    fig = fsc.shrinkage_curves_figure(
        curves, points, est.table["n"], subject_label=label, x_label=x, y_label=result.response
    )
    show_figure(fig, key="shrink_curves")
    st.caption(
        f"The {len(levels)} {label}s with fewest observations (then the largest move). "
        "Dashed orange: own fit; solid blue: mixed model; dotted black: population. The "
        f"mixed model pulls the own fit toward the population curve: a little for a {label} "
        "with many observations, more for one with few (with several curve coefficients the "
        "pull can bend the curve rather than shift it evenly)."
    )


def two_effects_section(
    est: ShrinkageEstimates, label: str, levels: list, link: str | None = None
) -> None:
    """Two effects in one plane, with the fitted covariance ellipse (two or more effects)."""
    cols = list(est.columns)
    if len(cols) < 2:
        return
    st.subheader("Two effects together", help=help_text("re_correlation"))
    left, right = st.columns(2)
    x = _select("Horizontal", "x", cols, cols[0], where=left)
    y = _select("Vertical", "y", cols, cols[1], where=right)
    if x == y:
        return
    show_figure(
        fs.shrinkage_2d_figure(est, x, y, levels=levels, subject_label=label),
        key="shrink_2d",
        description=shrinkage_sentence(est, label, link),
    )
    st.caption(
        "Orange dots: own estimates; blue dots: mixed-model estimates; × the population "
        "value (one per covariate group, e.g. per arm). The dashed ellipse is where the "
        "model expects 95% of subjects' true values to lie (the fitted random-effects "
        "covariance): estimates are pulled toward its centre, and along its tilt when "
        f"the effects are correlated. Correlation here: {_corr(est, x, y)}."
        + _centres_note(est, [x, y])
    )


def _centres_note(est: ShrinkageEstimates, columns: list[str]) -> str:
    """A sentence when only the most common population values get an ellipse."""
    m = len(fs.population_centres(est, columns))
    if m <= fs.MAX_ELLIPSES:
        return ""
    return (
        f" Ellipses are drawn around the {fs.MAX_ELLIPSES} population values shared by most "
        f"subjects (of {m}: a subject's population value is the population curve read on "
        "that subject's own visits, so missed visits or changing covariates can move it)."
    )


def caterpillar_section(est: ShrinkageEstimates, label: str, glmm: bool = False) -> None:
    """Every BLUP (a GLMM's conditional mode) with its interval, sorted."""
    st.subheader(
        "Random effects with their uncertainty (caterpillar plot)",
        help=help_text("caterpillar_plot"),
    )
    what = "conditional mode (link scale)" if glmm else "BLUP"
    st.caption(
        f"Each row is one subject's {what} (its deviation from the population value) with a "
        "95% interval (±1.96 conditional SD), sorted. Red: intervals that exclude 0, subjects "
        "that clearly differ from the population. Subjects with few observations have wide "
        "intervals."
    )
    show_figure(
        fs.caterpillar_figure(est, subject_label=label),
        key="shrink_caterpillar",
        description=caterpillar_sentence(est, label),
    )
    m = len(est.table)
    if m > fs.MAX_CATERPILLAR:
        st.caption(
            f"{fs.MAX_CATERPILLAR:,} evenly spaced ranks of the {m:,} sorted {label}s are drawn "
            "(the smallest and largest included), so the shape stays visible and the page fast."
        )


def main() -> None:
    """Render the Shrinkage page."""
    init_state()
    st.title("Shrinkage")
    data, roles = require_model_data("The Shrinkage page")
    record = require_fit("The Shrinkage page")
    show_sample_notice(record, "the own-data fits and plots use")
    result = record.result
    if is_mmrm(result):  # no patient-level random effects: nothing patient-specific to show
        st.markdown(model_caption(record))
        if has_random_effects(result):
            render_combined_effects(result)
        else:
            needs_random_effects("shrinkage")
        st.stop()
    st.markdown(model_caption(record))
    group, others = choose_group(result, roles.subject)
    label = roles.subject if group == roles.subject else group
    if record.is_glmm:
        est = plain_estimates(cached.glmm_shrinkage(record.key, group, result, data))
        glmm_intro(result, label)
    else:
        est = plain_estimates(cached.shrinkage(record.key, group, result))  # plain names
    levels = intro_section(est, label, others, record.family)
    curved = fsc.basis_effects(result, est.columns)
    if curved and not record.is_glmm:
        curves_section(result, data, est, label, curved)
    link = result.link if record.is_glmm else None
    one_effect_section(est, label, levels, None if record.is_glmm else result.sigma, link)
    two_effects_section(est, label, levels, link)
    caterpillar_section(est, label, record.is_glmm)
    left_out(est, label)


def _corr(est: ShrinkageEstimates, x: str, y: str) -> str:
    i, j = est.columns.index(x), est.columns.index(y)
    c = est.covariance
    denom = (c[i, i] * c[j, j]) ** 0.5
    return fmt(c[i, j] / denom, 2) if denom > 0 else "not defined (a variance is zero)"


def left_out(est: ShrinkageEstimates, label: str) -> None:
    """Which subjects have no own-data fit, and why."""
    st.subheader("Left out of the own-data fits", help=help_text("own_estimate"))
    lo = est.left_out
    if lo.empty:
        st.success(f"Every {label} has enough observations for its own fit.")
        return
    reasons = lo["reason"].value_counts()
    summary = "; ".join(f"{n:,} with {r}" for r, n in reasons.items())
    st.markdown(
        f"{len(lo):,} of {len(est.table):,} {label}s have no own-data estimate ({summary}). "
        "They are still in the mixed model, which gives them an estimate anyway (see the "
        "caterpillar plot): their estimate comes mostly from the population."
    )
    table = pd.DataFrame(
        {label: lo.index.astype(str), "observations": lo["n"], "reason": lo["reason"]}
    )
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        height=min(400, 36 + 35 * len(table)),
        column_config={"observations": column("visits_per_subject")},
    )


main()
