"""A model's name from its formula: the shape of time, the random effects, what else differs.

No Streamlit here. :func:`formula_label` names a model from its shape of time and its
random-effects structure ("random intercept", "random slope", "quadratic + random slope",
"natural spline (3 df) + random curve (2 df)"); :func:`model_label` adds the fixed effects
beyond time, the rescaling of time and the method ("random slope + Age", "random slope
(time/7)", "random intercept (ML)"). Both read any formula, typed or built.
"""

from __future__ import annotations

from collections.abc import Collection

from dashboard.analysis.time_shape import basis_of
from lmm_core.formula.basis_args import BasisCall
from lmm_core.formula.grammar import Call, Name, NAry, Node, Num, strip_parens
from lmm_core.formula.quoting import r_number, unquote_label
from lmm_core.formula.spec import ModelSpec, RandomSpec
from lmm_core.formula.terms import parse_formula

__all__ = ["MAX_FIXED_CHARS", "MAX_TERM_CHARS", "formula_label", "model_label"]

MAX_FIXED_CHARS = 32  # fixed terms named in a model label up to this length; more counted
MAX_TERM_CHARS = 24  # a longer term is cut


def _basis_df(call: BasisCall) -> int:
    """Number of columns of a basis: its degree (poly), its df, or counted from its knots."""
    if call.func == "poly":
        return call.degree
    if call.df is not None:
        return call.df
    base = 1 if call.func == "ns" else call.degree
    return len(call.knots or ()) + base + int(call.intercept)


def _curve_words(call: BasisCall, random: bool = False) -> str:
    """``"natural spline (3 df)"`` (``"curve (3 df)"`` for a random one), ``"quadratic"``,
    ``"cubic"``, ``"polynomial (degree 4)"``, ``"B-spline (5 df)"``."""
    df = _basis_df(call)
    if call.func == "poly":
        return {2: "quadratic", 3: "cubic"}.get(df, f"polynomial (degree {df})")
    if call.func == "bs":
        return f"B-spline ({df} df)"
    return f"curve ({df} df)" if random else f"natural spline ({df} df)"


def _time_divisor(node: object, time: str | None) -> float | None:
    """1 for the time column itself, k for ``I(time/k)``, else ``None``."""
    node = strip_parens(node)
    if isinstance(node, Name):
        return 1.0 if node.name == time else None
    if not (isinstance(node, Call) and node.func == "I"):
        return None
    arg = strip_parens(node.arg)
    if (
        isinstance(arg, NAry)
        and arg.ops == ("/",)
        and isinstance(strip_parens(arg.items[0]), Name)
        and strip_parens(arg.items[0]).name == time
        and isinstance(strip_parens(arg.items[1]), Num)
    ):
        return strip_parens(arg.items[1]).value
    return None


def _time_basis(node: Node, time: str | None) -> BasisCall | None:
    """The basis call when ``node`` is a spline or polynomial of ``time`` (or of
    ``I(time/k)``), else ``None``."""
    call = basis_of(node)
    if call is None or _time_divisor(strip_parens(node).arg, time) is None:
        return None
    return call


def _how_time_enters(node: Node, time: str | None) -> float | None:
    """The divisor of time when ``node`` is time, ``I(time/k)`` or a curve of either."""
    if _time_basis(node, time) is not None:
        return _time_divisor(strip_parens(node).arg, time)
    return _time_divisor(node, time)


def _spec_and_time(formula: str | ModelSpec, time: str | None) -> tuple[ModelSpec, str | None]:
    """The parsed formula, and the time column: ``time`` when given, else the column of the
    first spline or polynomial of a plain column (fixed part first), else ``None``."""
    spec = parse_formula(formula) if isinstance(formula, str) else formula
    if time is not None:
        return spec, time
    for tl in [spec.fixed, *(r.lhs for r in spec.random)]:
        for v in tl.variables:
            node = strip_parens(tl.exprs[v])
            if basis_of(node) is not None and isinstance(strip_parens(node.arg), Name):
                return spec, strip_parens(node.arg).name
    return spec, None


# --------------------------------------------------------------------------- random effects
def _slope_words(term: RandomSpec) -> tuple[int, list[str]]:
    """Straight slopes (count) and curves (words: a spline or polynomial of any column) on a
    term's left-hand side."""
    straight, curves = 0, []
    for t in term.lhs.terms:
        call = basis_of(term.lhs.exprs[t[0]]) if len(t) == 1 else None
        if call is None:
            straight += 1
        else:
            curves.append(_curve_words(call, random=True))
    return straight, curves


def _merged(spec: ModelSpec) -> dict[str, tuple[bool, int, list[str], bool]]:
    """Group -> (intercept, straight slopes, curves, correlated), merging the ``||`` pieces
    of one group."""
    out: dict[str, tuple[bool, int, list[str], bool]] = {}
    for term in spec.random:
        icpt = term.lhs.intercept
        straight, curves = _slope_words(term)
        if term.group in out:
            old_icpt, old_straight, old_curves, _ = out[term.group]
            out[term.group] = (
                old_icpt or icpt,
                old_straight + straight,
                old_curves + curves,
                False,
            )
        else:
            out[term.group] = (icpt, straight, curves, True)
    return out


def _effects_noun(straight: int, curves: list[str]) -> str:
    """``"slope"``, ``"slopes"``, ``"curve (2 df)"``, ``"quadratic and slope"``."""
    words = list(curves)
    if straight:
        words.append("slope" if straight == 1 else "slopes")
    return " and ".join(words)


def _describe(intercept: bool, straight: int, curves: list[str], correlated: bool) -> str:
    if not straight and not curves:
        return "random intercept"
    noun = f"random {_effects_noun(straight, curves)}"
    if not intercept:
        return f"{noun} only"
    if not correlated:
        return f"uncorrelated {noun}"
    return noun


def _population_words(spec: ModelSpec, time: str | None) -> list[str]:
    """The shape of the population curve when time enters the fixed part as a spline or
    polynomial (``["natural spline (3 df)"]``); empty for a straight line."""
    words = []
    for term in spec.fixed.terms:
        call = _time_basis(spec.fixed.exprs[term[0]], time) if len(term) == 1 else None
        if call is not None:
            words.append(_curve_words(call))
    return words


def formula_label(
    formula: str | ModelSpec, subject: str | None = None, time: str | None = None
) -> str:
    """A short name for a model from its shape of time and random-effects structure.

    A curved population curve is named first ("natural spline (3 df)", "quadratic"; nothing
    for a straight line). The subject's level (``subject``, or the first group when unknown)
    follows ("random intercept", "random slope", "uncorrelated random slopes", "random curve
    (2 df)", "random quadratic"); other levels follow as "+ hospital intercept" or "+
    hospital slope". So ``ns(t, 3) + (ns(t, 2) | id)`` is "natural spline (3 df) + random
    curve (2 df)" and ``poly(t, 2) + (t | id)`` is "quadratic + random slope".

    Parameters
    ----------
    formula
        Formula text or a parsed :class:`lmm_core.formula.spec.ModelSpec`.
    subject
        Name of the subject column, if known.
    time
        Name of the time column, if known (else the column of the first spline or
        polynomial term).

    Raises
    ------
    lmm_core.FormulaError
        When the text does not parse.
    """
    spec, time = _spec_and_time(formula, time)
    shape = _population_words(spec, time)
    groups = _merged(spec)
    if not groups:
        return " + ".join([*shape, "no random effects"])
    main = None
    if subject is not None:
        columns = {r.group: {v.name for v in r.group_vars} for r in spec.random}
        main = next((g for g in groups if subject in columns[g]), None)
    if main is None:
        main = next(iter(groups))
    words = [*shape, _describe(*groups[main])]
    for name, (icpt, straight, curves, _) in groups.items():
        if name == main:
            continue
        kind = _effects_noun(straight, curves) or "intercept"
        if (straight or curves) and icpt:
            kind = f"intercept + {kind}"
        words.append(f"{unquote_label(name)} {kind}")
    return " + ".join(words)


# --------------------------------------------------------------------------- fixed effects
def _fixed_words(spec: ModelSpec, time: str | None) -> list[str]:
    """What the fixed part adds to ``outcome ~ time``, as plain words, and how time enters
    (a curve of time counts as time: its shape is named by :func:`formula_label`)."""
    words: list[str] = []
    divisors: set[float] = set()
    for term in spec.fixed.terms:
        shown = []
        for v in term:
            divisor = _how_time_enters(spec.fixed.exprs[v], time)
            if divisor is not None:
                divisors.add(divisor)
            shown.append(unquote_label(v) if divisor is None else str(time))
        if len(term) > 1 or shown[0] != time:
            words.append(" x ".join(shown))
    words = [w if len(w) <= MAX_TERM_CHARS else w[: MAX_TERM_CHARS - 3] + "..." for w in words]
    shown = 0
    while shown < len(words) and len(" + ".join(words[: shown + 1])) <= MAX_FIXED_CHARS:
        shown += 1
    if shown < len(words):
        shown = max(shown, 1)
        rest = len(words) - shown
        words = [*words[:shown], f"{rest} more term{'s' if rest > 1 else ''}"]
    words = [f"+ {w}" for w in words]
    if time is not None and not divisors:
        words.insert(0, f"without {time}")
    elif divisors - {1.0}:
        words.append(f"({time}/{r_number(max(divisors - {1.0}))})")
    return words


def model_label(
    formula: str | ModelSpec,
    subject: str | None = None,
    time: str | None = None,
    *,
    reml: bool = True,
    taken: Collection[str] = (),
) -> str:
    """A short name that says what distinguishes a model: its shape of time, its random
    effects, the fixed effects beyond time, the method when it is ML.

    ``"random slope"`` for ``y ~ time + (time | id)``; ``"random slope + Age"`` with Age;
    ``"random intercept + Sex + time x Sex (ML)"``; ``"random slope (time/7)"`` with time
    rescaled; ``"natural spline (3 df) + random curve (2 df) + arm + time x arm"`` for
    ``y ~ ns(time, 3) * arm + (ns(time, 2) | id)``. A label already in ``taken`` (the labels
    of the other fits of the data) gets ``#2``, ``#3``..., so two fits never share a name.

    Parameters
    ----------
    formula
        Formula text or a parsed :class:`lmm_core.formula.spec.ModelSpec`.
    subject, time
        The subject and time columns, if known (without ``time``, the column of the first
        spline or polynomial term counts as time).
    reml
        Whether the model is fitted by REML (the default, not mentioned).
    taken
        Labels already in use.

    Raises
    ------
    lmm_core.FormulaError
        When the text does not parse.
    """
    spec, time = _spec_and_time(formula, time)
    label = " ".join([formula_label(spec, subject, time), *_fixed_words(spec, time)])
    if not reml:
        label += " (ML)"
    candidate, k = label, 1
    while candidate in taken:
        k += 1
        candidate = f"{label} #{k}"
    return candidate
