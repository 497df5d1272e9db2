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

from lmm_core.design.build import _check_finite, _keep_columns, aliased_message, term_matrix
from lmm_core.design.reterms import amalgamate
from lmm_core.errors import ModelError
from lmm_core.formula.grammar import Name
from lmm_core.model.cross_products import (
    BlockTotal,
    CrossProducts,
    cross_products,
    local_cross_products,
)


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


def _batch_arrays(plan, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list]:
    """``X``, ``y`` (minus offsets) and the random-effects terms of one batch, checked."""
    design = plan.design
    spec = plan.spec
    y = design.response_values(frame)
    _check_finite(design.response, isinstance(spec.response, Name), y)
    if design.has_offset:
        y = y - design.offset_values(frame)
        _check_finite("offset", False, y)
    X, terms = batch_design(plan, frame)
    return X, y, terms


def batch_design(plan, frame: pd.DataFrame) -> tuple[np.ndarray, list]:
    """``X`` and the random-effects terms (codes and ``Z`` columns) of one batch, checked
    finite; a level not seen in pass 1 is an error (the table changed between passes)."""
    X = plan.design.fixed_matrix(frame)
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
    return X, terms


def batch_blocks(plan, frame: pd.DataFrame) -> BatchBlocks:
    """The blocks of one batch of the rows used (module docstring).

    Raises
    ------
    DataError
        For non-finite values of transformed variables (``log`` of 0, ...), as in memory.
    """
    X, y, terms = _batch_arrays(plan, frame)
    merged = amalgamate(tuple(terms))[0]
    cp = cross_products(X, y, merged)
    return BatchBlocks(
        cp,
        _qr_r(X),
        tuple(t.z.min(axis=0) for t in terms),
        tuple(t.z.max(axis=0) for t in terms),
    )


class BlockSum:
    """Pass 2's running sum of batches, each batch costing its rows and the levels it has.

    :meth:`add` gives the same :class:`BatchBlocks` as summing :func:`batch_blocks` of the
    batches in order (the same floating-point sums: :class:`~lmm_core.model.cross_products.
    BlockTotal`; ``R`` of ``[R_total; R_batch]`` after each batch), without allocating and
    adding every level's blocks per batch.
    """

    def __init__(self, plan) -> None:
        self.plan = plan
        self._cp = BlockTotal()
        self._r: np.ndarray | None = None
        self._z_min: list[np.ndarray] = []
        self._z_max: list[np.ndarray] = []

    def add(self, frame: pd.DataFrame) -> None:
        """Add one batch of the rows used (errors as :func:`batch_blocks`)."""
        X, y, terms = _batch_arrays(self.plan, frame)
        merged = amalgamate(tuple(terms))[0]
        cp, seen = local_cross_products(X, y, merged)
        self._cp.add(cp, seen, merged[0].n_levels)
        r = _qr_r(X)
        lo = [t.z.min(axis=0) for t in terms]
        hi = [t.z.max(axis=0) for t in terms]
        if self._r is None:
            self._r, self._z_min, self._z_max = r, lo, hi
            return
        self._r = _qr_r(np.vstack([self._r, r]))
        self._z_min = [np.minimum(a, b) for a, b in zip(self._z_min, lo, strict=True)]
        self._z_max = [np.maximum(a, b) for a, b in zip(self._z_max, hi, strict=True)]

    def total(self) -> BatchBlocks | None:
        """The blocks of every batch added (``None`` before the first)."""
        if self._r is None:
            return None
        return BatchBlocks(self._cp.total(), self._r, tuple(self._z_min), tuple(self._z_max))


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
        messages.append(aliased_message(aliased))
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


__all__ = ["BatchBlocks", "BlockSum", "batch_blocks", "finish"]
