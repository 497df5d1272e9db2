"""statsmodels ``MixedLM`` as an independent oracle (single grouping factor).

Data: seeded simulations of a few hundred rows (unbalanced groups, a numeric covariate ``x``
and a two-level factor ``trt``), fitted as ``y ~ x + trt + (1 | g)`` and
``y ~ x + trt + (x | g)`` by REML and by ML, with lmm_core and with statsmodels (default
optimizer).

Scales of the two log-likelihoods. statsmodels' ``MixedLMResults.llf`` is
``model.loglike(params, profile_fe=False)``: the log-likelihood with the residual variance
profiled out. For ML it is the Gaussian log-likelihood; for REML it is the restricted
log-likelihood ``-(1/2)[log|V| + log|X'V^-1 X| + (n - p)(1 + log(2 pi r^2 / (n - p)))]`` with
``V`` the marginal covariance relative to the residual variance and no ``log|X'X|`` term, which
is exactly ``-REMLcrit / 2`` in lme4 (and our ``loglik = -objective / 2``). So the two are on
the SAME scale for both criteria; :func:`test_loglik_scales_agree_at_the_same_parameters`
checks it by evaluating statsmodels' ``loglike`` at our estimates (agreement to 1e-8, i.e.
rounding), which is what makes the comparison of the optima meaningful.

Checks and tolerances:

* our log-likelihood >= statsmodels' - 1e-6 (ours is the exact optimum of the same function);
* fixed effects within 1e-3 of the estimate (relative), or of its standard error for an
  estimate near zero; variances (random effects and residual) within 1e-3 relative,
  covariances within 1e-3 of ``sqrt(var1 * var2)``. Those are loose compared with our own
  accuracy (1e-6 against lme4) because statsmodels' quasi-Newton optimizer stops on a gradient
  tolerance; measured, its estimates differ from ours by up to about 5e-5 relative here.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from statsmodels.regression.mixed_linear_model import MixedLMParams

from lmm_core import fit_lmm

SEEDS = (11, 12, 13)
RE_TERMS = {"intercept": "1", "slope": "x"}
LOGLIK_SLACK = 1e-6
REL_TOL = 1e-3


def simulate(seed: int) -> pd.DataFrame:
    """About 300 rows: 40 groups of 3 to 12 observations, random intercept and slope in x."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(3, 13, 40)
    g = np.repeat(np.arange(40), sizes)
    n = g.size
    x = rng.uniform(0.0, 5.0, n)
    trt = rng.integers(0, 2, 40)[g]
    b0 = rng.normal(0.0, 2.0, 40)
    b1 = 0.6 * rng.normal(0.0, 1.0, 40) - 0.3 * b0 / 2.0
    y = 1.0 + 0.5 * x - 0.8 * trt + b0[g] + b1[g] * x + rng.normal(0.0, 1.0, n)
    return pd.DataFrame(
        {
            "g": [f"G{k:02d}" for k in g],
            "x": x,
            "trt": np.where(trt == 1, "B", "A"),
            "y": y,
        }
    )


def sm_name(name: str) -> str:
    """statsmodels/patsy coefficient name -> lme4's."""
    return {"Intercept": "(Intercept)", "trt[T.B]": "trtB"}.get(name, name)


def fit_both(seed: int, re: str, reml: bool):
    df = simulate(seed)
    ours = fit_lmm(f"y ~ x + trt + ({RE_TERMS[re]} | g)", df, reml=reml)
    model = smf.mixedlm(
        "y ~ x + trt", df, groups=df["g"], re_formula="~x" if re == "slope" else "1"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' convergence chatter; checked below
        theirs = model.fit(reml=reml)
    return ours, model, theirs


@pytest.fixture(scope="module")
def fits():
    return {
        (seed, re, reml): fit_both(seed, re, reml)
        for seed in SEEDS
        for re in RE_TERMS
        for reml in (True, False)
    }


CASES = [(s, r, m) for s in SEEDS for r in RE_TERMS for m in (True, False)]
IDS = [f"seed{s}-{r}-{'REML' if m else 'ML'}" for s, r, m in CASES]


def our_cov_re(ours) -> np.ndarray:
    """Covariance matrix of the random effects of the single term (absolute scale)."""
    lam = ours.lambdas[0]
    return ours.sigma**2 * (lam @ lam.T)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_loglik_scales_agree_at_the_same_parameters(fits, case):
    ours, model, _ = fits[case]
    fe = ours.fixef.reindex([sm_name(c) for c in model.exog_names]).to_numpy()
    params = MixedLMParams.from_components(fe_params=fe, cov_re=our_cov_re(ours) / ours.sigma**2)
    assert model.loglike(params, profile_fe=False) == pytest.approx(ours.loglik, abs=1e-8)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_our_optimum_is_at_least_as_good(fits, case):
    ours, _, theirs = fits[case]
    assert ours.converged
    assert ours.loglik >= theirs.llf - LOGLIK_SLACK


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_fixed_effects_agree(fits, case):
    ours, _, theirs = fits[case]
    sm = pd.Series({sm_name(k): v for k, v in theirs.fe_params.items()})
    assert set(sm.index) == set(ours.fixef.index)
    scale = np.maximum(np.abs(ours.fixef), ours.std_errors)
    diff = np.abs(ours.fixef - sm.reindex(ours.fixef.index)).to_numpy()
    assert np.all(diff <= REL_TOL * scale), diff / scale


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_variance_components_agree(fits, case):
    ours, _, theirs = fits[case]
    assert ours.sigma**2 == pytest.approx(theirs.scale, rel=REL_TOL)
    ours_cov = our_cov_re(ours)
    sm_cov = np.asarray(theirs.cov_re)  # rows/columns in the order of re_formula, as ours
    sd = np.sqrt(np.diag(ours_cov))
    allowed = REL_TOL * np.outer(sd, sd)
    assert np.all(np.abs(ours_cov - sm_cov) <= allowed), (ours_cov, sm_cov)
    # the same numbers through the public table
    table = ours.varcorr_table()
    variances = table[(table["group"] == "g") & table["var2"].isna()]["vcov"].to_numpy()
    np.testing.assert_allclose(variances, np.diag(ours_cov), rtol=1e-10)
