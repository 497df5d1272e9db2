"""Plotly figures of longitudinal data: pure functions, no Streamlit.

Each figure has a ``prepare_*`` step (pure pandas, tested on its own) and a drawing step that
only turns the prepared data into traces. All figures share the look of
:mod:`dashboard.figures.style`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from scipy import stats

from dashboard.base.constants import CONFIDENCE_LEVEL
from dashboard.figures.style import PALETTE, WEBGL_ROWS, rgba, style_figure
from dashboard.io.roles import is_numeric

__all__ = [
    "SpaghettiData",
    "mean_trajectory_figure",
    "prepare_mean_trajectory",
    "prepare_spaghetti",
    "prepare_visit_counts",
    "spaghetti_figure",
    "visits_histogram",
]

MAX_LEGEND_GROUPS = 12


def color_groups(values: pd.Series, max_levels: int = 8) -> pd.Series:
    """Labels for colouring: text as is, many-valued numbers binned into quartiles."""
    if is_numeric(values) and values.nunique() > max_levels:
        binned = pd.qcut(values, 4, duplicates="drop")
        return binned.astype(str).where(values.notna(), "missing")
    return values.astype(str).where(values.notna(), "missing")


# --- spaghetti ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpaghettiData:
    """Rows to draw in a spaghetti plot.

    Attributes
    ----------
    frame
        Columns ``subject``, ``time``, ``outcome``, ``group`` (str), sorted by group,
        subject, time; only the subjects shown.
    n_subjects, n_shown
        Subjects in the data and subjects drawn.
    note
        Plain-language remark about sampling (empty when every subject is drawn).
    """

    frame: pd.DataFrame
    n_subjects: int
    n_shown: int
    note: str = ""


def prepare_spaghetti(
    data: pd.DataFrame,
    subject: str,
    time: str,
    outcome: str,
    color: str | None = None,
    *,
    max_subjects: int = 400,
    seed: int = 0,
) -> SpaghettiData:
    """Select and order the rows of a spaghetti plot.

    With more than ``max_subjects`` subjects, a seeded random sample of subjects is drawn
    (whole trajectories, never single rows), so the plot stays light.
    """
    frame = pd.DataFrame(
        {
            "subject": data[subject].astype(str),
            "time": pd.to_numeric(data[time], errors="coerce"),
            "outcome": pd.to_numeric(data[outcome], errors="coerce"),
            "group": color_groups(data[color]) if color else "all",
        }
    ).dropna(subset=["time", "outcome"])
    frame = frame[data.loc[frame.index, subject].notna()]
    subjects = pd.unique(frame["subject"])
    n_subjects = len(subjects)
    note = ""
    if n_subjects > max_subjects:
        rng = np.random.default_rng(seed)
        keep = rng.choice(subjects, size=max_subjects, replace=False)
        frame = frame[frame["subject"].isin(keep)]
        note = (
            f"Showing a random sample of {max_subjects:,} of {n_subjects:,} subjects so the "
            "plot stays fast; the mean trajectory below uses everyone."
        )
    frame = frame.sort_values(["group", "subject", "time"], kind="stable").reset_index(drop=True)
    return SpaghettiData(frame, n_subjects, int(frame["subject"].nunique()), note)


def _with_gaps(g: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x, y, subject arrays with a gap (NaN) between consecutive subjects."""
    subj = g["subject"].to_numpy(dtype=object)
    breaks = np.flatnonzero(subj[1:] != subj[:-1]) + 1
    x = np.insert(g["time"].to_numpy(dtype=float), breaks, np.nan)
    y = np.insert(g["outcome"].to_numpy(dtype=float), breaks, np.nan)
    names = np.insert(subj, breaks, "")
    return x, y, names


def spaghetti_figure(
    prep: SpaghettiData,
    *,
    subject_label: str = "subject",
    time_label: str = "time",
    outcome_label: str = "outcome",
    color_label: str | None = None,
    webgl: bool | None = None,
) -> go.Figure:
    """Draw one line per subject, one trace per colour group.

    Parameters
    ----------
    prep
        Output of :func:`prepare_spaghetti`.
    subject_label, time_label, outcome_label, color_label
        Names shown in the hover text, axis titles and legend title.
    webgl
        Use ``Scattergl``; by default when more than 1,000 rows are drawn.
    """
    frame = prep.frame
    use_gl = len(frame) > WEBGL_ROWS if webgl is None else webgl
    trace_cls = go.Scattergl if use_gl else go.Scatter
    groups = list(pd.unique(frame["group"]))
    fig = go.Figure()
    for i, (name, g) in enumerate(frame.groupby("group", sort=False)):
        x, y, names = _with_gaps(g)
        fig.add_trace(
            trace_cls(
                x=x,
                y=y,
                customdata=names,
                mode="lines+markers",
                name=str(name),
                line={"width": 1, "color": PALETTE[i % len(PALETTE)]},
                marker={"size": 4, "color": PALETTE[i % len(PALETTE)]},
                opacity=0.7 if len(groups) > 1 else 0.6,
                connectgaps=False,
                showlegend=color_label is not None and len(groups) <= MAX_LEGEND_GROUPS,
                hovertemplate=(
                    f"{subject_label} <b>%{{customdata}}</b><br>{time_label} = %{{x}}<br>"
                    f"{outcome_label} = %{{y}}<extra>{name if color_label else ''}</extra>"
                ),
            )
        )
    shown = f"{prep.n_shown:,} of {prep.n_subjects:,}" if prep.note else f"{prep.n_shown:,}"
    title = f"Raw trajectories: one line per {subject_label} ({shown})"
    style_figure(fig, title, time_label, outcome_label)
    if color_label:
        fig.update_layout(legend_title_text=color_label)
    return fig


# --- mean trajectory ------------------------------------------------------------------------


def time_bins(times: pd.Series, max_points: int = 15) -> pd.Series:
    """Assign each time to a bin label (the bin's mean time).

    Few distinct times are kept as they are. Times that cluster around scheduled visits (the
    spread inside each cluster is smaller than the gaps between clusters) are grouped by
    cluster. Otherwise, quantile bins are used.
    """
    t = pd.to_numeric(times, errors="coerce")
    uniq = np.unique(t.dropna().to_numpy())
    if len(uniq) <= max_points:
        return t
    gaps = np.diff(uniq)
    ranked = np.argsort(gaps)[::-1]
    codes = None
    for k in range(1, max_points):
        edges = np.sort(ranked[:k])
        widest = max(g[-1] - g[0] for g in np.split(uniq, edges + 1))
        if widest < gaps[ranked[k - 1]]:
            codes = np.searchsorted(uniq[edges + 1], t.to_numpy(), side="right")
            break
    if codes is None:
        codes = pd.qcut(t, max_points, labels=False, duplicates="drop").to_numpy()
    codes = pd.Series(codes, index=t.index).where(t.notna())
    return t.groupby(codes).transform("mean")


def prepare_mean_trajectory(
    data: pd.DataFrame,
    time: str,
    outcome: str,
    group: str | None = None,
    *,
    max_points: int = 15,
    level: float = CONFIDENCE_LEVEL,
) -> pd.DataFrame:
    """Mean outcome per (group, time bin) with a t-based confidence band for the mean.

    Returns
    -------
    pandas.DataFrame
        Columns ``group``, ``time`` (mean time of the bin), ``n``, ``mean``, ``sd``, ``lower``,
        ``upper``; the band is ``NaN`` where a bin has a single observation.
    """
    frame = pd.DataFrame(
        {
            "time": time_bins(data[time], max_points),
            "outcome": pd.to_numeric(data[outcome], errors="coerce"),
            "group": color_groups(data[group]) if group else "all",
        }
    ).dropna(subset=["time", "outcome"])
    agg = (
        frame.groupby(["group", "time"], sort=True)["outcome"]
        .agg(n="count", mean="mean", sd="std")
        .reset_index()
    )
    se = agg["sd"] / np.sqrt(agg["n"])
    crit = stats.t.ppf(0.5 + level / 2, np.maximum(agg["n"] - 1, 1))
    half = np.where(agg["n"] > 1, crit * se, np.nan)
    agg["lower"] = agg["mean"] - half
    agg["upper"] = agg["mean"] + half
    return agg


def mean_trajectory_figure(
    summary: pd.DataFrame,
    *,
    time_label: str = "time",
    outcome_label: str = "outcome",
    group_label: str | None = None,
    level: float = CONFIDENCE_LEVEL,
) -> go.Figure:
    """Draw the mean trajectory per group with its confidence band.

    Parameters
    ----------
    summary
        Output of :func:`prepare_mean_trajectory`.
    """
    fig = go.Figure()
    groups = list(pd.unique(summary["group"]))
    for i, name in enumerate(groups):
        g = summary[summary["group"] == name]
        color = PALETTE[i % len(PALETTE)]
        band = g.dropna(subset=["lower", "upper"])
        label = str(name) if group_label else "mean"
        if len(band):
            fig.add_trace(
                go.Scatter(
                    x=np.concatenate([band["time"], band["time"][::-1]]),
                    y=np.concatenate([band["upper"], band["lower"][::-1]]),
                    fill="toself",
                    mode="lines",
                    fillcolor=rgba(color, 0.18),
                    line={"width": 0},
                    hoverinfo="skip",
                    name=f"{label}: {level:.0%} CI",
                    legendgroup=label,
                    showlegend=False,
                )
            )
        fig.add_trace(
            go.Scatter(
                x=g["time"],
                y=g["mean"],
                mode="lines+markers",
                name=label,
                legendgroup=label,
                line={"color": color, "width": 2.5},
                customdata=np.column_stack([g["n"], g["lower"], g["upper"]]),
                hovertemplate=(
                    f"{time_label} ≈ %{{x:.3~g}}<br>mean {outcome_label} = %{{y:.4~g}}<br>"
                    f"{level:.0%} CI %{{customdata[1]:.4~g}} to %{{customdata[2]:.4~g}}<br>"
                    "n = %{customdata[0]}<extra>" + label + "</extra>"
                ),
                showlegend=1 < len(groups) <= MAX_LEGEND_GROUPS,
            )
        )
    title = f"Mean trajectory with {level:.0%} confidence band"
    if group_label:
        title += f", by {group_label}"
    style_figure(fig, title, time_label, f"mean {outcome_label}")
    if group_label:
        fig.update_layout(legend_title_text=group_label)
    return fig


# --- visits per subject ---------------------------------------------------------------------


def prepare_visit_counts(data: pd.DataFrame, subject: str) -> pd.DataFrame:
    """Number of subjects (``subjects``) having each number of visits (``visits``)."""
    per_subject = data.groupby(subject, observed=True).size()
    counts = per_subject.value_counts().sort_index()
    return pd.DataFrame({"visits": counts.index.astype(int), "subjects": counts.to_numpy()})


def visits_histogram(counts: pd.DataFrame, *, subject_label: str = "subject") -> go.Figure:
    """Bar chart of the distribution of visits per subject (output of
    :func:`prepare_visit_counts`)."""
    fig = go.Figure(
        go.Bar(
            x=counts["visits"],
            y=counts["subjects"],
            marker_color=PALETTE[0],
            hovertemplate=f"%{{y}} {subject_label}(s) with %{{x}} visit(s)<extra></extra>",
        )
    )
    style_figure(
        fig, f"Visits per {subject_label}", "number of visits", f"number of {subject_label}s"
    )
    fig.update_layout(bargap=0.15, height=320)
    if len(counts) and counts["visits"].max() - counts["visits"].min() <= 30:
        lo, hi = int(counts["visits"].min()), int(counts["visits"].max())
        fig.update_xaxes(dtick=1, range=[max(lo - 1.5, 0), hi + 1.5])
    return fig
