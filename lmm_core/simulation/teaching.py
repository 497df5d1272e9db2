"""Simulation lab: data from a known truth, the fit, and truth next to estimate.

The lab's model is the random intercept and slope model of a longitudinal study, with a
population curve that may bend,

.. math::

    y_{ij} = (\\beta_0 + u_{0i}) + (\\beta_1 + u_{1i}) t_{ij}
    + \\kappa \\frac{4 t_{ij} (T - t_{ij})}{T^2} + e_{ij},
    \\qquad (u_{0i}, u_{1i})' \\sim N(0, \\Sigma), \\quad e_{ij} \\sim N(0, \\sigma^2),

for subject ``i = 1..m`` at visit ``j`` with time ``t_ij = j`` (visits ``0 .. n - 1``, one
time unit apart, the last at ``T = n - 1``), where ``Sigma`` has standard deviations ``tau_0``
(intercept), ``tau_1`` (slope) and correlation ``rho``. The **curvature** ``kappa`` is the
bend at mid-study: the population curve ``f(t) = beta_0 + beta_1 t + kappa 4 t (T - t) / T^2``
lies ``kappa`` above the straight line joining its start ``f(0)`` and its end ``f(T)`` at
``t = T / 2`` (a quadratic; ``kappa > 0``: growth that slows down, ``kappa < 0``: growth that
speeds up). The bend is zero at both ends, so ``beta_0`` stays the mean at time 0 and
``beta_1`` the **average slope** over the study, ``(f(T) - f(0)) / T``; ``kappa = 0`` gives
straight lines (and, for a seed, exactly the data of the straight-line lab).

The fitted model is ``y ~ time + (time | subject)`` or, with a curved shape of time in the
fixed part (:data:`SHAPES`), ``y ~ poly(time, 2) + (time | subject)`` or
``y ~ ns(time, 3) + (time | subject)``. The coefficients of ``poly`` and ``ns`` columns mean
nothing on their own, so every fit is summarised by the same three linear combinations of its
fixed effects ``L beta`` (:func:`curve_rows`): the fitted curve at time 0, its average slope
``(f_hat(T) - f_hat(0)) / T`` and its bend ``f_hat(T/2) - (f_hat(0) + f_hat(T)) / 2``; for a
straight line these are ``beta_0_hat``, ``beta_1_hat`` and 0.

Dropout is monotone and completely at random: the baseline visit (``t = 0``) is always seen;
before each later visit a subject still in the study leaves with probability ``d``, and is
not seen again. A subject is therefore seen at ``k`` visits with probability
``(1 - d)^(k - 1) d`` (``k < n``), and at all ``n`` with probability ``(1 - d)^(n - 1)``.

:func:`simulate_lab` draws one study, :func:`fit_lab` fits it with :func:`lmm_core.fit_lmm`
(REML), :func:`recovery_table` puts every parameter's truth next to its estimate and
interval, and :func:`slope_shrinkage` compares each subject's own least-squares slope, its
mixed-model slope (BLUP) and its true slope. Repeating the study many times is in
:mod:`lmm_core.simulation.teaching_repeat`. numpy, scipy and pandas only.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from lmm_core.errors import DataError, LMMError
from lmm_core.inference.fixed_effects import contrast_test
from lmm_core.inference.profile import profile_confint
from lmm_core.model.fit import FitOptions, fit_lmm
from lmm_core.model.results import LMMResult
from lmm_core.model.simulate import theta_from_covariances
from lmm_core.predict.per_group import shrinkage_estimates

__all__ = [
    "CURVATURE_LABEL",
    "FORMULA",
    "PARAMETERS",
    "SHAPES",
    "LabData",
    "LabTruth",
    "bend",
    "contrast_interval",
    "curve_inference",
    "curve_rows",
    "estimates",
    "expected_slope_weight",
    "fit_lab",
    "is_curved",
    "lab_formula",
    "parameter_labels",
    "population_mean",
    "recovery_table",
    "shrinkage_summary",
    "simulate_lab",
    "slope_shrinkage",
]

#: shape of time in the fixed part, by its degrees of freedom: (name, term of the formula)
SHAPES: dict[int, tuple[str, str]] = {
    1: ("straight line", "time"),
    2: ("quadratic", "poly(time, 2)"),
    3: ("natural spline", "ns(time, 3)"),
}


def lab_formula(time_df: int = 1) -> str:
    """The lab's lme4 formula with the shape of time ``SHAPES[time_df]`` in the fixed part
    (the random part is always ``(time | subject)``)."""
    return f"y ~ {SHAPES[int(time_df)][1]} + (time | subject)"


FORMULA = lab_formula(1)

#: key -> plain label, in display order (fixed effects, random-effect SDs, correlation, sigma)
PARAMETERS: dict[str, str] = {
    "intercept": "Population intercept β₀",
    "slope": "Population slope β₁",
    "sd_intercept": "SD of subject intercepts τ₀",
    "sd_slope": "SD of subject slopes τ₁",
    "corr": "Correlation intercept–slope ρ",
    "sigma": "Residual SD σ",
}
#: label of the bend at mid-study, a parameter of the recovery table when :func:`is_curved`
CURVATURE_LABEL = "Curvature κ (bend at mid-study)"

#: the same parameters as lmm_core names them (fixed effects; profile_confint rows)
_ENGINE_NAMES: dict[str, str] = {
    "intercept": "(Intercept)",
    "slope": "time",
    "sd_intercept": "sd_(Intercept)|subject",
    "sd_slope": "sd_time|subject",
    "corr": "cor_time.(Intercept)|subject",
    "sigma": "sigma",
}

MAX_SUBJECTS = 5000
MAX_VISITS = 100


@dataclass(frozen=True)
class LabTruth:
    """The true parameters, the design of a simulated study and the shape of time fitted.

    Parameters
    ----------
    intercept, slope
        Population intercept ``beta_0`` (mean outcome at time 0) and slope ``beta_1``
        (mean change per time unit).
    sd_intercept, sd_slope
        Between-subject standard deviations ``tau_0`` and ``tau_1`` of the subject
        intercepts and slopes (``>= 0``).
    corr
        Correlation ``rho`` of a subject's intercept and slope, in ``[-1, 1]``.
    sigma
        Residual standard deviation (``> 0``): visit-to-visit noise around a subject's line.
    n_subjects
        Number of subjects ``m`` (3 to 5,000).
    n_visits
        Planned visits per subject ``n`` at times ``0 .. n - 1`` (3 to 100).
    dropout
        Probability ``d`` in ``[0, 1)`` that a subject still in the study leaves before each
        post-baseline visit.
    curvature
        The bend ``kappa`` of the population curve at mid-study, in outcome units (0: a
        straight line; see the module docstring).
    time_df
        The model fitted to the study: degrees of freedom of time in its fixed part, a key of
        :data:`SHAPES` (1 straight line, 2 quadratic, 3 natural spline). Part of this
        record, next to the design, so that one value names a whole simulation scenario.

    Raises
    ------
    lmm_core.DataError
        When a value is outside its range (the message says which and why).
    """

    intercept: float = 50.0
    slope: float = 2.0
    sd_intercept: float = 3.0
    sd_slope: float = 2.0
    corr: float = -0.4
    sigma: float = 4.0
    n_subjects: int = 30
    n_visits: int = 6
    dropout: float = 0.05
    curvature: float = 0.0
    time_df: int = 1

    def __post_init__(self) -> None:
        values = [self.intercept, self.slope, self.sd_intercept, self.sd_slope, self.corr]
        values += [self.sigma, self.dropout, self.curvature]
        if not all(math.isfinite(float(v)) for v in values):
            raise DataError("Every parameter of the truth must be a finite number.")
        if self.sd_intercept < 0 or self.sd_slope < 0:
            raise DataError("Standard deviations cannot be negative.")
        if self.sigma <= 0:
            raise DataError(
                "The residual SD must be above 0: without measurement noise the model cannot "
                "separate the subjects' lines from the noise around them."
            )
        if not -1.0 <= self.corr <= 1.0:
            raise DataError("A correlation lies between -1 and 1.")
        if not 3 <= int(self.n_subjects) <= MAX_SUBJECTS:
            raise DataError(f"Choose between 3 and {MAX_SUBJECTS:,} subjects.")
        if not 3 <= int(self.n_visits) <= MAX_VISITS:
            raise DataError(
                f"Choose between 3 and {MAX_VISITS} visits: with two visits per subject an "
                "own intercept and slope fit every subject's data exactly, leaving nothing to "
                "tell the slope variation from the noise."
            )
        if not 0.0 <= self.dropout < 1.0:
            raise DataError("The dropout probability per visit must be at least 0 and below 1.")
        if self.time_df not in SHAPES:
            raise DataError(
                "The shape of time is 1 (straight line), 2 (quadratic) or 3 (natural spline)."
            )

    @property
    def cov(self) -> np.ndarray:
        """``Sigma``: the 2 x 2 covariance matrix of ``(u_0i, u_1i)``."""
        c = self.corr * self.sd_intercept * self.sd_slope
        return np.array([[self.sd_intercept**2, c], [c, self.sd_slope**2]])

    @property
    def values(self) -> dict[str, float]:
        """The true value of every parameter in :data:`PARAMETERS`."""
        return {key: float(getattr(self, key)) for key in PARAMETERS}

    @property
    def span(self) -> float:
        """``T = n - 1``: the time of the last planned visit."""
        return float(int(self.n_visits) - 1)

    def expected_visits(self) -> float:
        """Expected visits per subject: ``sum_{k=0}^{n-1} (1 - d)^k``."""
        return float(sum((1.0 - self.dropout) ** k for k in range(int(self.n_visits))))


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
    """Draw one study from the model in the module docstring.

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
    labels = _subject_labels(m)
    data = pd.DataFrame(
        {
            "subject": pd.Categorical.from_codes(subject, dtype=_subject_dtype(m), validate=False),
            "visit": visit,
            "time": time,
            "y": y,
        }
    )
    subjects = pd.DataFrame(
        {"n": seen, "intercept": truth.intercept + u[:, 0], "slope": truth.slope + u[:, 1]},
        index=labels,
    )
    return LabData(data, subjects, truth)


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


def population_mean(truth: LabTruth, t: np.ndarray | float) -> np.ndarray:
    """The true population curve ``f(t) = beta_0 + beta_1 t + kappa 4 t (T - t) / T^2``."""
    t = np.asarray(t, dtype=float)
    return truth.intercept + truth.slope * t + bend(truth, t)


def bend(truth: LabTruth, t: np.ndarray | float) -> np.ndarray:
    """The curved part of the truth, ``kappa 4 t (T - t) / T^2``: 0 at the first and the last
    planned visit, ``kappa`` at mid-study ``t = T / 2``."""
    t = np.asarray(t, dtype=float)
    span = truth.span
    return truth.curvature * 4.0 * t * (span - t) / span**2


def is_curved(truth: LabTruth) -> bool:
    """Whether the truth bends or the fit may: then the lab reports the curvature and speaks
    of the *average* slope."""
    return truth.curvature != 0 or int(truth.time_df) != 1


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


def _span(result: LMMResult, span: float | None) -> float:
    if span is not None:
        return float(span)
    if list(result.x_names) == ["(Intercept)", "time"]:
        return 1.0  # a straight line's rows are its coefficients, whatever the span
    raise LMMError("A curved fit's average slope and bend need the time span T (span=...).")


def curve_rows(result: LMMResult, span: float | None = None) -> dict[str, np.ndarray]:
    """Rows ``L`` such that ``L beta_hat`` summarises the fitted population curve.

    With ``x(t)`` the fixed-effects row of time ``t`` (the fit's own basis, so ``poly`` and
    ``ns`` columns are evaluated with the fit's coefficients and knots):
    ``"intercept"`` ``x(0)`` (the curve at time 0), ``"slope"`` ``(x(T) - x(0)) / T`` (its
    average slope from 0 to ``T``) and ``"curvature"`` ``x(T/2) - (x(0) + x(T)) / 2`` (its
    bend at mid-study). For ``y ~ time`` they are exactly ``(1, 0)``, ``(0, 1)`` and
    ``(0, 0)``: the coefficients, and no bend.

    Parameters
    ----------
    result
        A fit of :func:`fit_lab`.
    span
        ``T``, the last planned visit (:attr:`LabTruth.span`); needed for a curved fit.
    """
    span = _span(result, span)

    def compute() -> dict[str, np.ndarray]:
        x = result.design.fixed_matrix(pd.DataFrame({"time": [0.0, span / 2.0, span]}))
        mid = x[1] - (x[0] + x[2]) / 2.0
        return {"intercept": x[0], "slope": (x[2] - x[0]) / span, "curvature": mid}

    return result.derived.get(("lab_curve_rows", span), compute)  # kept with the fit


def curve_inference(
    result: LMMResult, span: float | None = None, *, level: float = 0.95, df: str = "satterthwaite"
) -> pd.DataFrame:
    """Estimate, standard error, df and interval of each row of :func:`curve_rows`.

    ``L beta_hat +/- t_{nu, (1 + level)/2} sqrt(L' C L)`` with ``C = sigma^2 (X' V^-1 X)^-1``
    and ``nu`` Satterthwaite's (``df="satterthwaite"``, lmerTest's for a contrast; for a
    straight line the fixed-effects table's numbers) or ``m - 1`` for ``m`` subjects
    (``df="subjects"``). A row of zeros (the bend of a straight line) is a bend of 0 by
    construction: estimate 0, no interval (NaN).

    Raises
    ------
    lmm_core.LMMError
        For another ``df`` rule, or a curved fit without ``span``.

    Returns
    -------
    pandas.DataFrame
        Index ``intercept``, ``slope``, ``curvature``; columns ``estimate``, ``std_error``,
        ``df``, ``lower``, ``upper``.
    """
    rows = curve_rows(result, span)
    values = [contrast_interval(result, row, level=level, df=df) for row in rows.values()]
    return pd.DataFrame(
        values,
        index=pd.Index(list(rows), name="key"),
        columns=["estimate", "std_error", "df", "lower", "upper"],
    )


def contrast_interval(
    result: LMMResult, row: np.ndarray, *, level: float = 0.95, df: str = "satterthwaite"
) -> tuple[float, float, float, float, float]:
    """``(estimate, std_error, df, lower, upper)`` of ``L beta`` for one row ``L``, as
    :func:`curve_inference` (all NaN but the estimate 0 for a row of zeros)."""
    if df not in ("satterthwaite", "subjects"):
        raise LMMError('df must be "subjects" or "satterthwaite".')
    if not np.any(row):
        return 0.0, math.nan, math.nan, math.nan, math.nan
    if df == "satterthwaite":
        test = contrast_test(result, row, "satterthwaite")
        est, se, nu = test.estimate, test.std_error, test.den_df
    else:
        est = float(row @ result.beta)
        se = math.sqrt(float(row @ result.vcov_beta @ row))
        nu = float(result.ngroups["subject"] - 1)
    half = float(stats.t.ppf(0.5 + level / 2.0, df=nu)) * se
    return est, se, nu, est - half, est + half


def estimates(result: LMMResult, span: float | None = None) -> dict[str, float]:
    """The fit's estimate of every parameter in :data:`PARAMETERS`, and of the curvature.

    The intercept, slope and curvature are :func:`curve_rows` times ``beta_hat`` (for a
    straight line: ``beta_0_hat``, ``beta_1_hat`` and 0; a curved fit needs ``span``). The SDs
    and the correlation come from ``Sigma_hat = sigma_hat^2 Lambda Lambda'``; with a zero SD
    the correlation is undefined (NaN).
    """
    cov = result.covariance_matrices()[0]
    sd0, sd1 = np.sqrt(np.diag(cov))
    corr = cov[1, 0] / (sd0 * sd1) if sd0 * sd1 > 0 else math.nan
    curve = {key: float(row @ result.beta) for key, row in curve_rows(result, span).items()}
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


def slope_shrinkage(result: LMMResult, lab: LabData) -> pd.DataFrame:
    """Each subject's own slope, mixed-model slope and true slope.

    Uses :func:`lmm_core.predict.per_group.shrinkage_estimates`: ``own`` is the least-squares
    slope of the subject's data alone, ``population`` is the fitted population curve's
    average slope ``beta_1_hat`` (:func:`curve_rows`; for a straight line its slope),
    ``mixed = population + b_1i`` with the BLUP ``b_1i`` (the average slope of the subject's
    fitted curve; for a straight line it equals per_group's projected mixed-model slope
    wherever that exists), ``truth`` is ``beta_1 + u_1i`` (the subject's true average slope)
    and ``factor = (mixed - population) / (own - population)`` is the share of its own
    deviation from the population that the model keeps. With a bend, the own straight line
    of a subject who left early follows the start of the curve, not its average.

    Returns
    -------
    pandas.DataFrame
        One row per subject (index: subject): ``n``, ``own``, ``mixed``, ``truth``,
        ``population``, ``factor``; ``own`` and ``factor`` are NaN for a subject seen at one
        visit only (no own slope).
    """
    est = shrinkage_estimates(result, "subject").table
    pop = estimates(result, lab.truth.span)["slope"]
    own = est["own:time"].to_numpy()
    mixed = pop + est["blup:time"].to_numpy()  # the fixed part's average slope plus b_1i
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = (mixed - pop) / (own - pop)
    out = pd.DataFrame(
        {
            "n": est["n"].to_numpy(),
            "own": own,
            "mixed": mixed,
            "population": pop,
            "factor": factor,
        },
        index=pd.Index(est.index.astype(str), name="subject"),
    )
    out.insert(3, "truth", lab.subjects["slope"].reindex(out.index).to_numpy())
    return out


def shrinkage_summary(table: pd.DataFrame) -> dict[str, float]:
    """Root mean squared error of own and mixed slopes against the truth, and the median
    shrinkage factor, over the subjects with an own slope."""
    ok = table["own"].notna()
    own_err = (table.loc[ok, "own"] - table.loc[ok, "truth"]).to_numpy()
    mixed_err = (table.loc[ok, "mixed"] - table.loc[ok, "truth"]).to_numpy()
    factor = table.loc[ok, "factor"].to_numpy()
    factor = factor[np.isfinite(factor)]
    return {
        "rmse_own": float(np.sqrt(np.mean(own_err**2))) if ok.any() else math.nan,
        "rmse_mixed": float(np.sqrt(np.mean(mixed_err**2))) if ok.any() else math.nan,
        "median_factor": float(np.median(factor)) if factor.size else math.nan,
        "subjects": int(ok.sum()),
    }


def expected_slope_weight(sd_slope: float, sigma: float, n_visits: int | np.ndarray) -> np.ndarray:
    """The weight on a subject's own slope in the simplest case.

    With every visit seen at times ``0 .. n - 1``, uncorrelated intercept and slope and time
    centred at its mean, the BLUP of a subject's slope deviation is ``w`` times its own
    least-squares deviation, with

    .. math::

        w = \\frac{\\tau_1^2}{\\tau_1^2 + \\sigma^2 / S_{tt}}, \\qquad
        S_{tt} = \\sum_j (t_j - \\bar t)^2 = \\frac{n (n^2 - 1)}{12},

    the true slope variance over itself plus the variance of an own slope. More visits
    (larger ``S_tt``) or less noise move ``w`` toward 1 (little shrinkage); a small
    ``tau_1`` moves it toward 0. Elsewhere (correlation, dropout) it is a guide.
    """
    n = np.asarray(n_visits, dtype=float)
    s_tt = n * (n**2 - 1.0) / 12.0
    tau2 = float(sd_slope) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        return tau2 / (tau2 + float(sigma) ** 2 / s_tt)
