"""Implied vs observed correlation between visits: data preparation and figures, no Streamlit.

The model side comes from :func:`lmm_core.predict.implied.implied_covariance`. The observed side is
the correlation, across subjects, of the values at two visit times, each pair of times using
the subjects measured at both (pairwise complete). Values are either the outcome itself or the
residuals from the fixed effects ``y - X beta_hat`` (what the random effects and the residual
error must explain, the same quantity whose covariance the model implies).

Visit times that are not shared by the subjects (irregular visits) are grouped into a few
bins first (:func:`bin_times`): one-dimensional k-means, so that scheduled visits with jitter
give one bin per visit, and fully irregular times give bins of similar widths. A subject
with two values in one bin keeps the one nearest the bin's centre; the implied correlation
is evaluated at the bin centres (mean time in the bin).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.base.numbers import fmt
from dashboard.figures.style import PALETTE, TEMPLATE
from lmm_core import LMMResult
from lmm_core.errors import ModelError
from lmm_core.predict.implied import ImpliedCovariance, implied_covariance

__all__ = [
    "MAX_BINS",
    "MIN_PAIRS",
    "CorrelationView",
    "ObservedCorrelation",
    "TimeBins",
    "bin_times",
    "correlation_heatmaps",
    "observed_correlation",
    "prepare_correlation",
    "subject_group",
    "subject_ids",
    "variance_icc_figure",
]

MAX_BINS = 8
MAX_EXACT = 12  # up to this many distinct visit times, no binning
MIN_PAIRS = 5  # fewer subjects measured at both times: no observed correlation (blank cell)
MAX_ANNOTATED = 12  # write the values into the cells up to this many times


@dataclass(frozen=True)
class TimeBins:
    """How visit times are grouped.

    Attributes
    ----------
    centers
        Mean time of the observations in each bin (the exact time when not binned).
    edges
        ``len(centers) + 1`` boundaries (first and last are -inf and inf).
    binned
        False when every distinct time is its own bin.
    """

    centers: np.ndarray
    edges: np.ndarray
    binned: bool

    def labels(self, digits: int = 3) -> list[str]:
        """Axis labels: the time, or ``"~t"`` for a bin centred on ``t``."""
        fmt = [f"{c:.{digits}g}" for c in self.centers]
        return [f"~{f}" for f in fmt] if self.binned else fmt

    def assign(self, times: np.ndarray) -> np.ndarray:
        """Bin index of each time."""
        return np.searchsorted(self.edges[1:-1], np.asarray(times, float), side="right")

    def describe(self) -> str:
        """One sentence on how the times were grouped."""
        if not self.binned:
            return f"Each of the {self.centers.size} distinct visit times is its own column."
        return (
            f"Visit times vary between subjects, so they are grouped into {self.centers.size} "
            "bins around typical visit times (one-dimensional k-means); a subject with two "
            "visits in one bin keeps the one nearest the bin's centre, and the model's "
            "correlation is computed at the bin centres (labelled ~t)."
        )


def _lloyd(t: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, float]:
    """One-dimensional k-means from ``centers``; returns the centres and the within-bin SS."""
    for _ in range(100):
        edges = (centers[1:] + centers[:-1]) / 2
        idx = np.searchsorted(edges, t, side="right")
        new = np.unique([t[idx == j].mean() for j in range(centers.size) if np.any(idx == j)])
        if new.size == centers.size and np.allclose(new, centers, rtol=0, atol=1e-12):
            break
        centers = new
    idx = np.searchsorted((centers[1:] + centers[:-1]) / 2, t, side="right")
    return centers, float(np.sum((t - centers[idx]) ** 2))


def bin_times(times: np.ndarray, max_bins: int = MAX_BINS, max_exact: int = MAX_EXACT) -> TimeBins:
    """Group visit times into at most ``max_bins`` bins (exact times when few enough).

    One-dimensional k-means (Lloyd) with ``k = max_bins``, started twice: from the quantiles
    (good for times spread evenly) and from the split at the ``k - 1`` widest gaps between
    distinct times (good for scheduled visits with some jitter); the start with the smaller
    within-bin sum of squares wins.

    Parameters
    ----------
    times
        Visit times of all observations (NaN ignored).
    max_bins
        Number of bins when the times are binned (at least 2).
    max_exact
        Up to this many distinct times, each is its own column (no binning).
    """
    t = np.sort(np.asarray(times, float))
    t = t[np.isfinite(t)]
    distinct = np.unique(t)
    if distinct.size <= max(max_exact, max_bins):
        mids = (distinct[1:] + distinct[:-1]) / 2
        return TimeBins(distinct, np.r_[-np.inf, mids, np.inf], False)
    k = max(2, int(max_bins))
    from_quantiles = np.unique(np.quantile(t, (np.arange(k) + 0.5) / k))
    cuts = np.sort(np.argsort(np.diff(distinct))[-(k - 1) :]) + 1
    from_gaps = np.array([seg.mean() for seg in np.split(distinct, cuts)])
    fits = [_lloyd(t, start) for start in (from_gaps, from_quantiles)]
    centers = min(fits, key=lambda f: f[1])[0]
    edges = np.r_[-np.inf, (centers[1:] + centers[:-1]) / 2, np.inf]
    return TimeBins(centers, edges, True)


def subject_ids(frame: pd.DataFrame, subject: str, cluster: str | None) -> pd.Series:
    """Subject identity: the id, or ``cluster:id`` when ids repeat across clusters."""
    ids = frame[subject].astype(str)
    if cluster is None or cluster not in frame.columns:
        return ids
    pairs = frame[[subject, cluster]].dropna().drop_duplicates()
    if pairs[subject].duplicated().any():
        return frame[cluster].astype(str) + ":" + ids
    return ids


def subject_group(result: LMMResult, subject: str) -> str | None:
    """The model's grouping factor for the subject column (``"patient"``, ``"h:patient"``)."""
    groups = [t for t in result.reterms if subject in t.group.split(":")]
    if not groups:
        return None
    return max(groups, key=lambda t: (t.n_levels, t.n_columns)).group


@dataclass(frozen=True)
class ObservedCorrelation:
    """Observed correlation between visit times.

    Attributes
    ----------
    correlation
        ``m x m`` Pearson correlations across subjects (NaN with fewer than
        :data:`MIN_PAIRS` subjects measured at both times).
    n_pairs
        ``m x m`` number of subjects measured at both times (the diagonal: at that time).
    source
        ``"residuals"`` or ``"outcome"``.
    n_duplicates
        Observations left out because their subject had another one nearer the bin centre.
    """

    correlation: np.ndarray
    n_pairs: np.ndarray
    source: str
    n_duplicates: int


def observed_correlation(
    ids: np.ndarray, times: np.ndarray, values: np.ndarray, bins: TimeBins, source: str
) -> ObservedCorrelation:
    """Pairwise-complete correlation of ``values`` between the time bins, across subjects.

    Parameters
    ----------
    ids, times, values
        One entry per observation: subject identity, time and the value (outcome or
        residual); rows with a missing entry are ignored.
    bins
        The time bins (:func:`bin_times`).
    source
        ``"residuals"`` or ``"outcome"`` (kept for the labels).
    """
    frame = pd.DataFrame({"id": ids, "time": times, "value": values}).dropna()
    frame["bin"] = bins.assign(frame["time"].to_numpy())
    frame["dist"] = np.abs(frame["time"].to_numpy() - bins.centers[frame["bin"].to_numpy()])
    kept = frame.sort_values("dist", kind="stable").drop_duplicates(["id", "bin"])
    wide = kept.pivot(index="id", columns="bin", values="value").reindex(
        columns=range(bins.centers.size)
    )
    present = wide.notna().to_numpy(dtype=float)
    n_pairs = present.T @ present
    corr = wide.corr(min_periods=MIN_PAIRS).to_numpy()
    return ObservedCorrelation(corr, n_pairs.astype(int), source, len(frame) - len(kept))


@dataclass(frozen=True)
class CorrelationView:
    """Everything the correlation section shows for one fit.

    Attributes
    ----------
    bins
        The visit times or bins.
    implied
        The model's covariance at the bin centres.
    observed
        The data's correlation between the bins.
    curve
        :meth:`ImpliedCovariance.variance_table` on a grid of 60 times over the observed range.
    group
        The model's grouping factor of the subject.
    """

    bins: TimeBins
    implied: ImpliedCovariance
    observed: ObservedCorrelation
    curve: pd.DataFrame
    group: str

    def largest_gap(self) -> float:
        """Largest ``|implied - observed|`` over the pairs of distinct times (NaN if none)."""
        gap = np.abs(self.implied.correlation - self.observed.correlation)
        off = ~np.eye(gap.shape[0], dtype=bool) & np.isfinite(gap)
        return float(gap[off].max()) if off.any() else float("nan")


def prepare_correlation(
    data: pd.DataFrame,
    result: LMMResult,
    *,
    subject: str,
    time: str,
    cluster: str | None = None,
    source: str = "residuals",
    max_bins: int = MAX_BINS,
) -> CorrelationView:
    """Implied and observed correlation between visits of the fit's rows of ``data``.

    Parameters
    ----------
    data
        The dataset the fit was computed on (its rows ``result.design.rows`` are used).
    result
        The fit.
    subject, time, cluster
        Column roles.
    source
        ``"residuals"`` (``y - X beta_hat``) or ``"outcome"`` (``y`` as modelled).
    max_bins
        Largest number of time bins when visit times are irregular.

    Raises
    ------
    lmm_core.ModelError
        When the model has no random effects for the subject, or its random effects depend
        on more than the time (the message says so in plain words).
    """
    group = subject_group(result, subject)
    if group is None:
        raise ModelError(
            f"The model has no random effects for {subject}, so it implies no correlation "
            "between one subject's visits."
        )
    rows = data.iloc[np.asarray(result.design.rows)]
    times = pd.to_numeric(rows[time], errors="coerce").to_numpy(dtype=float)
    bins = bin_times(times, max_bins)
    values = result.y - result.design.X @ result.beta if source == "residuals" else result.y
    ids = subject_ids(rows, subject, cluster).to_numpy()
    observed = observed_correlation(ids, times, values, bins, source)
    implied = implied_covariance(result, bins.centers, time=time, subject=group)
    finite = times[np.isfinite(times)]
    grid = np.linspace(finite.min(), finite.max(), 60) if finite.size else bins.centers
    curve = implied_covariance(result, grid, time=time, subject=group).variance_table()
    return CorrelationView(bins, implied, observed, curve, group)


def _heatmap(
    z: np.ndarray, labels: list[str], hover: np.ndarray, zmin: float, show: bool, unit: str
) -> go.Heatmap:
    text = np.where(np.isfinite(z), np.vectorize(lambda v: fmt(v, 2))(np.nan_to_num(z)), "")
    return go.Heatmap(
        z=z,
        x=labels,
        y=labels,
        zmin=zmin,
        zmax=1.0,
        colorscale="Blues" if zmin >= 0 else "RdBu",
        reversescale=zmin < 0,
        text=text,
        texttemplate="%{text}" if len(labels) <= MAX_ANNOTATED else None,
        customdata=hover,
        hovertemplate=(
            f"{unit} %{{y}} and %{{x}}<br>correlation %{{z:.3~g}}<br>%{{customdata}}<extra></extra>"
        ),
        showscale=show,
        colorbar={"title": {"text": "corr."}, "len": 0.9},
    )


def heatmap_pair(
    model: np.ndarray,
    data: np.ndarray,
    labels: list[str],
    hovers: tuple[np.ndarray, np.ndarray],
    *,
    titles: tuple[str, str],
    title: str,
    axis_label: str,
    zmin: float,
    unit: str = "times",
    height: int = 560,
) -> go.Figure:
    """Two correlation heatmaps side by side on one colour scale (``zmin`` to 1): the model's
    on the left, the data's on the right; ``hovers`` add a line to each cell's hover."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=titles, horizontal_spacing=0.07)
    fig.add_trace(_heatmap(model, labels, hovers[0], zmin, False, unit), row=1, col=1)
    fig.add_trace(_heatmap(data, labels, hovers[1], zmin, True, unit), row=1, col=2)
    fig.update_layout(
        template=TEMPLATE,
        title={"text": title},
        height=height,
        margin={"t": 90, "l": 70, "r": 20, "b": 60},
    )
    for col in (1, 2):
        fig.update_xaxes(title_text=axis_label, type="category", row=1, col=col)
        fig.update_yaxes(
            title_text=axis_label if col == 1 else None,
            type="category",
            autorange="reversed",
            scaleanchor=f"x{'' if col == 1 else col}",
            row=1,
            col=col,
        )
    return fig


def correlation_heatmaps(
    implied: ImpliedCovariance, observed: ObservedCorrelation, bins: TimeBins, time_label: str
) -> go.Figure:
    """Two heatmaps side by side on one colour scale: the model's correlation and the data's.

    Parameters
    ----------
    implied
        :func:`lmm_core.predict.implied.implied_covariance` at ``bins.centers``.
    observed
        :func:`observed_correlation` on the same bins.
    bins
        The time bins (axis labels).
    time_label
        Name of the time column (axis titles).
    """
    labels = bins.labels()
    model = implied.correlation
    data = observed.correlation
    finite = np.r_[model.ravel(), data[np.isfinite(data)].ravel()]
    zmin = 0.0 if finite.size == 0 or finite.min() >= 0 else -1.0
    what = "residuals from the fixed effects" if observed.source == "residuals" else "outcome"
    n = len(labels)
    model_hover = np.full((n, n), "from the fitted variances", dtype=object)
    pairs_hover = np.vectorize(lambda k: f"{k:,} subjects measured at both")(observed.n_pairs)
    return heatmap_pair(
        model,
        data,
        labels,
        (model_hover, pairs_hover),
        titles=("Implied by the model", f"Observed ({what})"),
        title="Correlation between visits",
        axis_label=time_label,
        zmin=zmin,
    )


def variance_icc_figure(table: pd.DataFrame, time_label: str) -> go.Figure:
    """Implied variance over time (total and by source) and the ICC over time.

    Parameters
    ----------
    table
        :meth:`lmm_core.predict.implied.ImpliedCovariance.variance_table` on a grid of times.
    time_label
        Name of the time column.
    """
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=("Variance of one measurement", "Intra-class correlation (ICC)"),
        horizontal_spacing=0.12,
    )
    t = table["time"].to_numpy()
    parts = [c for c in table.columns if c not in ("time", "total", "icc")]
    fig.add_trace(
        go.Scatter(
            x=t,
            y=table["total"],
            name="total",
            line={"color": PALETTE[7], "width": 3},
            hovertemplate=f"{time_label} %{{x:.3~g}}<br>total variance %{{y:.4~g}}<extra></extra>",
        ),
        row=1,
        col=1,
    )
    for i, col in enumerate(parts):
        name = "residual (within subject)" if col == "residual" else f"{col} (random effects)"
        fig.add_trace(
            go.Scatter(
                x=t,
                y=table[col],
                name=name,
                line={"color": PALETTE[i % 7], "dash": "dot" if col == "residual" else "solid"},
                hovertemplate=f"{time_label} %{{x:.3~g}}<br>{col} %{{y:.4~g}}<extra></extra>",
            ),
            row=1,
            col=1,
        )
    fig.add_trace(
        go.Scatter(
            x=t,
            y=table["icc"],
            name="ICC",
            line={"color": PALETTE[3], "width": 3},
            showlegend=False,
            hovertemplate=f"{time_label} %{{x:.3~g}}<br>ICC %{{y:.3~g}}<extra></extra>",
        ),
        row=1,
        col=2,
    )
    fig.update_layout(
        template=TEMPLATE,
        height=400,
        legend={"orientation": "h", "y": -0.22, "x": 0},
        margin={"t": 60, "b": 90},
    )
    fig.update_xaxes(title_text=time_label)
    fig.update_yaxes(title_text="variance", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text="ICC", range=[0, 1], row=1, col=2)
    return fig
