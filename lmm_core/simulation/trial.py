"""Seeded simulator of a multi-center longitudinal trial.

Hospitals contain patients, patients have repeated visits. Patients are randomised 1:1 to a
control or a treatment arm in permuted blocks of two within each hospital. The outcome of
patient ``i`` in hospital ``j`` at time ``t`` (months since baseline) is

.. math::

    y = \\beta_0 + \\beta_1 t + \\beta_2 \\mathrm{arm} + \\beta_3 t \\cdot \\mathrm{arm}
        + u_{0i} + u_{1i} t + h_j + e,

with ``arm`` = 1 for treatment, ``(u_0i, u_1i) ~ N(0, Sigma)`` a correlated random intercept
and slope per patient (standard deviations ``sd_patient_intercept``, ``sd_patient_slope``,
correlation ``corr_patient_intercept_slope``), ``h_j ~ N(0, sd_hospital^2)`` a random intercept
per hospital and ``e ~ N(0, sigma^2)`` independent residuals. The matching lme4 formula is
``y ~ time * arm + (time | patient) + (1 | hospital)``.

Visits are scheduled every ``visit_interval_months``; visit 0 (baseline) is at time 0 and
always observed. Later visits are jittered uniformly by up to ``time_jitter_months``. A
fraction ``p_complete`` of patients stays to the last scheduled visit; the others drop out
after a last visit drawn uniformly from ``1 .. scheduled_visits - 2``. Before dropout, each
post-baseline visit is missed independently with probability ``p_miss_post_baseline``.

The defaults reproduce the design and parameter values of the reference trial
``sim_small`` (``tests/fixtures/reference/data/sim_small_truth.json``); the random streams
differ, so the rows are not identical to that file.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["SimulatedTrial", "TrialParameters", "simulate_trial", "trial_csv", "truth_record"]

#: lme4 names of the four fixed effects, in the order of ``TrialParameters.beta``.
BETA_NAMES: tuple[str, str, str, str] = ("(Intercept)", "time", "armtreatment", "time:armtreatment")
ARM_LEVELS: tuple[str, str] = ("control", "treatment")
FORMULA = "y ~ time * arm + (time | patient) + (1 | hospital)"


@dataclass(frozen=True)
class TrialParameters:
    """True parameters and visit design of a simulated trial.

    Parameters
    ----------
    beta
        Fixed effects ``(Intercept, time, armtreatment, time:armtreatment)``; outcome units
        (mmHg-like) and outcome units per month.
    sd_hospital
        Standard deviation of the hospital random intercept ``h_j``.
    sd_patient_intercept, sd_patient_slope
        Standard deviations of the patient random intercept ``u_0i`` and slope ``u_1i``.
    corr_patient_intercept_slope
        Correlation of ``u_0i`` and ``u_1i``; in ``[-1, 1]``.
    sigma
        Residual standard deviation.
    scheduled_visits
        Number of scheduled visits including baseline (visit indices ``0 .. n - 1``).
    visit_interval_months
        Time between scheduled visits.
    p_complete
        Probability that a patient attends up to the last scheduled visit.
    p_miss_post_baseline
        Probability that a scheduled post-baseline visit before dropout is missed.
    time_jitter_months
        Half-width of the uniform jitter added to post-baseline visit times.
    """

    beta: tuple[float, float, float, float] = (140.0, -0.3, 0.5, -0.8)
    sd_hospital: float = 3.0
    sd_patient_intercept: float = 10.0
    sd_patient_slope: float = 0.5
    corr_patient_intercept_slope: float = -0.4
    sigma: float = 6.0
    scheduled_visits: int = 8
    visit_interval_months: float = 1.0
    p_complete: float = 0.6
    p_miss_post_baseline: float = 0.05
    time_jitter_months: float = 0.2

    def __post_init__(self) -> None:
        if len(self.beta) != 4:
            raise ValueError("beta needs four values: intercept, time, arm, time:arm.")
        sds = (self.sd_hospital, self.sd_patient_intercept, self.sd_patient_slope, self.sigma)
        if min(sds) < 0:
            raise ValueError("Standard deviations must not be negative.")
        if not -1.0 <= self.corr_patient_intercept_slope <= 1.0:
            raise ValueError("The intercept-slope correlation must lie in [-1, 1].")
        if self.scheduled_visits < 3:
            raise ValueError("scheduled_visits must be at least 3 (baseline plus two).")
        for name in ("p_complete", "p_miss_post_baseline"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1].")
        if self.time_jitter_months < 0 or self.time_jitter_months >= self.visit_interval_months / 2:
            raise ValueError("time_jitter_months must be in [0, visit_interval_months / 2).")

    @property
    def beta_named(self) -> dict[str, float]:
        """Fixed effects keyed by their lme4 coefficient names."""
        return dict(zip(BETA_NAMES, (float(b) for b in self.beta), strict=True))

    @property
    def patient_cov(self) -> np.ndarray:
        """2 x 2 covariance matrix of the patient intercept and slope."""
        s0, s1 = self.sd_patient_intercept, self.sd_patient_slope
        c = self.corr_patient_intercept_slope * s0 * s1
        return np.array([[s0 * s0, c], [c, s1 * s1]])


@dataclass(frozen=True)
class SimulatedTrial:
    """Result of :func:`simulate_trial`.

    Attributes
    ----------
    data
        One row per observed visit: ``hospital, patient, patient_in_hospital, arm, visit,
        time, y`` (id and arm columns are pandas Categoricals; ``arm`` has levels
        ``control, treatment``).
    random_effects
        One row per patient: ``patient, hospital, arm, u_intercept, u_slope,
        hospital_intercept`` (the true values drawn).
    params
        The parameters used.
    design
        ``n_hospitals``, ``patients_per_hospital``, ``seed`` and the planned visit counts.
    """

    data: pd.DataFrame
    random_effects: pd.DataFrame
    params: TrialParameters
    design: dict[str, Any] = field(default_factory=dict)


def _labels(prefix: str, n: int, width: int) -> np.ndarray:
    """Return ``[prefix0001, prefix0002, ...]`` as an object array."""
    width = max(width, len(str(n)))
    return np.array([f"{prefix}{k:0{width}d}" for k in range(1, n + 1)], dtype=object)


def _randomise(rng: np.random.Generator, n_hospitals: int, per_hospital: int) -> np.ndarray:
    """1:1 permuted blocks of two within hospital; returns 0/1 arm per patient (row-major)."""
    n_blocks = -(-per_hospital // 2)
    first_is_treated = rng.random((n_hospitals, n_blocks)) < 0.5
    pairs = np.stack([first_is_treated, ~first_is_treated], axis=2).reshape(n_hospitals, -1)
    return pairs[:, :per_hospital].reshape(-1).astype(np.int8)


def simulate_trial(
    params: TrialParameters | None = None,
    *,
    n_hospitals: int = 20,
    patients_per_hospital: int = 25,
    seed: int | None = 20240101,
) -> SimulatedTrial:
    """Simulate a multi-center trial with known truth.

    The model is ``y = b0 + b1 t + b2 arm + b3 t*arm + u0_i + u1_i t + h_j + e`` (see the
    module docstring for the distributions and the visit process). Everything is vectorised:
    a million rows take well under a second.

    Parameters
    ----------
    params
        True parameters and visit design; ``TrialParameters()`` when omitted.
    n_hospitals
        Number of hospitals (clusters).
    patients_per_hospital
        Patients per hospital, randomised 1:1 within hospital.
    seed
        Seed of ``numpy.random.default_rng``; the same seed gives the same trial.

    Returns
    -------
    SimulatedTrial
        Long-format data, the true random effects and the parameters.

    Examples
    --------
    >>> trial = simulate_trial(n_hospitals=2, patients_per_hospital=4, seed=1)
    >>> list(trial.data.columns)
    ['hospital', 'patient', 'patient_in_hospital', 'arm', 'visit', 'time', 'y']
    """
    p = params if params is not None else TrialParameters()
    if n_hospitals < 1 or patients_per_hospital < 1:
        raise ValueError("n_hospitals and patients_per_hospital must be at least 1.")
    rng = np.random.default_rng(seed)
    n_pat = n_hospitals * patients_per_hospital
    n_vis = p.scheduled_visits

    # Draw order (fixed, part of the reproducibility contract): arms, hospital effects,
    # patient effects, planned visits, missed visits, jitter, residuals.
    arm = _randomise(rng, n_hospitals, patients_per_hospital)
    h = rng.normal(0.0, p.sd_hospital, n_hospitals)
    s0, s1, r = p.sd_patient_intercept, p.sd_patient_slope, p.corr_patient_intercept_slope
    factor = np.array([[s0, 0.0], [r * s1, s1 * np.sqrt(1.0 - r * r)]])  # patient_cov = F F'
    u = rng.standard_normal((n_pat, 2)) @ factor.T
    completes = rng.random(n_pat) < p.p_complete
    last_visit = np.where(completes, n_vis - 1, rng.integers(1, n_vis - 1, n_pat))
    visit = np.broadcast_to(np.arange(n_vis), (n_pat, n_vis))
    missed = (rng.random((n_pat, n_vis)) < p.p_miss_post_baseline) & (visit > 0)
    observed = (visit <= last_visit[:, None]) & ~missed
    jitter = rng.uniform(-p.time_jitter_months, p.time_jitter_months, (n_pat, n_vis))
    jitter[:, 0] = 0.0
    time_all = np.round(visit * p.visit_interval_months + jitter, 3)
    eps = rng.normal(0.0, p.sigma, (n_pat, n_vis))

    pat_idx, vis_idx = np.nonzero(observed)
    t = time_all[pat_idx, vis_idx]
    a = arm[pat_idx].astype(float)
    hosp_idx = pat_idx // patients_per_hospital
    b0, b1, b2, b3 = p.beta
    y = (
        b0
        + b1 * t
        + b2 * a
        + b3 * t * a
        + u[pat_idx, 0]
        + u[pat_idx, 1] * t
        + h[hosp_idx]
        + eps[pat_idx, vis_idx]
    )

    hosp_labels = _labels("H", n_hospitals, 4)
    pih_labels = _labels("P", patients_per_hospital, 3)
    pat_hosp = np.repeat(np.arange(n_hospitals), patients_per_hospital)
    pat_within = np.tile(np.arange(patients_per_hospital), n_hospitals)
    pat_labels = hosp_labels[pat_hosp] + "-" + pih_labels[pat_within]

    def cat(codes: np.ndarray, labels: np.ndarray | tuple[str, ...]) -> pd.Categorical:
        return pd.Categorical.from_codes(codes, categories=list(labels))

    data = pd.DataFrame(
        {
            "hospital": cat(hosp_idx, hosp_labels),
            "patient": cat(pat_idx, pat_labels),
            "patient_in_hospital": cat(pat_within[pat_idx], pih_labels),
            "arm": cat(arm[pat_idx], ARM_LEVELS),
            "visit": vis_idx.astype(np.int64),
            "time": t,
            "y": np.round(y, 4),
        }
    )
    ranef = pd.DataFrame(
        {
            "patient": pat_labels.astype(str),
            "hospital": hosp_labels[pat_hosp].astype(str),
            "arm": np.asarray(ARM_LEVELS, dtype=object)[arm],
            "u_intercept": u[:, 0],
            "u_slope": u[:, 1],
            "hospital_intercept": h[pat_hosp],
        }
    )
    design = {
        "n_hospitals": n_hospitals,
        "patients_per_hospital": patients_per_hospital,
        "n_patients": n_pat,
        "seed": seed,
        "planned_visits_mean": float(np.mean(last_visit + 1)),
    }
    return SimulatedTrial(data=data, random_effects=ranef, params=p, design=design)


def truth_record(trial: SimulatedTrial, *, files: dict[str, str] | None = None) -> dict[str, Any]:
    """Describe a simulated trial in the layout of ``sim_small_truth.json``.

    Parameters
    ----------
    trial
        Output of :func:`simulate_trial`.
    files
        Optional mapping of file name to SHA-256 of the written files.

    Returns
    -------
    dict
        JSON-serialisable record of the design, the true parameters and realised summaries.
    """
    p = trial.params
    d = trial.design
    re = trial.random_effects
    per_patient = trial.data.groupby("patient", observed=True).size()
    hospital_effects = re.drop_duplicates("hospital")["hospital_intercept"]
    record: dict[str, Any] = {
        "generator": "lmm_core/simulation/trial.py (simulate_trial)",
        "numpy_version": np.__version__,
        "seed": d["seed"],
        "rng": "numpy.random.default_rng (PCG64)",
        "design": {
            "n_hospitals": d["n_hospitals"],
            "patients_per_hospital": d["patients_per_hospital"],
            "n_patients": d["n_patients"],
            "scheduled_visits": p.scheduled_visits,
            "visit_interval_months": p.visit_interval_months,
            "p_complete": p.p_complete,
            "p_miss_post_baseline": p.p_miss_post_baseline,
            "time_jitter_months": p.time_jitter_months,
            "randomisation": "1:1 permuted block within hospital",
        },
        "true_parameters": {
            "beta": p.beta_named,
            **{
                f.name: getattr(p, f.name)
                for f in dataclasses.fields(p)
                if f.name.startswith(("sd_", "corr_", "sigma"))
            },
        },
        "true_model_formula": FORMULA,
        "realised": {
            "n_rows": int(len(trial.data)),
            "mean_visits_per_patient": float(per_patient.mean()),
            "planned_visits_mean": d["planned_visits_mean"],
            "y_sum": round(float(trial.data["y"].sum()), 4),
            "patient_ranef_sd": [float(re["u_intercept"].std()), float(re["u_slope"].std())],
            "patient_ranef_corr": float(np.corrcoef(re["u_intercept"], re["u_slope"])[0, 1]),
            "hospital_ranef_sd": float(hospital_effects.std()),
        },
    }
    if files:
        record["files"] = dict(files)
    return record


def trial_csv(data: pd.DataFrame) -> str:
    """Write trial rows as CSV text in the fixed layout of the shipped example files.

    ``time`` is written with 3 decimals and ``y`` with 4, with ``\\n`` line ends, so the same
    seed always gives byte-identical text (``data/make_trials.py`` and its test rely on it).

    Parameters
    ----------
    data
        ``SimulatedTrial.data``.

    Returns
    -------
    str
        CSV text with a header row.
    """
    out = data.copy()
    out["time"] = np.char.mod("%.3f", out["time"].to_numpy())
    out["y"] = np.char.mod("%.4f", out["y"].to_numpy())
    return out.to_csv(index=False, lineterminator="\n")
