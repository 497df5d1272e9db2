"""Parametric bootstrap (lmm_core.inference.bootstrap): reproducible, sensible, robust."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from scipy.stats import norm

import lmm_core.inference.bootstrap as bootstrap_module
from lmm_core import fit_lmm
from lmm_core.inference.bootstrap import parametric_bootstrap
from tests.conftest import load_reference_dataset


@cache
def _fit():
    return fit_lmm("Reaction ~ Days + (Days | Subject)", load_reference_dataset("sleepstudy"))


@cache
def _boot(n_boot: int = 200, seed: int = 11):
    return parametric_bootstrap(_fit(), n_boot, seed=seed)


def test_seeded_runs_are_reproducible_and_prefix_stable():
    a = parametric_bootstrap(_fit(), 20, seed=5)
    b = parametric_bootstrap(_fit(), 20, seed=5)
    c = parametric_bootstrap(_fit(), 30, seed=5)
    d = parametric_bootstrap(_fit(), 20, seed=6)
    np.testing.assert_array_equal(a.samples.to_numpy(), b.samples.to_numpy())
    np.testing.assert_array_equal(a.samples.to_numpy(), c.samples.to_numpy()[:20])
    assert not np.allclose(a.samples.to_numpy(), d.samples.to_numpy())
    assert a.seed == 5 and a.n_boot == 20


def test_progress_callback_sees_every_replicate():
    calls = []
    parametric_bootstrap(_fit(), 7, seed=1, progress=lambda i, n: calls.append((i, n)))
    assert calls == [(i, 7) for i in range(1, 8)]


def test_estimates_and_columns_follow_lme4_names():
    res, boot = _fit(), _boot()
    assert list(boot.samples.columns) == list(boot.estimates.index)
    assert boot.estimates["sigma"] == pytest.approx(res.sigma)
    np.testing.assert_allclose(boot.estimates[res.x_names], res.beta)
    vc = res.varcorr_table()
    assert boot.estimates["sd_Days|Subject"] == pytest.approx(vc["sdcor"].iloc[1])
    assert boot.estimates["cor_Days.(Intercept)|Subject"] == pytest.approx(vc["sdcor"].iloc[2])
    assert boot.n_failed == 0 and boot.n_not_converged == 0


@pytest.mark.parametrize("method", ["percentile", "basic", "normal"])
def test_intervals_cover_the_estimate(method):
    ci = _boot().confint(0.95, method=method)
    est = _boot().estimates
    assert ((ci["lower"] < est) & (est < ci["upper"])).all()
    narrow = _boot().confint(0.5, method=method)
    assert ((ci["lower"] <= narrow["lower"]) & (narrow["upper"] <= ci["upper"])).all()


def test_fixed_effect_width_close_to_wald():
    """Percentile width of the fixed effects vs the Wald width 2 z SE (200 replicates: the
    Monte Carlo error of a 95% width is about 10%, the allowed band 25%)."""
    res, ci = _fit(), _boot().confint(0.95)
    wald = 2 * norm.ppf(0.975) * res.std_errors
    width = (ci["upper"] - ci["lower"])[res.x_names].to_numpy()
    np.testing.assert_allclose(width, wald, rtol=0.25)
    sd = _boot().samples[res.x_names].std().to_numpy()
    np.testing.assert_allclose(sd, res.std_errors, rtol=0.2)


def test_failures_and_nonconvergence_are_counted_not_fatal(monkeypatch):
    real = bootstrap_module.optimize_theta
    calls = {"n": 0}

    def flaky(dev, theta0, opts):
        calls["n"] += 1
        if calls["n"] in (2, 5):
            raise np.linalg.LinAlgError("not positive definite")
        out = real(dev, theta0, opts)
        if calls["n"] == 3:
            out.converged = False
        return out

    monkeypatch.setattr(bootstrap_module, "optimize_theta", flaky)
    boot = parametric_bootstrap(_fit(), 8, seed=2)
    assert boot.n_failed == 2 and boot.n_not_converged == 1
    assert list(np.flatnonzero(boot.failed)) == [1, 4]
    assert boot.samples.iloc[[1, 4]].isna().all().all()
    assert any("2 of 8 replicates failed" in m for m in boot.messages)
    ci = boot.confint()
    assert ci.attrs["n_used"] == 6 and ci.notna().all().all()


def test_bad_arguments():
    with pytest.raises(ValueError):
        parametric_bootstrap(_fit(), 0, seed=1)
    with pytest.raises(ValueError):
        _boot().confint(method="bca")
