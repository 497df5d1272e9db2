"""The sentences of the guided tour, computed from the data and the fitted numbers. Pure.

Every function returns two or three Markdown sentences for one step of
:mod:`dashboard.analysis.tour`. Numbers are written with three significant digits
(:func:`dashboard.base.numbers.fmt`), column names as plain text. The quantities are:

- the naive OLS standard error ``sqrt(diag(s^2 (X'X)^{-1}))`` (rows treated as independent)
  against the mixed model's ``sqrt(diag(cov(beta_hat)))``, and their ratio;
- the intraclass correlation of the random-intercept model ``tau^2 / (tau^2 + sigma^2)``;
- the range ``beta_t +- 1.96 sd_slope`` that holds 95% of the subjects' true slopes;
- the shrinkage factor: the share of a subject's own deviation the mixed model keeps;
- a forecast's prediction interval (the lightest band of the Prediction page).

On a GLMM tour (a yes/no or count outcome, :attr:`TourColumns.is_glmm`) the numbers are on
the link scale, and the sentences say so (log-odds, log rate): the naive fit is the GLM of
the same family, a random intercept of SD ``tau`` is read as the median odds (rate) ratio
``exp(sqrt(2) tau Phi^-1(0.75))`` of two subjects, the latent-scale ICC of a logit model is
``tau^2 / (tau^2 + pi^2 / 3)``, and a slope ``beta`` also as the ratio ``exp(beta)`` per unit
of time. A GLMM has no residual SD and no forecast from a new subject's first visits in the
app: the forecast step shows the typical and the population-averaged new subject instead,
and says so.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from dashboard.analysis.compare import Comparison, verdict_sentences
from dashboard.analysis.glmm_summary import median_ratio
from dashboard.analysis.tour import TourColumns
from dashboard.base.markup import code_span, escape_text, plain_name
from dashboard.base.numbers import fmt, fmt_pct
from lmm_core import LMMResult
from lmm_core.predict.forecast import SubjectForecast
from lmm_core.predict.per_group import ShrinkageEstimates

__all__ = [
    "Z95",
    "compare_sentences",
    "forecast_sentences",
    "glmm_forecast_sentences",
    "group_sd",
    "intercept_sentences",
    "ols_sentences",
    "report_sentences",
    "se_ratio_sentence",
    "shrinkage_sentences",
    "slope_sentences",
    "spaghetti_sentences",
]

#: normal quantile of a two-sided 95% range
Z95 = 1.959963984540054
DIGITS = 3


def _n(x: float) -> str:
    return fmt(float(x), DIGITS)


def _name(column: str) -> str:
    return escape_text(str(column))


def group_sd(result: LMMResult, group: str, term: str) -> float:
    """The standard deviation of random effect ``term`` of ``group`` (NaN when absent)."""
    vc = result.varcorr_table()
    rows = vc[(vc["group"] == group) & (vc["var1"] == term) & vc["var2"].isna()]
    return float(rows["sdcor"].iloc[0]) if len(rows) else float("nan")


def _coef(result: LMMResult, columns: TourColumns) -> str:
    """The coefficient the tour talks about: the time slope, else the intercept."""
    term = columns.slope_term
    return term if term is not None and term in result.x_names else "(Intercept)"


def _effect(term: str) -> str:
    """A random effect in words: the intercept is the level, a column its slope."""
    return "level" if term == "(Intercept)" else f"{escape_text(plain_name(term))} slope"


def _plus(value: float) -> str:
    """`` + 1.2`` or `` − 1.2``: a term added to a sum, its sign as the operator."""
    return f" {'−' if float(value) < 0 else '+'} {_n(abs(float(value)))}"


def _upper(text: str) -> str:
    return text[:1].upper() + text[1:]


def _what(columns: TourColumns) -> str:
    if columns.is_glmm:
        return f"the {_name(columns.time)} slope" if columns.time else "the intercept"
    return (
        f"the {_name(columns.time)} slope" if columns.time else f"the mean {_name(columns.outcome)}"
    )


#: link -> (its scale in words, the outcome's mean in words, the name of exp(beta))
SCALES = {
    "logit": ("log-odds", "the odds", "odds ratio"),
    "log": ("log rate", "the rate", "rate ratio"),
}


def scale_words(columns: TourColumns) -> tuple[str, str, str]:
    """``(scale, what, ratio)`` of a GLMM tour: ``("log-odds", "the odds", "odds ratio")``
    for a yes/no outcome, ``("log rate", "the rate", "rate ratio")`` for counts."""
    return SCALES[columns.link or "logit"]


def _on_scale(columns: TourColumns) -> str:
    return f" on the {scale_words(columns)[0]} scale" if columns.is_glmm else ""


def _ratio(columns: TourColumns, beta: float) -> str:
    """`` (odds ratio 1.15 per unit of week)`` of a GLMM slope, ``""`` otherwise."""
    if not columns.is_glmm or columns.time is None:
        return ""
    return f" ({scale_words(columns)[2]} {_n(np.exp(beta))} per unit of {_name(columns.time)})"


def glmm_note(columns: TourColumns) -> str:
    """The sentence that opens a GLMM tour: which model and on which scale."""
    y = _name(columns.outcome)
    scale = scale_words(columns)[0]
    if columns.family == "binomial":
        kind = (
            f"{y} is a yes/no outcome: the tour fits logistic mixed models (binomial, logit link)"
        )
    else:
        kind = f"{y} counts events: the tour fits Poisson mixed models (log link)"
        if columns.exposure:
            kind += f" with the time at risk {_name(columns.exposure)} as an offset"
    return (
        f"{kind}, as the Model page's Kind of outcome does. Their effects add up on the "
        f"{scale} scale, so the tour's numbers are on that scale unless said otherwise."
    )


def spaghetti_sentences(data: pd.DataFrame, columns: TourColumns) -> list[str]:
    """How many subjects and measurements, and how the outcome varies between and within
    subjects (SD of the subjects' means; pooled SD around each subject's own mean)."""
    s, y = columns.subject, columns.outcome
    rows = data[[s, y]].dropna()
    if columns.is_glmm:
        return _glmm_spaghetti(rows, columns)
    per = rows.groupby(s, observed=True)[y]
    means, counts = per.mean(), per.size()
    within = float(
        np.sqrt((rows[y] - per.transform("mean")).pow(2).sum() / max(len(rows) - len(counts), 1))
    )
    out = [
        f"Each line is one of the **{len(counts):,} {_name(s)}s**: {len(rows):,} measurements of "
        f"{_name(y)}, {_n(counts.median())} per {_name(s)} (median)."
    ]
    out.append(
        f"The {_name(s)}s' average levels differ by SD **{_n(means.std())}**; around their own "
        f"average, one {_name(s)}'s measurements scatter by SD **{_n(within)}**."
    )
    out.append(
        f"The question of the tour: how does {_name(y)} change with {_name(columns.time)}, "
        f"and how much do the {_name(s)}s differ?"
    )
    return out


def outcome_values(series: pd.Series) -> pd.Series:
    """A GLMM outcome as numbers: counts and 0/1 as they are; a logical or two-category
    outcome as 1 for its second value in sorted order (as the fit codes it), else 0."""
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return pd.to_numeric(series, errors="coerce")
    text = series.astype(str)
    return (text == sorted(text.unique())[-1]).astype(float)


def _glmm_spaghetti(rows: pd.DataFrame, columns: TourColumns) -> list[str]:
    s, y = columns.subject, columns.outcome
    values = outcome_values(rows[y])
    per = values.groupby(rows[s], observed=True)
    means, counts = per.mean(), per.size()
    if columns.family == "binomial":
        level = (
            f"**{fmt_pct(values.mean())}** of the measurements are 1 (yes); the {_name(s)}s' "
            f"own shares run from {fmt_pct(means.min())} to {fmt_pct(means.max())}"
        )
    else:
        level = (
            f"the mean count is **{_n(values.mean())}**; the {_name(s)}s' own means run from "
            f"{_n(means.min())} to {_n(means.max())}"
        )
    first = (
        f"The share of yes at each {_name(columns.time)}, over the **{len(counts):,} {_name(s)}s**"
        if columns.family == "binomial"
        else f"Each line is one of the **{len(counts):,} {_name(s)}s**"
    )
    return [
        f"{first}: {len(rows):,} measurements of {_name(y)}, {_n(counts.median())} per "
        f"{_name(s)} (median).",
        f"{_upper(level)}.",
        f"The question of the tour: how does {_name(y)} change with {_name(columns.time)}, "
        f"and how much do the {_name(s)}s differ? " + glmm_note(columns),
    ]


def se_ratio_sentence(
    naive: float, mixed: float, what: str, model: str, naive_name: str = "OLS"
) -> str:
    """Compare a naive standard error (``naive_name``: OLS, or a GLM) with a mixed model's,
    in words."""
    ratio = mixed / naive
    if ratio >= 1:
        verdict = f"{naive_name} is **{_n(ratio)} times too confident**"
    else:
        verdict = (
            f"{naive_name} is **{_n(1 / ratio)} times too unsure**: it counts the differences "
            "between subjects as noise"
        )
    return (
        f"The {naive_name} standard error of {what} is **{_n(naive)}**; the {model}'s is "
        f"**{_n(mixed)}**: {verdict}."
    )


def ols_sentences(
    ols: pd.DataFrame, mixed: LMMResult, model: str, columns: TourColumns, n_subjects: int
) -> list[str]:
    """One line for everyone: the OLS line, why it is wrong, and its standard error against
    ``mixed``'s (``ols``: :func:`lmm_core.model.ols.ols_fit` of the same fixed effects)."""
    coef = _coef(mixed, columns)
    n = int(mixed.nobs)
    if columns.is_glmm:
        kind = "logistic" if columns.family == "binomial" else "Poisson"
        scale = scale_words(columns)[0]
        slope = (
            f"{_plus(ols.loc[coef, 'estimate'])} × {_name(columns.time)}"
            if coef != "(Intercept)"
            else ""
        )
        line = (
            f"One curve for everyone, an ordinary {kind} regression (no random effects): "
            f"{scale} of {_name(columns.outcome)} = {_n(ols.loc['(Intercept)', 'estimate'])}"
            f"{slope}."
        )
    elif columns.time is not None and coef != "(Intercept)":
        line = (
            f"One straight line through all the points: {_name(columns.outcome)} = "
            f"{_n(ols.loc['(Intercept)', 'estimate'])}{_plus(ols.loc[coef, 'estimate'])} × "
            f"{_name(columns.time)} (ordinary least squares)."
        )
    else:
        line = f"One mean for everyone: {_n(ols.loc[coef, 'estimate'])} (ordinary least squares)."
    return [
        line,
        f"It treats the {n:,} measurements as {n:,} independent people, but they come from "
        f"{n_subjects:,} {_name(columns.subject)}s measured again and again.",
        se_ratio_sentence(
            float(ols.loc[coef, "std_error"]),
            float(mixed.fixef_table().loc[coef, "std_error"]),
            _what(columns) + _on_scale(columns),
            model,
            "GLM" if columns.is_glmm else "OLS",
        ),
    ]


def intercept_sentences(result: LMMResult, columns: TourColumns, ols_se: float) -> list[str]:
    """The random intercept: the SD of the levels, the residual SD, the ICC, and the
    standard error of the slope against OLS."""
    s = columns.subject
    tau = group_sd(result, s, "(Intercept)")
    if columns.is_glmm:
        return _glmm_intercept(result, columns, ols_se, tau)
    sigma = float(result.sigma)
    icc = tau**2 / (tau**2 + sigma**2)
    coef = _coef(result, columns)
    se = float(result.fixef_table().loc[coef, "std_error"])
    shape = "parallel lines, shifted up or down" if columns.time else "their own mean"
    return [
        f"Each {_name(s)} gets their own level (a random intercept): {shape}.",
        f"The levels differ by SD **{_n(tau)}**; measurements scatter around their "
        f"{_name(s)}'s line by SD **{_n(sigma)}**: **{fmt_pct(icc)}** of the variance lies "
        f"between {_name(s)}s (the ICC).",
        f"The standard error of {_what(columns)} is now **{_n(se)}** (OLS: {_n(ols_se)}).",
    ]


def _glmm_intercept(result, columns: TourColumns, glm_se: float, tau: float) -> list[str]:
    s = _name(columns.subject)
    scale, what, ratio = scale_words(columns)
    se = float(result.fixef_table().loc[_coef(result, columns), "std_error"])
    spread = (
        f"The levels differ by SD **{_n(tau)}** on the {scale} scale: of two {s}s drawn at "
        f"random, the higher has {what} {_n(median_ratio(tau))} times the lower's (median "
        f"{ratio})"
    )
    if columns.family == "binomial":
        icc = tau**2 / (tau**2 + np.pi**2 / 3)
        spread += (
            f"; **{fmt_pct(icc)}** of the variance of the latent log-odds lies between {s}s "
            "(the ICC, with the logistic π²/3 within)"
        )
    return [
        f"Each {s} gets their own level (a random intercept): their own curve, shifted up or "
        f"down on the {scale} scale.",
        spread + ".",
        f"The standard error of {_what(columns)} is now **{_n(se)}** (GLM: {_n(glm_se)}).",
    ]


def slope_sentences(result: LMMResult, columns: TourColumns, intercept_se: float) -> list[str]:
    """The random slope: the typical slope, the SD of the slopes and the 95% range of the
    subjects' slopes ``beta +- 1.96 sd``, and the slope's standard error."""
    s, t = columns.subject, columns.slope_term
    table = result.fixef_table()
    beta, se = float(table.loc[t, "estimate"]), float(table.loc[t, "std_error"])
    sd = group_sd(result, s, t)
    return [
        f"Each {_name(s)} also gets their own rate of change over {_name(columns.time)} "
        f"(a random slope){_on_scale(columns)}.",
        f"The typical slope is **{_n(beta)}**{_ratio(columns, beta)}, but the {_name(s)}s' "
        "slopes differ by SD "
        f"**{_n(sd)}**: 95% of {_name(s)}s lie between {_n(beta - Z95 * sd)} and "
        f"{_n(beta + Z95 * sd)}.",
        f"The slope's standard error is **{_n(se)}** (random intercept only: "
        f"{_n(intercept_se)}): it now includes how much the slopes differ.",
    ]


def shrinkage_sentences(est: ShrinkageEstimates, columns: TourColumns) -> list[str]:
    """Shrinkage in numbers: the median share of the own deviation kept, per random effect,
    and the subject moved most (relative to the SD of the own estimates)."""
    s = _name(columns.subject)
    t = est.table[est.table["fitted_own"]]
    kept = [f"{fmt_pct(t[f'shrinkage:{c}'].median())} of its own {_effect(c)}" for c in est.columns]
    out = [
        f"Arrows go from each {s}'s own fit (their data alone) to the mixed model's estimate"
        f"{_on_scale(columns)}: every one is pulled towards the population.",
        f"A typical {s} keeps " + " and ".join(kept) + " deviation (medians).",
    ]
    c = est.columns[-1]
    spread = float(t[f"own:{c}"].std())
    if len(t) and spread > 0:
        moved = (t[f"mixed:{c}"] - t[f"own:{c}"]).abs() / spread
        who = moved.idxmax()
        out.append(
            f"{s} {_name(who)} ({int(t.loc[who, 'n'])} measurements) moves most: its "
            f"{_effect(c)} from {_n(t.loc[who, f'own:{c}'])} to "
            f"{_n(t.loc[who, f'mixed:{c}'])}. Few or extreme data, more pull."
        )
    return out


def forecast_sentences(
    fc: SubjectForecast, columns: TourColumns, patient: str, at: float, actual: float | None
) -> list[str]:
    """The forecast of a new patient at time ``at`` (the last row of ``fc.table``) from
    their first visits: its value, prediction interval, the population value, and the
    measurement the forecast did not use (``actual``, if any)."""
    row = fc.table.iloc[-1]
    s, t, y = _name(columns.subject), _name(columns.time), _name(columns.outcome)
    k = fc.n_observed
    out = [
        f"A new {s} with **{k} visit{'s' if k != 1 else ''}** ({s} "
        f"{_name(patient)}'s first {k}): at {t} = {_n(at)} the model forecasts {y} "
        f"**{_n(row['fit'])}**, "
        f"95% prediction interval {_n(row['lower_total'])} to {_n(row['upper_total'])}.",
        f"A typical {s} would be at {_n(row['population'])}: the visits pulled the forecast "
        f"towards this {s} (they removed {fmt_pct(float(fc.learned.mean()))} of the "
        "uncertainty about their own deviation, on average over the random effects).",
    ]
    if actual is not None and np.isfinite(actual):
        inside = row["lower_total"] <= actual <= row["upper_total"]
        out.append(
            f"{s} {_name(patient)} actually measured {_n(actual)} there, "
            f"{'inside' if inside else 'outside'} the interval."
        )
    return out


def glmm_forecast_sentences(table: pd.DataFrame, columns: TourColumns) -> list[str]:
    """The forecast step of a GLMM tour: what the app forecasts for a yes/no or count outcome
    (``table``: :func:`dashboard.views.glmm_prediction.glmm_forecast_table` with ``typical
    patient`` and ``new patient`` per time, one group), and what it does not."""
    s, t = _name(columns.subject), _name(columns.time)
    what = "probability" if columns.family == "binomial" else "mean count"
    if columns.exposure:
        what = f"rate per unit of {_name(columns.exposure)}"
    show = fmt_pct if columns.family == "binomial" else _n
    first, last = table.iloc[0], table.iloc[-1]
    return [
        f"This step has no GLMM version here: a forecast from a new {s}'s first visits needs "
        "the normal distribution of a linear mixed model; for a yes/no or count outcome the "
        "app forecasts a new patient without their visits.",
        f"The typical {s} (random effects at 0) goes from a {what} of "
        f"**{show(first['typical patient'])}** at {t} = {_n(first[columns.time])} to "
        f"**{show(last['typical patient'])}** at {_n(last[columns.time])}; a new {s} drawn at "
        f"random (averaged over how much {s}s differ) from {show(first['new patient'])} to "
        f"{show(last['new patient'])}.",
        "The two differ because the curve bends on the probability or count scale: the "
        "Prediction page shows both, per group.",
    ]


def compare_sentences(comparison: Comparison) -> list[str]:
    """The Compare page's verdicts (AIC, BIC, likelihood-ratio tests), or why none."""
    if not comparison.comparable:
        return [f"These models cannot be compared: {escape_text(comparison.problem)}"]
    return verdict_sentences(comparison)


def report_sentences(result: LMMResult, columns: TourColumns, why: str, subjects: int) -> list[str]:
    """What to report of the chosen model: formula, method, sizes, the estimate of interest
    with its 95% CI, the SDs of the random effects and the residual, and ``why`` it was
    chosen."""
    s = columns.subject
    coef = _coef(result, columns)
    row = result.fixef_table().loc[coef]
    sds = [f"{_effect(term)} by SD {_n(group_sd(result, s, term))}" for term in _terms(result, s)]
    if columns.is_glmm:
        ratio = _ratio(columns, float(row["estimate"])).strip(" ()")
        return [
            f"The model {code_span(result.formula)}, a {_upper(columns.family)} GLMM "
            f"({columns.link} link) fitted by maximum likelihood (Laplace) to {int(result.nobs):,} "
            f"measurements of {subjects:,} {_name(s)}s; {escape_text(why)}",
            f"{_upper(_what(columns))}{_on_scale(columns)}: **{_n(row['estimate'])}** (95% CI "
            f"{_n(row['ci_lower'])} to {_n(row['ci_upper'])}"
            + (f"; {ratio}" if ratio else "")
            + f"); {_name(s)}s differ in "
            + " and ".join(sds)
            + f" on the {scale_words(columns)[0]} scale (a GLMM has no residual SD).",
            "Show the probabilities or rates over time (the Prediction page), and the code "
            "that reproduces the fit (the Export page writes it for R).",
        ]
    method = "REML" if result.reml else "ML"
    return [
        f"The model {code_span(result.formula)}, fitted by {method} to {int(result.nobs):,} "
        f"measurements of {subjects:,} {_name(s)}s; {escape_text(why)}",
        f"{_upper(_what(columns))}: **{_n(row['estimate'])}** (95% CI "
        f"{_n(row['ci_lower'])} to {_n(row['ci_upper'])}); {_name(s)}s differ in "
        + " and ".join(sds)
        + f"; residual SD {_n(result.sigma)}.",
        "Show a picture of the fitted lines, and the code that reproduces the fit "
        "(the Export page writes it for R and SAS).",
    ]


def _terms(result: LMMResult, group: str) -> Sequence[str]:
    vc = result.varcorr_table()
    rows = vc[(vc["group"] == group) & vc["var2"].isna()]
    return [str(v) for v in rows["var1"]]
