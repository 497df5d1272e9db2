"""One written sentence per main chart: what it shows and what to read from it. Pure.

Each function returns a single Markdown sentence (column names escaped with
:func:`dashboard.base.markup.escape_text`, numbers through :func:`dashboard.base.numbers.fmt`)
computed from the fit or the table the chart draws, for ``show_figure(..., description=)``
(the chart's text alternative, shown as its caption). The quantities:

- trajectories: the population slope ``beta_t`` of the time term and the subjects' own
  slopes ``beta_t + b_it`` (their smallest and largest), or the SD of their levels when
  only the intercept varies; a GLMM's on its link scale (log-odds, log rate) with the
  ratio ``exp(beta_t)``;
- shrinkage: the range of the own and of the mixed-model estimates of one effect, and the
  median share ``(mixed - population) / (own - population)`` of the own deviation kept;
- caterpillar: how many intervals ``b_i +- 1.96 sd(b_i)`` exclude 0;
- comparisons: the model with the lowest AIC and BIC and by how much the next differs;
- trial: the arms' LS-means at the last visit and the treatment difference with its 95% CI;
- residuals: the share of standardized residuals beyond +-2 (about 4.6% for a normal
  sample) and the largest; a normal QQ plot: the sorted residuals' quartiles against the
  normal ones (+-0.674);
- a GLMM's binned residuals: the bins outside their 2-SE band against 5% by chance.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from dashboard.base.markup import escape_text, plain_name
from dashboard.base.numbers import fmt, fmt_criterion, fmt_pct
from lmm_core.formula.quoting import quote_name

__all__ = [
    "binned_sentence",
    "caterpillar_sentence",
    "criteria_sentence",
    "curves_sentence",
    "difference_sentence",
    "ladder_sentence",
    "link_words",
    "lsmeans_sentence",
    "qq_sentence",
    "residual_sentence",
    "shrinkage_sentence",
    "trajectories_sentence",
]

DIGITS = 3
#: normal quantile of a two-sided 95% interval
Z95 = 1.959963984540054
#: third quartile of the standard normal distribution
Q75 = 0.6744897501960817
#: share of a standard normal sample beyond +-2
BEYOND_2 = 0.04550026389635842
#: link -> (the scale in words, the name of exp(beta) or None)
LINK_WORDS: dict[str, tuple[str, str | None]] = {
    "logit": ("log-odds", "odds ratio"),
    "log": ("log rate", "rate ratio"),
    "probit": ("probit", None),
    "cloglog": ("cloglog", None),
}


def _n(x: float) -> str:
    return fmt(float(x), DIGITS)


def _name(column: object) -> str:
    return escape_text(str(plain_name(str(column))))


def link_words(link: str | None) -> tuple[str, str | None]:
    """The scale of a GLMM's coefficients in words and the name of ``exp(beta)``:
    ``("log-odds", "odds ratio")`` for logit, ``("log rate", "rate ratio")`` for log."""
    return LINK_WORDS.get(link or "", (str(link), None))


def _glmm_link(result: object) -> str | None:
    """The link of a GLMM result, ``None`` for a linear mixed model."""
    family = getattr(result, "family", None)
    return None if family is None else str(result.link)  # type: ignore[attr-defined]


def _term(result: object, column: str) -> str | None:
    """The coefficient name of ``column`` in the fit (quoted as lme4 writes it), or None."""
    names = list(result.fixef.index)  # type: ignore[attr-defined]
    for candidate in (quote_name(column), column):
        if candidate in names:
            return candidate
    return None


def _group(result: object, subject: str) -> str | None:
    ranef = result.ranef  # type: ignore[attr-defined]
    if subject in ranef:
        return subject
    return next(iter(ranef), None)


def _moves(value: float) -> str:
    if value > 0:
        return f"rises {_n(value)}"
    if value < 0:
        return f"falls {_n(-value)}"
    return "stays flat"


def trajectories_sentence(
    result: object, *, time: str, subject: str, n_subjects: int, outcome: str | None = None
) -> str:
    """The Trajectories chart in one sentence.

    Parameters
    ----------
    result
        An ``LMMResult`` or ``GLMMResult`` with ``fixef``, ``ranef`` and ``varcorr_table()``.
    time
        The horizontal axis (a column of the data).
    subject
        The subject column (its random effects give the patients' own lines).
    n_subjects
        How many subjects the fit used.
    outcome
        The outcome's name (default ``result.response``).

    Returns
    -------
    str
        E.g. "Reaction against Days for 18 Subjects: the population line rises 10.5 per unit
        of Days; Subjects' own lines rise from -0.0185 to 21.4 per unit." With a time term
        that varies with other terms (an interaction) the line is the reference group's;
        without a linear time term (splines, factor) the population curve's fitted range.
    """
    link = _glmm_link(result)
    y = _name(outcome or result.response)  # type: ignore[attr-defined]
    t, s = _name(time), _name(subject)
    head = f"{y} against {t} for {n_subjects:,} {s}s"
    if link is not None:
        scale, ratio = link_words(link)
        head += f" (the model's lines on the {scale} scale)"
    term = _term(result, time)
    group = _group(result, subject)
    if term is None:
        fitted = np.asarray(result.fitted, float)  # type: ignore[attr-defined]
        quoted = quote_name(time)
        used = any(quoted in str(n) or time in str(n) for n in result.fixef.index)  # type: ignore[attr-defined]
        shape = (
            f"the curves are not straight lines in {t}"
            if used
            else f"the model has no fixed effect of {t}"
        )
        return (
            f"{head}: {shape}; the fitted values run from {_n(np.nanmin(fitted))} to "
            f"{_n(np.nanmax(fitted))}."
        )
    beta = float(result.fixef[term])  # type: ignore[attr-defined]
    names = [str(n) for n in result.fixef.index]  # type: ignore[attr-defined]
    which = (
        "the reference group's line"
        if any(term in n.split(":") and ":" in n for n in names)
        else "the population line"
    )
    out = f"{head}: {which} {_moves(beta)} per unit of {t}"
    if link is not None and ratio is not None:
        out += f" ({ratio} {_n(np.exp(beta))} per unit)"
    ranef = result.ranef.get(group) if group is not None else None  # type: ignore[attr-defined]
    if ranef is not None and term in ranef.columns:
        own = beta + ranef[term].to_numpy(float)
        return out + (f"; {s}s' own lines change from {_n(own.min())} to {_n(own.max())} per unit.")
    if ranef is not None and "(Intercept)" in ranef.columns:
        level = ranef["(Intercept)"].to_numpy(float)
        return out + (
            f"; {s}s' own lines are parallel to it, shifted from {_n(level.min())} to "
            f"{_n(level.max())}."
        )
    return out + "."


def _effect(column: str) -> str:
    return "level (intercept)" if column == "(Intercept)" else f"{_name(column)} effect"


def shrinkage_sentence(est: object, subject: str, link: str | None = None) -> str:
    """The arrows from own to mixed-model estimates in one sentence.

    ``est`` is a ``ShrinkageEstimates`` (columns ``own:c``, ``mixed:c``, ``shrinkage:c`` and
    ``fitted_own``); the effect described is its last column (the slope when there is one).
    ``link`` (a GLMM's) says the estimates are on the link scale.
    """
    table = est.table  # type: ignore[attr-defined]
    c = est.columns[-1]  # type: ignore[attr-defined]
    t = table[table["fitted_own"]]
    s = _name(subject)
    scale = f" on the {link_words(link)[0]} scale" if link else ""
    if not len(t):
        return f"No {s} has an own estimate of the {_effect(c)}{scale} to compare."
    own, mixed = t[f"own:{c}"].to_numpy(float), t[f"mixed:{c}"].to_numpy(float)
    kept = float(np.nanmedian(t[f"shrinkage:{c}"].to_numpy(float)))
    return (
        f"The {_effect(c)} of {len(t):,} {s}s{scale}: their own estimates (their data alone) "
        f"run from {_n(np.nanmin(own))} to {_n(np.nanmax(own))}, the mixed model's from "
        f"{_n(np.nanmin(mixed))} to {_n(np.nanmax(mixed))}; a typical {s} keeps "
        f"{fmt_pct(kept)} of its own deviation from the population."
    )


def caterpillar_sentence(est: object, subject: str) -> str:
    """Every random effect with its 95% interval ``b +- 1.96 sd``: how many exclude 0."""
    table = est.table  # type: ignore[attr-defined]
    s = _name(subject)
    parts = []
    for c in est.columns:  # type: ignore[attr-defined]
        b, sd = table[f"blup:{c}"].to_numpy(float), table[f"blup_sd:{c}"].to_numpy(float)
        clear = int(np.sum((b - Z95 * sd > 0) | (b + Z95 * sd < 0)))
        parts.append(f"{clear:,} of {len(b):,} {_effect(c)} intervals exclude 0")
    return (
        f"Each {s}'s random effects with 95% intervals, sorted: " + "; ".join(parts) + " (those "
        f"{s}s clearly differ from the population)."
    )


def _lowest(frame: pd.DataFrame, column: str, label: str) -> str:
    values = frame[column].astype(float).dropna()
    best = values.idxmin()
    rest = values.drop(best)
    out = f"{label} is lowest for {_name(best)} ({fmt_criterion(values[best])})"
    if len(rest):
        second = rest.idxmin()
        gap = float(rest[second] - values[best])
        out += f", {_n(gap)} below {_name(second)}"
    return out


def criteria_sentence(criteria: pd.DataFrame) -> str:
    """AIC and BIC of the compared models (index: model names; columns ``AIC``, ``BIC``)."""
    ok = criteria.dropna(subset=["AIC"])
    if ok.empty:
        return "No model has an AIC to draw."
    return (
        f"AIC and BIC of {len(ok):,} models (lower is better): "
        + _lowest(ok, "AIC", "AIC")
        + "; "
        + _lowest(ok.dropna(subset=["BIC"]), "BIC", "BIC")
        + "."
    )


def ladder_sentence(table: pd.DataFrame) -> str:
    """The ladder's AIC step by step (``table``: ``ladder_table``, columns ``step``, ``AIC``,
    ``BIC``; failed steps have no numbers)."""
    ok = table.dropna(subset=["AIC"]).set_index("step")
    if ok.empty:
        return "No step of the ladder could be fitted."
    first, last = ok.index[0], ok.index[-1]
    return (
        f"AIC of the {len(ok):,} fitted steps of the random-effects ladder, from "
        f"{fmt_criterion(ok.loc[first, 'AIC'])} ({_name(first)}) to "
        f"{fmt_criterion(ok.loc[last, 'AIC'])} ({_name(last)}): " + _lowest(ok, "AIC", "AIC") + "."
    )


def curves_sentence(labels: Sequence[str], recommended: str | None, time: str, outcome: str) -> str:
    """The competing population curves of the shapes of time, and the recommended one."""
    names = ", ".join(_name(x) for x in labels)
    out = (
        f"Population curves of {_name(outcome)} against {_name(time)} for "
        f"{len(labels):,} shapes of time ({names}) over the observed means"
    )
    if recommended:
        return out + f"; the thick curve is the recommended shape, {_name(recommended)}."
    return out + "; no shape is recommended."


def _last_visit(frame: pd.DataFrame, visit: str) -> tuple[object, pd.DataFrame]:
    last = frame[visit].iloc[-1]
    return last, frame[frame[visit] == last]


def lsmeans_sentence(means: pd.DataFrame, visit: str, arm: str, outcome: str) -> str:
    """LS-means per arm and visit (``arm_lsmeans``): the arms at the last visit."""
    if means.empty:
        return "No LS-means to draw."
    last, rows = _last_visit(means, visit)
    arms = "; ".join(
        f"{_name(r[arm])} {_n(r['estimate'])} (95% CI {_n(r['ci_lower'])} to {_n(r['ci_upper'])})"
        for _, r in rows.iterrows()
    )
    n_visits = means[visit].nunique()
    return (
        f"LS-means of {_name(outcome)} per {_name(arm)} at {n_visits:,} values of "
        f"{_name(visit)}; at the last ({_name(last)}): {arms}."
    )


def difference_sentence(diff: pd.DataFrame, visit: str, outcome: str) -> str:
    """The treatment difference per visit (``treatment_differences``): the last visit's
    estimate and CI, and at how many visits the CI excludes 0."""
    if diff.empty:
        return "No treatment difference to draw."
    last, rows = _last_visit(diff, visit)
    r = rows.iloc[0]
    clear = int(((diff["ci_lower"] > 0) | (diff["ci_upper"] < 0)).sum())
    return (
        f"Treatment difference in {_name(outcome)} at {len(diff):,} values of {_name(visit)}: "
        f"at the last ({_name(last)}) {_n(r['estimate'])} (95% CI {_n(r['ci_lower'])} to "
        f"{_n(r['ci_upper'])}); the interval excludes 0 at {clear:,} of them."
    )


def residual_sentence(
    fitted: np.ndarray, residuals: np.ndarray, what: str = "residuals", sd: float | None = None
) -> str:
    """Residuals against fitted values: how many residuals lie beyond 2 SD (a normal sample:
    about 4.6%) and the largest, in SDs, and the range of the fitted values.

    ``residuals`` are divided by ``sd`` (default: their own standard deviation); pass
    ``sd=1`` for residuals that are standardized already.
    """
    f, r = np.asarray(fitted, float), np.asarray(residuals, float)
    keep = np.isfinite(f) & np.isfinite(r)
    f, r = f[keep], r[keep]
    if r.size < 2:
        return f"Too few {what} to describe."
    scale = float(np.std(r, ddof=1)) if sd is None else float(sd)
    z = r / scale if scale > 0 else np.zeros_like(r)
    beyond = int(np.sum(np.abs(z) > 2))
    big = float(z[np.argmax(np.abs(z))])
    return (
        f"{r.size:,} {what} against fitted values from {_n(f.min())} to {_n(f.max())}: "
        f"{beyond:,} ({fmt_pct(beyond / r.size)}) lie beyond ±2 SD, where a normal sample "
        f"has about {fmt_pct(BEYOND_2)}; the largest is {_n(big)} SD."
    )


def qq_sentence(values: np.ndarray, what: str = "standardized residuals") -> str:
    """A normal QQ plot: the sorted values' quartiles and extremes against a normal's."""
    x = np.asarray(values, float)
    x = x[np.isfinite(x)]
    if not x.size:
        return f"No {what} to draw."
    q1, med, q3 = np.quantile(x, [0.25, 0.5, 0.75])
    return (
        f"{x.size:,} {what} sorted against normal quantiles: the middle half lies between "
        f"{_n(q1)} and {_n(q3)} (median {_n(med)}), where a standard normal's lies between "
        f"±{_n(Q75)}; the extremes are {_n(x.min())} and {_n(x.max())}."
    )


def binned_sentence(table: pd.DataFrame, scale: str = "probability") -> str:
    """A GLMM's binned residuals (``binned_table``: ``fitted``, ``residual``, ``outside``):
    the bins outside their 2-SE band against the 5% expected by chance."""
    m = len(table)
    if not m:
        return "No bins to draw."
    k = int(table["outside"].sum())
    return (
        f"Average residual (observed minus fitted) in {m:,} bins of the fitted {scale} from "
        f"{_n(table['fitted'].min())} to {_n(table['fitted'].max())}: {k:,} of {m:,} bins lie "
        f"outside their 2-SE band, where about {_n(0.05 * m)} would by chance."
    )
