"""A streamed MMRM with random effects above the subject:
``fit_lmm("y ~ arm * visit + (1 | hospital) + ar1(visit | patient)", source)``.

The criterion of random effects beside a covariance of the visits
(:mod:`lmm_core.model.mmrm_random`) needs the rows only through each *cell*'s summed outer
products ``sum_i A_i (x) A_i`` of ``A_i = [Zc_i, X_i, y_i]`` (:class:`~lmm_core.model.
mmrm_random.CellSums`; a cell: the subjects of one group with the same visits and the same
level of every grouping factor), so a table of any length is fitted as the MMRM of
:mod:`lmm_core.stream.mmrm`:

1. pass 1 (:mod:`lmm_core.stream.mmrm_plan`): the design, the visits, the groups, the random
   terms with the whole table's levels (``plan.base.reterms``, as for a random-effects model)
   and the number of cells by SQL (memory ``t^2 d^2`` numbers per cell, refused above the
   limit);
2. pass 2: the rows sorted by subject (on Spark partitioned and sorted by subject), a batch of
   whole subjects at a time: our design code gives ``X``, ``y`` and the terms' ``z`` and level
   codes (:func:`~lmm_core.stream.batches._batch_arrays`), merged by grouping factor as the
   criterion merges them, and :func:`~lmm_core.model.mmrm_random.cell_sums` sums each cell's
   outer products, added to the running total (:class:`CellTotal`); ``R`` of ``X`` for the
   aliased columns;
3. the in-memory optimizer (:func:`~lmm_core.model.mmrm_random_optimize.optimize_random_mmrm`)
   on :meth:`RandomMMRMCriterion.from_sums
   <lmm_core.model.mmrm_random.RandomMMRMCriterion.from_sums>`, from the same start computed
   from the sums (the moment covariances of the visits from the cells' ``X``/``y`` parts, the
   per-level least squares from their row products).

The criterion at a given ``psi`` equals the in-memory one up to the order of the sums
(relative differences about 1e-15): the in-memory fit keeps its large cells as these sums and
its small ones as rows. The checks of the in-memory path are made per batch: a visit twice, a
subject in two groups of the structure or in two levels of a grouping factor, non-finite
transformed values.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lmm_core.design.model_matrix import Evaluator
from lmm_core.design.reterms import amalgamate
from lmm_core.errors import DataError
from lmm_core.model.linalg import single_threaded_blas
from lmm_core.model.mmrm_random import CellSums, RandomMMRMCriterion, _Layout, cell_sums
from lmm_core.model.mmrm_random_optimize import optimize_random_mmrm
from lmm_core.stream.batches import _batch_arrays, _qr_r
from lmm_core.stream.mmrm_codes import row_codes
from lmm_core.stream.mmrm_pass import PatternTotal, summed_design
from lmm_core.stream.mmrm_plan import MMRMStreamPlan
from lmm_core.stream.mmrm_random_results import StreamedMMRMRandomResult


class CellTotal(PatternTotal):
    """Pass 2's running sums with random effects beside the structure: per cell (group,
    visits, levels of the merged terms) its :class:`~lmm_core.model.mmrm_random.CellSums`,
    the rows seen and the ``R`` of ``X``. Several grouping factors with too many random
    effects together are refused here, before any row is read."""

    def __init__(self, plan: MMRMStreamPlan) -> None:
        super().__init__(plan)
        self.sums: dict[tuple, CellSums] = {}  # type: ignore[assignment]
        self.terms, _, self.parts = amalgamate(plan.base.reterms)
        n_terms = len(self.terms)
        _Layout(self.terms, np.zeros((0, n_terms), dtype=int), len(plan.base.x_names))

    def add(self, frame: pd.DataFrame) -> None:
        """Add a batch of whole subjects (the checks and messages of the in-memory path)."""
        X, y, terms = _batch_arrays(self.plan.base, frame)
        visits, subjects, groups = row_codes(self.plan.residual, frame)
        z = np.hstack([terms[k].z for pieces in self.parts for k, _ in pieces])
        levels = np.column_stack([terms[pieces[0][0]].codes for pieces in self.parts])
        self._check_levels(frame, subjects, levels)
        A = np.column_stack([z, X, y])
        for cell in cell_sums(A, subjects, visits, groups, levels):
            self.put(cell.key, cell)
        self.n += len(y)
        r = _qr_r(X)
        self.r = r if self.r is None else _qr_r(np.vstack([self.r, r]))

    def _check_levels(self, frame: pd.DataFrame, subjects: np.ndarray, levels: np.ndarray):
        """Each subject within one level of every grouping factor (as in memory)."""
        for k, term in enumerate(self.terms):
            pairs = pd.DataFrame({"s": subjects, "l": levels[:, k]}).drop_duplicates()
            twice = pairs["s"].duplicated(keep=False)
            if not twice.any():
                continue
            first = pairs[twice].sort_values(["s", "l"]).iloc[:2]
            spec = self.plan.spec
            subject = Evaluator(frame).column(spec.subject, as_factor=True)
            label = subject.labels  # type: ignore[union-attr]
            a, b = (term.levels[int(v)] for v in first["l"])
            raise DataError(
                f"`{spec.subject.name}` {label[int(first['s'].iloc[0])]} is one subject in two "
                f"levels of `{term.group}` ({a} and {b}). Random effects with a covariance of "
                "the visits need each subject within one level of every grouping factor (e.g. "
                "each patient in one hospital); check the ids."
            )


def fit_cell_sums(plan: MMRMStreamPlan, total: CellTotal, *, reml: bool = True):
    """Drop the aliased columns (R's rule on ``R``), optimize and return the result."""
    base = plan.base
    names = base.x_names
    design = summed_design(plan, total, base.reterms)
    keep = design.kept_columns
    messages = design.messages
    qz = sum(t.n_columns for t in total.terms)
    cols = np.r_[np.arange(qz), qz + keep, qz + len(names)]
    d = qz + len(names) + 1
    cells = [
        CellSums(c.group, c.visits, c.levels, c.n, _columns(c.cp, len(c.visits), d, cols))
        for c in total.sums.values()
    ]
    with single_threaded_blas():
        crit = RandomMMRMCriterion.from_sums(plan.residual, base.reterms, cells, total.n, reml)
        opt = optimize_random_mmrm(crit)
    return StreamedMMRMRandomResult(
        design.formula,
        design,
        bool(reml),
        opt,
        crit,
        messages + tuple(opt.messages),
        n_obs=total.n,
        subjects=plan.residual.n_subjects,
    )


def _columns(cp: np.ndarray, t: int, d: int, cols: np.ndarray) -> np.ndarray:
    """The outer products ``(t*t, d*d)`` of the columns ``cols`` of ``A`` only."""
    sub = cp.reshape(t * t, d, d)[:, cols][:, :, cols]
    return np.ascontiguousarray(sub.reshape(t * t, len(cols) ** 2))


__all__ = ["CellTotal", "fit_cell_sums"]
