"""Analytic derivatives of the MMRM criterion (issue 14).

Oracles: central differences of the data-free map ``theta -> Sigma(theta)`` for every
structure's Jacobian; central differences of the criterion for its analytic gradient, with
missing visits, with and without a group-specific covariance, REML and ML, with the patterns
kept as cross-products and as whitened rows; the two representations give the same criterion;
the fitted optimum has a vanishing gradient and its Hessian equals central differences of the
criterion itself.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from lmm_core import fit_lmm
from lmm_core.design.build import build_design
from lmm_core.design.residual_structures import STRUCTURES, VisitCovariance
from lmm_core.model.mmrm import MMRMCriterion, gradient, hessian

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_mmrm import _small_trial, fev  # noqa: E402


def _relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    return float(np.max(np.abs(actual - expected)) / np.max(np.abs(expected)))


@pytest.mark.parametrize("structure", STRUCTURES)
@pytest.mark.parametrize("m", [2, 3, 6])
def test_structure_jacobian_matches_differences(structure, m):
    cov = VisitCovariance(structure, m)
    theta = np.random.default_rng(m).normal(scale=0.7, size=cov.n_theta)
    h = 1e-6
    numeric = np.array(
        [
            (cov.matrix(theta + h * e) - cov.matrix(theta - h * e)) / (2 * h)
            for e in np.eye(len(theta))
        ]
    )
    assert cov.jacobian(theta).shape == (cov.n_theta, m, m)
    assert _relative_error(cov.jacobian(theta), numeric) < 1e-7


@pytest.mark.parametrize("structure", STRUCTURES)
@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("crossproducts", [True, False])
def test_gradient_matches_central_differences(structure, reml, crossproducts):
    data = _small_trial()
    for term in (f"{structure}(visit | id)", f"{structure}(visit | arm / id)"):
        design = build_design(f"y ~ arm * factor(visit) + {term}", data)
        crit = MMRMCriterion(design, reml, crossproducts=crossproducts)
        theta = np.random.default_rng(5).normal(scale=0.5, size=design.residual.n_theta)
        numeric = gradient(crit, theta, step=1e-6)
        assert _relative_error(crit.gradient(theta), numeric) < 1e-6


@pytest.mark.parametrize("reml", [True, False])
def test_cross_products_and_rows_agree(reml):
    design = build_design("y ~ arm * factor(visit) + adh(visit | arm / id)", _small_trial())
    theta = np.random.default_rng(1).normal(scale=0.5, size=design.residual.n_theta)
    cross = MMRMCriterion(design, reml, crossproducts=True).evaluate(theta)
    rows = MMRMCriterion(design, reml, crossproducts=False).evaluate(theta)
    assert cross.objective == pytest.approx(rows.objective, rel=1e-12)
    np.testing.assert_allclose(cross.beta, rows.beta, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("structure", ["us", "toeph", "csh"])
def test_optimum_is_flat_and_its_hessian_is_exact(structure):
    res = fit_lmm(f"FEV1 ~ ARMCD * AVISIT + {structure}(AVISIT | USUBJID)", fev())
    assert res.converged
    crit = res.criterion
    grad = crit.gradient(res.theta)
    assert abs(grad @ np.linalg.solve(res.opt.hessian, grad)) < 1e-8
    numeric = hessian(crit, res.theta, step=1e-3)
    assert _relative_error(res.opt.hessian, numeric) < 1e-4


def test_information_is_symmetric_positive_definite():
    design = build_design("y ~ arm * factor(visit) + toeph(visit | arm / id)", _small_trial())
    crit = MMRMCriterion(design, True)
    theta = np.random.default_rng(2).normal(scale=0.5, size=design.residual.n_theta)
    info = crit.information(theta)
    np.testing.assert_allclose(info, info.T, rtol=1e-10, atol=1e-12 * np.abs(info).max())
    assert np.linalg.eigvalsh(info).min() > 0
