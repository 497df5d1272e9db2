"""``cross_products`` by bincount over level and level-pair codes: the same numbers, bit
for bit, as the sparse products ``Z2'Z1``, ``Z2'Z2``, ``Z2'[X y]`` of an explicit ``Z``."""

import numpy as np
import pytest
import scipy.sparse as sp

from lmm_core.design.covariance import GeneralCovariance
from lmm_core.design.reterms import ReTerm
from lmm_core.model.cross_products import cross_products, local_cross_products, pair_codes


def _term(name: str, codes: np.ndarray, m: int, z: np.ndarray) -> ReTerm:
    return ReTerm(
        group=name,
        levels=tuple(str(i) for i in range(m)),
        codes=codes.astype(np.int64),
        z=z,
        cnames=tuple(f"c{j}" for j in range(z.shape[1])),
        structure=GeneralCovariance(z.shape[1]),
    )


def _z(term: ReTerm) -> sp.csr_matrix:
    n, s = term.z.shape
    cols = term.codes[:, None] * s + np.arange(s)[None, :]
    rows = np.repeat(np.arange(n), s)
    return sp.csr_matrix((term.z.ravel(), (rows, cols.ravel())), shape=(n, term.n_levels * s))


def _reference(X, y, terms):
    xy = np.column_stack([X, y])
    z1 = _z(terms[0])
    z2 = sp.hstack([_z(t) for t in terms[1:]], format="csc")
    a21 = (z2.T @ z1).tocsr()
    a21.sum_duplicates()
    return a21, (z2.T @ z2).toarray(), np.asarray(z2.T @ xy), (z1.T @ z1).toarray()


def _models():
    rng = np.random.default_rng(7)
    n = 3000
    x = rng.normal(size=n)
    x[::7] = 0.0  # explicit zeros in z
    X = np.column_stack([np.ones(n), x, rng.normal(size=n)])
    y = rng.normal(size=n)
    patient = rng.integers(0, 400, n)
    hospital = patient // 20  # nested
    student = rng.integers(0, 150, n)
    teacher = rng.integers(0, 90, n)  # crossed
    dept = teacher % 6  # teacher nested in department
    slope = np.column_stack([np.ones(n), x])
    one = np.ones((n, 1))
    yield "nested", X, y, [_term("p", patient, 400, slope), _term("h", hospital, 20, one)]
    yield (
        "nested, slope above",
        X,
        y,
        [_term("p", patient, 400, one), _term("h", hospital, 20, slope)],
    )
    yield (
        "crossed, three",
        X,
        y,
        [
            _term("s", student, 150, one),
            _term("t", teacher, 90, slope),
            _term("d", dept, 6, slope),
        ],
    )
    big = rng.integers(0, 2000, n)  # many pairs: the sort path of pair_codes
    yield (
        "crossed, sorted keys",
        X,
        y,
        [_term("a", big, 2000, slope), _term("b", student, 1500, one)],
    )


@pytest.mark.parametrize("name, X, y, terms", list(_models()), ids=[m[0] for m in _models()])
def test_blocks_equal_sparse_products_bitwise(name, X, y, terms):
    cp = cross_products(X, y, tuple(terms))
    a21, a22, a2xy, a11 = _reference(X, y, terms)
    assert cp.a21.has_canonical_format
    assert np.array_equal(cp.a21.indptr, a21.indptr)
    assert np.array_equal(cp.a21.indices, a21.indices)
    assert np.array_equal(cp.a21.data, a21.data)
    assert np.array_equal(cp.a22, a22)
    assert np.array_equal(cp.a2xy, a2xy)
    m1, s1 = terms[0].n_levels, terms[0].n_columns
    blocks = cp.a11_flat.reshape(m1, s1, s1)
    for i in range(0, m1, 37):
        sl = slice(i * s1, (i + 1) * s1)
        assert np.array_equal(blocks[i], a11[sl, sl])


def test_pair_codes_nested_both_ways_and_crossed():
    a = np.array([3, 1, 3, 0, 1, 3])
    b = np.array([0, 2, 0, 1, 2, 0])  # a nested in b (a level of a has one level of b)
    for ca, ma, cb, mb in ((a, 5, b, 3), (b, 3, a, 5)):
        pair, la, lb = pair_codes(ca, ma, cb, mb)
        assert np.array_equal(la[pair], ca) and np.array_equal(lb[pair], cb)
        assert len(set(zip(la.tolist(), lb.tolist(), strict=True))) == la.size == 3
    c = np.array([0, 0, 1, 1, 0])
    d = np.array([0, 1, 0, 1, 0])  # crossed
    pair, lc, ld = pair_codes(c, 2, d, 2)
    assert lc.size == 4 and np.array_equal(lc[pair], c) and np.array_equal(ld[pair], d)


def test_local_blocks_are_the_seen_levels_of_the_whole_layout():
    name, X, y, terms = next(iter(_models()))
    rows = np.flatnonzero(terms[0].codes % 3 == 0)  # a batch with a third of the patients
    part = [_term(t.group, t.codes[rows], t.n_levels, t.z[rows]) for t in terms]
    whole = cross_products(X[rows], y[rows], tuple(part))
    local, seen = local_cross_products(X[rows], y[rows], tuple(part))
    assert np.array_equal(seen, np.unique(part[0].codes))
    assert np.array_equal(whole.a11_flat[seen], local.a11_flat)
    assert not whole.a11_flat[np.setdiff1d(np.arange(400), seen)].any()
    assert np.array_equal(whole.a1xy[:, seen], local.a1xy)
    s1 = terms[0].n_columns
    cols = (seen[:, None] * s1 + np.arange(s1)).ravel()
    assert np.array_equal(whole.a21[:, cols].toarray(), local.a21.toarray())
    assert np.array_equal(whole.a22, local.a22) and np.array_equal(whole.a2xy, local.a2xy)
