"""Regenerate the randomized-trial example ``trial_visits`` (an MMRM example) in ``data/``.

Run from the repository root::

    python data/make_trial_visits.py

It writes ``trial_visits.csv`` and ``trial_visits_truth.json`` (design, true parameters,
realised summaries and the SHA-256 of the CSV). numpy only, seeded: the same numpy version
gives the same bytes.

The model. Patient ``i`` (300, randomised 1:1 to control or treatment in permuted blocks of
four) has a baseline score ``b_i`` and sex ``s_i``, and is scheduled at visits
``j = 1..6`` (weeks 2, 4, 8, 12, 16, 24). Its scores at the six visits are

.. math::

    y_{ij} = \\mu_j + \\delta_j \\mathrm{trt}_i + \\gamma (b_i - 25)
             + \\eta \\mathrm{male}_i + e_{ij}, \\qquad e_i \\sim N(0, \\Sigma),

with a control-arm mean ``mu_j`` (improving slowly), a treatment effect ``delta_j`` that grows
over the visits, and ``Sigma = D R D``: standard deviations ``D`` growing over the visits and
correlations ``R_jk = c + (1 - c) rho^|j - k|`` (exchangeable plus AR(1): decaying with the
distance between visits, never below ``c``). Neither ``cs`` nor ``ar1`` is exact; ``toeph`` and
``us`` are.

Missing data. Visit 1 is always seen. After each visit ``j < 6`` a patient drops out for good
with probability ``logit^-1(logit(h_arm) + kappa (y_ij - mu_j))`` (more in the control arm;
patients doing worse leave more often: missing at random given the observed scores). Before
drop-out, each later visit is missed on its own with probability ``p_miss``. Only the visits
seen are written (one row per patient and visit).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SEED = 20240314
N_PATIENTS = 300
WEEKS = (2, 4, 8, 12, 16, 24)
ARMS = ("control", "treatment")
MU_CONTROL = (24.0, 23.0, 22.2, 21.6, 21.2, 21.0)  # control-arm mean score per visit
DELTA = (-0.5, -1.0, -1.8, -2.5, -3.0, -3.5)  # treatment - control per visit
GAMMA_BASELINE = 0.6  # per point of baseline score above 25
ETA_MALE = 0.8
SDS = (4.0, 4.4, 4.8, 5.2, 5.6, 6.0)
CORR_FLOOR = 0.35  # c
CORR_RHO = 0.75  # rho
DROPOUT_HAZARD = {"control": 0.07, "treatment": 0.035}  # per visit, at the arm's mean
DROPOUT_KAPPA = 0.08  # log-odds per point of score above the control mean
P_MISS = 0.04
BASELINE_MEAN, BASELINE_SD = 25.0, 4.0


def correlation() -> np.ndarray:
    """``R_jk = c + (1 - c) rho^|j - k|`` over the visits."""
    lag = np.abs(np.subtract.outer(np.arange(len(WEEKS)), np.arange(len(WEEKS))))
    return CORR_FLOOR + (1.0 - CORR_FLOOR) * CORR_RHO**lag


def covariance() -> np.ndarray:
    """``Sigma = D R D``."""
    sd = np.asarray(SDS)
    return correlation() * np.outer(sd, sd)


def _arms(rng: np.random.Generator) -> np.ndarray:
    """1:1 in permuted blocks of four (0 = control, 1 = treatment)."""
    blocks = [rng.permutation([0, 0, 1, 1]) for _ in range(N_PATIENTS // 4)]
    return np.concatenate(blocks)


def _seen(rng: np.random.Generator, y: np.ndarray, arm: np.ndarray) -> np.ndarray:
    """Boolean (patients x visits): monotone drop-out, then intermittent missed visits."""
    n, m = y.shape
    base = np.array([DROPOUT_HAZARD[ARMS[a]] for a in arm])
    logit = np.log(base / (1.0 - base))
    staying = np.ones(n, dtype=bool)
    seen = np.zeros((n, m), dtype=bool)
    seen[:, 0] = True
    for j in range(m - 1):
        p_leave = 1.0 / (1.0 + np.exp(-(logit + DROPOUT_KAPPA * (y[:, j] - MU_CONTROL[j]))))
        staying &= rng.random(n) >= p_leave
        seen[:, j + 1] = staying
    missed = rng.random((n, m)) < P_MISS
    missed[:, 0] = False
    return seen & ~missed


def simulate(seed: int = SEED) -> tuple[list[dict], dict]:
    """The rows seen (dicts in patient, visit order) and the realised summaries."""
    rng = np.random.default_rng(seed)
    arm = _arms(rng)
    male = rng.random(N_PATIENTS) < 0.5
    baseline = rng.normal(BASELINE_MEAN, BASELINE_SD, N_PATIENTS)
    mean = (
        np.asarray(MU_CONTROL)[None, :]
        + np.outer(arm, DELTA)
        + GAMMA_BASELINE * (baseline - BASELINE_MEAN)[:, None]
        + ETA_MALE * male[:, None]
    )
    y = mean + rng.multivariate_normal(np.zeros(len(WEEKS)), covariance(), N_PATIENTS)
    seen = _seen(rng, y, arm)
    rows = []
    for i in range(N_PATIENTS):
        for j in np.flatnonzero(seen[i]):
            rows.append(
                {
                    "patient": f"P{i + 1:03d}",
                    "arm": ARMS[arm[i]],
                    "sex": "M" if male[i] else "F",
                    "baseline": f"{baseline[i]:.1f}",
                    "visit": str(j + 1),
                    "VISIT": f"W{WEEKS[j]:02d}",
                    "week": str(WEEKS[j]),
                    "score": f"{y[i, j]:.2f}",
                }
            )
    last = np.array([np.flatnonzero(s).max() for s in seen])
    realised = {
        "n_rows": len(rows),
        "patients_per_arm": {a: int(np.sum(arm == k)) for k, a in enumerate(ARMS)},
        "completers_per_arm": {
            a: int(np.sum((arm == k) & (last == len(WEEKS) - 1))) for k, a in enumerate(ARMS)
        },
        "seen_per_visit_and_arm": {
            a: [int(v) for v in seen[arm == k].sum(axis=0)] for k, a in enumerate(ARMS)
        },
        "intermittent_missed": int(np.sum(~seen & (np.arange(len(WEEKS)) < last[:, None]))),
    }
    return rows, realised


def csv_text(rows: list[dict]) -> str:
    """The rows as CSV text (header first, ``\\n`` line ends)."""
    header = list(rows[0])
    lines = [",".join(header)] + [",".join(r[c] for c in header) for r in rows]
    return "\n".join(lines) + "\n"


def truth(realised: dict, digest: str) -> dict:
    """The truth record written beside the CSV."""
    return {
        "generator": "data/make_trial_visits.py",
        "numpy_version": np.__version__,
        "seed": SEED,
        "rng": "numpy.random.default_rng (PCG64)",
        "design": {
            "n_patients": N_PATIENTS,
            "arms": list(ARMS),
            "randomisation": "1:1 permuted blocks of four",
            "visits": list(range(1, len(WEEKS) + 1)),
            "weeks": list(WEEKS),
            "baseline_score": {"mean": BASELINE_MEAN, "sd": BASELINE_SD},
            "p_male": 0.5,
            "dropout_hazard_per_visit": DROPOUT_HAZARD,
            "dropout_log_odds_per_point_above_control_mean": DROPOUT_KAPPA,
            "p_missed_visit": P_MISS,
        },
        "true_parameters": {
            "control_mean_per_visit": list(MU_CONTROL),
            "treatment_effect_per_visit": list(DELTA),
            "baseline_slope": GAMMA_BASELINE,
            "male_effect": ETA_MALE,
            "note": "means at baseline score 25 and sex F",
            "sd_per_visit": list(SDS),
            "correlation": "c + (1 - c) rho^|j - k|",
            "correlation_floor_c": CORR_FLOOR,
            "correlation_rho": CORR_RHO,
            "covariance": np.round(covariance(), 6).tolist(),
        },
        "true_model_formula": "score ~ baseline + sex + arm * visit + toeph(visit | patient)",
        "realised": realised,
        "files": {"trial_visits.csv": digest},
    }


def main(out_dir: Path = ROOT / "data") -> None:
    """Simulate and write ``trial_visits.csv`` and ``trial_visits_truth.json``."""
    rows, realised = simulate()
    text = csv_text(rows).encode("utf-8")
    (out_dir / "trial_visits.csv").write_bytes(text)
    digest = hashlib.sha256(text).hexdigest()
    record = truth(realised, digest)
    (out_dir / "trial_visits_truth.json").write_text(json.dumps(record, indent=1) + "\n")
    print(f"trial_visits: {len(rows)} rows, sha256 {digest[:12]}")


if __name__ == "__main__":
    main()
