"""The binary teaching lab: seeded simulation, truth recovered, the averaged curve and the
attenuation computed by integration."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lmm_core import DataError, ModelError
from lmm_core.simulation.teaching_binary import (
    ATTENUATION_C2,
    BinaryTruth,
    approximate_marginal,
    expit,
    fit_binary,
    logistic_regression,
    marginal_target,
    simulate_binary,
    true_curves,
)


def test_same_seed_same_study_and_different_seed_different():
    truth = BinaryTruth(n_subjects=30, n_visits=4)
    a, b = simulate_binary(truth, 5), simulate_binary(truth, 5)
    pd.testing.assert_frame_equal(a.data, b.data)
    assert not a.data["y"].equals(simulate_binary(truth, 6).data["y"])
    assert len(a.data) == 120 and set(a.data["y"]) <= {0, 1}
    assert a.data.groupby("subject")["treated"].nunique().eq(1).all()  # between subjects
    assert a.data["treated"].sum() == 15 * 4


@pytest.mark.parametrize("effect", ["treatment", "time"])
def test_large_study_recovers_the_truth(effect):
    """GLMM within 4 SE of the conditional truth; logistic regression within 4 cluster-robust
    SE of its large-study target (the averaged effect), and far from the conditional one."""
    odds = 3.0 if effect == "treatment" else 1.4
    truth = BinaryTruth(baseline=0.3, odds_ratio=odds, sd=2.0, n_subjects=3000, n_visits=5,
                        effect=effect)  # fmt: skip
    study = simulate_binary(truth, 11)
    fits = fit_binary(study)
    g = fits.glmm
    assert abs(g.beta[0] - truth.beta0) < 4 * g.std_errors[0]
    assert abs(g.beta[1] - truth.beta1) < 4 * g.std_errors[1]
    sd = math.sqrt(g.covariance_matrices()[0][0, 0])
    assert abs(sd - truth.sd) / truth.sd < 0.1
    # cluster-robust (sandwich by subject) SE of the logistic regression
    d = study.data
    x = np.column_stack([np.ones(len(d)), d[truth.column].to_numpy(float)])
    mu = expit(x @ fits.glm.beta)
    bread = np.linalg.inv(x.T @ (x * (mu * (1 - mu))[:, None]))
    scores = pd.DataFrame(x * (d["y"].to_numpy() - mu)[:, None]).groupby(d["subject"]).sum()
    robust = np.sqrt(np.diag(bread @ (scores.T @ scores).to_numpy() @ bread))
    a, c = marginal_target(truth)
    assert abs(fits.glm.beta[1] - c) < 4 * robust[1]
    assert abs(fits.glm.beta[0] - a) < 4 * robust[0]
    assert abs(fits.glm.beta[1] - truth.beta1) > 4 * robust[1]  # it does not estimate beta1


def test_averaged_curve_is_the_mean_of_the_subjects_probabilities():
    truth = BinaryTruth(baseline=0.2, odds_ratio=4.0, sd=2.5, n_subjects=20_000, n_visits=2)
    d = simulate_binary(truth, 3).data
    expected = true_curves(truth, np.array([0.0, 1.0]))["averaged"].to_numpy()
    for arm in (0, 1):
        p = d.loc[d["treated"] == arm, "p"].to_numpy()
        se = p.std() / math.sqrt(p.size / 2)  # two visits per subject share b
        assert abs(p.mean() - expected[arm]) < 4 * se
    typical = true_curves(truth, np.array([0.0]))["typical"].iloc[0]
    assert math.isclose(typical, 0.2)


def test_marginal_target_of_a_treatment_is_the_difference_of_averaged_logits():
    truth = BinaryTruth(odds_ratio=3.0, sd=2.0)
    mu = true_curves(truth, np.array([0.0, 1.0]))["averaged"].to_numpy()
    logit = np.log(mu / (1 - mu))
    a, c = marginal_target(truth)
    assert math.isclose(a, logit[0], rel_tol=1e-9)
    assert math.isclose(c, logit[1] - logit[0], rel_tol=1e-9)
    assert abs(c) < truth.beta1  # attenuated
    assert math.isclose(marginal_target(truth, sd=0.0)[1], truth.beta1, rel_tol=1e-9)


def test_approximation_is_close_to_the_exact_attenuation():
    assert math.isclose(ATTENUATION_C2, 0.3460, rel_tol=1e-3)
    for sd, tol in ((0.5, 0.02), (1.0, 0.04), (2.0, 0.1)):  # an approximation: within 2-10%
        truth = BinaryTruth(baseline=0.5, odds_ratio=2.0, sd=sd)
        exact = marginal_target(truth)[1]
        assert abs(approximate_marginal(truth.beta1, sd) - exact) / exact < tol


def test_logistic_regression_matches_a_direct_likelihood_maximum():
    rng = np.random.default_rng(0)
    x = rng.normal(size=400)
    y = (rng.random(400) < expit(-0.5 + 1.2 * x)).astype(float)
    fit = logistic_regression(x, y)
    from scipy.optimize import minimize

    def nll(b):
        eta = b[0] + b[1] * x
        return np.sum(np.logaddexp(0, eta) - y * eta)

    ref = minimize(nll, [0.0, 0.0], method="BFGS", options={"gtol": 1e-10})
    np.testing.assert_allclose(fit.beta, ref.x, rtol=1e-6)
    with pytest.raises(ModelError, match="both outcomes"):
        logistic_regression(x, np.zeros(400))


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"n_subjects": 2}, "from 10"),
        ({"n_visits": 1}, "from 2"),
        ({"baseline": 1.0}, "between 0 and 1"),
        ({"odds_ratio": 0.0}, "positive"),
        ({"sd": -1.0}, "SD"),
        ({"effect": "dose"}, "treatment"),
    ],
)
def test_bad_truth_is_a_clear_message(kw, match):
    with pytest.raises(DataError, match=match):
        BinaryTruth(**kw)
