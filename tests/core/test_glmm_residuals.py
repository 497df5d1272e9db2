"""GLMM diagnostics (lmm_core.predict.glmm_residuals): binned residuals by hand, randomized
quantile residuals that are standard normal when the model is true (and bracket the
discrete quantile), Pearson overdispersion near 1 for Poisson data and far above for
negative-binomial data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from lmm_core.predict.glmm_residuals import (
    binned_residuals,
    overdispersion,
    quantile_residuals,
    variance_function,
)


def test_binned_residuals_by_hand():
    y = np.array([0, 1, 0, 1, 1, 1])
    mu = np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.8])
    table = binned_residuals(y, mu, n_bins=2)
    assert table["n"].tolist() == [3, 3]
    np.testing.assert_allclose(table["fitted"], [0.2, 0.7])
    np.testing.assert_allclose(table["residual"], [(1 - 0.6) / 3, (3 - 2.1) / 3])
    se0 = np.sqrt(0.1 * 0.9 + 0.2 * 0.8 + 0.3 * 0.7) / 3
    assert table["se"].iloc[0] == pytest.approx(se0)
    assert table["outside"].tolist() == [False, False]


def test_binned_residuals_default_bins_and_proportions():
    rng = np.random.default_rng(4)
    mu = rng.uniform(0.05, 0.95, 400)
    trials = rng.integers(1, 8, 400)
    y = rng.binomial(trials, mu)
    table = binned_residuals(y, mu, trials=trials)
    assert len(table) == 20 and table["n"].sum() == 400
    assert table["outside"].mean() <= 0.15  # about 5% expected when the model is true
    wrong = binned_residuals(y, np.clip(mu + 0.15, 0, 0.99), trials=trials)
    assert wrong["outside"].mean() > 0.5


@pytest.mark.parametrize("family", ["binomial", "poisson"])
def test_quantile_residuals_are_standard_normal_under_the_model(family):
    rng = np.random.default_rng(11)
    n = 4000
    if family == "binomial":
        mu = rng.uniform(0.02, 0.98, n)
        y = rng.binomial(1, mu)
        dist = stats.binom(1, mu)
    else:
        mu = rng.gamma(2.0, 1.5, n)
        y = rng.poisson(mu)
        dist = stats.poisson(mu)
    r = quantile_residuals(y, mu, family, seed=3)
    assert stats.kstest(r, "norm").pvalue > 0.01
    u = stats.norm.cdf(r)
    assert np.all(u >= dist.cdf(y - 1) - 1e-12) and np.all(u <= dist.cdf(y) + 1e-12)
    np.testing.assert_array_equal(r, quantile_residuals(y, mu, family, seed=3))
    wrong = quantile_residuals(y, mu * 0.7, family, seed=3)
    assert stats.kstest(wrong, "norm").pvalue < 1e-6


def test_overdispersion_poisson_vs_negative_binomial():
    rng = np.random.default_rng(2)
    mu = rng.gamma(3.0, 2.0, 3000)
    fine = overdispersion(rng.poisson(mu), mu, n_parameters=4)
    assert fine.df == 2996 and 0.9 < fine.ratio < 1.1 and fine.p_value > 0.001
    size = 2.0  # NB variance mu + mu^2 / size
    y = rng.negative_binomial(size, size / (size + mu))
    over = overdispersion(y, mu, n_parameters=4)
    expected = np.mean(1 + mu / size)  # E[(y - mu)^2 / mu] under the NB
    assert over.ratio == pytest.approx(expected, rel=0.1) and over.p_value < 1e-10
    with pytest.raises(ValueError, match="no residual degrees"):
        overdispersion(y[:3], mu[:3], n_parameters=4)


def test_variance_function_and_bad_family():
    np.testing.assert_allclose(variance_function("binomial", [0.5], [4]), [1.0])
    np.testing.assert_allclose(variance_function("poisson", [2.5]), [2.5])
    with pytest.raises(ValueError, match="family must be one of"):
        variance_function("gamma", [1.0])
