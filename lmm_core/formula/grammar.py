"""The formula grammar: syntax tree, tokenizer and recursive-descent parser.

A formula is parsed to a syntax tree of plain data (:class:`Name`, :class:`Num`,
:class:`Call`, :class:`Unary`, :class:`BinOp`, :class:`NAry`, :class:`Paren`). Nothing from a
formula ever reaches ``eval`` or ``exec``: functions come from a short allow-list and are
applied by :mod:`lmm_core.design.model_matrix`. The meaning of the tree (R's term algebra) is
:mod:`lmm_core.formula.terms`; how names are written back is :mod:`lmm_core.formula.quoting`.

Grammar (EBNF; ``**`` is read as ``^``; spaces, tabs and newlines are ignored)::

    formula  = expr "~" expr ;
    expr     = unary { binop unary } ;          (* precedences below, all left-assoc *)
    binop    = "|" | "||"                        (* 1: only inside "( ... )" *)
             | "+" | "-"                         (* 2 *)
             | "*" | "/"                         (* 3 *)
             | ":" ;                             (* 4 *)
    unary    = ( "-" | "+" ) unary | power ;
    power    = atom [ "^" unary ] ;              (* right-assoc *)
    atom     = NUMBER | NAME | NAME "(" expr ")" | basis | multi | "(" expr ")" ;
    basis    = ("ns" | "bs" | "poly") "(" expr { "," [ NAME "=" ] value } ")" ;
    multi    = ("cbind" | "sp_exp") "(" expr { "," expr } ")" ;
    value    = [ "-" ] NUMBER | NAME | "c" "(" [ "-" ] NUMBER { "," [ "-" ] NUMBER } ")" ;
    NAME     = letter_or_._or__ { letter | digit | "." | "_" } | "`" any-but-backtick "`" ;
    NUMBER   = digits [ "." digits ] [ ("e"|"E") ["+"|"-"] digits ] | "." digits ... ;

Functions: ``log log2 log10 log1p exp sqrt abs scale center I`` (numeric) and
``factor C`` (categorical), each with exactly one argument; ``ns bs poly`` (bases of several
columns) take the variable and then constant options, positional or named as in R
(``ns(time, df = 3)``, ``bs(age, knots = c(10, 12), degree = 2)``, ``poly(x, 2, raw = TRUE)``):
:mod:`lmm_core.formula.basis_args` checks them. ``us toep toeph ar1 ar1h cs csh ad adh sp_exp``
take a bar ``(visit | subject)`` or ``(visit | group / subject)``: the covariance of a
subject's visits (mmrm's syntax), one such term per model, added as a term of its own;
``sp_exp`` may take several coordinates, ``sp_exp(x, y | subject)`` (Euclidean distance).
``cbind(successes, failures)`` (two arithmetic arguments) is a binomial response and
``offset(expr)`` a known term of the linear predictor (glmer's syntax); where they may stand is
:mod:`lmm_core.formula.terms`' business.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass

from lmm_core.errors import FormulaError

MAX_LENGTH = 10_000
MAX_DEPTH = 100
MAX_TERMS = 1_000
NUMERIC_FUNCTIONS = frozenset(
    {"log", "log2", "log10", "log1p", "exp", "sqrt", "abs", "scale", "center", "I"}
)
FACTOR_FUNCTIONS = frozenset({"factor", "C"})
BASIS_FUNCTIONS = frozenset({"ns", "bs", "poly"})
#: residual (R-side) covariance structures of a subject's visits, mmrm's names
COVARIANCE_FUNCTIONS = frozenset(
    {"us", "toep", "toeph", "ar1", "ar1h", "cs", "csh", "ad", "adh", "sp_exp"}
)
#: ``cbind(successes, failures)``: a binomial response (left of ``~`` only)
RESPONSE_FUNCTIONS = frozenset({"cbind"})
#: ``offset(expr)``: a known term of the linear predictor (a term of its own, right of ``~``)
OFFSET_FUNCTIONS = frozenset({"offset"})
#: functions taking several expressions separated by commas (kept in :attr:`Call.extra`)
MULTI_FUNCTIONS = frozenset({"cbind", "sp_exp"})
FUNCTIONS = (
    NUMERIC_FUNCTIONS
    | FACTOR_FUNCTIONS
    | BASIS_FUNCTIONS
    | COVARIANCE_FUNCTIONS
    | RESPONSE_FUNCTIONS
    | OFFSET_FUNCTIONS
)


# --------------------------------------------------------------------------- syntax tree
@dataclass(frozen=True, slots=True)
class Name:
    """A column reference."""

    name: str
    pos: int


@dataclass(frozen=True, slots=True)
class Num:
    """A number literal."""

    value: float
    pos: int


@dataclass(frozen=True, slots=True)
class Vec:
    """A vector of numbers written ``c(2.5, 6)`` (only as an option of a basis function)."""

    values: tuple[float, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class Call:
    """An allow-listed function applied to one argument.

    ``options`` are the further arguments of a basis function (``ns``, ``bs``, ``poly``) as
    written: ``(name or None, value)`` where a value is a :class:`Num`, a :class:`Vec` or a
    :class:`Name` (``TRUE``/``FALSE``). ``extra`` are the further expression arguments of
    ``cbind`` (the failures) and ``sp_exp`` (``sp_exp(x, y | subject)``).
    """

    func: str
    arg: Node
    pos: int
    options: tuple[tuple[str | None, Node], ...] = ()
    extra: tuple[Node, ...] = ()


@dataclass(frozen=True, slots=True)
class Unary:
    """Unary ``-`` or ``+``."""

    op: str
    operand: Node
    pos: int


@dataclass(frozen=True, slots=True)
class BinOp:
    """``^`` (power / crossing) or ``|``/``||`` (random-effects bar)."""

    op: str
    left: Node
    right: Node
    pos: int


@dataclass(frozen=True, slots=True)
class NAry:
    """A chain of one precedence level: ``a + b - c``, ``a * b / c`` or ``a:b:c``."""

    kind: str  # "sum", "prod", "inter"
    items: tuple[Node, ...]
    ops: tuple[str, ...]
    pos: int


@dataclass(frozen=True, slots=True)
class Paren:
    """Explicit parentheses, kept so that labels deparse as written."""

    expr: Node
    pos: int


Node = Name | Num | Vec | Call | Unary | BinOp | NAry | Paren

_PREC = {"|": 1, "||": 1, "+": 2, "-": 2, "*": 3, "/": 3, ":": 4}
_KIND = {"|": "bar", "||": "bar", "+": "sum", "-": "sum", "*": "prod", "/": "prod", ":": "inter"}
_TOKEN_RE = re.compile(
    r"(?P<ws>\s+)|(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<name>[^\W\d][\w.]*|\.(?!\d)[\w.]*)|(?P<bq>`[^`]*`)"
    r"|(?P<op>\*\*|\|\||[~+\-*/^:|(),=])"
)
_BAD_CHARS = {
    "'": "quotes are not allowed in a formula (write column names without quotes; "
    "use backticks for names with spaces, e.g. `my column`)",
    '"': "quotes are not allowed in a formula (write column names without quotes; "
    "use backticks for names with spaces, e.g. `my column`)",
    ";": "`;` is not allowed: a formula is a single expression such as `y ~ x + (1 | g)`",
    "$": "`$` is not allowed: refer to a column by its name",
    "[": "`[` is not allowed: refer to a column by its name",
}


def suggest(word: str, candidates: list[str] | tuple[str, ...]) -> str | None:
    """Closest candidate to ``word`` (case-insensitive match first, then difflib)."""
    lower = {c.lower(): c for c in candidates}
    if word.lower() in lower:
        return lower[word.lower()]
    found = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return found[0] if found else None


# --------------------------------------------------------------------------- tokenizer
@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # "num", "name", "op", "end"
    text: str
    pos: int


def tokenize(text: str) -> list[Token]:
    """Split formula text into tokens; any character outside the grammar is an error."""
    tokens: list[Token] = []
    pos, n = 0, len(text)
    while pos < n:
        m = _TOKEN_RE.match(text, pos)
        if m is None or m.end() == pos:
            ch = text[pos]
            if ch == "`":
                raise FormulaError(
                    f"Unclosed backtick at position {pos}: close the column name with `.",
                    pos,
                    ch,
                )
            msg = _BAD_CHARS.get(ch, f"the character `{ch}` is not part of the formula grammar")
            raise FormulaError(f"Unexpected `{ch}` at position {pos}: {msg}.", pos, ch)
        kind = m.lastgroup or ""
        if kind == "bq":
            name = m.group()[1:-1]
            if not name.strip():
                raise FormulaError(f"Empty backtick name at position {pos}.", pos, "``")
            tokens.append(Token("name", name, pos))
        elif kind != "ws":
            tokens.append(Token(kind, m.group(), pos))
        pos = m.end()
    tokens.append(Token("end", "", n))
    return tokens


# --------------------------------------------------------------------------- parser
class _Parser:
    """Precedence-climbing parser with a nesting-depth limit (no RecursionError)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = tokenize(text)
        self.i = 0
        self.depth = 0

    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def _err(self, message: str, tok: Token | None = None) -> FormulaError:
        tok = tok or self.tok
        where = "at the end" if tok.kind == "end" else f"at position {tok.pos}"
        shown = "the end of the formula" if tok.kind == "end" else f"`{tok.text}`"
        return FormulaError(f"{message} (found {shown} {where}).", tok.pos, tok.text or None)

    def _enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise FormulaError(
                f"The formula is nested more than {MAX_DEPTH} levels deep (parentheses or "
                f"operators) at position {self.tok.pos}; simplify it.",
                self.tok.pos,
                self.tok.text,
            )

    def parse(self) -> tuple[Node, Node]:
        if self.tok.kind == "op" and self.tok.text == "~":
            raise self._err(
                "The formula has no response before `~`; write e.g. `y ~ time + (1 | patient)`"
            )
        lhs = self.expr(0)
        if not (self.tok.kind == "op" and self.tok.text == "~"):
            if self.tok.kind == "end":
                raise FormulaError(
                    "The formula has no `~`: write the response, then `~`, then the "
                    "predictors, e.g. `y ~ time + (1 | patient)`.",
                    len(self.text),
                    None,
                )
            raise self._err(self._unexpected_msg())
        self.i += 1
        if self.tok.kind == "end":
            raise self._err("Nothing after `~`; add predictors, e.g. `y ~ 1 + (1 | patient)`")
        rhs = self.expr(0)
        if self.tok.kind != "end":
            raise self._err(self._unexpected_msg())
        return lhs, rhs

    def _unexpected_msg(self) -> str:
        t = self.tok
        if t.text == ")":
            return "Unbalanced parentheses: this `)` has no matching `(`"
        if t.text == "~":
            return "Only one `~` is allowed"
        if t.text == "(":
            return "Missing operator before `(` (did you forget a `+`?)"
        if t.text == "=":
            return (
                "`=` only names an option of ns(), bs() or poly(), e.g. `ns(time, df = 3)`; "
                "a formula compares nothing"
            )
        prev = self.toks[self.i - 1] if self.i else None
        if prev is not None and prev.kind in ("name", "num"):  # name both, e.g. `lambda x`
            return f"Missing operator between `{prev.text}` and `{t.text}` (did you forget a `+`?)"
        return "Missing operator between terms (did you forget a `+`?)"

    def expr(self, min_prec: int) -> Node:
        items: list[Node] = [self.unary()]
        ops: list[str] = []
        op_pos: list[int] = []
        kind: str | None = None
        while self.tok.kind == "op" and self.tok.text in _PREC:
            op = self.tok.text
            if _PREC[op] < min_prec:
                break
            k = _KIND[op]
            if kind is not None and k != kind:
                items, ops, op_pos = [self._make(kind, items, ops, op_pos)], [], []
            kind = k
            optok = self.tok
            self.i += 1
            if self.tok.kind == "end" or self.tok.text in (")", "~", "|", "||", ","):
                if k == "bar" or self.tok.text in ("|", "||"):
                    raise self._err(
                        "A random-effects term needs something on each side of `|`; write it "
                        "as `(1 | patient)`"
                    )
                raise self._err(f"`{optok.text}` needs a term on its right")
            ops.append(op)
            op_pos.append(optok.pos)
            items.append(self.expr(_PREC[op] + 1))
        return items[0] if kind is None else self._make(kind, items, ops, op_pos)

    def _make(self, kind: str, items: list[Node], ops: list[str], op_pos: list[int]) -> Node:
        if kind == "bar":
            if len(items) > 2:
                raise FormulaError(
                    f"A random-effects term has only one `|` (a second one is at position "
                    f"{op_pos[1]}): write `(lhs | group)`.",
                    op_pos[1],
                    ops[1],
                )
            return BinOp(ops[0], items[0], items[1], op_pos[0])
        return NAry(kind, tuple(items), tuple(ops), _pos(items[0]))

    def unary(self) -> Node:
        t = self.tok
        if t.kind == "op" and t.text in ("-", "+"):
            self._enter()
            self.i += 1
            node = Unary(t.text, self.unary(), t.pos)
            self.depth -= 1
            return node
        return self.power()

    def power(self) -> Node:
        base = self.atom()
        t = self.tok
        if t.kind == "op" and t.text in ("^", "**"):
            self._enter()
            self.i += 1
            node = BinOp("^", base, self.unary(), t.pos)
            self.depth -= 1
            return node
        return base

    def atom(self) -> Node:
        t = self.tok
        if t.kind == "num":
            self.i += 1
            return Num(float(t.text), t.pos)
        if t.kind == "name":
            self.i += 1
            if self.tok.kind == "op" and self.tok.text == "(":
                return self._call(t)
            return Name(t.text, t.pos)
        if t.kind == "op" and t.text == "(":
            return self._paren(t)
        if t.kind == "op" and t.text in ("|", "||"):
            raise self._err(
                "A random-effects term needs something on each side of `|`; write it as "
                "`(1 | patient)`"
            )
        if t.kind == "op" and t.text == ")":
            raise self._err("Unbalanced parentheses: this `)` has no matching `(`")
        if t.kind == "end":
            raise self._err("The formula ends too early")
        raise self._err(f"Expected a column, number or `(`, not `{t.text}`")

    def _paren(self, open_tok: Token) -> Node:
        """``"(" expr ")"`` after its ``(``."""
        self._enter()
        self.i += 1
        if self.tok.text == ")":
            raise self._err("Empty parentheses `()`")
        inner = self.expr(0)
        if self.tok.text != ")":
            if self.tok.kind == "end":
                raise FormulaError(
                    f"Unbalanced parentheses: the `(` at position {open_tok.pos} is never closed.",
                    open_tok.pos,
                    "(",
                )
            raise self._err(self._unexpected_msg())
        self.i += 1
        self.depth -= 1
        return Paren(inner, open_tok.pos)

    def _call(self, name_tok: Token) -> Node:
        func = name_tok.text
        if func not in FUNCTIONS:
            close = suggest(func, sorted(FUNCTIONS))
            hint = f"; did you mean `{close}(...)`?" if close else ""
            raise FormulaError(
                f"Unknown function `{func}` at position {name_tok.pos}: allowed functions are "
                f"{', '.join(sorted(FUNCTIONS, key=str.lower))}{hint}",
                name_tok.pos,
                func,
            )
        self._enter()
        self.i += 1  # "("
        if self.tok.text == ")":
            raise self._err(f"`{func}()` needs one argument, e.g. `{func}(age)`")
        arg = self.expr(0)
        options: list[tuple[str | None, Node]] = []
        extra: list[Node] = []
        while self.tok.text == "," and func in BASIS_FUNCTIONS:
            self.i += 1
            options.append(self._option(func))
        while self.tok.text == "," and func in MULTI_FUNCTIONS:
            self.i += 1
            if self.tok.kind == "end" or self.tok.text in (")", ","):
                raise self._err(f"An argument of `{func}()` is missing after `,`")
            extra.append(self.expr(0))
        if func == "cbind" and len(extra) != 1 and self.tok.text in (")", ","):
            raise FormulaError(
                f"`cbind()` at position {name_tok.pos} takes two columns: the successes and the "
                f"failures, e.g. `cbind(incidence, size - incidence)` ({len(extra) + 1} given).",
                name_tok.pos,
                func,
            )
        if self.tok.text == ",":
            raise self._err(f"`{func}()` takes exactly one argument")
        if self.tok.text != ")":
            if self.tok.kind == "end":
                raise FormulaError(
                    f"Unbalanced parentheses: `{func}(` at position {name_tok.pos} is never "
                    "closed.",
                    name_tok.pos,
                    func,
                )
            raise self._err(self._unexpected_msg())
        self.i += 1
        self.depth -= 1
        return Call(func, arg, name_tok.pos, tuple(options), tuple(extra))

    def _option(self, func: str) -> tuple[str | None, Node]:
        """One further argument of a basis function: ``[NAME "="] value``."""
        name = None
        if self.tok.kind == "name" and self.toks[self.i + 1].text == "=":
            name = self.tok.text
            self.i += 2
        t = self.tok
        if t.kind == "name" and t.text == "c" and self.toks[self.i + 1].text == "(":
            self.i += 2
            values = [self._number(func)]
            while self.tok.text == ",":
                self.i += 1
                values.append(self._number(func))
            if self.tok.text != ")":
                raise self._err(f"`c(...)` in `{func}()` holds numbers separated by commas")
            self.i += 1
            return name, Vec(tuple(values), t.pos)
        if t.kind == "name" and self.toks[self.i + 1].text != "(":
            self.i += 1
            return name, Name(t.text, t.pos)
        return name, Num(self._number(func), t.pos)

    def _number(self, func: str) -> float:
        sign = 1.0
        if self.tok.text == "-":
            sign = -1.0
            self.i += 1
        if self.tok.kind != "num":
            raise self._err(
                f"An option of `{func}()` must be a number, `c(...)` of numbers, TRUE or FALSE, "
                f"e.g. `{func}(time, 3)`"
            )
        value = float(self.tok.text)
        self.i += 1
        return sign * value


def _pos(node: Node) -> int:
    return node.pos


def names_in(node: Node) -> list[Name]:
    """Column references in ``node``, left to right."""
    return [nd for nd in walk(node) if isinstance(nd, Name)]


def children(node: Node) -> tuple[Node, ...]:
    """The subtrees of ``node``, left to right (none for a name or a number)."""
    if isinstance(node, Call):
        return (node.arg, *node.extra)
    if isinstance(node, Unary):
        return (node.operand,)
    if isinstance(node, Paren):
        return (node.expr,)
    if isinstance(node, BinOp):
        return (node.left, node.right)
    if isinstance(node, NAry):
        return node.items
    return ()


def walk(node: Node, *, right_first: bool = False) -> Iterator[Node]:
    """Every node of the tree, depth first, each before its subtrees: the leftmost subtree
    first, or the rightmost with ``right_first``. Without recursion (no depth limit)."""
    stack: list[Node] = [node]
    while stack:
        nd = stack.pop()
        yield nd
        kids = children(nd)
        stack.extend(kids if right_first else reversed(kids))


def strip_parens(node: Node) -> Node:
    while isinstance(node, Paren):
        node = node.expr
    return node


def parse_sides(text: str) -> tuple[Node, Node]:
    """The syntax trees left and right of ``~`` in ``text``, after checking that the text is
    not empty, not longer than ``MAX_LENGTH`` characters and not nested deeper than
    ``MAX_DEPTH`` parentheses; a :class:`FormulaError` names the offending token otherwise."""
    if not isinstance(text, str):
        raise FormulaError("The formula must be text such as `y ~ time + (1 | patient)`.")
    depth = _max_paren_depth(text)
    if depth > MAX_DEPTH:
        raise FormulaError(
            f"The formula nests parentheses {depth:,} levels deep; the limit is {MAX_DEPTH}.",
            text.index("(" * (MAX_DEPTH + 1)) if "(" * (MAX_DEPTH + 1) in text else None,
            "(",
        )
    if len(text) > MAX_LENGTH:
        raise FormulaError(
            f"The formula is {len(text):,} characters long; the limit is {MAX_LENGTH:,}.",
            MAX_LENGTH,
            None,
        )
    if not text.strip():
        raise FormulaError("The formula is empty; write e.g. `y ~ time + (1 | patient)`.", 0)
    return _Parser(text).parse()


def _max_paren_depth(text: str) -> int:
    depth = best = 0
    for ch in text:
        if ch == "(":
            depth += 1
            best = max(best, depth)
        elif ch == ")":
            depth -= 1
    return best
