"""Regenerate the two GLMM examples in ``data/``: a binary outcome and counts with exposure.

Run from the repository root::

    python data/make_glmm_examples.py

It writes ``infections.csv`` / ``infections_truth.json`` and ``seizures.csv`` /
``seizures_truth.json`` (design, true parameters, realised summaries and the SHA-256 of each
CSV). numpy only, seeded: the same numpy version gives the same bytes.

``infections`` (binary). Patient ``i`` (240, randomised 1:1 to placebo or vaccine, age ``a_i``)
is seen weekly, ``week = 0..7``; whether an infection is present at the visit is Bernoulli with

.. math::

    \\mathrm{logit}\\, P(y_{ij} = 1 \\mid b_i) = \\beta_0 + \\beta_1 w_j + \\beta_2 v_i
        + \\beta_3 w_j v_i + \\beta_4 (a_i - 50)/10 + b_{0i} + b_{1i} w_j,
    \\qquad b_i \\sim N(0, G),

(``v_i`` = vaccine). The patient-specific intercept SD is large (1.6 on the logit scale), so
the population-averaged curve is clearly flatter than the curve of the typical patient.
Patients leave for good after a visit with probability ``DROPOUT`` (completely at random).

``seizures`` (counts). Patient ``i`` (160, placebo or drug) reports the seizures of six periods
whose lengths ``x_ij`` (days, the exposure) vary; the count is Poisson with

.. math::

    \\log E(y_{ij} \\mid b_i) = \\log x_{ij} + \\gamma_0 + \\gamma_1 p_j + \\gamma_2 t_i
        + \\gamma_3 p_j t_i + b_{0i} + b_{1i} p_j,

``p_j = 0..5`` the period and ``t_i`` = drug; the rate is per day.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SEED = 20241205

# infections (binary)
N_INFECTION = 240
WEEKS = tuple(range(8))
ARMS_INF = ("placebo", "vaccine")
BETA_INF = {"(Intercept)": -1.0, "week": 0.15, "vaccine": -0.3, "week:vaccine": -0.25, "age10": 0.3}
SD_INF = (1.6, 0.2)  # intercept (logit), slope per week
CORR_INF = -0.2
DROPOUT = 0.04  # per visit, completely at random

# seizures (counts)
N_SEIZURE = 160
PERIODS = tuple(range(6))
ARMS_SEI = ("placebo", "drug")
GAMMA_SEI = {"(Intercept)": np.log(0.25), "period": 0.02, "drug": -0.1, "period:drug": -0.08}
SD_SEI = (0.7, 0.08)
CORR_SEI = 0.3
DAYS = (10, 21)  # period length: uniform whole days in this range


def _g(sd: tuple[float, float], corr: float) -> np.ndarray:
    """2x2 covariance of (intercept, slope)."""
    return np.array([[sd[0] ** 2, corr * sd[0] * sd[1]], [corr * sd[0] * sd[1], sd[1] ** 2]])


def _arms(rng: np.random.Generator, n: int) -> np.ndarray:
    """1:1 in permuted blocks of four (0 = reference arm)."""
    return np.concatenate([rng.permutation([0, 0, 1, 1]) for _ in range(n // 4)])


def simulate_infections(rng: np.random.Generator) -> tuple[list[dict], dict]:
    """Rows (dicts, patient then week order) and realised summaries."""
    arm = _arms(rng, N_INFECTION)
    age = np.round(rng.uniform(25, 80, N_INFECTION)).astype(int)
    b = rng.multivariate_normal(np.zeros(2), _g(SD_INF, CORR_INF), N_INFECTION)
    w = np.asarray(WEEKS, float)
    beta = BETA_INF
    eta = (
        beta["(Intercept)"]
        + beta["week"] * w[None, :]
        + (beta["vaccine"] + beta["week:vaccine"] * w[None, :]) * arm[:, None]
        + beta["age10"] * (age[:, None] - 50) / 10
        + b[:, :1]
        + b[:, 1:] * w[None, :]
    )
    y = rng.random(eta.shape) < 1.0 / (1.0 + np.exp(-eta))
    leaves = rng.random(eta.shape) < DROPOUT  # before the visit
    leaves[:, 0] = False
    seen = np.cumprod(~leaves, axis=1).astype(bool)
    rows = [
        {
            "patient": f"V{i + 1:03d}",
            "arm": ARMS_INF[arm[i]],
            "age": str(age[i]),
            "week": str(WEEKS[j]),
            "infection": str(int(y[i, j])),
        }
        for i in range(N_INFECTION)
        for j in np.flatnonzero(seen[i])
    ]
    realised = {
        "n_rows": len(rows),
        "patients_per_arm": {a: int(np.sum(arm == k)) for k, a in enumerate(ARMS_INF)},
        "share_infected_per_week_and_arm": {
            a: [round(float(v), 4) for v in np.nanmean(np.where(seen, y, np.nan)[arm == k], 0)]
            for k, a in enumerate(ARMS_INF)
        },
    }
    return rows, realised


def simulate_seizures(rng: np.random.Generator) -> tuple[list[dict], dict]:
    """Rows (dicts, patient then period order) and realised summaries."""
    arm = _arms(rng, N_SEIZURE)
    b = rng.multivariate_normal(np.zeros(2), _g(SD_SEI, CORR_SEI), N_SEIZURE)
    p = np.asarray(PERIODS, float)
    days = rng.integers(DAYS[0], DAYS[1] + 1, (N_SEIZURE, len(PERIODS)))
    g = GAMMA_SEI
    log_rate = (
        g["(Intercept)"]
        + g["period"] * p[None, :]
        + (g["drug"] + g["period:drug"] * p[None, :]) * arm[:, None]
        + b[:, :1]
        + b[:, 1:] * p[None, :]
    )
    y = rng.poisson(days * np.exp(log_rate))
    rows = [
        {
            "patient": f"E{i + 1:03d}",
            "arm": ARMS_SEI[arm[i]],
            "period": str(PERIODS[j]),
            "exposure": str(days[i, j]),
            "seizures": str(y[i, j]),
        }
        for i in range(N_SEIZURE)
        for j in range(len(PERIODS))
    ]
    realised = {
        "n_rows": len(rows),
        "patients_per_arm": {a: int(np.sum(arm == k)) for k, a in enumerate(ARMS_SEI)},
        "mean_count": round(float(y.mean()), 4),
        "share_zero": round(float(np.mean(y == 0)), 4),
    }
    return rows, realised


def csv_text(rows: list[dict]) -> str:
    """The rows as CSV text (header first, ``\\n`` line ends)."""
    header = list(rows[0])
    lines = [",".join(header)] + [",".join(r[c] for c in header) for r in rows]
    return "\n".join(lines) + "\n"


def _truths() -> dict[str, dict]:
    """The true model of each example (without the realised part)."""
    return {
        "infections": {
            "family": "binomial",
            "link": "logit",
            "true_model_formula": "infection ~ week * arm + I((age - 50) / 10) + (week | patient)",
            "fixed_effects": BETA_INF,
            "note": "vaccine = arm vaccine vs placebo; age10 = (age - 50) / 10",
            "random_effects": {
                "sd": list(SD_INF),
                "corr": CORR_INF,
                "terms": ["(Intercept)", "week"],
            },
            "dropout_per_visit": DROPOUT,
            "design": {"n_patients": N_INFECTION, "weeks": list(WEEKS), "arms": list(ARMS_INF)},
        },
        "seizures": {
            "family": "poisson",
            "link": "log",
            "true_model_formula": (
                "seizures ~ period * arm + offset(log(exposure)) + (period | patient)"
            ),
            "fixed_effects": {k: float(v) for k, v in GAMMA_SEI.items()},
            "note": "rates per day; drug = arm drug vs placebo",
            "random_effects": {
                "sd": list(SD_SEI),
                "corr": CORR_SEI,
                "terms": ["(Intercept)", "period"],
            },
            "design": {
                "n_patients": N_SEIZURE,
                "periods": list(PERIODS),
                "days_per_period": list(DAYS),
                "arms": list(ARMS_SEI),
            },
        },
    }


def main(out_dir: Path = ROOT / "data") -> None:
    """Simulate and write both examples and their truth records."""
    rng = np.random.default_rng(SEED)
    made = {"infections": simulate_infections(rng), "seizures": simulate_seizures(rng)}
    for name, (rows, realised) in made.items():
        text = csv_text(rows).encode("utf-8")
        (out_dir / f"{name}.csv").write_bytes(text)
        digest = hashlib.sha256(text).hexdigest()
        record = {
            "generator": "data/make_glmm_examples.py",
            "numpy_version": np.__version__,
            "seed": SEED,
            "rng": "numpy.random.default_rng (PCG64), infections first",
            **_truths()[name],
            "realised": realised,
            "files": {f"{name}.csv": digest},
        }
        (out_dir / f"{name}_truth.json").write_text(json.dumps(record, indent=1) + "\n")
        print(f"{name}: {len(rows)} rows, sha256 {digest[:12]}")


if __name__ == "__main__":
    main()
