"""Laplace vs quadrature: the ladder of refits and the verdict, on a case where Laplace is poor
(binary, 3 visits, SD 3) and one where it is fine (SD 0.5, 15 visits); the refusal for a
random slope."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dashboard.analysis import quadrature as qd
from dashboard.analysis.teach_binary import attenuation_curve, binary_curves, recovery_table
from lmm_core import LMMError, fit_glmm
from lmm_core.simulation.teaching_binary import BinaryTruth, fit_binary, simulate_binary


def _ladder(truth, seed):
    fits = fit_binary(simulate_binary(truth, seed))
    return fits, qd.quadrature_ladder(fits.glmm)


def test_poor_laplace_with_few_visits_and_a_large_sd():
    fits, ladder = _ladder(BinaryTruth(sd=3.0, n_visits=3, n_subjects=500), 4)
    assert list(ladder.table["nagq"]) == list(qd.NAGQ_STEPS)
    first = ladder.table.iloc[0]
    assert math.isclose(first["loglik"], fits.glmm.loglik)  # nagq = 1 is the fit itself
    assert np.allclose(ladder.estimates().iloc[0], fits.glmm.beta)
    v = qd.verdict(ladder)
    assert v.level == "poor" and v.settled
    assert v.sd_change < -qd.SD_POOR  # Laplace underestimates the SD
    assert v.loglik_change < -qd.LL_GOOD  # and the log-likelihood
    assert "cannot be trusted" in v.headline


def test_fine_laplace_with_many_visits_and_a_small_sd():
    _, ladder = _ladder(BinaryTruth(sd=0.5, n_visits=15, n_subjects=200), 4)
    v = qd.verdict(ladder)
    assert v.level == "good", v.text
    assert v.shift_se < qd.SHIFT_GOOD and abs(v.sd_change) < qd.SD_GOOD
    shown = qd.display_table(ladder)
    assert list(shown.columns[:3]) == ["nagq", "(Intercept)", "SE (Intercept)"]


def test_levels_from_the_numbers():
    assert qd._level(0.6, 0.0, 0.0) == "poor"
    assert qd._level(0.0, -0.15, 0.0) == "poor"
    assert qd._level(0.2, 0.0, 0.0) == "caution"
    assert qd._level(0.0, 0.0, -3.0) == "loglik"
    assert qd._level(0.01, 0.01, -0.1) == "good"


def test_random_slope_is_refused_with_a_reason():
    d = simulate_binary(BinaryTruth(effect="time", n_subjects=60, n_visits=5), 1).data
    res = fit_glmm("y ~ visit + (visit | subject)", d, family="binomial")
    reason = qd.quadrature_refusal(res)
    assert reason is not None and "(1 + visit | subject)" in reason
    with pytest.raises(LMMError, match="single random intercept"):
        qd.quadrature_ladder(res)


def test_teach_binary_tables_and_curves():
    truth = BinaryTruth(n_subjects=80, n_visits=4, effect="time", odds_ratio=1.5)
    study = simulate_binary(truth, 2)
    fits = fit_binary(study)
    table = recovery_table(fits, truth)
    assert math.isclose(table["truth"].iloc[2], 1.5)
    assert table["glmm_lower"].iloc[1] < table["glmm"].iloc[1] < table["glmm_upper"].iloc[1]
    curves = binary_curves(study, fits, n_shown=10)
    assert curves.subjects["subject"].nunique() == 10
    assert np.allclose(curves.observed["share"], study.data.groupby("visit")["y"].mean())
    att = attenuation_curve(truth)
    assert att["marginal"].is_monotonic_decreasing and att["sd"].iloc[0] == 0
