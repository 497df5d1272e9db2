"""R's term algebra on the syntax tree of :mod:`lmm_core.formula.grammar`: :func:`parse_formula`.

This follows R's ``terms.formula`` (``src/library/stats/src/model.c``): each term is a set
of variables; ``+`` appends, ``-`` deletes (and with ``1`` removes the intercept), ``:``
forms all pairwise unions, ``*`` is ``a + b + a:b``, ``/`` is ``a + all(a):b``, ``^k``
repeats the crossing ``k - 1`` times. Duplicates are dropped keeping the first. Intercept:
``1`` sets it and ``0`` clears it, with the sense flipped inside a deletion (R's
``parity``), the last one winning. Terms are finally ordered by degree, stably.

Random-effects terms follow lme4 (``findbars``, ``expandDoubleVerts``, ``expandSlash``).

Meaning of the right-hand side (as R's ``terms.formula``): ``+`` adds terms, ``-`` removes
them, ``0``/``-1`` drop and ``1`` keeps the intercept, ``a:b`` is the interaction,
``a*b = a + b + a:b``, ``a/b = a + a:b``, ``(a+b+c)^2`` crosses to degree 2. Terms are
sorted by degree (stable), and the variables of an interaction are listed in order of
first appearance in the formula. ``(lhs | g)`` is a random-effects term; ``(lhs || g)``
is split into ``(1 | g) + (0 + t | g)`` for each term ``t`` of ``lhs``; ``(lhs | a/b)`` is
``(lhs | b:a) + (lhs | a)`` (lme4's ``expandSlash``). Arguments of functions are
arithmetic (``+ - * / ^``, unary minus, numbers, columns, numeric functions).

glmer's additions: the response may be ``cbind(successes, failures)`` (two arithmetic
arguments), and ``offset(expr)`` (arithmetic) may be any term of the right-hand side joined
with ``+``; several offsets add up (R's ``model.offset``). Both are kept apart from the terms
(:attr:`ModelSpec.offsets`); an offset anywhere else (inside a function, an interaction, a
random-effects term, or removed with ``-``) is an error naming its position.
"""

from __future__ import annotations

from lmm_core.errors import FormulaError
from lmm_core.formula.basis_args import basis_call
from lmm_core.formula.grammar import (
    BASIS_FUNCTIONS,
    COVARIANCE_FUNCTIONS,
    FACTOR_FUNCTIONS,
    MAX_TERMS,
    OFFSET_FUNCTIONS,
    RESPONSE_FUNCTIONS,
    BinOp,
    Call,
    Name,
    NAry,
    Node,
    Num,
    Paren,
    Unary,
    parse_sides,
    strip_parens,
    walk,
)
from lmm_core.formula.quoting import deparse, is_syntactic, r_number
from lmm_core.formula.spec import ModelSpec, RandomSpec, ResidualSpec, TermList

Term = frozenset[str]
GroupTree = Name | tuple  # Name, or (left, right) for ``left:right``

_BAR_HINT = (
    "`|` can only be used inside a random-effects term added to the formula, "
    "e.g. `y ~ time + (1 | patient)`"
)


def check_arithmetic(node: Node, where: str) -> None:
    """Raise unless ``node`` is plain arithmetic (numbers, columns, numeric functions); the
    rightmost offending node is named."""
    for nd in walk(node, right_first=True):
        if isinstance(nd, Call):
            _check_special_call(nd)
        if isinstance(nd, Call) and nd.func in COVARIANCE_FUNCTIONS:
            raise FormulaError(
                f"`{nd.func}(...)` at position {nd.pos} is a covariance structure of a "
                f"subject's visits: add it as a term of its own, e.g. "
                f"`y ~ visit * arm + {nd.func}(visit | patient)`.",
                nd.pos,
                nd.func,
            )
        if isinstance(nd, Call) and nd.func in BASIS_FUNCTIONS:
            raise FormulaError(
                f"`{nd.func}()` at position {nd.pos} makes several columns, so it cannot be "
                f"used inside {where}: write it as a term of its own, e.g. "
                f"`y ~ {nd.func}(time, 3) + (1 | patient)`.",
                nd.pos,
                nd.func,
            )
        if isinstance(nd, Call) and nd.func in FACTOR_FUNCTIONS:
            raise FormulaError(
                f"`{nd.func}()` at position {nd.pos} cannot be used inside {where}: "
                "arithmetic needs numbers.",
                nd.pos,
                nd.func,
            )
        if isinstance(nd, BinOp) and nd.op != "^":
            raise FormulaError(
                f"{_BAR_HINT} (found `{nd.op}` at position {nd.pos}).", nd.pos, nd.op
            )
        if isinstance(nd, NAry) and nd.kind == "inter":
            raise FormulaError(
                f"`:` (interaction) cannot be used inside {where} (near position "
                f"{nd.pos}); write the interaction outside, e.g. `log(x):group`.",
                nd.pos,
                ":",
            )


def _check_special_call(nd: Call) -> None:
    """``offset()`` and ``cbind()`` found where arithmetic or a model term is expected."""
    if nd.func in OFFSET_FUNCTIONS:
        raise FormulaError(
            f"`offset(...)` at position {nd.pos} is a known part of the linear predictor: add "
            "it as a term of its own joined with `+`, e.g. "
            "`count ~ time + offset(log(exposure)) + (1 | patient)`.",
            nd.pos,
            nd.func,
        )
    if nd.func in RESPONSE_FUNCTIONS:
        raise FormulaError(
            f"`cbind(...)` at position {nd.pos} is a binomial response (successes, failures): "
            "write it alone left of `~`, e.g. `cbind(incidence, size - incidence) ~ period + "
            "(1 | herd)`.",
            nd.pos,
            nd.func,
        )


class _Encoder:
    """Expands one one-sided formula into R's ordered term list."""

    def __init__(self) -> None:
        self.intercept = True
        self.parity = True
        self.exprs: dict[str, Node] = {}

    def variable(self, node: Name | Call) -> Term:
        if isinstance(node, Call):
            if node.func in COVARIANCE_FUNCTIONS | OFFSET_FUNCTIONS | RESPONSE_FUNCTIONS:
                check_arithmetic(node, "a model term")  # raises: it must stand alone
            check_arithmetic(node.arg, f"`{node.func}()`")
            if node.func in BASIS_FUNCTIONS:
                basis_call(node)  # options checked now, with their position
        label = deparse(node)
        self.exprs.setdefault(label, node)
        return frozenset((label,))

    def sequence(self, items: list[tuple[str, Node]]) -> list[Term]:
        terms: list[Term] = []
        for sign, node in items:
            if sign == "+":
                terms = _trim(terms + self.encode(node))
            else:
                self.parity = not self.parity
                removed = set(self.encode(node))
                self.parity = not self.parity
                terms = [t for t in terms if t not in removed]
        return terms

    def encode(self, node: Node) -> list[Term]:
        """The terms of ``node`` (R's ``EncodeVars``); numbers set the intercept."""
        if isinstance(node, Paren):
            return self.encode(node.expr)
        if isinstance(node, Num):
            self._intercept(node)
            return []
        if isinstance(node, Name | Call):
            return [self.variable(node)]
        if isinstance(node, Unary):
            if node.op == "+":
                return self.encode(node.operand)
            self.sequence([("-", node.operand)])
            return []
        if isinstance(node, BinOp):
            if node.op != "^":
                raise FormulaError(
                    f"{_BAR_HINT} (found `{node.op}` at position {node.pos}).", node.pos, node.op
                )
            return self._power(node)
        if node.kind == "sum":
            return self.sequence(list(zip(("+",) + node.ops, node.items, strict=True)))
        return self._product(node)

    def _intercept(self, node: Num) -> None:
        """``1`` keeps and ``0`` drops the intercept (the other way round inside ``-``)."""
        if node.value == 1:
            self.intercept = self.parity
        elif node.value == 0:
            self.intercept = not self.parity
        else:
            raise FormulaError(
                f"The number {r_number(node.value)} at position {node.pos} cannot be a "
                "term: only 0 or 1 (intercept) can stand alone; for arithmetic use "
                f"I(...), e.g. `I(x * {r_number(node.value)})`.",
                node.pos,
                r_number(node.value),
            )

    def _product(self, node: NAry) -> list[Term]:
        """``a:b`` (all unions), ``a*b = a + b + a:b`` and ``a/b = a + all(a):b``."""
        for item in node.items:
            inner = strip_parens(item)
            if isinstance(inner, Num):
                raise FormulaError(
                    f"The number {r_number(inner.value)} at position {inner.pos} cannot be "
                    f"part of an interaction; use I(...) for arithmetic.",
                    inner.pos,
                    r_number(inner.value),
                )
        terms = self.encode(node.items[0])
        for op, item in zip(node.ops, node.items[1:], strict=True):
            right = self.encode(item)
            _check_size(len(terms) * max(len(right), 1), item)
            if op == ":":
                terms = _trim([a | b for a in terms for b in right])
            elif op == "*":
                terms = _trim(terms + right + [a | b for a in terms for b in right])
            else:  # "/" : a + all(a):b
                whole = frozenset().union(*terms) if terms else frozenset()
                terms = _trim(terms + [whole | b for b in right])
        return terms

    def _power(self, node: BinOp) -> list[Term]:
        expo = strip_parens(node.right)
        if not isinstance(node.left, Paren):
            base = deparse(node.left)
            raise FormulaError(
                f"`{base}^{deparse(node.right)}` at position {node.pos}: in a formula `^` "
                f"crosses a sum of terms, e.g. `(a + b + c)^2`; for a power write "
                f"`I({base}^{deparse(node.right)})`.",
                node.pos,
                "^",
            )
        if not (isinstance(expo, Num) and expo.value >= 1 and expo.value == int(expo.value)):
            raise FormulaError(
                f"The power after `^` at position {node.pos} must be a whole number such as 2.",
                node.pos,
                "^",
            )
        left = self.encode(node.left)
        terms = left
        for _ in range(int(min(expo.value, len(left) + 1)) - 1):
            _check_size(len(terms) * len(left), node)
            terms = _trim([a | b for a in left for b in terms])
        return terms


def _trim(terms: list[Term]) -> list[Term]:
    return list(dict.fromkeys(terms))


def _check_size(n: int, node: Node) -> None:
    if n > MAX_TERMS:
        raise FormulaError(
            f"The formula expands to more than {MAX_TERMS} terms (near position {node.pos}); "
            "simplify the interactions.",
            node.pos,
            None,
        )


def _term_list(enc: _Encoder, terms: list[Term]) -> TermList:
    order = {v: i for i, v in enumerate(enc.exprs)}
    terms = sorted(terms, key=len)  # stable: by degree, then order of appearance
    ordered = tuple(tuple(sorted(t, key=order.__getitem__)) for t in terms)
    return TermList(enc.intercept, ordered, tuple(enc.exprs), dict(enc.exprs))


# --------------------------------------------------------------------------- random terms
def _group_tree(node: Node) -> GroupTree:
    node = strip_parens(node)
    if isinstance(node, Name):
        return node
    if isinstance(node, NAry) and node.kind == "inter":
        tree: GroupTree = _group_tree(node.items[0])
        for item in node.items[1:]:
            tree = (tree, _group_tree(item))
        return tree
    shown = deparse(node)
    hint = ""
    if isinstance(node, NAry) and "*" in node.ops:
        hint = " For crossed factors add one term per factor, e.g. `(1 | a) + (1 | b)`."
    raise FormulaError(
        f"The grouping factor `{shown}` at position {node.pos} must be a column, or columns "
        f"joined by `:` (interaction) or `/` (nesting), e.g. `(1 | hospital/patient)`.{hint}",
        node.pos,
        shown,
    )


def _groups(node: Node) -> list[GroupTree]:
    """lme4's ``expandSlash``: ``a/b/c`` gives ``c:(b:a)``, ``b:a``, ``a`` (that order)."""
    node = strip_parens(node)
    if isinstance(node, NAry) and node.kind == "prod" and set(node.ops) == {"/"}:
        parts = [_group_tree(item) for item in node.items]
        acc = parts[0]
        out = [acc]
        for part in parts[1:]:
            acc = (part, acc)
            out.insert(0, acc)
        return out
    return [_group_tree(node)]


def _group_name(tree: GroupTree) -> str:
    if isinstance(tree, Name):
        return tree.name  # deparse of a symbol: no backticks

    def dep(t: GroupTree, right: bool) -> str:
        if isinstance(t, Name):
            return t.name if is_syntactic(t.name) else f"`{t.name}`"
        text = f"{dep(t[0], False)}:{dep(t[1], True)}"
        return f"({text})" if right else text

    return dep(tree, False)


def _flatten(tree: GroupTree) -> tuple[Name, ...]:
    if isinstance(tree, Name):
        return (tree,)
    return _flatten(tree[0]) + _flatten(tree[1])


def _random_terms(bar: BinOp) -> list[RandomSpec]:
    enc = _Encoder()
    terms = enc.sequence([("+", bar.left)])
    if not enc.intercept and not terms:
        raise FormulaError(
            f"The random-effects term at position {bar.pos} has nothing to estimate on the "
            "left of `|`; write it as `(1 | patient)`.",
            bar.pos,
            bar.op,
        )
    lhs = _term_list(enc, terms)
    if bar.op == "||":
        lhs_list = [TermList(True, (), (), {})] if lhs.intercept else []
        for t in lhs.terms:
            lhs_list.append(TermList(False, (t,), t, {v: lhs.exprs[v] for v in t}))
    else:
        lhs_list = [lhs]
    groups = _groups(bar.right)
    return [RandomSpec(tl, _flatten(g), _group_name(g), bar.pos) for tl in lhs_list for g in groups]


def _check_response(lhs: Node) -> None:
    """A numeric response: arithmetic, or ``cbind(successes, failures)`` of arithmetic."""
    inner = strip_parens(lhs)
    if isinstance(inner, Call) and inner.func in FACTOR_FUNCTIONS:
        raise FormulaError(
            f"The response cannot be `{deparse(inner)}`: a linear mixed model needs a numeric "
            "outcome.",
            inner.pos,
            inner.func,
        )
    if isinstance(inner, Call) and inner.func in RESPONSE_FUNCTIONS:
        for arg in (inner.arg, *inner.extra):
            check_arithmetic(arg, "`cbind()`")
        return
    check_arithmetic(lhs, "the response")


def _offset_term(call: Call, sign: str) -> Call:
    """``offset(expr)`` joined with ``+``: its argument must be arithmetic."""
    if sign == "-":
        raise FormulaError(
            f"An offset cannot be removed with `-` (position {call.pos}); add it with `+`, "
            "e.g. `count ~ time + offset(log(exposure)) + (1 | patient)`.",
            call.pos,
            "-",
        )
    check_arithmetic(call.arg, "`offset()`")
    return call


def build_spec(text: str, lhs: Node, rhs: Node) -> ModelSpec:
    """Turn the two sides of a parsed formula into a :class:`ModelSpec`."""
    _check_response(lhs)
    response_label = deparse(lhs, backtick=not isinstance(lhs, Name))
    if isinstance(rhs, NAry) and rhs.kind == "sum":
        pairs = list(zip(("+",) + rhs.ops, rhs.items, strict=True))
    else:
        pairs = [("+", rhs)]
    fixed: list[tuple[str, Node]] = []
    random: list[RandomSpec] = []
    residual: list[ResidualSpec] = []
    offsets: list[Call] = []
    for sign, item in pairs:
        inner = strip_parens(item)
        if isinstance(inner, Call) and inner.func in OFFSET_FUNCTIONS:
            offsets.append(_offset_term(inner, sign))
            continue
        if isinstance(inner, Call) and inner.func in COVARIANCE_FUNCTIONS:
            residual.append(_residual_term(inner, sign))
            continue
        if isinstance(inner, BinOp) and inner.op in ("|", "||"):
            if inner is item:
                raise FormulaError(
                    f"`{inner.op}` at position {inner.pos} must be inside parentheses: write "
                    f"the random-effects term as `({deparse(inner.left)} {inner.op} "
                    f"{deparse(inner.right)})`, e.g. `(1 | patient)`.",
                    inner.pos,
                    inner.op,
                )
            if sign == "-":
                raise FormulaError(
                    f"A random-effects term cannot be removed with `-` (position {item.pos}).",
                    item.pos,
                    "-",
                )
            random.extend(_random_terms(inner))
        else:
            fixed.append((sign, item))
    enc = _Encoder()
    terms = enc.sequence(fixed)
    fixed_terms = _term_list(enc, terms)
    if isinstance(lhs, Name) and deparse(lhs) in fixed_terms.variables:
        raise FormulaError(
            f"The response `{lhs.name}` also appears on the right of `~`; remove it there.",
            lhs.pos,
            lhs.name,
        )
    if len(residual) > 1:
        raise FormulaError(
            f"The formula has {len(residual)} covariance structures of the visits "
            f"({', '.join(r.label for r in residual)}); a model takes at most one.",
            residual[1].pos,
            residual[1].structure,
        )
    return ModelSpec(
        text,
        lhs,
        response_label,
        fixed_terms,
        tuple(random),
        residual[0] if residual else None,
        tuple(offsets),
    )


def _residual_term(call: Call, sign: str) -> ResidualSpec:
    """``us(visit | subject)`` or ``us(visit | group / subject)`` (mmrm's syntax); ``sp_exp``
    may take several coordinates, ``sp_exp(x, y | subject)``."""
    example = f"`{call.func}(visit | patient)`"
    args = (call.arg, *call.extra)
    bar = strip_parens(args[-1])
    if sign == "-" or call.options or not (isinstance(bar, BinOp) and bar.op == "|"):
        raise FormulaError(
            f"`{call.func}(...)` at position {call.pos} is written with the visit and the "
            f"subject, e.g. {example} or `{call.func}(visit | arm / patient)` for one "
            "covariance per arm.",
            call.pos,
            call.func,
        )
    coords = tuple(strip_parens(a) for a in args[:-1]) + (strip_parens(bar.left),)
    right = strip_parens(bar.right)
    group = None
    if isinstance(right, NAry) and right.kind == "prod" and right.ops == ("/",):
        group, right = strip_parens(right.items[0]), strip_parens(right.items[1])
    named = [(c, "visit") for c in coords] + [(right, "subject"), (group, "group")]
    for node, what in named:
        if node is not None and not isinstance(node, Name):
            raise FormulaError(
                f"The {what} of `{call.func}(...)` at position {call.pos} must be a column "
                f"name, as in {example}.",
                call.pos,
                call.func,
            )
    return ResidualSpec(call.func, coords[0], right, group, call.pos, coords)  # type: ignore[arg-type]


def parse_formula(text: str) -> ModelSpec:
    """Parse ``response ~ fixed + (lhs | group)`` into a :class:`ModelSpec`.

    Parameters
    ----------
    text
        The formula, e.g. ``"Reaction ~ Days + (Days | Subject)"``.

    Returns
    -------
    ModelSpec
        Response, fixed-effects terms and random-effects terms (not yet evaluated on data).

    Raises
    ------
    FormulaError
        For any syntax error, unknown function or misuse of an operator; the message names
        the offending token and its 0-based position.
    """
    try:
        lhs, rhs = parse_sides(text)
        return build_spec(text, lhs, rhs)
    except RecursionError:  # pragma: no cover - the depth limit should prevent it
        raise FormulaError("The formula is nested too deeply; simplify it.") from None
