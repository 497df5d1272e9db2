"""Pass 1 of a streamed MMRM: the visits, the groups and the patterns of visits, by SQL.

An MMRM (``y ~ arm * visit + us(visit | patient)``, :mod:`lmm_core.model.mmrm`) needs the rows
only through each *pattern*'s summed products (the subjects of one group with the same set of
visits: ``sum_i X_i (x) X_i``, ``sum_i X_i (x) y_i``, ``sum_i y_i y_i'``,
:class:`~lmm_core.model.mmrm.PatternSums`). Pass 1 learns, where the data live:

- the fixed part's recipes and constants, the rows used and their notes, exactly as for a
  random-effects model (:func:`~lmm_core.stream.plan.plan_stream`);
- the visits: the levels of the visit column among the rows used, in the in-memory order
  (:mod:`lmm_core.design.residual`); for ``sp_exp`` the distinct points (times, or tuples of
  coordinates, sorted) with their distances and the unit of distance, the median distance
  between a subject's consecutive points (one SQL window query);
- the groups of ``us(visit | arm / patient)``;
- the number of subjects and of patterns of each size ``t`` (a ``GROUP BY`` of the subjects'
  sorted visit lists), from which the memory of the sums, ``t^2 (p^2 + p + 1)`` numbers per
  pattern, is estimated before any row is streamed; a model above the limit is refused;
- with random effects beside the structure (``y ~ arm * visit + (1 | hospital) +
  ar1(visit | patient)``, :mod:`lmm_core.stream.mmrm_random`): their terms with the whole
  table's levels (``base.reterms``) and the number of *cells* of each size (the same
  ``GROUP BY`` with the subjects' grouping columns added), ``t^2 d^2`` numbers per cell
  (``d`` columns of ``[Zc, X, y]``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lmm_core.design.model_matrix import Evaluator
from lmm_core.design.residual import MAX_TIMES, ResidualTerm, _point_labels
from lmm_core.design.residual_structures import SPATIAL, STRUCTURES, VisitCovariance
from lmm_core.errors import ModelError
from lmm_core.formula.grammar import Name
from lmm_core.formula.spec import ResidualSpec
from lmm_core.stream.plan import GIB, StreamPlan, plan_stream

EMPTY = np.zeros(0, dtype=np.int64)


@dataclass(frozen=True)
class MMRMStreamPlan:
    """What pass 1 learned for an MMRM.

    Attributes
    ----------
    base
        The fixed part's plan (:class:`~lmm_core.stream.plan.StreamPlan`, no random terms).
    residual
        The covariance term over the whole table: visits, groups, number of subjects and the
        structure (its per-row codes are empty: pass 2 codes each batch).
    patterns
        Number of patterns of each size ``t`` (``{t: count}``); with random effects beside
        the structure (``base.reterms``, the whole table's levels), of cells.
    memory_bytes
        Estimated memory of the pattern sums and of one evaluation.
    """

    base: StreamPlan
    residual: ResidualTerm
    patterns: dict[int, int]
    memory_bytes: int

    @property
    def spec(self) -> ResidualSpec:
        """The covariance term of the formula."""
        assert self.base.spec.residual is not None
        return self.base.spec.residual


def plan_mmrm_stream(formula: str, engine, *, max_memory_gib: float = 2.0) -> MMRMStreamPlan:
    """Pass 1 (module docstring) over ``engine``'s table.

    Raises
    ------
    FormulaError, DataError, ModelError
        As the in-memory path; a :class:`ModelError` with the memory estimate for sums
        above ``max_memory_gib``.
    """
    # no cross-product blocks of a random-effects model are formed: the memory checked is
    # that of the pattern (or cell) sums, below
    base = plan_stream(formula, engine, max_memory_gib=float("inf"), residual=True)
    spec = base.spec.residual
    assert spec is not None
    if spec.structure not in STRUCTURES:
        raise ModelError(f"`{spec.label}`: use one of {', '.join(STRUCTURES)}.")
    d = engine.dialect
    where = base.where
    if spec.structure in SPATIAL:
        visits, structure = _points(spec, engine, where)
    else:
        col = d.ident(spec.visit.name)
        frame = engine.query(f"SELECT DISTINCT {col} FROM {{table}} WHERE {where}")
        visits = factor_labels(frame, spec.visit.name)
        structure = VisitCovariance(spec.structure, len(visits)) if len(visits) > 1 else None
    if structure is None:
        raise ModelError(f"`{spec.label}` needs at least two visits; the data have one.")
    groups: tuple[str, ...] = ("",)
    if spec.group is not None:
        col = d.ident(spec.group.name)
        frame = engine.query(f"SELECT DISTINCT {col} FROM {{table}} WHERE {where}")
        groups = factor_labels(frame, spec.group.name)
    by = list(dict.fromkeys(nm.name for r in base.spec.random for nm in r.group_vars))
    counts = _pattern_counts(spec, engine, where, by)
    residual = ResidualTerm(
        spec=spec,
        visits=visits,
        visit_codes=EMPTY,
        subject_codes=EMPTY,
        n_subjects=int(counts["subjects"].sum()),
        group_codes=EMPTY,
        groups=groups,
        structure=structure,
    )
    patterns = {int(t): int(k) for t, k in zip(counts["t"], counts["patterns"], strict=True)}
    p = len(base.x_names)
    if base.reterms:  # cells: lmm_core.stream.mmrm_random
        width = p + 1 + sum(t.n_columns for t in base.reterms)
        memory = cell_memory(patterns, width)
        if memory > max_memory_gib * GIB:
            raise ModelError(_too_many_cells(patterns, memory, width, max_memory_gib))
    else:
        memory = pattern_memory(patterns, p)
    if memory > max_memory_gib * GIB:
        k = sum(patterns.values())
        raise ModelError(
            f"This model needs about {memory / GIB:.1f} GiB for the summed products of its "
            f"{k:,} patterns of visits ({p} fixed-effects columns), above the limit of "
            f"{max_memory_gib:g} GiB. Fit it on a sample of patients, group rare visit "
            "patterns (e.g. round the visit times), or use fewer fixed-effects columns."
        )
    return MMRMStreamPlan(base, residual, patterns, memory)


def pattern_memory(patterns: dict[int, int], p: int) -> int:
    """Bytes of the pattern sums (``t^2 (p^2 + p + 1)`` numbers per pattern of ``t`` visits),
    counted three times: the running sum, a batch's, and the criterion's copy."""
    return int(3 * 8 * sum(k * t * t * (p * p + p + 1) for t, k in patterns.items()))


def cell_memory(cells: dict[int, int], d: int) -> int:
    """Bytes of the cell sums of random effects beside the structure (``t^2 d^2`` numbers per
    cell of ``t`` visits, ``d`` columns of ``[Zc, X, y]``), counted three times."""
    return int(3 * 8 * sum(k * t * t * d * d for t, k in cells.items()))


def _too_many_cells(cells: dict[int, int], memory: int, d: int, limit: float) -> str:
    return (
        f"This model needs about {memory / GIB:.1f} GiB for the summed products of its "
        f"{sum(cells.values()):,} cells (subjects with the same visits and the same levels of "
        f"the grouping factors; {d} columns of random effects, fixed effects and outcome), "
        f"above the limit of {limit:g} GiB. Fit it on a sample of patients, group rare visit "
        "patterns, or use fewer fixed-effects columns or grouping factors with fewer levels."
    )


def factor_labels(frame: pd.DataFrame, column: str) -> tuple[str, ...]:
    """The levels of ``column`` in the in-memory order (:class:`Evaluator`'s factor)."""
    return Evaluator(frame).column(Name(column, 0), as_factor=True).labels


def _points(spec: ResidualSpec, engine, where: str) -> tuple[tuple[str, ...], VisitCovariance]:
    """``sp_exp``'s distinct points, their labels and the structure with their distances and
    the median distance between a subject's consecutive points (as
    :func:`lmm_core.design.residual._structure`)."""
    d = engine.dialect
    coords = [d.ident(c.name) for c in spec.coordinates]
    xs = [f"CAST({c} AS DOUBLE)" for c in coords]
    cols = ", ".join(f"{x} AS c{i}" for i, x in enumerate(xs))
    frame = engine.query(f"SELECT DISTINCT {cols} FROM {{table}} WHERE {where}")
    points = np.unique(frame.to_numpy(dtype=float).reshape(len(frame), len(xs)), axis=0)
    if len(points) > MAX_TIMES:
        what = "times" if len(xs) == 1 else "points"
        raise ModelError(
            f"`{spec.label}`: the data have {len(points)} distinct {what}; {spec.structure} "
            f"works with at most {MAX_TIMES}. Round the coordinates (e.g. times to days)."
        )
    if len(points) < 2:
        return _point_labels(points), None  # type: ignore[return-value]
    diff = points[:, None, :] - points[None, :, :]
    dist = np.sqrt(np.einsum("jkd,jkd->jk", diff, diff))
    subject = d.ident(spec.subject.name)
    window = f"OVER (PARTITION BY {subject} ORDER BY {', '.join(xs)})"
    gap = " + ".join(f"power({x} - lag({x}) {window}, 2)" for x in xs)
    row = engine.query(
        f"SELECT {d.quantiles('g', [0.5])} AS q, count(g) AS n FROM "
        f"(SELECT sqrt({gap}) AS g FROM {{table}} WHERE {where}) AS gaps WHERE g IS NOT NULL"
    ).iloc[0]
    scale = float(row["q"][0]) if int(row["n"]) else float(np.max(dist))
    return _point_labels(points), VisitCovariance(
        spec.structure, len(points), distances=dist, scale=scale
    )


def _pattern_counts(spec: ResidualSpec, engine, where: str, by: list[str]) -> pd.DataFrame:
    """Per size ``t``: the number of patterns and of subjects (subjects grouped by their
    group and their sorted list of visits); with grouping columns ``by`` (random effects
    beside the structure) the number of cells (patterns split by the subjects' levels)."""
    d = engine.dialect
    subject = d.ident(spec.subject.name)
    group = d.ident(spec.group.name) if spec.group is not None else "0"
    parts = [f"CAST({d.ident(c.name)} AS {_text(d)})" for c in spec.coordinates]
    point = parts[0] if len(parts) == 1 else f"concat_ws(',', {', '.join(parts)})"
    if d.name == "spark":
        key = f"concat_ws('|', sort_array(collect_list({point})))"
    else:
        key = f"string_agg({point}, '|' ORDER BY {point})"
    levels = "".join(f", min({d.ident(c)}) AS l{i}" for i, c in enumerate(by))
    keys = "g, k, t" + "".join(f", l{i}" for i in range(len(by)))
    inner = (
        f"SELECT min({group}) AS g, {key} AS k, count(*) AS t{levels} FROM {{table}} "
        f"WHERE {where} GROUP BY {subject}"
    )
    return engine.query(
        f"SELECT t, count(*) AS patterns, sum(n) AS subjects FROM (SELECT {keys}, count(*) "
        f"AS n FROM ({inner}) AS s GROUP BY {keys}) AS p GROUP BY t ORDER BY t"
    )


def _text(dialect) -> str:
    return "STRING" if dialect.name == "spark" else "VARCHAR"


__all__ = ["MMRMStreamPlan", "cell_memory", "factor_labels", "pattern_memory", "plan_mmrm_stream"]
