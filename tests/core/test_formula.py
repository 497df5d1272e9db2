"""The formula grammar: term algebra as R, names as lme4, and clean errors for bad input."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lmm_core.design.build import build_design
from lmm_core.errors import DataError, FormulaError, LMMError, ModelError
from lmm_core.formula.quoting import r_number
from lmm_core.formula.terms import parse_formula


@pytest.fixture(scope="module")
def df() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 60
    out = pd.DataFrame(
        {
            "y": rng.normal(size=n) + 5,
            "x": rng.normal(size=n),
            "a": rng.normal(size=n),
            "c": rng.normal(size=n),
            "time": np.tile(np.arange(6.0), 10),
            "visit": np.tile(np.arange(1, 7), 10),
            "f": np.tile(list("ABC"), 20),
            "g": np.repeat(list("XY"), 30),
            "b": np.tile([True, False], 30),
            "pat": np.repeat(np.arange(10), 6),
            "my var": rng.normal(size=n),
            "grp 2": np.repeat(list("PQRST"), 12),
            "one": ["a"] * n,
            "const": np.ones(n),
            "row": np.arange(n),
        }
    )
    out["cat"] = pd.Categorical(np.tile(["lo", "mid", "hi"], 20), categories=["mid", "lo", "hi"])
    return out


def names(formula: str, data: pd.DataFrame) -> list[str]:
    return list(build_design(formula, data).x_names)


# --------------------------------------------------------------------------- term algebra
@pytest.mark.parametrize(
    ("rhs", "intercept", "labels"),
    [
        ("x", True, ("x",)),
        ("0 + x", False, ("x",)),
        ("-1 + x", False, ("x",)),
        ("x - 1", False, ("x",)),
        ("0 + x + 1", True, ("x",)),
        ("a*b", True, ("a", "b", "a:b")),
        ("a*b*c", True, ("a", "b", "c", "a:b", "a:c", "b:c", "a:b:c")),
        ("(a+b+c)^2", True, ("a", "b", "c", "a:b", "a:c", "b:c")),
        ("(a+b)**2", True, ("a", "b", "a:b")),
        ("a/b", True, ("a", "a:b")),
        ("(a+b)/c", True, ("a", "b", "a:b:c")),
        ("a*b - a", True, ("b", "a:b")),
        ("b:a + a", True, ("a", "b:a")),  # variables in order of first appearance
        ("a:b + c + a", True, ("c", "a", "a:b")),  # by degree, then appearance
        ("x + x", True, ("x",)),
        ("1", True, ()),
    ],
)
def test_term_algebra_as_r(rhs: str, intercept: bool, labels: tuple[str, ...]) -> None:
    spec = parse_formula(f"y ~ {rhs} + (1 | g)")
    assert spec.fixed.intercept is intercept
    assert spec.fixed.labels() == labels


def test_random_terms_expand_as_lme4() -> None:
    spec = parse_formula("y ~ t + (t || s) + (1 | a/b/c) + (0 + t | h:k)")
    got = [(r.group, r.lhs.intercept, r.lhs.labels()) for r in spec.random]
    assert got == [
        ("s", True, ()),
        ("s", False, ("t",)),
        ("c:(b:a)", True, ()),
        ("b:a", True, ()),
        ("a", True, ()),
        ("h:k", False, ("t",)),
    ]
    assert [v.name for v in spec.random[2].group_vars] == ["c", "b", "a"]


def test_labels_deparse_as_r() -> None:
    spec = parse_formula(
        "log(y) ~ I(time^2) + I(time - 5) + I(x*2) + I(x/2) + I(-x) + I(1e5*x) + "
        "log(x + 1) + scale(x) + (1 | g)"
    )
    assert spec.response_label == "log(y)"
    assert spec.fixed.labels() == (
        "I(time^2)",
        "I(time - 5)",
        "I(x * 2)",
        "I(x/2)",
        "I(-x)",
        "I(1e+05 * x)",
        "log(x + 1)",
        "scale(x)",
    )


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1"),
        (2.5, "2.5"),
        (1e5, "1e+05"),
        (123456.0, "123456"),
        (1e-4, "1e-04"),
        (0.001, "0.001"),
        (1 / 3, "0.333333333333333"),
        (-2.0, "-2"),
        (0.0, "0"),
    ],
)
def test_numbers_print_as_r(value: float, text: str) -> None:
    assert r_number(value) == text


# --------------------------------------------------------------------------- names vs R
@pytest.mark.parametrize(
    ("rhs", "expected"),
    [
        ("0 + f", ["fA", "fB", "fC"]),
        ("x:f", ["(Intercept)", "x:fA", "x:fB", "x:fC"]),
        ("f*g", ["(Intercept)", "fB", "fC", "gY", "fB:gY", "fC:gY"]),
        ("g*f", ["(Intercept)", "gY", "fB", "fC", "gY:fB", "gY:fC"]),
        ("(a+x+c)^2", ["(Intercept)", "a", "x", "c", "a:x", "a:c", "x:c"]),
        ("f/x", ["(Intercept)", "fB", "fC", "fA:x", "fB:x", "fC:x"]),
        ("0 + x:f + g", ["gX", "gY", "x:fA", "x:fB", "x:fC"]),
        ("0 + f + g", ["fA", "fB", "fC", "gY"]),
        (
            "I(time^2) + I(time - 5) + I(x*2)",
            ["(Intercept)", "I(time^2)", "I(time - 5)", "I(x * 2)"],
        ),
        ("factor(visit)", ["(Intercept)"] + [f"factor(visit){k}" for k in range(2, 7)]),
        ("C(f)", ["(Intercept)", "C(f)B", "C(f)C"]),
        ("b", ["(Intercept)", "bTRUE"]),
        ("cat", ["(Intercept)", "catlo", "cathi"]),  # Categorical keeps its order
        (
            "`my var` + `grp 2`",
            ["(Intercept)", "`my var`", "`grp 2`Q", "`grp 2`R", "`grp 2`S", "`grp 2`T"],
        ),
        (
            "scale(x) + center(a) + log1p(abs(c))",
            ["(Intercept)", "scale(x)", "center(a)", "log1p(abs(c))"],
        ),
    ],
)
def test_fixed_names_as_r(df: pd.DataFrame, rhs: str, expected: list[str]) -> None:
    assert names(f"y ~ {rhs} + (1 | pat)", df) == expected


def test_response_transform_and_values(df: pd.DataFrame) -> None:
    d = build_design("log(y) ~ x + (1 | pat)", df)
    assert d.response == "log(y)"
    np.testing.assert_allclose(d.y, np.log(df["y"]))


def test_transform_values(df: pd.DataFrame) -> None:
    d = build_design("y ~ I(time^2) + scale(x) + center(a) + factor(visit) + (1 | pat)", df)
    np.testing.assert_allclose(d.X[:, 1], df["time"] ** 2)
    x = df["x"].to_numpy()
    np.testing.assert_allclose(d.X[:, 2], (x - x.mean()) / x.std(ddof=1))
    np.testing.assert_allclose(d.X[:, 3], df["a"] - df["a"].mean())
    np.testing.assert_array_equal(d.X[:, 4], (df["visit"] == 2).astype(float))


def test_random_lhs_coding(df: pd.DataFrame) -> None:
    d = build_design("y ~ x + (f | g) + (0 + f | pat) + (x*a || pat)", df)
    got = [(t.group, t.cnames) for t in d.reterms]
    # levels (2, 10, 10, 10, 10, 10) increase, so lme4 reorders by rev(order(nl)): ties reversed
    assert got == [
        ("pat", ("x:a",)),
        ("pat", ("a",)),
        ("pat", ("x",)),
        ("pat", ("(Intercept)",)),
        ("pat", ("fA", "fB", "fC")),
        ("g", ("(Intercept)", "fB", "fC")),
    ]
    assert build_design("y ~ (1 | `grp 2`)", df).reterms[0].group == "grp 2"
    assert build_design("y ~ (1 | pat:`grp 2`)", df).reterms[0].group == "pat:`grp 2`"


# --------------------------------------------------------------------------- errors
def raises(exc: type[LMMError], formula: str, data: pd.DataFrame, *words: str) -> LMMError:
    with pytest.raises(exc) as info:
        build_design(formula, data)
    for word in words:
        assert word in str(info.value), (word, str(info.value))
    return info.value


@pytest.mark.parametrize(
    ("formula", "words", "pos", "token"),
    [
        ("y ~ lg(x) + (1|pat)", ["`lg`", "position 4", "log"], 4, "lg"),
        ("y ~ Time + (1|pat)", ["`Time`", "`time`"], 4, "Time"),
        ("y ~ tme + (1|pat)", ["`tme`", "`time`"], 4, "tme"),
        ("y ~ x + (1|ppat)", ["`ppat`", "`pat`"], 11, "ppat"),
        ("~ x + (1|pat)", ["no response"], 0, "~"),
        ("y x + (1|pat)", ["Missing operator"], 2, "x"),
        ("y + x + (1|pat)", ["no `~`"], 15, None),
        ("y ~ (x + (1|pat)", ["Unbalanced", "never closed"], 4, "("),
        ("y ~ x + (1|pat))", ["Unbalanced", "no matching"], 15, ")"),
        ("y ~ x + 1 | pat", ["inside parentheses", "(1 | patient)"], 10, "|"),
        ("y ~ x + ( | pat)", ["each side of `|`", "(1 | patient)"], 10, "|"),
        ("y ~ x + (1 | )", ["each side of `|`", "(1 | patient)"], 13, ")"),
        ("y ~ x + (0 | pat)", ["nothing to estimate", "(1 | patient)"], 11, "|"),
        ("y ~ x + 2 + (1|pat)", ["number 2", "I("], 8, "2"),
        ("y ~ x^2 + (1|pat)", ["I(x^2)"], 5, "^"),
        ("y ~ x + (1|pat*x)", ["grouping factor", "(1 | a) + (1 | b)"], 11, "pat * x"),
        ("y ~ x + (x | pat | f)", ["only one `|`"], 17, "|"),
        ("y ~ log(x, 2) + (1|pat)", ["exactly one argument"], 9, ","),
        ("y ~ I(x:time) + (1|pat)", ["`:`", "inside `I()`"], 6, ":"),
        ("y ~ x ~ a + (1|pat)", ["one `~`"], 6, "~"),
        ("y ~ ", ["Nothing after `~`"], 4, None),
        ("", ["empty"], 0, None),
        ("y ~ `x + (1|pat)", ["backtick"], 4, "`"),
    ],
)
def test_formula_errors_name_the_token(df, formula, words, pos, token) -> None:
    err = raises(FormulaError, formula, df, *words)
    assert err.position == pos
    assert err.token == token


def test_categorical_in_arithmetic_is_an_error(df: pd.DataFrame) -> None:
    err = raises(FormulaError, "y ~ log(f) + (1|pat)", df, "`f`", "categorical")
    assert err.position == 8


@pytest.mark.parametrize(
    ("formula", "words"),
    [
        ("y ~ x", ["no random-effects term", "(1 | patient)"]),
        ("y ~ x + (1|one)", ["`one`", "only one level"]),
        ("y ~ x + (1|row)", ["`row`", "must be < number of observations"]),
        ("y ~ x + (const|pat)", ["`const`", "same value"]),
        ("y ~ x + (x || pat) + (const || pat)", ["`const`"]),
        ("y ~ one + (1|pat)", ["`one`", "only one level"]),
    ],
)
def test_model_errors(df, formula, words) -> None:
    raises(ModelError, formula, df, *words)


def test_too_many_random_effects(df: pd.DataFrame) -> None:
    small = df.iloc[:12]  # 2 patients x 6 rows; (x*time | pat) has 4 effects x 2 = 8 < 12 ok
    build_design("y ~ 1 + (x + time | pat)", small)
    raises(ModelError, "y ~ 1 + (x * time * a | pat)", small, "random effects", "< number")


def test_non_numeric_response(df: pd.DataFrame) -> None:
    raises(DataError, "f ~ x + (1|pat)", df, "`f`", "not numeric")
    raises(FormulaError, "factor(y) ~ x + (1|pat)", df, "response", "numeric")


HOSTILE = [
    "__import__('os').system('touch {marker}')",
    "y ~ __import__('os').system('touch {marker}') + (1|pat)",
    "y ~ x.__class__ + (1|pat)",
    "y ~ x.__class__.__bases__[0].__subclasses__() + (1|pat)",
    "y ~ eval(open('{marker}', 'w')) + (1|pat)",
    "y ~ exec(x) + (1|pat)",
    "y ~ x + (1|pat); import os; os.system('touch {marker}')",
    'y ~ "x" + (1|pat)',
    "y ~ I(__import__) + (1|pat)",
    "y ~ x @ a + (1|pat)",
    "y ~ {{x}} + (1|pat)",
    "y ~ lambda: 0 + (1|pat)",
    "y ~ x if x else a + (1|pat)",
]


@pytest.mark.parametrize("template", HOSTILE)
def test_hostile_formulas_are_rejected(df, template, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    with pytest.raises(FormulaError):
        build_design(template.format(marker=marker), df)
    assert not marker.exists()


@pytest.mark.parametrize(
    "formula",
    [
        "y ~ " + "(" * 5000 + "x" + ")" * 5000 + " + (1|pat)",
        "y ~ " + "(" * 150 + "x" + ")" * 150 + " + (1|pat)",
        "y ~ " + "-" * 5000 + "x + (1|pat)",
        "y ~ I(" + "x^" * 3000 + "x) + (1|pat)",
        "y ~ " + " + ".join(["x"] * 25_000) + " + (1|pat)",
        "y ~ " + "a" * 100_000 + " + (1|pat)",
    ],
    ids=["5000-parens", "150-parens", "5000-minus", "power-chain", "100k-sum", "100k-name"],
)
def test_huge_or_deep_formulas_fail_fast(df, formula) -> None:
    start = time.perf_counter()
    with pytest.raises(FormulaError, match="deep|long|limit"):
        build_design(formula, df)
    assert time.perf_counter() - start < 1.0


def test_combinatorial_blowup_is_refused(df: pd.DataFrame) -> None:
    cols = " + ".join(f"x{i}" for i in range(40))
    with pytest.raises(FormulaError, match="more than"):
        parse_formula(f"y ~ ({cols})^4 + (1 | g)")


def test_error_types_are_value_errors(df: pd.DataFrame) -> None:
    with pytest.raises(ValueError):
        build_design("y ~ nope + (1|pat)", df)


# names that need quoting: every formula the app writes goes through quote_name
AWKWARD_NAMES = [
    "SBP (mmHg)", "Visit day", "x[1]", "dose mg/kg", "Âge", "Größe", "é", "a-b", "a+b",
    "a*b", "a/b", "a:b", "a|b", "a~b", "a^2", "2nd", "if", "TRUE", "_x", "..1", "x y (ü)",
]  # fmt: skip


@pytest.mark.parametrize("name", AWKWARD_NAMES)
def test_quote_name_reads_back_as_the_same_column(name: str) -> None:
    from lmm_core.formula.quoting import quote_name, unquote_label

    y, x, g = (quote_name(f"{name}{k}") for k in ("", "2", "3"))
    spec = parse_formula(f"{y} ~ {x} + ({x} | {g})")
    assert spec.response.name == name
    assert [r.group_vars[0].name for r in spec.random] == [name + "3"]
    assert unquote_label(spec.fixed.labels()[0]) == name + "2"
    assert quote_name(name).strip("`") == name


def test_quote_name_bare_names_and_refusals() -> None:
    from lmm_core.errors import FormulaError
    from lmm_core.formula.quoting import quote_name, unquote_label

    assert [quote_name(n) for n in ("Days", "x.1", "Âge", ".a")] == ["Days", "x.1", "Âge", ".a"]
    assert quote_name("SBP (mmHg)") == "`SBP (mmHg)`"
    with pytest.raises(FormulaError, match="backtick"):
        quote_name("a`b")
    with pytest.raises(FormulaError, match="without a name"):
        quote_name("  ")
    assert unquote_label("`Visit day`:SexM") == "Visit day:SexM"
    assert unquote_label("I(`Visit day`/7)") == "I(Visit day/7)"
    assert unquote_label("(Intercept)") == "(Intercept)"


# --------------------------------------------------------------------------- cbind, offset
def test_cbind_and_offsets_parse_to_the_spec() -> None:
    spec = parse_formula("cbind(k, n - k) ~ offset(log(e)) + x + (1 | pat) + offset(2 * `my var`)")
    assert spec.response_label == "cbind(k, n - k)"
    assert spec.cbind is not None and [n.name for n in spec.cbind[:1]] == ["k"]
    assert [str(o.func) for o in spec.offsets] == ["offset", "offset"]
    assert spec.fixed.labels() == ("x",) and spec.fixed.intercept
    refs = [nm.name for nm in spec.column_refs()]
    assert refs == ["k", "n", "k", "e", "x", "pat", "my var"]
    assert parse_formula("y ~ x + (1 | pat)").offsets == ()
    assert parse_formula("y ~ x + (1 | pat)").cbind is None
    only = parse_formula("y ~ offset(e) + (1 | pat)")
    assert only.fixed.intercept and only.fixed.terms == ()


def test_design_evaluates_cbind_and_summed_offsets(df: pd.DataFrame) -> None:
    data = df.assign(k=np.tile([0.0, 1, 2, 3], 15), n=5.0, e=np.exp(df["x"]))
    design = build_design(
        "cbind(k, n - k) ~ a + offset(log(e)) + offset(time / 2) + (1 | pat)", data
    )
    np.testing.assert_allclose(design.y, data["k"])
    np.testing.assert_allclose(design.trials, 5.0)
    np.testing.assert_allclose(design.offset, data["x"] + data["time"] / 2, rtol=1e-12)
    assert design.x_names == ("(Intercept)", "a")


@pytest.mark.parametrize(
    ("formula", "words", "pos", "token"),
    [
        ("cbind(y) ~ x + (1|pat)", ["two columns", "(1 given)"], 0, "cbind"),
        ("cbind(y, x, a) ~ x + (1|pat)", ["two columns", "(3 given)"], 0, "cbind"),
        ("y ~ cbind(x, a) + (1|pat)", ["binomial response", "left of `~`"], 4, "cbind"),
        ("log(cbind(y, x)) ~ a + (1|pat)", ["binomial response"], 4, "cbind"),
        ("cbind(y, factor(x)) ~ a + (1|pat)", ["`factor()`", "`cbind()`"], 9, "factor"),
        ("y ~ x * offset(a) + (1|pat)", ["term of its own", "`+`"], 8, "offset"),
        ("y ~ log(offset(a)) + (1|pat)", ["term of its own"], 8, "offset"),
        ("y ~ x + (offset(a) | pat)", ["term of its own"], 9, "offset"),
        ("y ~ x - offset(a) + (1|pat)", ["cannot be removed"], 8, "-"),
        ("y ~ x + offset(a, 2) + (1|pat)", ["exactly one argument"], 16, ","),
        ("y ~ x + offset(f) + (1|pat)", ["`f`", "categorical"], 15, "f"),
        ("y ~ x + offset(log(aa)) + (1|pat)", ["`aa`", "did you mean `a`"], 19, "aa"),
        ("y ~ x + offset(ns(a, 3)) + (1|pat)", ["several columns"], 15, "ns"),
    ],
)
def test_cbind_and_offset_errors_name_the_token(df, formula, words, pos, token) -> None:
    err = raises(FormulaError, formula, df, *words)
    assert err.position == pos, str(err)
    assert err.token == token


def test_offset_and_cbind_never_evaluate_text(df: pd.DataFrame, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    for text in [
        f"y ~ x + offset(__import__('os').system('touch {marker}')) + (1|pat)",
        f"cbind(y, eval(open('{marker}', 'w'))) ~ x + (1|pat)",
        "y ~ x + offset(x.__class__) + (1|pat)",
    ]:
        with pytest.raises(FormulaError):
            build_design(text, df)
    assert not marker.exists()


def test_observation_level_groups_pass_without_the_nobs_check(df: pd.DataFrame) -> None:
    raises(ModelError, "y ~ x + (1|row) + (1|pat)", df, "must be < number of observations")
    design = build_design("y ~ x + (1|row) + (1|pat)", df, check_nobs=False)
    assert [t.group for t in design.reterms] == ["row", "pat"]
    assert design.reterms[0].n_levels == len(df)
    with pytest.raises(ModelError, match="only one level"):
        build_design("y ~ x + (1|one)", df, check_nobs=False)
