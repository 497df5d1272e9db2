"""The numbers of a GLMM's summary on the Model page. No Streamlit.

A GLMM's fixed effects are on the link scale (log odds, log rate); clinicians read their
exponentials: odds ratios (logit link) or rate ratios (log link) with Wald intervals
``exp(beta +- z_{1-alpha/2} SE)``. Its random-effects SDs are on the link scale too; for a
random intercept with SD ``tau`` the *median odds (rate) ratio*
``MOR = exp(sqrt(2) tau Phi^-1(0.75))`` (Larsen & Merlo 2005) is the median ratio between the
odds of two patients picked at random with the same covariates.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

__all__ = ["fixed_table", "median_ratio", "ratio_name", "random_table", "random_sentences"]


def ratio_name(link: str) -> str | None:
    """``"Odds ratio"`` (logit), ``"Rate ratio"`` (log), ``None`` for another link (probit,
    cloglog: the exponential of the estimate has no plain reading)."""
    return {"logit": "Odds ratio", "log": "Rate ratio"}.get(link)


def fixed_table(result, level: float = 0.95) -> pd.DataFrame:
    """Estimates, SEs, Wald ``z`` and ``p``, intervals and, for a logit or log link, their
    exponentials (odds or rate ratios with their interval).

    Parameters
    ----------
    result
        A :class:`lmm_core.glmm.results.GLMMResult`.
    level
        Confidence level of the intervals.

    Returns
    -------
    pandas.DataFrame
        Indexed by term: ``Estimate``, ``SE``, ``z``, ``p``, ``CI lower``, ``CI upper`` and
        ``<Odds|Rate> ratio``, ``ratio lower``, ``ratio upper`` when defined.
    """
    table = result.fixef_table(level=level)
    lo, hi = f"{level:.0%} CI lower", f"{level:.0%} CI upper"
    out = pd.DataFrame(
        {
            "Estimate": table["estimate"],
            "SE": table["std_error"],
            "z": table["z_value"],
            "p": table["p_value"],
            lo: table["ci_lower"],
            hi: table["ci_upper"],
        }
    )
    name = ratio_name(result.link)
    if name is not None:
        out[name] = np.exp(table["estimate"])
        out[f"{name} lower"] = np.exp(table["ci_lower"])
        out[f"{name} upper"] = np.exp(table["ci_upper"])
    out.index.name = "Term"
    return out


def median_ratio(sd: float) -> float:
    """``exp(sqrt(2) sd Phi^-1(0.75))``: the median ratio of the odds (rates) of two
    patients drawn at random, for a random intercept of SD ``sd`` on the link scale."""
    return float(np.exp(np.sqrt(2.0) * sd * norm.ppf(0.75)))


def random_table(result) -> pd.DataFrame:
    """Random-effects SDs (link scale) and correlations: ``Group``, ``Term``, ``Variance``,
    ``SD`` rows, then ``Correlation`` rows (``Term`` ``a ~ b``)."""
    table = result.varcorr_table()
    rows = []
    for r in table.itertuples(index=False):
        if pd.isna(r.var2):
            rows.append((r.group, r.var1, float(r.vcov), float(r.sdcor), np.nan))
        else:
            rows.append((r.group, f"{r.var1} ~ {r.var2}", np.nan, np.nan, float(r.sdcor)))
    return pd.DataFrame(rows, columns=["Group", "Term", "Variance", "SD", "Correlation"])


def random_sentences(result) -> list[str]:
    """One plain sentence per random intercept: its SD on the link scale, what one SD
    means as a ratio, and the median odds (rate) ratio (logit and log links)."""
    name = ratio_name(result.link)
    scale = {"logit": "log-odds", "log": "log-rate"}.get(result.link, f"{result.link}")
    what = {"Odds ratio": "odds", "Rate ratio": "rate"}.get(name or "", "")
    out = []
    for r in result.varcorr_table().itertuples(index=False):
        if r.var1 != "(Intercept)" or not pd.isna(r.var2):
            continue
        sd = float(r.sdcor)
        text = (
            f"The {r.group}s differ around the typical one with an SD of {sd:.3g} on the "
            f"{scale} scale"
        )
        if name is None:
            out.append(text + ".")
            continue
        out.append(
            f"{text}: a {r.group} one SD above the typical one has {np.exp(sd):.3g} times its "
            f"{what}, and two {r.group}s picked at random with the same covariates differ by "
            f"a factor of {median_ratio(sd):.3g} in {what} (median {what} ratio)."
        )
    return out
