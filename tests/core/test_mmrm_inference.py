"""Inference for MMRM fits as mmrm does it (issue 14): Kenward-Roger (and its linear variant),
between-within and residual df, empirical covariances CR0 / CR2 / CR3 with their df.

Oracles: mmrm 0.3.18 on FEV (``tests/fixtures/mmrm``; ``kenward_roger`` for every REML
structure, ``variants`` for us REML): SEs 1e-3, df 1e-2 relative; mmrm's parametrization
reproduces its covariance; a dense brute force of the sandwiches and their df from explicit
per-subject matrices and the full hat matrix on a small problem with missing visits and groups.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from test_mmrm import CASES, MMRM, fev

import lmm_core.inference.mmrm_fixef  # noqa: F401  (installs the MMRM inference)
from lmm_core import LMMError, fit_lmm
from lmm_core.inference.mmrm_sandwich import sandwich_df, sandwich_pieces
from lmm_core.inference.mmrm_theta import mmrm_sigma, psi_from_sigma

REML_CASES = [c for c in CASES if not c.endswith("_ml")]
VARIANTS = {
    "empirical_CR0": ("satterthwaite", "CR0"),
    "empirical_bias_reduced_CR2": ("satterthwaite", "CR2"),
    "empirical_jackknife": ("satterthwaite", "CR3"),
    "kenward_roger_linear": ("kenward-roger-linear", "model"),
    "residual_df": ("residual", "model"),
    "between_within_df": ("between-within", "model"),
}


def _case(name: str) -> dict:
    return json.loads((MMRM / "cases" / f"{name}.json").read_text())


_FITS: dict[str, object] = {}


def _fit(name: str):
    if name not in _FITS:
        case = _case(name)
        _FITS[name] = fit_lmm(case["formula"], fev(), reml=case["REML"])
    return _FITS[name]


def _close(actual, expected, rtol: float) -> None:
    actual, expected = np.asarray(actual, float), np.asarray(expected, float)
    err = np.max(np.abs(actual / expected - 1.0))
    assert err <= rtol, err


@pytest.mark.parametrize("name", CASES)
def test_mmrm_parametrization_reproduces_its_covariance(name):
    case = _case(name)
    ref = case["satterthwaite"]
    structure = _fit(name).design.residual.structure
    cov = np.array(ref["covariance"][0]["values"])
    np.testing.assert_allclose(mmrm_sigma(structure, np.array(ref["theta"])), cov, rtol=1e-10)
    np.testing.assert_allclose(psi_from_sigma(structure, cov), ref["theta"], atol=1e-10)


@pytest.mark.parametrize("name", REML_CASES)
def test_kenward_roger_matches_mmrm(name):
    ref = _case(name)["kenward_roger"]["coefficients"]
    res = _fit(name)
    table = res.fixef_table("kenward-roger")
    _close(table["std_error"], ref["Std. Error"], 1e-3)
    _close(table["df"], ref["df"], 1e-2)
    # mmrm's KR df for one coefficient equal Satterthwaite's; only the SEs differ
    _close(table["df"], res.fixef_table("satterthwaite")["df"], 1e-6)
    assert np.all(table["std_error"].to_numpy() != res.std_errors)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_variants_match_mmrm(variant):
    block = _case("mmrm_fev_us_reml")["variants"][variant]
    df_method, vcov_method = VARIANTS[variant]
    res = _fit("mmrm_fev_us_reml")
    table = res.fixef_table(df_method, vcov_method=vcov_method)
    _close(table["std_error"], block["coefficients"]["Std. Error"], 1e-3)
    _close(table["df"], block["coefficients"]["df"], 1e-2)
    if vcov_method != "model":
        vcov = res.vcov_sandwich(vcov_method).to_numpy()
        expected = np.array(block["vcov_beta"]["values"])
        assert np.max(np.abs(vcov - expected)) <= 1e-3 * np.max(np.abs(expected))


def test_kenward_roger_needs_reml():
    with pytest.raises(LMMError, match="REML"):
        _fit("mmrm_fev_us_ml").fixef_table("kenward-roger")


def test_bad_methods_give_clear_messages():
    res = _fit("mmrm_fev_ar1_reml")
    with pytest.raises(LMMError, match="covariance of the fixed effects"):
        res.fixef_table(vcov_method="HC1")
    with pytest.raises(LMMError, match="Kenward-Roger adjusts"):
        res.fixef_table("kenward-roger", vcov_method="CR2")
    with pytest.raises(LMMError, match="degrees-of-freedom"):
        res.fixef_table("containment")


def test_units_do_not_matter():
    data = fev()
    data["FEV1"] = data["FEV1"] * 1000.0
    formula = "FEV1 ~ RACE + SEX + ARMCD * AVISIT + ar1h(AVISIT | USUBJID)"
    big = fit_lmm(formula, data)
    small = _fit("mmrm_fev_ar1h_reml")
    for df_method, vcov_method in [("kenward-roger", "model"), ("satterthwaite", "CR2")]:
        a = big.fixef_table(df_method, vcov_method=vcov_method)
        b = small.fixef_table(df_method, vcov_method=vcov_method)
        _close(a["std_error"] / 1000.0, b["std_error"], 1e-5)
        _close(a["df"], b["df"], 1e-4)


# ------------------------------------------------------------------ dense brute force
def _small_data(seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(40):
        arm = "A" if s % 2 else "B"
        sex = "F" if s % 3 else "M"
        keep = [v for v in range(4) if v == 0 or rng.random() > 0.25]
        level = rng.normal()
        for v in keep:
            y = 1.0 + 0.5 * v + (arm == "A") * 0.8 + level + (1 + 0.3 * v) * rng.normal()
            rows.append({"id": f"s{s}", "visit": f"V{v + 1}", "arm": arm, "sex": sex, "y": y})
    data = pd.DataFrame(rows)
    data["visit"] = pd.Categorical(data["visit"], categories=["V1", "V2", "V3", "V4"])
    return data


def _dense_sandwich(res, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Sandwich and mmrm's df from explicit per-subject matrices and the full hat matrix."""
    design, ter = res.design, res.design.residual
    X, r = design.X, design.y - design.X @ res.beta
    sigmas = ter.matrices(res.opt.theta)
    phi = res.vcov_beta
    subjects = [np.flatnonzero(ter.subject_codes == s) for s in range(ter.n_subjects)]
    subjects = [idx[np.argsort(ter.visit_codes[idx])] for idx in subjects]
    whitened, blocks = [], []
    for idx in subjects:
        v = ter.visit_codes[idx]
        sig = sigmas[ter.group_codes[idx[0]]][np.ix_(v, v)]
        winv = np.linalg.inv(np.linalg.cholesky(sig))
        whitened.append((winv @ X[idx], winv @ r[idx]))
    xw = np.vstack([w[0] for w in whitened])
    hat = xw @ phi @ xw.T
    n, p = X.shape
    meat = np.zeros((p, p))
    start = 0
    gmat = np.zeros((n, p * len(subjects)))
    for i, (xi, ri) in enumerate(whitened):
        t = len(ri)
        sl = slice(start, start + t)
        a = np.eye(t) - hat[sl, sl]
        if kind == "CR0":
            adj = np.eye(t)
        elif kind == "CR2":
            val, vec = np.linalg.eigh(a)
            adj = vec @ np.diag(val**-0.5) @ vec.T
        else:
            adj = np.linalg.inv(a)
        z = xi.T @ adj @ ri
        meat += np.outer(z, z)
        gmat[:, i * p : (i + 1) * p] = (np.eye(n) - hat)[:, sl] @ adj @ xi @ phi
        blocks.append(t)
        start += t
    vcov = phi @ meat @ phi
    dfs = []
    for l_row in np.eye(p):
        cmat = np.kron(np.eye(len(subjects)), l_row[None, :])
        g = cmat @ gmat.T @ gmat @ cmat.T
        dfs.append(np.trace(g) ** 2 / np.sum(g**2))
    return vcov, np.array(dfs)


@pytest.mark.parametrize("kind", ["CR0", "CR2", "CR3"])
def test_sandwich_equals_dense_brute_force(kind):
    res = fit_lmm("y ~ arm * visit + sex + csh(visit | arm / id)", _small_data())
    vcov, df = _dense_sandwich(res, kind)
    pieces = sandwich_pieces(res, kind)
    np.testing.assert_allclose(pieces.vcov, vcov, rtol=1e-8, atol=1e-12 * np.abs(vcov).max())
    p = len(res.beta)
    np.testing.assert_allclose(sandwich_df(res.vcov_beta, pieces, np.eye(p)), df, rtol=1e-8)
    np.testing.assert_allclose(
        res.fixef_table(vcov_method=kind)["std_error"], np.sqrt(np.diag(vcov)), rtol=1e-8
    )
