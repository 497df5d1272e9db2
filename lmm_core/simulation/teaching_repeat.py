"""Simulation lab, repeated: the sampling distribution of the estimates over many studies.

Each replicate draws a new study from the same truth
(:func:`lmm_core.simulation.teaching.simulate_lab`, the model
``y_ij = (beta_0 + u_0i) + (beta_1 + u_1i) t_ij + kappa 4 t_ij (T - t_ij) / T^2 + e_ij``), fits
it with the truth's shape of time (:func:`lmm_core.simulation.teaching.lab_formula`:
``y ~ time + (time | subject)``, or ``poly(time, 2)`` or ``ns(time, 3)`` in place of ``time``
in the fixed part) by REML and records, for the slope ``beta_1`` (with a curved fit: the
fitted curve's average slope ``L beta`` over the study,
:func:`lmm_core.simulation.teaching_curves.curve_rows`; for a straight line ``L = (0, 1)``):

* the mixed-model interval ``beta_1_hat +/- t_{nu, (1 + level)/2} SE``, with
  ``SE = sqrt(L' C L)``, ``C = sigma^2 (X' V^-1 X)^-1``, and ``nu = m - 1`` for ``m``
  subjects (``df="subjects"``: the slope is learnt from the subjects' own slopes, and with
  every visit seen the ``t`` statistic is exactly the one-sample ``t`` test of those slopes)
  or Satterthwaite's ``nu`` (``df="satterthwaite"``, as on the Model page; about twice the
  cost of the fit);
* the naive interval of ordinary least squares with the same fixed part that ignores the
  subjects, ``L beta_ols +/- t_{N - p, (1 + level)/2} s sqrt(L' (X'X)^-1 L)`` (for a straight
  line ``p = 2`` and :func:`lmm_core.model.ols.ols_fit`'s slope), which treats all ``N`` rows
  as independent;
* whether the fit is singular (lme4's rule: a diagonal element of ``theta`` below
  ``1e-4``), and which boundary: the slope SD estimated as (near) zero
  (``sqrt(theta_2^2 + theta_3^2) < 1e-4``, i.e. ``tau_1_hat < 1e-4 sigma_hat``), the
  intercept SD at zero, or the correlation at +/-1 (``theta_3 = 0`` with the slope SD above
  zero: the slope deviations are a multiple of the intercept deviations). When the true
  ``tau_1`` is small, the correlated model usually reaches the last of these rather than
  ``tau_1_hat = 0``: both say the data cannot support a separate slope variation.

The random part is ``(time | subject)`` whatever the shape, so the boundaries mean the same
for every shape. The coverage of an interval is the share of replicates whose interval
contains the true slope (the average slope ``beta_1``, whatever the curvature); its Monte
Carlo standard error is ``sqrt(p (1 - p) / R)`` over ``R`` replicates. Replicate ``r`` uses
the ``r``-th child of ``numpy.random.SeedSequence(seed)``, so the first replicates do not
change when more are asked for.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from lmm_core.design.build import Design
from lmm_core.errors import LMMError
from lmm_core.model.fit import FitOptions, fit_design
from lmm_core.model.optimize import OptimizerOptions
from lmm_core.model.results import LMMResult
from lmm_core.simulation.teaching import LabDraw, draw_lab, estimates, fit_lab, lab_from_draw
from lmm_core.simulation.teaching_curves import contrast_interval, curve_rows
from lmm_core.simulation.teaching_truth import LabTruth

__all__ = ["BOUNDARY_LABELS", "ReplicateSummary", "monte_carlo_se", "run_replicates"]

#: the kinds of fit of :meth:`ReplicateSummary.boundary_counts`, regular first
BOUNDARY_LABELS = (
    "none",
    "slope SD = 0",
    "correlation = ±1",
    "intercept SD = 0",
    "other boundary",
)
SINGULAR_TOL = FitOptions().singular_tol  # lme4's default, as the fits use
_FAST = FitOptions(optimizer=OptimizerOptions(keep_log=False))  # same fit, no evaluation log


@dataclass(frozen=True)
class ReplicateSummary:
    """The results of :func:`run_replicates`.

    Attributes
    ----------
    truth
        The parameters every replicate was drawn from.
    level
        Confidence level of the intervals.
    df
        Degrees-of-freedom rule of the mixed-model interval (``"subjects"`` or
        ``"satterthwaite"``).
    table
        One row per successful replicate: ``replicate``, ``slope`` (mixed-model estimate of
        the average slope),
        ``se``, ``df``, ``lower``, ``upper``, ``covered``; ``slope_ols``, ``se_ols``,
        ``lower_ols``, ``upper_ols``, ``covered_ols``; ``sd_intercept``, ``sd_slope``,
        ``corr``, ``sigma`` (estimates); ``singular``, ``slope_sd_zero``,
        ``intercept_sd_zero``, ``corr_boundary`` (bools); ``boundary`` (which one, in words:
        ``"none"``, ``"slope SD = 0"``, ``"correlation = ±1"``, ``"intercept SD = 0"``);
        ``nobs``.
    failures
        Replicates whose fit raised an error (the message of the first one in
        ``failure_message``).
    seconds
        Wall time of the whole run (simulation, fit, intervals).
    fit_seconds
        Wall time spent in the fits alone.
    """

    truth: LabTruth
    level: float
    df: str
    table: pd.DataFrame
    failures: int
    failure_message: str
    seconds: float
    fit_seconds: float

    @property
    def n(self) -> int:
        """Number of successful replicates."""
        return len(self.table)

    def rate(self, column: str) -> float:
        """Share of replicates where the boolean ``column`` is true (NaN without any)."""
        return float(self.table[column].mean()) if self.n else math.nan

    def boundary_counts(self) -> dict[str, int]:
        """Studies per kind of fit, in :data:`BOUNDARY_LABELS` order (kinds with none left out).

        ``"none"`` counts the regular fits; every other entry is a kind of singular fit, and
        the entries are exclusive (a fit with two boundaries counts once, by the first label
        of :data:`BOUNDARY_LABELS` it reached), so they add up to :attr:`n`. The page's
        sentence, its metric and the figure's legend all take their numbers from here.
        """
        if not self.n:
            return {}
        if "boundary" in self.table:
            labels = self.table["boundary"]
        else:  # a table without the label column: derive it from the flags
            flags = self.table.reindex(
                columns=["slope_sd_zero", "intercept_sd_zero", "corr_boundary", "singular"],
                fill_value=False,
            )
            labels = pd.Series(
                [_boundary_label(*map(bool, row)) for row in flags.itertuples(index=False)]
            )
        counts = labels.value_counts()
        return {k: int(counts[k]) for k in BOUNDARY_LABELS if counts.get(k, 0) > 0}

    def singular_count(self) -> int:
        """Number of studies whose fit reached a boundary (every kind but ``"none"``)."""
        return sum(c for k, c in self.boundary_counts().items() if k != "none")

    def empirical_sd(self) -> float:
        """Standard deviation of the slope estimates over the replicates (the true SE)."""
        return float(self.table["slope"].std(ddof=1)) if self.n > 1 else math.nan


def monte_carlo_se(p: float, n: int) -> float:
    """``sqrt(p (1 - p) / n)``: the Monte Carlo standard error of a share ``p`` of ``n``."""
    return math.sqrt(p * (1.0 - p) / n) if n > 0 and math.isfinite(p) else math.nan


def _boundaries(theta: np.ndarray) -> tuple[bool, bool, bool]:
    """(slope SD zero, intercept SD zero, correlation at +/-1) from ``theta`` of the lab."""
    l11, l21, l22 = (float(v) for v in theta[:3])
    slope_zero = math.hypot(l21, l22) < SINGULAR_TOL
    intercept_zero = l11 < SINGULAR_TOL
    corr_boundary = (l22 < SINGULAR_TOL) and not slope_zero and not intercept_zero
    return slope_zero, intercept_zero, corr_boundary


def _mixed_interval(
    res, span: float, level: float, df: str, rows: dict[str, np.ndarray] | None = None
) -> dict[str, float]:
    """Estimate, SE, df and interval of the (average) slope under the chosen ``df`` rule.

    With ``df="subjects"`` computed here as :func:`contrast_interval` does (same arithmetic),
    with the ``t`` quantile of ``nu = m - 1`` computed once per run.
    """
    row = (curve_rows(res, span) if rows is None else rows)["slope"]
    if df == "subjects" and np.any(row):
        est = float(row @ res.beta)
        se = math.sqrt(float(row @ res.vcov_beta @ row))
        nu = float(res.ngroups["subject"] - 1)
        half = _t_quantile(0.5 + level / 2.0, nu) * se
        values = (est, se, nu, est - half, est + half)
    else:
        values = contrast_interval(res, row, level=level, df=df)
    return dict(zip(("estimate", "std_error", "df", "lower", "upper"), values, strict=True))


@functools.lru_cache(maxsize=256)
def _t_quantile(q: float, df: float) -> float:
    """``t_{df}`` quantile ``q`` (a run asks for the same few degrees of freedom again)."""
    return float(stats.t.ppf(q, df=df))


def naive_interval(
    res, span: float, level: float, rows: dict[str, np.ndarray] | None = None
) -> dict[str, float]:
    """Ordinary least squares on the fit's fixed part: estimate, SE and interval of the
    (average) slope ``L beta_ols``, ``s^2 = RSS / (N - p)``, ``t_{N - p}`` quantiles.

    Computed through the thin QR ``X = QR`` as :func:`lmm_core.model.ols.ols_fit` (whose
    slope row it reproduces for a straight line).
    """
    X, y = np.asarray(res.design.X, float), np.asarray(res.y, float)
    n, p = X.shape
    q, r = np.linalg.qr(X, mode="reduced")
    beta = np.linalg.solve(r, q.T @ y)
    resid = y - X @ beta
    s2 = float(resid @ resid) / (n - p)
    row = (curve_rows(res, span) if rows is None else rows)["slope"]
    w = np.linalg.solve(r.T, row)  # R^-T L, so that L'(X'X)^-1 L = |w|^2
    est, se = float(row @ beta), math.sqrt(s2 * float(w @ w))
    half = _t_quantile(0.5 + level / 2.0, n - p) * se
    return {"estimate": est, "std_error": se, "lower": est - half, "upper": est + half}


def _boundary_label(slope_zero: bool, intercept_zero: bool, corr: bool, singular: bool) -> str:
    """Which boundary a fit reached, in words (``"none"`` for a regular fit)."""
    if slope_zero:
        return "slope SD = 0"
    if corr:
        return "correlation = ±1"
    if intercept_zero:
        return "intercept SD = 0"
    return "other boundary" if singular else "none"


class _Studies:
    """The fits of one run's studies, each the one :func:`fit_lab` gives.

    The first study (and any study the shortcut does not cover) goes through :func:`fit_lab`
    from its table. For a straight line, later studies reuse that first design: ``X``,
    ``Z = [1, time]`` and the subject codes are set from the draw's arrays, the formula, names,
    recipe and level labels kept (every subject has a first visit, so the levels are the same),
    and :func:`lmm_core.model.fit.fit_design` runs on it: the same arrays, hence the same fit,
    without parsing the formula and building the tables again. The shortcut is taken only when
    the design checks cannot fail (more than ``2 m`` rows, so the slope on time varies and
    both terms have fewer effects than rows); otherwise the study goes the long way.
    """

    def __init__(self, truth: LabTruth) -> None:
        self.truth = truth
        self.template: Design | None = None
        #: curve rows shared by the studies (straight line only: a curve's basis is the data's)
        self.rows: dict[str, np.ndarray] | None = None

    def fit(self, draw: LabDraw) -> tuple[LMMResult, float]:
        """The study's fit and its wall time."""
        design = self._design(draw)
        start = time.perf_counter()
        if design is None:
            res = fit_lab(lab_from_draw(self.truth, draw), _FAST)
        else:
            res = fit_design(design, reml=True, options=_FAST)
        seconds = time.perf_counter() - start
        if self.template is None and self.truth.time_df == 1 and _plain(res.design):
            self.template = res.design
            # a straight line's rows are its coefficients, the same for every study
            self.rows = curve_rows(res, self.truth.span)
        return res, seconds

    def _design(self, draw: LabDraw) -> Design | None:
        template, m = self.template, int(self.truth.n_subjects)
        n = draw.y.size
        if template is None or n <= 2 * m:
            return None
        x = np.empty((n, 2))
        x[:, 0] = 1.0
        x[:, 1] = draw.time
        term = dataclasses.replace(
            template.reterms[0], codes=draw.subject.astype(np.int64), z=x.copy()
        )
        return dataclasses.replace(
            template, y=draw.y, X=x, reterms=(term,), rows=np.arange(n), offset=None
        )


def _plain(design: Design) -> bool:
    """A design the shortcut of :class:`_Studies` may copy: ``y ~ time + (time | subject)``
    on every row, nothing dropped or noted."""
    return (
        list(design.x_names) == ["(Intercept)", "time"]
        and len(design.reterms) == 1
        and design.reterms[0].cnames == ("(Intercept)", "time")
        and design.n_dropped == 0
        and not design.messages
        and not design.aliased
        and design.folded_offset is None
        and not np.any(design.offset)
    )


def one_replicate(
    truth: LabTruth, seed, level: float, df: str = "subjects", studies: _Studies | None = None
) -> tuple[dict, float]:
    """Simulate, fit and summarise one study; returns the row and the fit's wall time."""
    studies = studies or _Studies(truth)
    res, fit_seconds = studies.fit(draw_lab(truth, seed))
    rows = studies.rows
    fixef = _mixed_interval(res, truth.span, level, df, rows)
    ols = naive_interval(res, truth.span, level, rows)
    lo_ols, hi_ols = ols["lower"], ols["upper"]
    est = estimates(res, truth.span, rows=rows)
    slope_zero, intercept_zero, corr_boundary = _boundaries(res.theta)
    b1 = truth.slope
    row = {
        "slope": float(fixef["estimate"]),
        "se": float(fixef["std_error"]),
        "df": float(fixef["df"]),
        "lower": float(fixef["lower"]),
        "upper": float(fixef["upper"]),
        "covered": bool(fixef["lower"] <= b1 <= fixef["upper"]),
        "slope_ols": float(ols["estimate"]),
        "se_ols": float(ols["std_error"]),
        "lower_ols": float(lo_ols),
        "upper_ols": float(hi_ols),
        "covered_ols": bool(lo_ols <= b1 <= hi_ols),
        "sd_intercept": est["sd_intercept"],
        "sd_slope": est["sd_slope"],
        "corr": est["corr"],
        "sigma": est["sigma"],
        "singular": bool(res.is_singular),
        "slope_sd_zero": slope_zero,
        "intercept_sd_zero": intercept_zero,
        "corr_boundary": corr_boundary,
        "boundary": _boundary_label(slope_zero, intercept_zero, corr_boundary, res.is_singular),
        "nobs": int(res.nobs),
    }
    return row, fit_seconds


def run_replicates(
    truth: LabTruth,
    n_replicates: int = 100,
    *,
    seed: int = 1,
    level: float = 0.95,
    df: str = "subjects",
    progress: Callable[[int, int], None] | None = None,
) -> ReplicateSummary:
    """Repeat the simulated study ``n_replicates`` times and fit each (see module docstring).

    Parameters
    ----------
    truth
        Parameters and design of every study.
    n_replicates
        Number of studies (1 to 5,000).
    seed
        Root seed; replicate ``r`` uses child ``r`` of ``SeedSequence(seed)``.
    level
        Confidence level of both intervals.
    df
        Degrees of freedom of the mixed-model interval: ``"subjects"`` (``m - 1``, fast) or
        ``"satterthwaite"``.
    progress
        Called as ``progress(done, total)`` after each replicate.

    Returns
    -------
    ReplicateSummary
        A replicate whose fit fails (an :class:`lmm_core.LMMError`, e.g. too few rows left
        after dropout) is counted in ``failures`` and left out of the table.
    """
    if not 1 <= int(n_replicates) <= 5000:
        raise LMMError("Choose between 1 and 5,000 replicates.")
    if not 0.0 < level < 1.0:
        raise LMMError("The confidence level must lie between 0 and 1.")
    if df not in ("subjects", "satterthwaite"):
        raise LMMError('df must be "subjects" or "satterthwaite".')
    total = int(n_replicates)
    children = np.random.SeedSequence(int(seed)).spawn(total)
    rows, failures, message, fit_seconds = [], 0, "", 0.0
    start = time.perf_counter()
    studies = _Studies(truth)
    for r, child in enumerate(children):
        try:
            row, seconds = one_replicate(truth, child, level, df, studies)
        except LMMError as err:
            failures += 1
            message = message or str(err)
        else:
            rows.append({"replicate": r + 1, **row})
            fit_seconds += seconds
        if progress is not None:
            progress(r + 1, total)
    seconds = time.perf_counter() - start
    columns = ["replicate", "slope", "se", "df", "lower", "upper", "covered"]
    table = pd.DataFrame(rows) if rows else pd.DataFrame(columns=columns)
    return ReplicateSummary(truth, level, df, table, failures, message, seconds, fit_seconds)
