"""Simulation lab: one study drawn from a known truth, its fit, and truth next to estimate.

The truth and its model are :class:`~lmm_core.simulation.teaching_truth.LabTruth` (random
intercepts and slopes around a population curve that may bend, dropout completely at random).
:func:`simulate_lab` draws one study from it, :func:`fit_lab` fits it with
:func:`lmm_core.fit_lmm` (REML; the formula of
:func:`~lmm_core.simulation.teaching_curves.lab_formula`), :func:`estimates` reads every
parameter off the fit and :func:`recovery_table` puts every parameter's truth next to its
estimate and interval. Around this module: the curves (true and fitted) in
:mod:`lmm_core.simulation.teaching_curves`, the subjects' own against mixed-model slopes in
:mod:`lmm_core.simulation.teaching_shrinkage`, and the study repeated many times in
:mod:`lmm_core.simulation.teaching_repeat`. numpy, scipy and pandas only.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lmm_core.errors import DataError
from lmm_core.inference.profile import profile_confint
from lmm_core.model.fit import FitOptions, fit_lmm
from lmm_core.model.results import LMMResult
from lmm_core.model.simulate import theta_from_covariances
from lmm_core.simulation.teaching_curves import (
    bend,
    curve_inference,
    curve_rows,
    is_curved,
    lab_formula,
)
from lmm_core.simulation.teaching_truth import CURVATURE_LABEL, PARAMETERS, SHAPES, LabTruth

__all__ = [
    "LabData",
    "estimates",
    "fit_lab",
    "parameter_labels",
    "recovery_table",
    "simulate_lab",
]

#: the same parameters as lmm_core names them (fixed effects; profile_confint rows)
_ENGINE_NAMES: dict[str, str] = {
    "intercept": "(Intercept)",
    "slope": "time",
    "sd_intercept": "sd_(Intercept)|subject",
    "sd_slope": "sd_time|subject",
    "corr": "cor_time.(Intercept)|subject",
    "sigma": "sigma",
}


@dataclass(frozen=True)
class LabData:
    """One simulated study.

    Attributes
    ----------
    data
        One row per observed visit: ``subject`` (Categorical ``S001, S002, ...``), ``visit``
        (int), ``time`` (float, equal to the visit number) and ``y``.
    subjects
        One row per subject (index: subject): ``n`` (visits seen), ``intercept`` and
        ``slope`` (``beta + u_i``: the subject's true line, or with a curvature its curve's
        value at time 0 and its average slope over the study).
    truth
        The parameters used.
    """

    data: pd.DataFrame
    subjects: pd.DataFrame
    truth: LabTruth


def simulate_lab(truth: LabTruth, seed: int | np.random.SeedSequence | None = 0) -> LabData:
    """Draw one study from the model of :mod:`lmm_core.simulation.teaching_truth`.

    Draw order (part of the reproducibility contract): the subjects' random effects
    ``u_i = L z_i`` with ``L L' = Sigma`` (``z_i`` standard normal; a zero SD or
    ``|rho| = 1`` is handled), then the dropout, then the residuals.

    Parameters
    ----------
    truth
        Parameters and design.
    seed
        Seed (or seed sequence) of ``numpy.random.default_rng``: the same seed gives the same
        study.

    Returns
    -------
    LabData
    """
    return lab_from_draw(truth, draw_lab(truth, seed))


def lab_from_draw(truth: LabTruth, draw: LabDraw) -> LabData:
    """The tables of :func:`simulate_lab` from the arrays of :func:`draw_lab`."""
    m = int(truth.n_subjects)
    labels = _subject_labels(m)
    data = pd.DataFrame(
        {
            "subject": pd.Categorical.from_codes(
                draw.subject, dtype=_subject_dtype(m), validate=False
            ),
            "visit": draw.visit,
            "time": draw.time,
            "y": draw.y,
        }
    )
    subjects = pd.DataFrame(
        {
            "n": draw.seen,
            "intercept": truth.intercept + draw.u[:, 0],
            "slope": truth.slope + draw.u[:, 1],
        },
        index=labels,
    )
    return LabData(data, subjects, truth)


@dataclass(frozen=True)
class LabDraw:
    """The arrays of one simulated study (:func:`draw_lab`), before any table is built.

    ``subject`` (subject index ``0..m-1`` per row), ``visit`` (int), ``time`` (float), ``y``
    per observed visit; ``seen`` (visits per subject) and ``u`` (``(m, 2)`` random effects).
    """

    subject: np.ndarray
    visit: np.ndarray
    time: np.ndarray
    y: np.ndarray
    seen: np.ndarray
    u: np.ndarray


def draw_lab(truth: LabTruth, seed: int | np.random.SeedSequence | None = 0) -> LabDraw:
    """The draws of :func:`simulate_lab` as arrays (same seed, same numbers): what repeated
    studies need without the cost of building tables."""
    rng = np.random.default_rng(seed)
    m, n = int(truth.n_subjects), int(truth.n_visits)
    chol = truth.sigma * _lower_factor(truth)
    u = rng.standard_normal((m, 2)) @ chol.T
    if truth.dropout > 0:
        leaves = rng.random((m, n - 1)) < truth.dropout
        seen = np.where(leaves.any(axis=1), leaves.argmax(axis=1) + 1, n)
    else:
        seen = np.full(m, n)
    subject = np.repeat(np.arange(m), seen)
    visit = np.arange(len(subject)) - np.repeat(np.cumsum(seen) - seen, seen)
    time = visit.astype(float)
    y = (truth.intercept + u[subject, 0]) + (truth.slope + u[subject, 1]) * time
    if truth.curvature != 0:
        y = y + bend(truth, time)
    y = y + truth.sigma * rng.standard_normal(len(subject))
    return LabDraw(subject, visit, time, y, seen, u)


@functools.cache
def _subject_labels(m: int) -> pd.Index:
    """``S001, S002, ...`` (zero-padded to the width of ``m``, at least three digits)."""
    width = max(3, len(str(m)))
    return pd.Index([f"S{k:0{width}d}" for k in range(1, m + 1)], name="subject")


@functools.cache
def _subject_dtype(m: int) -> pd.CategoricalDtype:
    return pd.CategoricalDtype(_subject_labels(m))


def _lower_factor(truth: LabTruth) -> np.ndarray:
    """``Lambda`` with ``sigma^2 Lambda Lambda' = Sigma`` (as lmm_core's ``theta``)."""
    lo = theta_from_covariances([truth.cov], truth.sigma)
    return np.array([[lo[0], 0.0], [lo[1], lo[2]]])


def fit_lab(
    lab: LabData | pd.DataFrame, options: FitOptions | None = None, *, time_df: int | None = None
) -> LMMResult:
    """Fit :func:`lab_formula` by REML with :func:`lmm_core.fit_lmm`.

    The shape of time is ``time_df`` when given, else ``lab.truth.time_df`` (a plain data
    frame: the straight line).

    Raises
    ------
    lmm_core.DataError
        When the study has fewer distinct visit times than the shape needs
        (``time_df + 1``; a natural spline with 3 df needs 4), or the fit's own errors.
    """
    data = lab.data if isinstance(lab, LabData) else lab
    if time_df is None:
        time_df = lab.truth.time_df if isinstance(lab, LabData) else 1
    distinct = int(data["time"].nunique())
    if distinct < int(time_df) + 1:
        name, term = SHAPES[int(time_df)]
        raise DataError(
            f"A {name} `{term}` needs at least {int(time_df) + 1} distinct visit times; this "
            f"study has {distinct}. Choose more visits or a simpler shape of time."
        )
    return fit_lmm(lab_formula(time_df), data, reml=True, options=options)


def estimates(
    result: LMMResult, span: float | None = None, *, rows: dict[str, np.ndarray] | None = None
) -> dict[str, float]:
    """The fit's estimate of every parameter in :data:`PARAMETERS`, and of the curvature.

    The intercept, slope and curvature are :func:`curve_rows` times ``beta_hat`` (for a
    straight line: ``beta_0_hat``, ``beta_1_hat`` and 0; a curved fit needs ``span``). The SDs
    and the correlation come from ``Sigma_hat = sigma_hat^2 Lambda Lambda'``; with a zero SD
    the correlation is undefined (NaN). ``rows`` (the :func:`curve_rows` of a fit of the
    same formula and span) skips computing them again.
    """
    cov = result.covariance_matrices()[0]
    sd0, sd1 = np.sqrt(np.diag(cov))
    corr = cov[1, 0] / (sd0 * sd1) if sd0 * sd1 > 0 else math.nan
    rows = curve_rows(result, span) if rows is None else rows
    curve = {key: float(row @ result.beta) for key, row in rows.items()}
    return {
        "intercept": curve["intercept"],
        "slope": curve["slope"],
        "sd_intercept": float(sd0),
        "sd_slope": float(sd1),
        "corr": float(corr),
        "sigma": float(result.sigma),
        "curvature": curve["curvature"],
    }


def parameter_labels(truth: LabTruth) -> dict[str, str]:
    """Key -> label of the recovery table's rows: :data:`PARAMETERS`, and when
    :func:`is_curved` the slope as the average slope and a row for the curvature."""
    labels = dict(PARAMETERS)
    if is_curved(truth):
        labels["slope"] = f"Average slope β₁ (time 0 to {truth.span:g})"
        labels["curvature"] = CURVATURE_LABEL
    return labels


def recovery_table(
    result: LMMResult, truth: LabTruth, *, level: float = 0.95, profile: bool = True
) -> pd.DataFrame:
    """Every parameter's truth, estimate and confidence interval.

    Intercept, (average) slope and curvature: :func:`curve_inference` (Satterthwaite ``t``
    intervals of ``L beta``; for a straight line the fixed-effects table's). SDs, correlation
    and ``sigma``: likelihood-profile intervals (:func:`lmm_core.profile_confint`; they
    surround the ML estimates, as lme4's) when ``profile`` is true, else no interval (NaN).
    The curvature row is there when :func:`is_curved`; a straight-line fit's bend is 0 with
    no interval.

    Returns
    -------
    pandas.DataFrame
        Index: the keys of :func:`parameter_labels`. Columns ``parameter`` (label),
        ``truth``, ``estimate``, ``lower``, ``upper``, ``interval`` (how it was computed) and
        ``covered`` (1.0 if the truth is inside, 0.0 if not, NaN without an interval).
    """
    labels = parameter_labels(truth)
    est = estimates(result, truth.span)
    true = {**truth.values, "curvature": float(truth.curvature)}
    table = pd.DataFrame(
        {
            "parameter": list(labels.values()),
            "truth": [true[k] for k in labels],
            "estimate": [est[k] for k in labels],
            "lower": math.nan,
            "upper": math.nan,
            "interval": "none",
        },
        index=pd.Index(list(labels), name="key"),
    )
    curve = curve_inference(result, truth.span, level=level)
    for key in [k for k in ("intercept", "slope", "curvature") if k in labels]:
        if np.isnan(curve.loc[key, "lower"]):
            table.loc[key, "interval"] = "none: a straight line has no bend"
            continue
        table.loc[key, ["lower", "upper"]] = curve.loc[key, ["lower", "upper"]].to_numpy()
        table.loc[key, "interval"] = "Satterthwaite t"
    if profile:
        _profile_rows(result, table, level)
    inside = (table["lower"] <= table["truth"]) & (table["truth"] <= table["upper"])
    table["covered"] = inside.astype(float).where(table["lower"].notna())
    return table


def _profile_rows(result: LMMResult, table: pd.DataFrame, level: float) -> None:
    """Fill the variance parameters' rows of ``table`` with profile-likelihood intervals."""
    variance_keys = ["sd_intercept", "sd_slope", "corr", "sigma"]
    try:
        with np.errstate(divide="ignore", invalid="ignore"):  # a correlation at +/-1
            ci = profile_confint(
                result, level=level, which=[_ENGINE_NAMES[k] for k in variance_keys]
            )
    except (ValueError, ArithmeticError, np.linalg.LinAlgError):
        return
    for key in variance_keys:
        name = _ENGINE_NAMES[key]
        if name in ci.index:
            table.loc[key, ["lower", "upper"]] = ci.loc[name, ["lower", "upper"]].to_numpy()
            table.loc[key, "interval"] = "profile likelihood"
