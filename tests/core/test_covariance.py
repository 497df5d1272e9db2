"""Covariance structures (lmm_core.design.covariance): each class keeps its own promises.

For every structure: ``factor`` is lower triangular with nonzeros only in ``pattern``;
``theta_from_factor`` inverts ``factor``; ``(sd, cor)`` round-trips; the covariance basis
spans ``lambda lambda'``; ``theta_units`` makes ``theta * units`` invariant to a change of the
columns' units; the unstructured one keeps lme4's order and names.
"""

from __future__ import annotations

import numpy as np
import pytest

from lmm_core.design.covariance import (
    BlockDiagonalCovariance,
    DiagonalCovariance,
    EntrywiseCovariance,
    GeneralCovariance,
    ScalarCovariance,
    direct_sum,
)

STRUCTURES = [
    GeneralCovariance(1),
    GeneralCovariance(3),
    DiagonalCovariance(3),
    ScalarCovariance(1),
    ScalarCovariance(2),
    direct_sum([GeneralCovariance(1), GeneralCovariance(2)]),
    direct_sum([ScalarCovariance(2), GeneralCovariance(2)]),
]


def _theta(structure, rng):
    return np.where(
        structure.is_variance,
        rng.uniform(0.2, 2.0, structure.n_theta),
        rng.uniform(-0.5, 0.5, structure.n_theta),
    )


@pytest.mark.parametrize("structure", STRUCTURES, ids=repr)
def test_structure_promises(structure):
    rng = np.random.default_rng(1)
    theta = _theta(structure, rng)
    lam = structure.factor(theta)
    s = structure.size
    assert lam.shape == (s, s) and np.array_equal(lam, np.tril(lam))
    outside = np.ones((s, s), bool)
    outside[structure.pattern] = False
    assert np.all(lam[outside] == 0)
    assert np.allclose(structure.theta_from_factor(lam), theta)
    assert np.array_equal(structure.factor(structure.start), np.eye(s))
    assert np.array_equal(structure.lower == 0, structure.is_variance)
    values = structure.sdcor(theta, 1.7)
    assert np.allclose(structure.theta_from_sdcor(values, 1.7), theta)
    basis = structure.covariance_basis()
    target = lam @ lam.T
    gamma = np.linalg.lstsq(basis.reshape(len(basis), -1).T, target.ravel(), rcond=None)[0]
    assert np.allclose(np.tensordot(gamma, basis, 1), target)
    names = structure.theta_names("g", tuple("abcd"[:s]))
    assert len(names) == len(set(names)) == structure.n_theta
    assert len(structure.sdcor_names("g", tuple("abcd"[:s]))) == structure.n_theta


@pytest.mark.parametrize(
    "structure", [s for s in STRUCTURES if not isinstance(s, ScalarCovariance)]
)
def test_theta_units_follow_a_change_of_column_units(structure):
    """Column ``j`` in units ``1/d_j``: ``D lambda`` is the new factor; ``theta * units`` stays."""
    rng = np.random.default_rng(2)
    theta = _theta(structure, rng)
    d = rng.uniform(0.01, 100.0, structure.size)
    new = structure.theta_from_factor(d[:, None] * structure.factor(theta))
    assert np.allclose(new, theta * structure.theta_units(d))


def test_general_is_lme4_order_and_names():
    g = GeneralCovariance(2)
    assert g.n_theta == 3
    assert np.array_equal(g.factor(np.array([1.0, 2.0, 3.0])), [[1, 0], [2, 3]])
    assert g.theta_names("Subject", ("(Intercept)", "Days")) == [
        "Subject.(Intercept)",
        "Subject.Days.(Intercept)",
        "Subject.Days",
    ]
    assert g.sdcor_names("Subject", ("(Intercept)", "Days")) == [
        "sd_(Intercept)|Subject",
        "cor_Days.(Intercept)|Subject",
        "sd_Days|Subject",
    ]
    rows, cols = g.covariance_pairs()
    assert list(zip(rows, cols, strict=True)) == [(1, 0)]


def test_direct_sum_keeps_entrywise_parts_entrywise():
    assert isinstance(direct_sum([GeneralCovariance(1)] * 3), DiagonalCovariance)
    merged = direct_sum([GeneralCovariance(1), GeneralCovariance(2)])
    assert type(merged) is EntrywiseCovariance
    assert list(zip(*merged.covariance_pairs(), strict=True)) == [(2, 1)]
    mixed = direct_sum([ScalarCovariance(2), GeneralCovariance(1)])
    assert isinstance(mixed, BlockDiagonalCovariance)
    assert DiagonalCovariance(3).covariance_pairs()[0].size == 0
