"""Imported once by the job fork server (:data:`dashboard.state.isolation.PRELOAD`) and by
nothing else: one small fit, so that every job's child process starts with the engine's
first-call costs (lazy imports, first LAPACK calls, pandas' first group-bys, loading the
compiled loops of :mod:`lmm_core.model.kernels`: one term, and nested terms) already paid.
It halves the time of a small fit in a child (0.2 s to 0.1 s for sleepstudy here)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dashboard.state import work
from lmm_core.model.kernels import warm_up

warm_up()  # every compiled loop (crossed and small models too), from the cache

_rng = np.random.default_rng(0)
_DATA = pd.DataFrame(
    {
        "y": _rng.normal(size=240),
        "t": np.tile(np.arange(3.0), 80),
        "g": np.repeat(np.arange(80), 3),
        "h": np.repeat(np.arange(8), 30),
    }
)
for _formula in ("y ~ t + (t | g)", "y ~ t + (t | g) + (1 | h)"):
    work.fit(_formula, _DATA, True, "gaussian", None, 1, lambda *args: None)
