"""Formula expressions as SQL, and the few SQL spellings that differ between engines.

Pass 1 of a streamed fit (:mod:`lmm_core.stream.plan`) learns what the design needs with
aggregates computed where the data live (DuckDB, Spark SQL). The quantities it learns are
those of :mod:`lmm_core.design.model_matrix` and :mod:`lmm_core.design.splines`, over the
same values: a ``scale(x)`` or a spline basis is learned from the finite values of its
argument over *every* row of the table (not only the rows the fit uses), as the in-memory
path does. An argument may be arithmetic of columns (``ns(log(dose), 3)``), which
:func:`to_sql` writes in SQL (``+ - * /``, ``^`` as ``power``, ``log``, ``exp``, ...).

Where a value is not a finite number in numpy (``log(0)``, ``x / 0``, ``sqrt(-1)``), DuckDB
gives an infinity or NaN and Spark gives NULL (with Spark 4's ANSI mode, ``x / 0`` would
raise: :meth:`Dialect.divide` writes ``try_divide``); both are left out by
:meth:`Dialect.finite`, as the in-memory path leaves out non-finite values.
"""

from __future__ import annotations

from dataclasses import dataclass

from lmm_core.errors import ModelError
from lmm_core.formula.grammar import BinOp, Call, Name, NAry, Node, Num, Paren, Unary
from lmm_core.formula.quoting import deparse

_FUNCTIONS = {
    "log": "ln({})",
    "log2": "log2({})",
    "log10": "log10({})",
    "log1p": "ln(1 + {})",
    "exp": "exp({})",
    "sqrt": "sqrt({})",
    "abs": "abs({})",
    "I": "({})",
}


def quote(name: str) -> str:
    """A column name as an SQL identifier (double quotes; backquotes on Spark)."""
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class Dialect:
    """What differs between DuckDB's and Spark's SQL for pass 1.

    Attributes
    ----------
    name
        ``"duckdb"`` or ``"spark"`` (Spark SQL: identifiers in backquotes, ``percentile`` for
        exact quantiles, ``try_divide``, ``isnan`` and comparisons with ``double('inf')`` for
        finiteness).
    """

    name: str

    def ident(self, column: str) -> str:
        """A column name as an identifier."""
        if self.name == "spark":
            return "`" + column.replace("`", "``") + "`"
        return quote(column)

    def finite(self, expr: str) -> str:
        """SQL condition: ``expr`` is a finite number (not NULL, NaN or infinite)."""
        if self.name == "spark":
            return (
                f"({expr} IS NOT NULL AND NOT isnan({expr}) AND "
                f"{expr} NOT IN (double('inf'), double('-inf')))"
            )
        return f"({expr} IS NOT NULL AND isfinite({expr}))"

    def present(self, column: str, is_float: bool) -> str:
        """SQL condition: the column is not missing (NULL, or NaN for a float column)."""
        col = self.ident(column)
        if not is_float:
            return f"({col} IS NOT NULL)"
        return f"({col} IS NOT NULL AND NOT isnan({col}))"

    def divide(self, left: str, right: str) -> str:
        """``left / right`` in double precision, NULL or infinite (not an error) for a 0
        divisor."""
        if self.name == "spark":
            return f"try_divide({left}, {right})"
        return f"({left} / {right})"

    def quantiles(self, expr: str, probs: list[float]) -> str:
        """Aggregate: the quantiles of ``expr`` at ``probs`` by linear interpolation
        between order statistics (R's type 7, numpy's ``linear``)."""
        values = ", ".join(repr(float(p)) for p in probs)
        if self.name == "spark":
            return f"percentile({expr}, array({values}))"
        return f"quantile_cont({expr}, [{values}])"


def to_sql(node: Node, dialect: Dialect) -> str:
    """An arithmetic formula expression as an SQL expression (double precision).

    Raises
    ------
    ModelError
        For what pass 1 cannot compute in SQL (a ``scale()`` inside a spline argument,
        ``factor()`` in arithmetic).
    """
    if isinstance(node, Num):
        return f"CAST({float(node.value)!r} AS DOUBLE)"
    if isinstance(node, Name):
        return f"CAST({dialect.ident(node.name)} AS DOUBLE)"
    if isinstance(node, Paren):
        return f"({to_sql(node.expr, dialect)})"
    if isinstance(node, Unary):
        inner = to_sql(node.operand, dialect)
        return f"(-{inner})" if node.op == "-" else inner
    if isinstance(node, BinOp):
        return f"power({to_sql(node.left, dialect)}, {to_sql(node.right, dialect)})"
    if isinstance(node, NAry) and node.kind in ("sum", "prod"):
        out = to_sql(node.items[0], dialect)
        for op, item in zip(node.ops, node.items[1:], strict=True):
            right = to_sql(item, dialect)
            out = dialect.divide(out, right) if op == "/" else f"({out} {op} {right})"
        return out
    if isinstance(node, Call) and node.func in _FUNCTIONS:
        return _FUNCTIONS[node.func].format(to_sql(node.arg, dialect))
    raise ModelError(
        f"`{deparse(node)}` cannot be learned by SQL aggregates in a streamed fit; write the "
        "variable as a column of the table first."
    )


__all__ = ["Dialect", "quote", "to_sql"]
