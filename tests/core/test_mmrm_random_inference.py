"""Kenward-Roger, between-within and cluster sandwiches for random effects plus a covariance of
the visits (issue 14).

Oracles (``tests/fixtures/mmrm_random/inference``, made by ``make_inference_references.R``):

- lme4's ``(1 | hospital) + (1 | patient)`` is our ``(1 | hospital) + cs(visit | patient)``
  (positive within-patient correlation): lmerTest's Satterthwaite df (observed information, as
  ours) to 1e-4; pbkrtest's Kenward-Roger (``vcovAdj``, lmerTest's KR df and type III F) against
  our "kenward-roger-linear" (``cs`` is linear in pbkrtest's parameters, so its ``R`` is zero):
  SEs 1e-4, df and the adjustment ``Phi_A - Phi`` 1e-2 (pbkrtest uses the expected information,
  we the observed, as SAS and mmrm; a dense computation with the expected information matches
  pbkrtest's adjustment to 2e-3, 5e-4 measured);
- clubSandwich's ``vcovCR`` on ``nlme::lme`` (clusters: hospitals): CR0 and CR3 SEs 1e-6, the
  Satterthwaite df 1e-5; CR2 1e-3 (clubSandwich's square root of the working covariance is its
  upper Cholesky factor; ours, as mmrm's, is invariant to the square root: equal to a dense
  whitened computation to 1e-8);
- a dense brute force of Kenward-Roger (full ``V``, numerical derivatives in the parameters,
  ``W`` from the numerical Hessian of the dense REML criterion) on a small problem with AR(1)
  (nonzero second derivatives) and a random slope.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lmm_core import ModelError, fit_lmm, lsmeans, type3_tests
from lmm_core.inference.mmrm_random_kr import random_kenward_roger_pieces
from lmm_core.inference.mmrm_random_marginal import kr_parameters, marginal
from lmm_core.inference.mmrm_theta import mmrm_sigma
from lmm_core.model.mmrm_random_results import MMRMRandomResult

HERE = Path(__file__).resolve().parents[1] / "fixtures" / "mmrm_random"


def trial() -> pd.DataFrame:
    data = pd.read_csv(HERE / "trial_small.csv")
    data["avisit"] = pd.Categorical(data["avisit"], categories=[f"V{k}" for k in range(1, 6)])
    data["arm"] = pd.Categorical(data["arm"], categories=["ctl", "trt"])
    return data


def ref(name: str) -> dict:
    return json.loads((HERE / "inference" / f"{name}.json").read_text())


def rel(actual, expected) -> float:
    actual, expected = np.asarray(actual, float), np.asarray(expected, float)
    return float(np.max(np.abs(actual - expected) / np.abs(expected)))


@pytest.fixture(scope="module")
def cs_fit() -> MMRMRandomResult:
    return fit_lmm(ref("kr_cs_reml")["formula"], trial())


@pytest.fixture(scope="module")
def ar1_fit() -> MMRMRandomResult:
    return fit_lmm(ref("sandwich_ar1_reml")["formula"], trial())


# ------------------------------------------------------------------ lme4 / pbkrtest / lmerTest
def test_same_model_as_lme4(cs_fit):
    r = ref("kr_cs_reml")
    assert abs(cs_fit.loglik - r["logLik"]) <= 1e-8 * abs(r["logLik"])
    assert rel(cs_fit.std_errors, r["se_model"]) < 1e-5


def test_satterthwaite_matches_lmertest(cs_fit):
    r = ref("kr_cs_reml")
    assert rel(cs_fit.fixef_table("satterthwaite")["df"], r["sat_df"]) < 1e-4


def test_kenward_roger_matches_pbkrtest(cs_fit):
    r = ref("kr_cs_reml")
    table = cs_fit.fixef_table("kenward-roger-linear")
    assert list(table.index) == r["names"]
    assert rel(table["std_error"], r["kr_se"]) < 1e-4
    assert rel(table["df"], r["kr_df"]) < 1e-2
    adj = cs_fit.derived["kenward_roger"].vcov_linear - cs_fit.vcov_beta
    ref_adj = np.array(r["vcov_adj"]) - cs_fit.vcov_beta
    assert np.max(np.abs(adj - ref_adj)) < 2e-2 * np.max(np.abs(ref_adj))
    # the full variant differs by R (cs is not linear in mmrm's psi), but not by much
    full = cs_fit.fixef_table("kenward-roger")
    assert 0 < rel(full["std_error"], r["kr_se"]) < 1e-2
    np.testing.assert_allclose(full["df"], table["df"], rtol=1e-12)


def test_type3_kenward_roger_matches_pbkrtest(cs_fit):
    r = ref("kr_cs_reml")
    for method, key in (("kenward-roger-linear", "anova_kr"), ("satterthwaite", "anova_sat")):
        table = type3_tests(cs_fit, df_method=method)
        assert list(table.index) == r["anova_terms"]
        np.testing.assert_array_equal(table["num_df"], r[key]["num_df"])
        assert rel(table["den_df"], r[key]["den_df"]) < (1e-2 if key == "anova_kr" else 1e-4)
        assert rel(table["F"], r[key]["F"]) < (1e-3 if key == "anova_kr" else 1e-4)


def test_lsmeans_kenward_roger(cs_fit):
    sat = lsmeans(cs_fit, "arm", df_method="satterthwaite")
    for method in ("kenward-roger", "kenward-roger-linear"):
        table = lsmeans(cs_fit, "arm", df_method=method)
        np.testing.assert_allclose(table["estimate"], sat["estimate"])
        np.testing.assert_allclose(table["df"], sat["df"], rtol=1e-8)  # one row: KR df = Satt
        assert not np.allclose(table["std_error"], sat["std_error"], rtol=1e-6)
    # the linear variant only inflates (pbkrtest's adjustment is positive semi-definite here)
    assert np.all(table["std_error"] > sat["std_error"])


def test_expected_information_reproduces_pbkrtest(cs_fit):
    """Dense: with pbkrtest's W (inverse expected information in the variances) our
    Kenward-Roger formula gives pbkrtest's adjustment ``vcovAdj - Phi`` to 2e-3 (5e-4
    measured; with our observed-information W it is 1.1e-2)."""
    r = ref("kr_cs_reml")
    mg = marginal(cs_fit)
    n = cs_fit.design.n
    vinv = mg.solve(np.eye(n))
    X = cs_fit.design.X
    phi = cs_fit.vcov_beta
    proj = vinv - vinv @ X @ phi @ X.T @ vinv
    k = mg.n_gamma
    dv = np.array([mg.derivative(e, np.eye(n)) for e in np.eye(k)])
    pd_ = np.array([proj @ d for d in dv])
    info = 0.5 * np.einsum("kab,lba->kl", pd_, pd_)
    w = np.linalg.inv(info)
    kr = _kenward_roger_dense(vinv, X, phi, dv, np.zeros((k, k, n, n)), w)
    adj = kr[1] - phi
    ref_adj = np.array(r["vcov_adj"]) - phi
    assert np.max(np.abs(adj - ref_adj)) < 2e-3 * np.max(np.abs(ref_adj))  # observed W: 1e-2


# ------------------------------------------------------------------ dense brute force
def _kenward_roger_dense(vinv, X, phi, dv, d2v, w):
    """Generic KR (Kenward & Roger 1997) from dense ``V^-1``, ``dV_k``, ``d2V_kl``, ``W``."""
    P = np.array([-X.T @ vinv @ d @ vinv @ X for d in dv])
    Q = np.einsum("kab,lbc->klac", np.array([X.T @ vinv @ d for d in dv]),
                  np.array([vinv @ d @ vinv @ X for d in dv]))  # fmt: skip
    R = np.einsum("ia,klij,jb->klab", vinv @ X, d2v, vinv @ X)
    inner = np.einsum("kl,klab->ab", w, Q - np.einsum("kab,bc,lcd->klad", P, phi, P))
    linear = phi + 2 * phi @ inner @ phi
    full = linear - 0.5 * phi @ np.einsum("kl,klab->ab", w, R) @ phi
    return full, linear


def _dense_v(fit: MMRMRandomResult, gamma: np.ndarray) -> np.ndarray:
    """``V`` from scratch: mmrm's Sigma(psi) at each subject's visits plus ``Z G Z'``."""
    design = fit.design
    res = design.residual
    kg = res.structure.n_theta
    n = design.n
    V = np.zeros((n, n))
    sigma = mmrm_sigma(res.structure, gamma[:kg])
    subj, vis = res.subject_codes, res.visit_codes
    same = subj[:, None] == subj[None, :]
    V[same] = sigma[vis[:, None], vis[None, :]][same]
    term = fit.criterion.terms[0]
    E = term.structure.covariance_basis()
    G = np.einsum("l,lab->ab", gamma[kg:], E)
    zg = term.z @ G @ term.z.T
    V += np.where(term.codes[:, None] == term.codes[None, :], zg, 0.0)
    return V


def _reml(fit: MMRMRandomResult, gamma: np.ndarray) -> float:
    X, y = fit.design.X, fit.design.y
    V = _dense_v(fit, gamma)
    vinv = np.linalg.inv(V)
    xtvx = X.T @ vinv @ X
    beta = np.linalg.solve(xtvx, X.T @ vinv @ y)
    r = y - X @ beta
    return float(np.linalg.slogdet(V)[1] + np.linalg.slogdet(xtvx)[1] + r @ vinv @ r)


def _derivatives(f, x, h):
    k = len(x)
    eye = np.eye(k) * h
    d1 = np.array([(f(x + e) - f(x - e)) / (2 * h) for e in eye])
    d2 = np.array(
        [[(f(x + a + b) - f(x + a - b) - f(x - a + b) + f(x - a - b)) / (4 * h * h) for b in eye]
         for a in eye]
    )  # fmt: skip
    return d1, d2


def test_kenward_roger_equals_dense_brute_force():
    data = trial()
    data = data[data["hospital"].isin(sorted(data["hospital"].unique())[:8])]
    fit = fit_lmm("y ~ time * arm + (time | hospital) + ar1(visit | patient)", data)
    assert fit.converged and not fit.is_singular
    gamma = kr_parameters(fit, fit.opt.theta)
    h = 1e-4
    hess = _derivatives(lambda g: np.array(_reml(fit, g)), gamma, h)[1]
    w = 2 * np.linalg.inv(hess)
    dv, d2v = _derivatives(lambda g: _dense_v(fit, g), gamma, h)
    vinv = np.linalg.inv(_dense_v(fit, gamma))
    phi = np.linalg.inv(fit.design.X.T @ vinv @ fit.design.X)
    np.testing.assert_allclose(phi, fit.vcov_beta, rtol=1e-6, atol=1e-10)
    full, linear = _kenward_roger_dense(vinv, fit.design.X, phi, dv, d2v, w)
    ours = random_kenward_roger_pieces(fit)
    for a, b in ((ours.vcov, full), (ours.vcov_linear, linear)):
        assert np.max(np.abs((a - phi) - (b - phi))) < 1e-4 * np.max(np.abs(b - phi))
    assert np.max(np.abs(ours.vcov - ours.vcov_linear)) > 1e-3 * np.max(np.abs(full - phi))


# ------------------------------------------------------------------ sandwiches
@pytest.mark.parametrize("kind", ["CR0", "CR2", "CR3"])
def test_sandwich_matches_clubsandwich(ar1_fit, kind):
    r = ref("sandwich_ar1_reml")
    assert abs(ar1_fit.loglik - r["logLik"]) <= 1e-8 * abs(r["logLik"])
    table = ar1_fit.fixef_table("satterthwaite", vcov_method=kind)
    assert rel(table["std_error"], r["sandwich"][kind]["se"]) < (1e-3 if kind == "CR2" else 1e-6)
    assert rel(table["df"], r["sandwich"][kind]["df"]) < 1e-5
    vc = ar1_fit.vcov_sandwich(kind).to_numpy()
    np.testing.assert_allclose(np.sqrt(np.diag(vc)), table["std_error"], rtol=1e-12)


def test_cr2_equals_dense_whitened(ar1_fit):
    """CR2 with a symmetric inverse square root of ``I - H_hh`` in whitened coordinates."""
    mg = marginal(ar1_fit)
    n = ar1_fit.design.n
    V = np.linalg.inv(mg.solve(np.eye(n)))
    X, e, phi = ar1_fit.design.X, ar1_fit.design.y - ar1_fit.design.X @ ar1_fit.beta, None
    phi = ar1_fit.vcov_beta
    codes = ar1_fit.criterion.terms[0].codes
    meat = np.zeros_like(phi)
    for h in np.unique(codes):
        i = codes == h
        linv = np.linalg.inv(np.linalg.cholesky(V[np.ix_(i, i)]))
        xw, rw = linv @ X[i], linv @ e[i]
        val, vec = np.linalg.eigh(np.eye(i.sum()) - xw @ phi @ xw.T)
        z = xw.T @ (vec / np.sqrt(val)) @ vec.T @ rw
        meat += np.outer(z, z)
    dense = phi @ meat @ phi
    ours = ar1_fit.vcov_sandwich("CR2").to_numpy()
    assert np.max(np.abs(ours - dense)) < 1e-8 * np.max(np.abs(dense))


def test_crossed_factors_refuse_the_sandwich():
    data = trial()
    data = data[data["hospital"].isin(sorted(data["hospital"].unique())[:8])].copy()
    patients = data["patient"].unique()
    site = dict(zip(patients, np.arange(len(patients)) % 3, strict=True))
    data["site"] = data["patient"].map(site).map("S{}".format)  # crosses the hospitals
    fit = fit_lmm("y ~ time + (1 | hospital) + (1 | site) + ar1(visit | patient)", data)
    with pytest.raises(ModelError, match="crossed"):
        fit.fixef_table(vcov_method="CR0")
    assert np.all(np.isfinite(fit.fixef_table("kenward-roger")["df"]))


# ------------------------------------------------------------------ between-within and errors
def test_between_within_at_the_hospital_level():
    data = trial()
    rng = np.random.default_rng(1)
    hosp = data["hospital"].unique()
    data["size"] = data["hospital"].map(dict(zip(hosp, rng.normal(size=len(hosp)), strict=True)))
    fit = fit_lmm("y ~ time + size + arm + (1 | hospital) + ar1(visit | patient)", data)
    df = fit.fixef_table("between-within")["df"]
    H, n = len(hosp), len(data)
    assert df["size"] == H - 1 - 1
    assert df["time"] == df["armtrt"] == df["(Intercept)"] == n - H - 2


def test_kenward_roger_needs_reml():
    data = trial()
    fit = fit_lmm(ref("kr_cs_reml")["formula"], data, reml=False)
    with pytest.raises(ModelError, match="REML"):
        fit.fixef_table("kenward-roger")
    with pytest.raises(Exception, match="vcov_method='model'"):
        fit.fixef_table("kenward-roger", vcov_method="CR2")
