"""Pass 2's sum of batches at the levels each saw (``BlockTotal``) equals adding whole
``CrossProducts`` batch after batch, bit for bit."""

import numpy as np

from lmm_core.design.covariance import GeneralCovariance
from lmm_core.design.reterms import ReTerm
from lmm_core.model.cross_products import (
    BlockTotal,
    _ordered_sums,
    cross_products,
    local_cross_products,
)


def _term(name, codes, m, z):
    return ReTerm(
        group=name,
        levels=tuple(str(i) for i in range(m)),
        codes=codes,
        z=z,
        cnames=tuple(f"c{j}" for j in range(z.shape[1])),
        structure=GeneralCovariance(z.shape[1]),
    )


def test_ordered_sums_add_in_the_order_given():
    keys = np.array([5, 2, 5, 5, 2, 9])
    values = np.array([1e16, 1.0, 1.0, -1e16, 3.0, 4.0])
    k, v = _ordered_sums(keys, values)
    assert k.tolist() == [2, 5, 9]
    assert v.tolist() == [4.0, (1e16 + 1.0) - 1e16, 4.0]  # 0.0: not 1.0 of another order


def test_block_total_equals_sequential_sums():
    rng = np.random.default_rng(3)
    n, m1, m2 = 6000, 900, 40
    x = rng.normal(size=n) * 10.0 ** rng.integers(-8, 8, n)  # rounding depends on the order
    X = np.column_stack([np.ones(n), x])
    y = rng.normal(size=n)
    p_codes = rng.integers(0, m1, n)  # rows of a patient spread over batches
    h_codes = rng.integers(0, m2, n)  # crossed with patients
    slope = np.column_stack([np.ones(n), x])
    acc = BlockTotal()
    expected = None
    for rows in np.array_split(np.arange(n), 9):
        terms = (
            _term("p", p_codes[rows], m1, slope[rows]),
            _term("h", h_codes[rows], m2, np.ones((rows.size, 1))),
        )
        part = cross_products(X[rows], y[rows], terms)
        expected = part if expected is None else expected + part
        local, seen = local_cross_products(X[rows], y[rows], terms)
        acc.add(local, seen, m1)
        acc._compact()  # compaction keeps the order of the sums
    got = acc.total()
    assert got.n == expected.n == n
    for name in ("a11_flat", "a1xy", "axy", "a22", "a2xy"):
        assert np.array_equal(getattr(got, name), getattr(expected, name)), name
    for name in ("indptr", "indices", "data"):
        assert np.array_equal(getattr(got.a21, name), getattr(expected.a21, name)), name
