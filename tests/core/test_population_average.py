"""Population-averaged GLMM means (lmm_core.predict.population_average) against closed forms
(probit, log) and adaptive numerical integration (logit, scipy.integrate.quad)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, special, stats

from lmm_core.predict.population_average import population_average, random_variance

ETA = np.linspace(-4.0, 3.0, 15)


@pytest.mark.parametrize("s2", [0.0, 0.3, 2.0, 6.0, 100.0])
def test_probit_has_a_closed_form(s2):
    got = population_average(ETA, np.full(ETA.shape, s2), stats.norm.cdf)
    np.testing.assert_allclose(got, stats.norm.cdf(ETA / np.sqrt(1.0 + s2)), rtol=1e-9, atol=0)


@pytest.mark.parametrize("s2", [0.0, 0.5, 2.0])
def test_log_link_has_a_closed_form(s2):
    got = population_average(ETA, np.full(ETA.shape, s2), np.exp)
    np.testing.assert_allclose(got, np.exp(ETA + s2 / 2.0), rtol=1e-12)


def test_logit_matches_numerical_integration_and_is_flatter():
    s2 = np.linspace(0.0, 100.0, ETA.size)
    got = population_average(ETA, s2, special.expit)
    for e, v, g in zip(ETA, s2, got, strict=True):
        exact, _ = integrate.quad(
            lambda u, e=e, v=v: special.expit(e + np.sqrt(v) * u) * stats.norm.pdf(u),
            -np.inf,
            np.inf,
            epsabs=1e-13,
        )
        assert g == pytest.approx(exact, rel=1e-8, abs=1e-12)
    # attenuation: between the typical subject's probability and one half
    mid = np.abs(got - 0.5) <= np.abs(special.expit(ETA) - 0.5) + 1e-12
    assert mid.all()


def test_random_variance_adds_independent_terms():
    rng = np.random.default_rng(1)
    z1, z2 = np.c_[np.ones(5), np.arange(5.0)], np.ones((5, 1))
    a = rng.normal(size=(2, 2))
    g1, g2 = a @ a.T, np.array([[0.7]])
    got = random_variance([z1, z2], [g1, g2])
    want = [z1[i] @ g1 @ z1[i] + 0.7 for i in range(5)]
    np.testing.assert_allclose(got, want, rtol=1e-13)
    with pytest.raises(ValueError, match="one covariance"):
        random_variance([z1], [g1, g2])
