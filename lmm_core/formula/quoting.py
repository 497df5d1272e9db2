"""How names and expressions are written in formula text (R's deparse and quoting rules).

:func:`quote_name` is the one place that decides how a column name is written into a formula
(bare when R would print it bare, else in backticks); :func:`unquote_label` removes the
backticks again for display; :func:`deparse` writes a syntax tree back as R does.
"""

from __future__ import annotations

import re

from lmm_core.errors import FormulaError
from lmm_core.formula.grammar import BinOp, Call, Name, Node, Num, Paren, Unary, Vec

_RESERVED = frozenset(
    "if else repeat while function for next break TRUE FALSE NULL Inf NaN NA NA_integer_ "
    "NA_real_ NA_character_ in".split()
)
_SYNTACTIC = re.compile(r"^(?:[^\W\d_]|\.(?![\d]))[\w.]*$|^\.$")


def is_syntactic(name: str) -> bool:
    """True if R would print ``name`` without backticks."""
    return bool(_SYNTACTIC.match(name)) and name not in _RESERVED


def quote_name(name: str) -> str:
    """A column name as a formula writes it: bare when R would, else in backticks.

    The one place that decides how a column name is written into formula text (the builder,
    the ladder, simplified models and labels all use it), so a name such as ``SBP (mmHg)``,
    ``Visit day``, ``2nd``, ``a-b`` or ``if`` reads back as that one column. Every bare name
    is also one name for our tokenizer; non-ASCII letters (``Âge``) stay bare, as in R.

    Parameters
    ----------
    name
        The column name exactly as in the data.

    Returns
    -------
    str
        ``name`` or ```name```.

    Raises
    ------
    FormulaError
        When no formula can refer to the column: its name is empty or contains a backtick.

    Examples
    --------
    >>> quote_name("Days"), quote_name("SBP (mmHg)")
    ('Days', '`SBP (mmHg)`')
    """
    name = str(name)
    if "`" in name:
        raise FormulaError(
            f"The column name {name!r} contains a backtick (`), so a formula cannot refer to "
            "it: rename the column.",
            None,
            name,
        )
    if not name.strip():
        raise FormulaError("A column without a name cannot be used in a formula: name it.")
    return name if is_syntactic(name) else f"`{name}`"


_QUOTED = re.compile(r"`([^`]*)`")


def unquote_label(label: str) -> str:
    """A term or coefficient name as the user wrote the columns: formula backticks removed.

    The engine names coefficients as R does (the column ``Visit day`` in backticks, then
    ``:SexM``); tables, axis titles and model names show ``Visit day:SexM``. Backticks belong
    in formulas only.
    """
    return _QUOTED.sub(r"\1", str(label))


def r_number(x: float) -> str:
    """Format a double as R's ``as.character``/``deparse`` do (15 significant digits)."""
    if x != x:
        return "NaN"
    if x in (float("inf"), float("-inf")):
        return "Inf" if x > 0 else "-Inf"
    if x == 0:
        return "0"
    mant, exp_s = f"{abs(x):.14e}".split("e")
    digits = mant.replace(".", "").rstrip("0") or "0"
    nsig, e = len(digits), int(exp_s)
    sci = f"{x:.{nsig - 1}e}"
    fixed = f"{x:.{max(0, nsig - 1 - e)}f}"
    return fixed if len(fixed) <= len(sci) else sci


def deparse(node: Node, backtick: bool = True) -> str:
    """R's deparse of an expression: ``log(x)``, ``I(time^2)``, ``I(time - 5)``, ``I(x/2)``,
    ``ns(Days, df = 3)``, ``bs(age, knots = c(10, 12))``.

    As R's deparser: spaces around binary ``+ - *``, none around ``/ ^ :``.
    """
    if isinstance(node, Name):
        return quote_name(node.name) if backtick else node.name
    if isinstance(node, Num):
        return r_number(node.value)
    if isinstance(node, Call):
        return _deparse_call(node)
    if isinstance(node, Vec):
        return f"c({', '.join(r_number(v) for v in node.values)})"
    if isinstance(node, Unary):
        return f"{node.op}{deparse(node.operand)}"
    if isinstance(node, Paren):
        return f"({deparse(node.expr)})"
    if isinstance(node, BinOp):
        if node.op == "^":
            return f"{deparse(node.left)}^{deparse(node.right)}"
        return f"{deparse(node.left)} {node.op} {deparse(node.right)}"
    parts = [deparse(node.items[0])]
    for op, item in zip(node.ops, node.items[1:], strict=True):
        parts.append(op if op in (":", "/") else f" {op} ")  # R: `x/2`, `a:b`, `x * 2`
        parts.append(deparse(item))
    return "".join(parts)


def _deparse_call(node: Call) -> str:
    """``func(arg, extra..., option, name = option)``; TRUE / FALSE stay bare."""
    args = [deparse(node.arg)] + [deparse(e) for e in node.extra]
    for key, value in node.options:
        text = value.name if isinstance(value, Name) else deparse(value)
        args.append(f"{key} = {text}" if key else text)
    return f"{node.func}({', '.join(args)})"
