"""The profiled criterion at a FIXED theta against a brute-force dense computation.

Oracle: with ``V = Z Lambda Lambda' Z' + I`` (the marginal covariance over ``sigma^2``),
``beta = (X'V^-1 X)^-1 X'V^-1 y`` and ``r2 = (y - X beta)' V^-1 (y - X beta)``::

    ML:   log|V| + n (1 + log(2 pi r2 / n))
    REML: log|V| + log|X'V^-1 X| + (n - p)(1 + log(2 pi r2 / (n - p)))

which is -2 log of the multivariate normal density (REML: of the restricted likelihood) with
sigma^2 profiled out. Designs are drawn at random over the number of groups, random slopes,
nesting and crossing and the covariance structures of the terms (general, diagonal, scalar,
direct sums: the blocked factor goes through the structure interface only), including theta on
the boundary (zero variances).
Tolerance: 1e-8 relative on the criterion, 1e-7 on beta, b and conditional covariances.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmm_core.design.covariance import (
    DiagonalCovariance,
    GeneralCovariance,
    ScalarCovariance,
    direct_sum,
)
from lmm_core.design.reterms import ReTerm
from lmm_core.model.deviance import ProfiledDeviance


def dense_z(term: ReTerm) -> np.ndarray:
    n, s = term.z.shape
    out = np.zeros((n, term.n_levels * s))
    for j in range(s):
        out[np.arange(n), term.codes * s + j] = term.z[:, j]
    return out


def dense_oracle(X, y, terms, theta, reml):
    """Criterion, beta, b and Var(b | y) from dense matrices (no structure used)."""
    z = np.hstack([dense_z(t) for t in terms])
    blocks, offset = [], 0
    for t in terms:
        lam = t.structure.factor(theta[offset : offset + t.n_theta])
        blocks.append(np.kron(np.eye(t.n_levels), lam))
        offset += t.n_theta
    q = z.shape[1]
    lam_full = np.zeros((q, q))
    pos = 0
    for blk in blocks:
        lam_full[pos : pos + blk.shape[0], pos : pos + blk.shape[0]] = blk
        pos += blk.shape[0]
    n, p = X.shape
    zl = z @ lam_full
    v = zl @ zl.T + np.eye(n)
    vinv = np.linalg.inv(v)
    xtvx = X.T @ vinv @ X
    beta = np.linalg.solve(xtvx, X.T @ vinv @ y)
    resid = y - X @ beta
    r2 = resid @ vinv @ resid
    logdet_v = np.linalg.slogdet(v)[1]
    if reml:
        dof = n - p
        crit = logdet_v + np.linalg.slogdet(xtvx)[1] + dof * (1 + np.log(2 * np.pi * r2 / dof))
    else:
        dof = n
        crit = logdet_v + n * (1 + np.log(2 * np.pi * r2 / n))
    sigma2 = r2 / dof
    m = zl.T @ zl + np.eye(q)
    u = np.linalg.solve(m, zl.T @ resid)
    b = lam_full @ u
    cond = sigma2 * lam_full @ np.linalg.inv(m) @ lam_full.T
    return crit, beta, b, cond


def structures(size: int):
    """Any covariance structure of ``size`` columns: the blocked factor must not depend on it."""
    kinds = [GeneralCovariance(size), DiagonalCovariance(size), ScalarCovariance(size)]
    if size > 1:
        kinds.append(direct_sum([ScalarCovariance(size - 1), GeneralCovariance(1)]))
        kinds.append(direct_sum([GeneralCovariance(1), GeneralCovariance(size - 1)]))
    return st.sampled_from(kinds)


@st.composite
def designs(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    m1 = draw(st.integers(3, 8))
    s1 = draw(st.integers(1, 3))
    reps = draw(st.integers(2, 6))
    n = m1 * reps + draw(st.integers(0, 5))
    codes1 = np.r_[np.repeat(np.arange(m1), reps), rng.integers(0, m1, n - m1 * reps)]
    x = rng.normal(size=(n, 2))
    z1 = np.column_stack([np.ones(n), x[:, 0], x[:, 1] ** 2])[:, :s1]
    terms = [
        ReTerm(
            "g1",
            tuple(map(str, range(m1))),
            codes1,
            z1,
            ("(Intercept)", "x1", "x2sq")[:s1],
            draw(structures(s1)),
        )
    ]
    kind = draw(st.sampled_from(["none", "nested", "crossed", "both"]))
    if kind in ("nested", "both"):
        m2 = draw(st.integers(2, max(2, m1 // 2)))
        parent = np.r_[np.arange(m2), rng.integers(0, m2, m1 - m2)]
        s2 = draw(st.integers(1, 2))
        z2 = np.column_stack([np.ones(n), x[:, 1]])[:, :s2]
        terms.append(
            ReTerm(
                "g2",
                tuple(map(str, range(m2))),
                parent[codes1],
                z2,
                ("(Intercept)", "x2")[:s2],
                draw(structures(s2)),
            )
        )
    if kind in ("crossed", "both"):
        m3 = draw(st.integers(2, 4))
        codes3 = np.r_[np.arange(m3), rng.integers(0, m3, n - m3)]
        terms.append(
            ReTerm(
                "g3",
                tuple(map(str, range(m3))),
                rng.permutation(codes3),
                np.ones((n, 1)),
                ("(Intercept)",),
                GeneralCovariance(1),
            )
        )
    p = draw(st.integers(1, 3))
    X = np.column_stack([np.ones(n), x, rng.normal(size=n)])[:, :p]
    y = X @ rng.normal(size=p) + rng.normal(size=n) * 2
    theta_parts = []
    for t in terms:
        lb = t.structure.lower
        vals = np.where(lb == 0, rng.uniform(0, 2, t.n_theta), rng.uniform(-1, 1, t.n_theta))
        zero = draw(st.booleans())
        if zero:
            vals[0] = 0.0
        theta_parts.append(vals)
    group_order = [t.group for t in terms]
    terms.sort(key=lambda t: -t.n_levels)
    by_group = dict(zip(group_order, theta_parts, strict=True))
    theta = np.concatenate([by_group[t.group] for t in terms])
    return X, y, tuple(terms), theta


@settings(max_examples=60, deadline=None)
@given(designs(), st.booleans())
def test_criterion_matches_dense_oracle(case, reml):
    X, y, terms, theta = case
    dev = ProfiledDeviance(X, y, terms, reml)
    crit, beta, b, cond = dense_oracle(X, y, terms, theta, reml)
    assert np.isclose(dev(theta), crit, rtol=1e-8, atol=1e-8)
    sol = dev.solve(theta)
    assert np.allclose(sol.beta, beta, rtol=1e-7, atol=1e-7)
    assert np.allclose(np.concatenate([bk.ravel() for bk in sol.b]), b, rtol=1e-7, atol=1e-7)
    blocks = dev.conditional_covariances(sol.factor, sol.sigma)
    offset = 0
    for t, blk in zip(terms, blocks, strict=True):
        s = t.n_columns
        for i in range(t.n_levels):
            sl = slice(offset + i * s, offset + (i + 1) * s)
            assert np.allclose(blk[i], cond[sl, sl], rtol=1e-6, atol=1e-8)
        offset += t.n_levels * s


def test_sleepstudy_first_block_of_ztz():
    """MixedModels' check: the first 2 x 2 block of Z'Z for (Days | Subject)."""
    days = np.tile(np.arange(10.0), 3)
    codes = np.repeat(np.arange(3), 10)
    z = np.column_stack([np.ones(30), days])
    term = ReTerm(
        "Subject", ("a", "b", "c"), codes, z, ("(Intercept)", "Days"), GeneralCovariance(2)
    )
    dev = ProfiledDeviance(z, days * 2.0 + np.sin(days), (term,), reml=True)
    assert np.array_equal(dev.a11_flat[0].reshape(2, 2), [[10, 45], [45, 285]])


def test_crossed_and_nested_terms_blocked_factor_equals_dense_oracle():
    """L21 L21' of a crossed term (compiled, :func:`lmm_core.model.kernels.crossed_gram`)
    and a nested one above the first: the blocked factor and the small-model path give the
    dense likelihood's value."""
    rng = np.random.default_rng(7)
    n, m1, m2, m3 = 120, 30, 6, 4
    codes1 = np.r_[np.arange(m1), rng.integers(0, m1, n - m1)]
    parent = np.r_[np.arange(m2), rng.integers(0, m2, m1 - m2)]
    codes3 = rng.permutation(np.r_[np.arange(m3), rng.integers(0, m3, n - m3)])
    x = rng.normal(size=n)
    terms = (
        ReTerm(
            "g1",
            tuple(map(str, range(m1))),
            codes1,
            np.column_stack([np.ones(n), x]),
            ("(Intercept)", "x"),
            GeneralCovariance(2),
        ),
        ReTerm(
            "g2",
            tuple(map(str, range(m2))),
            parent[codes1],
            np.ones((n, 1)),
            ("(Intercept)",),
            GeneralCovariance(1),
        ),
        ReTerm(
            "g3",
            tuple(map(str, range(m3))),
            codes3,
            np.ones((n, 1)),
            ("(Intercept)",),
            ScalarCovariance(1),
        ),
    )
    X = np.column_stack([np.ones(n), x])
    y = rng.normal(size=n) + codes1 % 3
    dev = ProfiledDeviance(X, y, terms, reml=True)
    theta = np.array([0.8, 0.2, 0.5, 0.7, 0.3])
    assert dev._rest_scalar and not dev._nested
    blocked = dev.criterion(dev.factor(theta))
    assert dev(theta) == pytest.approx(blocked, rel=1e-12)
    assert blocked == pytest.approx(dense_oracle(X, y, terms, theta, True)[0], rel=1e-10)


def _term(group, codes, z, names):
    return ReTerm(
        group,
        tuple(map(str, range(codes.max() + 1))),
        codes,
        z,
        names,
        GeneralCovariance(len(names)),
    )


@pytest.mark.parametrize("structure", ["split_first", "split_nested", "interleaved"])
@pytest.mark.parametrize("reml", [True, False])
def test_terms_on_one_factor_are_merged_and_match_the_dense_oracle(structure, reml):
    """``(x || g)`` is two terms on one factor: merged into one block with a diagonal lambda
    (no dense L22 over g's levels), with theta, b and Var(b | y) in the terms' own order."""
    rng = np.random.default_rng({"split_first": 1, "split_nested": 2, "interleaved": 3}[structure])
    n, m1, m2, m3 = 150, 25, 5, 4
    codes1 = np.r_[np.arange(m1), rng.integers(0, m1, n - m1)]
    codes2 = np.r_[np.arange(m2), rng.integers(0, m2, m1 - m2)][codes1]
    codes3 = rng.permutation(np.r_[np.arange(m3), rng.integers(0, m3, n - m3)])
    x = rng.normal(size=n)
    one = np.ones((n, 1))
    g1_int = _term("g1", codes1, one, ("(Intercept)",))
    g1_x = _term("g1", codes1, x[:, None], ("x",))
    if structure == "split_first":
        terms = (g1_int, g1_x)
        theta = np.array([0.9, 0.4])
    elif structure == "split_nested":
        terms = (
            _term("g1", codes1, np.column_stack([one, x]), ("(Intercept)", "x")),
            _term("g2", codes2, one, ("(Intercept)",)),
            _term("g2", codes2, x[:, None], ("x",)),
        )
        theta = np.array([0.8, 0.3, 0.5, 0.6, 0.2])
    else:  # a crossed factor between the two pieces of g1
        terms = (g1_int, _term("g3", codes3, one, ("(Intercept)",)), g1_x)
        theta = np.array([0.7, 0.5, 0.3])
    X = np.column_stack([np.ones(n), x])
    y = X @ [1.0, 2.0] + rng.normal(size=n) * 2 + codes1 % 4 + 0.5 * x * (codes1 % 3)
    dev = ProfiledDeviance(X, y, terms, reml)
    assert len(dev._terms) == len(terms) - 1
    if structure == "split_first":
        assert dev.q2 == 0  # no second block at all
    crit, beta, b, cond = dense_oracle(X, y, terms, theta, reml)
    assert dev(theta) == pytest.approx(crit, rel=1e-10)
    sol = dev.solve(theta)
    np.testing.assert_allclose(sol.beta, beta, rtol=1e-8)
    np.testing.assert_allclose(np.concatenate([bk.ravel() for bk in sol.b]), b, atol=1e-8)
    offset = 0
    for t, blk in zip(terms, dev.conditional_covariances(sol.factor, sol.sigma), strict=True):
        s = t.n_columns
        assert blk.shape == (t.n_levels, s, s)
        for i in range(t.n_levels):
            sl = slice(offset + i * s, offset + (i + 1) * s)
            np.testing.assert_allclose(blk[i], cond[sl, sl], rtol=1e-7, atol=1e-10)
        offset += t.n_levels * s
