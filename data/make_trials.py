"""Regenerate the simulated trial examples in ``data/`` from ``lmm_core.simulation.trial``.

Run from the repository root::

    python data/make_trials.py

It writes ``trial_small.csv`` and ``trial_large.csv`` with their ``*_truth.json`` records
(design, true parameters, realised summaries and the SHA-256 of each CSV). A test re-runs the
simulator with the recorded seeds and checks the shipped files are byte-identical.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lmm_core.simulation.trial import simulate_trial, trial_csv, truth_record  # noqa: E402

#: name -> (n_hospitals, patients_per_hospital, seed)
TRIALS: dict[str, tuple[int, int, int]] = {
    "trial_small": (20, 25, 20240101),
    "trial_large": (100, 125, 20240202),
}


def main(out_dir: Path = ROOT / "data") -> None:
    """Simulate every trial of ``TRIALS`` and write CSV + truth JSON into ``out_dir``."""
    for name, (n_hospitals, per_hospital, seed) in TRIALS.items():
        trial = simulate_trial(
            n_hospitals=n_hospitals, patients_per_hospital=per_hospital, seed=seed
        )
        text = trial_csv(trial.data).encode("utf-8")
        (out_dir / f"{name}.csv").write_bytes(text)
        digest = hashlib.sha256(text).hexdigest()
        record = truth_record(trial, files={f"{name}.csv": digest})
        (out_dir / f"{name}_truth.json").write_text(json.dumps(record, indent=1) + "\n")
        print(f"{name}: {len(trial.data)} rows, sha256 {digest[:12]}")


if __name__ == "__main__":
    main()
