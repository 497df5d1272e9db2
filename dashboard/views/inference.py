"""Inference on the Model page: df, p-values and CIs of the fixed effects, profile and
bootstrap intervals, variance explained (Streamlit; numbers come from :mod:`lmm_core`).

Expensive numbers go through :mod:`dashboard.state.cached` (df methods); the profile
intervals and the bootstrap run on request as jobs of the runner (:mod:`dashboard.views.jobs`:
progress, Cancel, they go on across page switches) and are kept in the session.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from dashboard.analysis.records import FitRecord
from dashboard.base.markup import escape_message, plain_index, plain_name
from dashboard.base.numbers import MISSING, fmt, styled
from dashboard.help.texts import help_text
from dashboard.state import cached, work
from dashboard.state.isolation import in_child
from dashboard.state.session import Keys, persistent_widget
from dashboard.views import jobs as jobs_view
from dashboard.views.help import column
from lmm_core import LMMError, LMMResult

__all__ = [
    "DF_METHODS",
    "fixed_inference_table",
    "render_bootstrap",
    "render_fixed_inference",
    "render_profile",
    "render_variance_explained",
    "show_bootstrap",
]

#: label -> method of ``lmm_core.inference.fixed_effects.fixef_inference``
DF_METHODS = {
    "Satterthwaite": "satterthwaite",
    "Kenward-Roger (slower)": "kenward-roger",
    "Wald (normal, no df correction)": "wald",
}
#: method -> help key of its df column
DF_HELP = {
    "satterthwaite": "df_satterthwaite",
    "kenward-roger": "df_kenward_roger",
    "wald": "df_wald",
}
LEVEL = 0.95
NUM = st.column_config.NumberColumn
PROFILE, BOOTSTRAP = "profile", "bootstrap"  # job kinds
W = Keys.INFER_W


def _settings() -> dict[str, Any]:
    return st.session_state[Keys.INFER_SETTINGS]


def _seed(name: str, default: Any) -> dict[str, Any]:
    """Widget ``name`` kept in the inference settings."""
    return persistent_widget(W + name, _settings(), name, default)


def fixed_inference_table(table: pd.DataFrame, level: float = LEVEL) -> pd.DataFrame:
    """Readable columns of ``fixef_inference``'s table (index: the lme4 names, shown
    without backticks)."""
    pct = f"{level:.0%}"
    shown = pd.DataFrame(
        {
            "Estimate": table["estimate"],
            "Std. error": table["std_error"],
            "df": table["df"],
            "t value": table["t_value"],
            "p value": table["p_value"],
            f"{pct} CI low": table["ci_lower"],
            f"{pct} CI high": table["ci_upper"],
        },
        index=table.index,
    )
    return plain_index(shown)  # renamed after the columns are aligned on the lme4 names


def render_fixed_inference(record: FitRecord) -> None:
    """The df-method choice and the table with df, t, p and confidence intervals."""
    result: LMMResult = record.result
    labels = list(DF_METHODS)
    if _settings().get("df_method") not in labels:
        _settings()["df_method"] = labels[0]
    label = st.radio(
        "Degrees of freedom for the t tests",
        labels,
        horizontal=True,
        **_seed("df_method", labels[0]),
        help=help_text("df"),
    )
    method = DF_METHODS[label]
    try:
        table = cached.fixef_inference(record.key, method, LEVEL, result)
    except LMMError as err:
        st.warning(f"{label} could not be computed for this model: {err}")
        return
    shown = fixed_inference_table(table)
    ci_low, ci_high = shown.columns[-2:]
    st.dataframe(
        styled(shown, {"df": 3, "p value": "p"}),
        key="model_fixef",
        column_config={
            "Estimate": column("estimate"),
            "Std. error": column("std_error"),
            "df": column(DF_HELP[method]),
            "t value": column("t_value"),
            "p value": column("p_value"),
            ci_low: column("confidence_interval"),
            ci_high: column("confidence_interval"),
        },
        placeholder=MISSING,
    )
    st.caption(
        f"p value: the chance of a t value at least this far from 0 if the true coefficient "
        f"were 0, from a t distribution with the {label.split(' (')[0]} degrees of freedom "
        f"(infinite for Wald). The {LEVEL:.0%} confidence interval is estimate -/+ t quantile x "
        "standard error."
    )


def render_variance_explained(result: LMMResult, time: str | None) -> None:
    """Marginal and conditional R-squared, and the ICC over time for slope models."""
    from lmm_core.inference import variance_explained as ve

    try:
        r2 = ve.r2_nakagawa(result)
    except LMMError:
        return
    st.markdown("**Variance explained (Nakagawa and Schielzeth R²)**")
    left, right = st.columns(2)
    left.metric("Marginal R² (fixed effects)", fmt(r2.marginal, 3), help=help_text("r2_marginal"))
    right.metric(
        "Conditional R² (fixed + random)",
        fmt(r2.conditional, 3),
        help=help_text("r2_conditional"),
    )
    st.caption(
        "Marginal R²: share of the variance explained by the fixed effects alone; conditional "
        "R²: by the fixed and the random effects together. The gap is what the groups' own "
        "deviations explain."
    )
    slope_terms = [
        t for t in result.reterms if time is not None and time in map(plain_name, t.cnames)
    ]  # a quoted time column has the cname `Visit day`
    if not slope_terms:
        return
    term = slope_terms[0]
    k = [plain_name(c) for c in term.cnames].index(time)
    values = term.z[:, k]
    times = np.linspace(float(values.min()), float(values.max()), 5)
    try:
        curve = ve.icc_curve(result, term.group, times, time=term.cnames[k])
    except LMMError:
        return
    st.markdown(
        f"ICC of **{term.group}** along {time}: with a random slope, the share of the "
        f"variance that lies between {term.group}s changes with {time}"
        + (
            " (here the other levels' share, e.g. a cluster above, is not counted)."
            if len(result.reterms) > len(slope_terms)
            else "."
        ),
        help=help_text("icc_time"),
    )
    table = curve[["time", "icc"]].rename(columns={"time": time, "icc": "ICC"})
    st.dataframe(
        styled(table, 3),
        key="model_icc_curve",
        hide_index=True,
        column_config={time: NUM(), "ICC": column("icc_time")},
        placeholder=MISSING,
    )


def render_profile(record: FitRecord) -> None:
    """Profile-likelihood intervals on request: a job of the runner (progress, Cancel; it
    goes on when the user switches pages), its table kept in the session."""
    key = (*record.key, "profile", LEVEL)
    table = st.session_state[Keys.INFER_RESULTS].get(key)
    running = jobs_view.get(key) is not None
    title = "Profile confidence intervals (variance components and fixed effects)"
    with st.expander(title, expanded=table is not None or running, key=W + "profile_box"):
        st.caption(
            "Likelihood-profile intervals, as lme4's `confint(fit, method = 'profile')`: each "
            "parameter is moved away from its estimate until the fit gets significantly worse. "
            "Unlike estimate -/+ 2 SE they respect that an SD cannot go below 0. They take "
            "several refits (seconds on big data); REML fits are profiled by ML, as lme4 does."
        )
        jobs_view.show_notice(PROFILE)
        if table is None and not running:
            if st.button("Compute profile intervals", key=W + "profile"):
                _start_profile(record, key)
            return
        if jobs_view.show_progress(key) or table is None:
            return
        shown = plain_index(table).rename(
            columns={"lower": f"{LEVEL:.0%} low", "upper": f"{LEVEL:.0%} high"}
        )
        st.dataframe(
            styled(shown),
            key="model_profile",
            column_config={c: column("profile_ci") for c in shown.columns},
            placeholder=MISSING,
        )
        for message in table.attrs.get("messages", []):
            st.caption(message)


def _start_profile(record: FitRecord, key: tuple) -> None:
    result, name = record.result, record.name

    def store(table: pd.DataFrame) -> str:
        st.session_state[Keys.INFER_RESULTS][key] = table
        took = f"{table.attrs['seconds']:.1f} s"  # fixed: timing
        return f"Profile intervals of {escape_message(name)} computed in {took}."

    jobs_view.launch(
        key,
        in_child(work.profile_intervals, result, LEVEL),
        kind=PROFILE,
        label=f"Profile intervals of **{escape_message(name)}**",
        store=store,
    )


def render_bootstrap(record: FitRecord) -> None:
    """A seeded parametric bootstrap with a chosen number of replicates: a job of the runner
    (progress bar, Cancel; it goes on when the user switches pages), kept in the session."""
    store = st.session_state[Keys.INFER_RESULTS]
    fit, n = tuple(record.key), len(record.key)  # keys: (*fit key, what, ...)
    ran = any(k[:n] == fit and k[n] == BOOTSTRAP for k in store)
    running = any(j.key[:n] == fit for j in jobs_view.active(BOOTSTRAP))
    box = "Parametric bootstrap intervals"
    with st.expander(box, expanded=ran or running, key=W + "boot_box"):  # key: stays open
        st.caption(
            "Simulate new outcomes from the fitted model, refit each one and read the "
            "intervals off the spread of the estimates (percentile method). More replicates "
            "give steadier intervals; each one is a refit."
        )
        left, right = st.columns(2)
        n_boot = left.number_input(
            "Replicates", min_value=50, max_value=1000, step=50, **_seed("n_boot", 200)
        )
        seed = right.number_input(
            "Seed", min_value=0, max_value=10**6, step=1, **_seed("seed", 1),
            help="The same seed gives the same replicates.",
        )  # fmt: skip
        key = (*record.key, BOOTSTRAP, int(n_boot), int(seed))
        jobs_view.show_notice(BOOTSTRAP)
        if jobs_view.show_progress(key):
            return
        if st.button("Run the bootstrap", key=W + "boot"):
            _start_bootstrap(record, key, int(n_boot), int(seed))
        boot = store.get(key)
        if boot is not None:
            show_bootstrap(boot)


def _start_bootstrap(record: FitRecord, key: tuple, n_boot: int, seed: int) -> None:
    result, name = record.result, record.name

    def store(boot: Any) -> str:
        st.session_state[Keys.INFER_RESULTS][key] = boot
        took = f"{boot.seconds:.1f} s"  # fixed: timing
        return f"Bootstrap of {escape_message(name)}: {n_boot:,} replicates in {took}."

    jobs_view.launch(
        key,
        in_child(work.bootstrap, result, n_boot, seed),
        kind=BOOTSTRAP,
        label=f"Parametric bootstrap of **{escape_message(name)}** ({n_boot:,} replicates)",
        store=store,
    )


def show_bootstrap(boot: Any) -> None:
    """The bootstrap intervals with the estimates, and how they were computed."""
    table = boot.confint(LEVEL)
    table.insert(0, "estimate", boot.estimates)
    table = plain_index(table)
    st.dataframe(
        styled(table.rename(columns={"lower": f"{LEVEL:.0%} low", "upper": f"{LEVEL:.0%} high"})),
        key="model_bootstrap",
        column_config={
            "estimate": column("estimate"),
            f"{LEVEL:.0%} low": column("bootstrap"),
            f"{LEVEL:.0%} high": column("bootstrap"),
        },
        placeholder=MISSING,
    )
    st.caption(
        f"{boot.n_boot} replicates (seed {boot.seed}) in {boot.seconds:.1f} s."  # fixed: timing
        + "".join(f" {m}" for m in boot.messages)
    )
