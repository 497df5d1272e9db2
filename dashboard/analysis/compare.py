"""Compare fitted models: lme4's LRT table, AIC/BIC with deltas, verdicts in plain words.

Pure functions (no Streamlit): :func:`build_comparison` turns fit records into a
:class:`Comparison` (numbers and sentences); :func:`criteria_figure` draws delta-AIC and
delta-BIC per model. The numbers come from :func:`lmm_core.lrt` (ML refits of REML fits, as
lme4's ``anova()``), :mod:`lmm_core.inference.nesting` and :func:`lmm_core.chibar_pvalue`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from scipy import stats

from dashboard.analysis.records import FitRecord
from dashboard.base.numbers import fmt_p
from dashboard.figures.style import PALETTE, style_figure
from lmm_core import ComparisonError, LMMResult, chibar_pvalue, lrt
from lmm_core.inference.nesting import BoundaryTest, boundary_test_info, check_nesting

__all__ = [
    "ALPHA",
    "CHIBAR_EXPLANATION",
    "Comparison",
    "StepTest",
    "build_comparison",
    "criteria_figure",
    "lrt_preferred",
]

ALPHA = 0.05
CHIBAR_EXPLANATION = (
    "A variance cannot be negative, so testing whether it is zero tests a value at the very "
    "edge of what is possible, and the usual chi-square p-value is then too large (too "
    "cautious). The chi-bar-square p-value corrects for this edge (when a single variance and "
    "nothing else is added, it is exactly half the usual one) and is the better number to "
    "report."
)


@dataclass(frozen=True)
class StepTest:
    """Likelihood-ratio test of a smaller model against a larger one (ML fits).

    Attributes
    ----------
    smaller, larger
        Model names.
    chisq, df, p_naive
        ``2 (logLik_large - logLik_small)`` (at least 0), the difference in parameters and
        the chi-square p-value (NaN when ``df`` is 0).
    nested, reason
        From :func:`lmm_core.inference.nesting.check_nesting`: is the LRT valid at all?
    boundary
        The added parameters and whether they sit on the boundary.
    p_chibar
        The 50:50 chi-bar-square p-value when one variance is tested on the boundary.
    """

    smaller: str
    larger: str
    chisq: float
    df: float
    p_naive: float
    nested: bool
    reason: str
    boundary: BoundaryTest
    p_chibar: float | None

    @property
    def p(self) -> float:
        """The p-value to judge by: chi-bar-square when it applies, else the naive one."""
        return self.p_chibar if self.p_chibar is not None else self.p_naive

    @property
    def significant(self) -> bool:
        """The larger model fits significantly better at the 5% level (and is nested)."""
        return self.nested and bool(np.isfinite(self.p)) and self.p < ALPHA


@dataclass(frozen=True)
class Comparison:
    """Everything the Compare page shows.

    Attributes
    ----------
    comparable
        False when the models were fitted to different rows or responses: then there is no
        LRT table and AIC/BIC are shown as fitted, without deltas or preferences.
    problem
        Why the models are not comparable (empty when they are).
    lrt_table
        lme4's ``anova()`` table (index: model names, ordered by ``npar``) or None.
    criteria
        One row per model (same order): ``formula``, ``method`` (criterion of the original
        fit), ``npar``, ``AIC``, ``BIC``, ``delta_AIC``, ``delta_BIC``.
    refit_note
        Why and which fits were refitted by ML (empty when none was).
    steps
        LRT between consecutive rows of the table, as lme4 prints them.
    preferred
        ``{"AIC": name, "BIC": name, "LRT": name}`` (only criteria that apply).
    lrt_path
        Pairwise tests behind the LRT verdict (forward from the smallest model).
    """

    comparable: bool
    problem: str
    lrt_table: pd.DataFrame | None
    criteria: pd.DataFrame
    refit_note: str = ""
    steps: tuple[StepTest, ...] = ()
    preferred: dict[str, str] = field(default_factory=dict)
    lrt_path: tuple[StepTest, ...] = ()

    @property
    def not_nested(self) -> tuple[StepTest, ...]:
        """Consecutive pairs whose LRT is invalid because the models are not nested."""
        return tuple(s for s in self.steps if not s.nested)

    @property
    def boundary_steps(self) -> tuple[StepTest, ...]:
        """Consecutive pairs tested on the boundary with a chi-bar-square p-value."""
        return tuple(s for s in self.steps if s.nested and s.p_chibar is not None)


def step_test(small: LMMResult, large: LMMResult, names: tuple[str, str]) -> StepTest:
    """LRT of ``small`` against ``large`` (both ML fits of the same rows)."""
    df = float(large.npar - small.npar)
    chisq = float(2.0 * max(0.0, large.loglik - small.loglik))
    p_naive = float(stats.chi2.sf(chisq, df)) if df > 0 else float("nan")
    check = check_nesting(small, large)
    info = boundary_test_info(small, large)
    p_chibar = None
    if check.nested and info.mixture_df is not None and df > 0:
        p_chibar = chibar_pvalue(chisq, info.mixture_df)
    return StepTest(*names, chisq, df, p_naive, check.nested, check.reason, info, p_chibar)


def lrt_preferred(fits: Sequence[LMMResult], names: Sequence[str]) -> tuple[str, list[StepTest]]:
    """The model the likelihood-ratio tests prefer, and the tests behind that choice.

    Start from the model with fewest parameters and walk up the list: move to a larger model
    when the current one is nested in it and it fits significantly better at the 5% level
    (by the chi-bar-square p-value when a variance is tested on the boundary).

    Parameters
    ----------
    fits, names
        ML fits ordered by number of parameters, and their names.
    """
    current = 0
    path = []
    for j in range(1, len(fits)):
        test = step_test(fits[current], fits[j], (names[current], names[j]))
        if not test.nested or test.df <= 0:
            continue
        path.append(test)
        if test.significant:
            current = j
    return names[current], path


def _criteria(records: Sequence[FitRecord], fits: Sequence[LMMResult]) -> pd.DataFrame:
    by_name = {r.name: r for r in records}
    frame = pd.DataFrame(
        {
            "formula": [by_name[n].formula for n in by_name],
            "method": ["REML" if by_name[n].reml else "ML" for n in by_name],
            "npar": [f.npar for f in fits],
            "AIC": [f.aic for f in fits],
            "BIC": [f.bic for f in fits],
        },
        index=pd.Index(list(by_name), name="model"),
    )
    return frame


def _refit_note(records: Sequence[FitRecord], messages: Sequence[str]) -> str:
    if not messages:
        return ""
    reml = [r.name for r in records if r.reml]
    which = "All models were" if len(reml) == len(records) else f"{', '.join(reml)} was"
    if 1 < len(reml) < len(records):
        which = f"{', '.join(reml)} were"
    return (
        f"{which} fitted by REML, so the table uses maximum-likelihood (ML) refits, as lme4's "
        'anova() does (its message: "' + "; ".join(messages) + '"). Why: a likelihood-ratio '
        "test compares maximised likelihoods, and REML likelihoods of models with different "
        "fixed effects are not comparable. AIC and BIC below are therefore those of the ML "
        "refits and differ slightly from the REML values shown on the Model page."
    )


def build_comparison(records: Sequence[FitRecord]) -> Comparison:
    """Compare two or more fit records (:class:`~dashboard.analysis.records.FitRecord`).

    Returns
    -------
    Comparison
        Not comparable (no LRT, no deltas) when the fits use different rows or responses.
    """
    names = [r.name for r in records]
    results = [r.result for r in records]
    try:
        table = lrt(*results, names=names, refit=True)
    except ComparisonError as error:
        criteria = _criteria(records, results)
        criteria["delta_AIC"] = np.nan
        criteria["delta_BIC"] = np.nan
        return Comparison(False, str(error), None, criteria)
    fits = list(table.attrs.pop("fits"))
    messages = list(table.attrs.pop("messages", []))
    ordered = list(table.index)
    by_name = {r.name: r for r in records}
    criteria = _criteria([by_name[n] for n in ordered], fits)
    criteria["delta_AIC"] = criteria["AIC"] - criteria["AIC"].min()
    criteria["delta_BIC"] = criteria["BIC"] - criteria["BIC"].min()
    steps = tuple(
        step_test(fits[i - 1], fits[i], (ordered[i - 1], ordered[i])) for i in range(1, len(fits))
    )
    preferred = {
        "AIC": str(criteria["AIC"].idxmin()),
        "BIC": str(criteria["BIC"].idxmin()),
    }
    best, path = lrt_preferred(fits, ordered)
    if path:
        preferred["LRT"] = best
    return Comparison(
        True,
        "",
        table,
        criteria,
        _refit_note(records, messages),
        steps,
        preferred,
        tuple(path),
    )


def _short_name(name: str) -> str:
    """``"M2"`` of ``"M2: random intercept"`` (the full names are in the verdicts and the
    model picker), so that the table fits a 1024 px screen."""
    head = name.split(":", 1)[0].strip()
    return head if head and head != name else name


def steps_frame(comparison: Comparison) -> pd.DataFrame:
    """The consecutive tests as a table: chi-square and chi-bar-square p, nested, verdict."""
    rows = []
    for s in comparison.steps:
        if not s.nested:
            verdict = "not nested: LRT not valid, use AIC/BIC"
        elif s.df <= 0:
            verdict = "same number of parameters: no test"
        elif s.significant:
            verdict = f"{s.larger} fits significantly better (5%)"
        else:
            verdict = f"no significant improvement over {s.smaller} (5%)"
        rows.append(
            {
                "test": f"{_short_name(s.smaller)} vs {_short_name(s.larger)}",
                "Chisq": s.chisq,
                "Df": s.df,
                "p (chi-square)": s.p_naive,
                "p (chi-bar-square)": np.nan if s.p_chibar is None else s.p_chibar,
                "nested": "yes" if s.nested else "no",
                "verdict": verdict,
            }
        )
    return pd.DataFrame(rows)


def verdict_sentences(comparison: Comparison) -> list[str]:
    """Which model each criterion prefers, in plain words (Markdown)."""
    if not comparison.comparable:
        return []
    crit = comparison.criteria
    out = []
    for name in ("AIC", "BIC"):
        best = comparison.preferred[name]
        others = crit[f"delta_{name}"].drop(best)
        gap = float(others.min()) if len(others) else float("nan")
        strength = (
            "a negligible margin (under 2)"
            if gap < 2
            else "a clear margin"
            if gap >= 10
            else "a moderate margin"
        )
        out.append(  # fixed: criterion differences are read on their absolute scale
            f"**{name}** prefers **{best}** (lowest {name}; the next best is {gap:.1f} "
            f"higher, {strength})."
        )
    if "LRT" in comparison.preferred:
        parts = []
        for s in comparison.lrt_path:
            label = "chi-bar-square p" if s.p_chibar is not None else "p"
            word = "improves on" if s.significant else "does not significantly improve on"
            parts.append(f"{s.larger} {word} {s.smaller} ({label} {_fmt_p(s.p)})")
        out.append(
            f"**Likelihood-ratio tests** at the 5% level prefer **{comparison.preferred['LRT']}**"
            f": " + "; ".join(parts) + "."
        )
    else:
        out.append(
            "**Likelihood-ratio tests**: no pair of these models is nested, so no LRT verdict; "
            "judge by AIC and BIC."
        )
    return out


def _fmt_p(p: float) -> str:
    if not np.isfinite(p):
        return "n/a"
    text = fmt_p(p)
    return text if text.startswith("<") else f"= {text}"


def criteria_figure(criteria: pd.DataFrame) -> go.Figure:
    """Horizontal bars of delta-AIC and delta-BIC per model (0 = preferred by that criterion).

    Parameters
    ----------
    criteria
        :attr:`Comparison.criteria` of a comparable set of models.
    """
    fig = go.Figure()
    names = list(criteria.index)
    for i, crit in enumerate(("AIC", "BIC")):
        delta = criteria[f"delta_{crit}"].to_numpy(dtype=float)
        fig.add_trace(
            go.Bar(
                y=names,
                x=delta,
                orientation="h",
                name=f"delta {crit}",
                marker_color=PALETTE[i],
                text=[f"{d:.1f}" for d in delta],  # fixed: criterion differences
                textposition="outside",
                customdata=criteria[crit].to_numpy(dtype=float),
                hovertemplate=(  # fixed: criteria and their differences
                    f"%{{y}}<br>{crit} = %{{customdata:,.2f}}<br>delta {crit} = %{{x:.2f}}"
                    "<extra></extra>"
                ),
            )
        )
    style_figure(fig, "Distance from the best model (0 = preferred)", "delta (lower is better)", "")
    top = float(np.nanmax(criteria[["delta_AIC", "delta_BIC"]].to_numpy(dtype=float)))
    fig.update_layout(
        barmode="group",
        height=140 + 60 * len(names),
        yaxis={"autorange": "reversed"},
        legend={"orientation": "h", "y": -0.25},
        margin={"l": 20},
    )
    fig.update_yaxes(automargin=True)
    fig.update_xaxes(range=[0, max(top, 1.0) * 1.15])
    return fig
