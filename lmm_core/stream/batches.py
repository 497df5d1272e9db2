"""Pass 2 of a streamed fit: each batch of rows through our design code into blocks.

A batch (a pandas table of the rows used) is evaluated with the recipes of the plan
(:mod:`lmm_core.stream.plan`) exactly as new data are for a prediction:
``Design.fixed_matrix`` for ``X`` (every column), ``Design.response_values`` for ``y`` (minus
the offsets), :func:`~lmm_core.design.build.term_matrix` for each random-effects term, with
the levels of the whole table. Its :class:`~lmm_core.model.cross_products.CrossProducts`
are summed over batches, along with the triangular factor ``R`` of ``X = QR`` (``R`` of two
stacked batches is the ``R`` of ``[R_a; R_b]``, so the sum is exact in the sense of
orthogonal transformations), from which the aliased columns are found by R's rule once all
rows are seen: ``R`` has the inner products of ``X``'s columns, which is all that rule uses.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from lmm_core.design.build import _check_finite, _keep_columns, term_matrix
from lmm_core.design.reterms import amalgamate
from lmm_core.errors import ModelError
from lmm_core.formula.grammar import Name
from lmm_core.model.cross_products import CrossProducts, cross_products


@dataclass(frozen=True)
class BatchBlocks:
    """What a batch contributes: its cross-products (every column of ``X``), the ``R`` of
    its ``X`` and each term's column minima and maxima (a constant random slope is refused
    as in memory)."""

    cp: CrossProducts
    r: np.ndarray
    z_min: tuple[np.ndarray, ...]
    z_max: tuple[np.ndarray, ...]

    def __add__(self, other: BatchBlocks) -> BatchBlocks:
        return BatchBlocks(
            self.cp + other.cp,
            _qr_r(np.vstack([self.r, other.r])),
            tuple(np.minimum(a, b) for a, b in zip(self.z_min, other.z_min, strict=True)),
            tuple(np.maximum(a, b) for a, b in zip(self.z_max, other.z_max, strict=True)),
        )


def _qr_r(a: np.ndarray) -> np.ndarray:
    return np.linalg.qr(a, mode="r") if a.shape[0] else a


def batch_blocks(plan, frame: pd.DataFrame) -> BatchBlocks:
    """The blocks of one batch of the rows used (module docstring).

    Raises
    ------
    DataError
        For non-finite values of transformed variables (``log`` of 0, ...), as in memory.
    """
    design = plan.design
    spec = plan.spec
    y = design.response_values(frame)
    _check_finite(design.response, isinstance(spec.response, Name), y)
    if design.has_offset:
        y = y - design.offset_values(frame)
        _check_finite("offset", False, y)
    X = design.fixed_matrix(frame)
    for j, name in enumerate(plan.x_names):
        _check_finite(name, False, X[:, j])
    terms = []
    for t in plan.reterms:
        codes, z = term_matrix(t, frame)
        if (codes < 0).any():  # the levels are those of every row used: cannot happen
            raise ModelError(f"A level of `{t.group}` was not seen in pass 1 (table changed?).")
        for j, name in enumerate(t.cnames):
            _check_finite(f"{t.group}: {name}", False, z[:, j])
        terms.append(replace(t, codes=codes, z=z))
    merged = amalgamate(tuple(terms))[0]
    cp = cross_products(X, y, merged)
    return BatchBlocks(
        cp,
        _qr_r(X),
        tuple(t.z.min(axis=0) for t in terms),
        tuple(t.z.max(axis=0) for t in terms),
    )


def finish(plan, blocks: BatchBlocks) -> tuple[CrossProducts, np.ndarray, tuple[str, ...], list]:
    """Cross-products without the aliased columns of ``X`` (R's rule on ``R``).

    Returns
    -------
    cp, keep, aliased, messages
        The blocks of the kept columns, their indices, the names dropped and the note.

    Raises
    ------
    ModelError
        For a random slope on a variable constant in every row used (as in memory).
    """
    for t, lo, hi in zip(plan.reterms, blocks.z_min, blocks.z_max, strict=True):
        for j, name in enumerate(t.cnames):
            if name != "(Intercept)" and lo[j] == hi[j]:
                raise ModelError(
                    f"The random slope on `{name}` for `{t.group}` cannot be estimated: "
                    f"`{name}` has the same value ({lo[j]:g}) in every row used. Remove it "
                    f"from the random-effects term, e.g. `(1 | {t.group})`."
                )
    names = plan.x_names
    keep = _keep_columns(blocks.r)
    aliased = tuple(nm for i, nm in enumerate(names) if i not in set(keep.tolist()))
    messages = []
    cp = blocks.cp
    if aliased:
        k = len(aliased)
        messages.append(
            f"fixed-effect model matrix is rank deficient so dropping {k} column"
            f"{'s' * (k > 1)} / coefficient{'s' * (k > 1)}: {', '.join(aliased)} (each is a "
            "combination of earlier columns)"
        )
        idx = np.append(keep, len(names))
        rest = {}
        if cp.a21 is not None:
            rest = {"a21": cp.a21, "a22": cp.a22, "a2xy": cp.a2xy[:, idx]}
        cp = CrossProducts(
            n=cp.n,
            p=len(keep),
            a11_flat=cp.a11_flat,
            a1xy=np.ascontiguousarray(cp.a1xy[:, :, idx]),
            axy=cp.axy[np.ix_(idx, idx)],
            **rest,
        )
    return cp, keep, aliased, messages


__all__ = ["BatchBlocks", "batch_blocks", "finish"]
