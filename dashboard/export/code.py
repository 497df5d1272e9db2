"""Code that reproduces a fit elsewhere: Python (lmm_core) and R (lme4 + lmerTest); SAS is in
:mod:`dashboard.export.sas_code`.

Pure functions, no Streamlit. Everything is generated from the parsed formula
(:func:`lmm_core.formula.terms.parse_formula`: the expanded fixed terms and the random terms after
lme4's ``||`` and ``/`` expansion), never by editing the formula text. Each program reads the
data file the Export page offers for download (:func:`data_file_name`,
:func:`canonical_csv`): the rows exactly as the app holds them, written as UTF-8 CSV with
empty cells for missing values, so that every target reads the same numbers.

Spline and polynomial terms (``ns``, ``bs``, ``poly``) are written with the basis the fit
learned (knots, polynomial coefficients; see :mod:`dashboard.export.basis_code`), so that
every target fits exactly the same model, even on a subset of the rows: R gets the calls with
the knots written out, Python the formula with the splines' knots written out.

Column names are quoted as each language needs: the Python script passes the formula as the
app holds it (names quoted by :func:`lmm_core.formula.quoting.quote_name`), R gets backticks
(:func:`r_name`), so every column keeps its own name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import pandas as pd

from dashboard.export import basis_code as bc
from dashboard.export import glmm_code, mmrm_code, nlme_code
from dashboard.export.glmm_code import GLMMSettings
from dashboard.export.r_text import plain_copies, r_name, r_string
from lmm_core.design.splines import BasisState
from lmm_core.formula.grammar import (
    BASIS_FUNCTIONS,
    BinOp,
    Call,
    Name,
    Node,
    Num,
    Paren,
    Unary,
    names_in,
    strip_parens,
)
from lmm_core.formula.quoting import deparse, r_number
from lmm_core.formula.spec import ModelSpec, TermList
from lmm_core.formula.terms import parse_formula

__all__ = [
    "canonical_csv",
    "categorical_columns",
    "data_file_name",
    "python_code",
    "r_code",
]

#: df method of lmm_core -> lmerTest ``ddf``
R_LIBRARY = "library(lmerTest)  # loads lme4; summary() gains df and p values"
R_DDF = {"satterthwaite": "Satterthwaite", "kenward-roger": "Kenward-Roger", "wald": "lme4"}
MAX_LISTED_LEVELS = 200  # longer level lists are not written into the R code
PY_WIDTH = 88  # longest line of a Python formula with written-out knots (else pieces)
#: Header lines of the Python script: where ``lmm_core`` comes from outside the app.
PYTHON_INSTALL = (
    "# Needs lmm_core, the engine of LMM Explorer (with numpy, scipy and pandas). Install it",
    "# once from the LMM Explorer repository, a local clone or its git URL:",
    "#     pip install /path/to/lmm-explorer",
    "#     pip install git+<URL of the LMM Explorer repository>",
)
_FILE_SUFFIX = re.compile(r"\.(csv|tsv|txt|xlsx|xlsm|xls|parquet)\b", re.IGNORECASE)


# --------------------------------------------------------------------------- data file
def data_file_name(data_name: str) -> str:
    """File name of the data download that the generated code reads.

    ``"sleepstudy"`` gives ``"sleepstudy.csv"``; ``"trial.xlsx [Visits]"`` gives
    ``"trial_Visits.csv"``. Only letters, digits, ``.``, ``_`` and ``-`` are kept.
    """
    stem = _FILE_SUFFIX.sub("", str(data_name or "data"))
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._-") or "data"
    return stem[:80] + ".csv"


def canonical_csv(data: pd.DataFrame) -> bytes:
    """The rows as UTF-8 CSV: header, ``\\n`` line ends, empty cells for missing values.

    pandas writes floats with their shortest round-trip representation, so reading the file
    back gives the same numbers. These bytes are also what the report's fingerprint hashes.
    """
    return data.to_csv(index=False, lineterminator="\n", na_rep="").encode("utf-8")


def _is_text(s: pd.Series) -> bool:
    dt = s.dtype
    return isinstance(dt, pd.CategoricalDtype) or not (
        pd.api.types.is_numeric_dtype(dt) or pd.api.types.is_bool_dtype(dt)
    )


def categorical_columns(spec: ModelSpec, data: pd.DataFrame) -> list[str]:
    """Columns of the formula that the engine treats as categorical by their type (text,
    pandas Categorical, bool), in formula order; ``factor(x)`` of a numeric column is not
    listed (the formula itself says it)."""
    out: list[str] = []
    for ref in spec.column_refs():
        col = ref.name
        if col in data.columns and col not in out:
            s = data[col]
            if _is_text(s) or pd.api.types.is_bool_dtype(s.dtype):
                out.append(col)
    return out


def fixed_columns(spec: ModelSpec) -> set[str]:
    """Columns used in the fixed part or on the left of a random-effects bar."""
    tls = [spec.fixed] + [r.lhs for r in spec.random]
    return {n.name for tl in tls for v in tl.variables for n in names_in(tl.exprs[v])}


def levels_of(s: pd.Series) -> list[str]:
    """Levels as the engine orders them (Categorical order, else sorted by code point)."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        return [str(c) for c in s.cat.categories]
    return sorted({str(v) for v in s.dropna()})


def one_line(text: str) -> str:
    """``text`` on one line (runs of white space, newlines too, as one space)."""
    return " ".join(str(text).split())


# --------------------------------------------------------------------------- Python
def python_code(
    formula: str,
    reml: bool,
    file_name: str,
    data: pd.DataFrame,
    *,
    title: str = "",
    bases: Mapping[str, BasisState] | None = None,
    glmm: GLMMSettings | None = None,
) -> str:
    """A Python script that refits the model with :func:`lmm_core.fit_lmm` (a GLMM, ``glmm``
    given: :func:`lmm_core.fit_glmm` with its family, link, quadrature points and weights) and
    prints it.

    Text columns are read as text (``dtype=str``) and pandas Categoricals get their category
    order back, so the engine codes them exactly as in the app. Splines (``ns``, ``bs``) are
    written with the knots of ``bases`` (the fit's ``result.design.bases``; learned from
    ``data`` when not given), so that the script fits the same basis on any rows.
    """
    spec = parse_formula(formula)
    learned = bc.learned_bases(spec, data, bases)
    fit_formula = bc.python_formula(spec, learned) if learned else formula
    text_cols = [c for c in data.columns if _is_text(data[c])]
    dtypes = {str(c): "str" for c in text_cols}
    lines = [
        f"# {one_line(title)}" if title else "# Model fitted in LMM Explorer",
        *PYTHON_INSTALL,
        "# Put the data file (Export page download) next to this script, then run it.",
        "import pandas as pd",
        "",
        f"from lmm_core import {'fit_lmm' if glmm is None else 'fit_glmm'}",
        "",
        f"DATA_FILE = {file_name!r}",
        "data = pd.read_csv(",
        "    DATA_FILE,",
        "    keep_default_na=False,",
        '    na_values=[""],',
        f"    dtype={dtypes!r},",
        ")",
    ]
    for col in text_cols:
        if isinstance(data[col].dtype, pd.CategoricalDtype):
            levels = levels_of(data[col])
            lines.append(f"data[{col!r}] = pd.Categorical(data[{col!r}], categories={levels!r})")
    if fit_formula != formula:
        lines.append(f"# Formula in LMM Explorer: {one_line(formula)}")
    lines += _python_basis_notes(learned)
    if glmm is not None:
        return "\n".join(lines + _python_glmm(fit_formula, glmm) + [""])
    lines += _python_fit(fit_formula, fit_formula != formula, reml)
    shown = (
        "print(result.residual_covariance())  # the covariance between visits"
        if spec.residual is not None
        else "print(result.summary_text())"
    )
    lines += [shown, 'print(result.fixef_table(df_method="satterthwaite"))', ""]
    return "\n".join(lines)


def _python_basis_notes(learned: Mapping[str, BasisState]) -> list[str]:
    """Comments on the written-out knots and on orthogonal polynomials."""
    splines = {k: v for k, v in learned.items() if v.func in ("ns", "bs")}
    lines = []
    if splines:
        lines += [
            "# The splines' knots, as LMM Explorer learned them from the data, are written",
            "# out so that the same basis is used on any rows (coefficients are named after",
            "# the written-out calls):",
        ]
        lines += [f"#   {one_line(k)} in the app: {_knots_text(v)}" for k, v in splines.items()]
    for label, state in learned.items():
        if state.func == "poly" and not state.raw:
            lines += [
                f"# {one_line(label)}: orthogonal polynomial. The formula cannot carry its",
                "# coefficients: they are learned again from the data (the same rows as in the",
                "# app give the same basis).",
            ]
    return lines


def _python_glmm(formula: str, glmm: GLMMSettings) -> list[str]:
    """``fit_glmm(...)`` with the formula inline, or as ``FORMULA`` pieces when long."""
    if len(repr(formula)) <= PY_WIDTH - 12:
        return glmm_code.python_fit_lines(repr(formula), glmm)
    return ["FORMULA = (", *_formula_pieces(formula), ")"] + glmm_code.python_fit_lines(
        "FORMULA", glmm
    )


def _formula_pieces(formula: str) -> list[str]:
    """A long formula as adjacent string literals split before `` + `` (Python joins them
    back into the same text), indented for a parenthesised assignment."""
    pieces = [""]
    for i, part in enumerate(formula.split(" + ")):
        part = part if i == 0 else " + " + part
        if pieces[-1] and len(repr(pieces[-1] + part)) > PY_WIDTH - 4:
            pieces.append(part)
        else:
            pieces[-1] += part
    return [f"    {p!r}" for p in pieces]


def _python_fit(formula: str, long: bool, reml: bool) -> list[str]:
    """``result = fit_lmm(...)``; a long formula as adjacent string pieces."""
    call = f"result = fit_lmm({formula!r}, data, reml={bool(reml)!r})"
    if not long or len(call) <= PY_WIDTH:
        return [call]
    return ["FORMULA = (", *_formula_pieces(formula), ")",
            f"result = fit_lmm(FORMULA, data, reml={bool(reml)!r})"]  # fmt: skip


def _knots_text(state: BasisState) -> str:
    """``knots 6, 14; boundary knots 0, 21`` (R's number format)."""
    knots = ", ".join(r_number(k) for k in state.knots) or "none"
    return f"knots {knots}; boundary knots {', '.join(r_number(b) for b in state.boundary)}"


# --------------------------------------------------------------------------- R
def r_expr(node: Node, bases: Mapping[str, BasisState] | None = None) -> str:
    """R text of a formula variable: ``C(x)`` becomes ``factor(x)``, ``center(x)`` becomes
    ``scale(x, scale = FALSE)``, a basis call (``ns(Days, 3)``) the call with the knots of
    ``bases`` written out (:meth:`BasisState.r_call`); everything else as R writes it."""
    if isinstance(node, Name):
        return r_name(node.name)
    if isinstance(node, Num):
        return r_number(node.value)
    if isinstance(node, Call):
        if node.func in BASIS_FUNCTIONS:
            return _r_basis(node, bases or {})
        if node.func == "center":
            return f"scale({r_expr(node.arg)}, scale = FALSE)"
        func = "factor" if node.func == "C" else node.func
        args = ", ".join(r_expr(a, bases) for a in (node.arg, *node.extra))
        return f"{func}({args})"
    if isinstance(node, Unary):
        return f"{node.op}{r_expr(node.operand)}"
    if isinstance(node, Paren):
        return f"({r_expr(node.expr, bases)})"
    if isinstance(node, BinOp):
        return f"{r_expr(node.left)}^{r_expr(node.right)}"
    parts = [r_expr(node.items[0])]
    for op, item in zip(node.ops, node.items[1:], strict=True):
        parts += [op if op in (":", "/") else f" {op} ", r_expr(item)]
    return "".join(parts)


def _r_basis(node: Call, bases: Mapping[str, BasisState]) -> str:
    label = deparse(node)
    if label not in bases:
        raise ValueError(f"`{label}` needs the basis the fit learned (knots, coefficients).")
    return bases[label].r_call(r_expr(node.arg))


def _r_terms(tl: TermList, bases: Mapping[str, BasisState] | None) -> list[str]:
    terms = ["1" if tl.intercept else "0"]
    terms += [":".join(r_expr(tl.exprs[v], bases) for v in term) for term in tl.terms]
    return terms


def _r_parts(spec: ModelSpec, bases: Mapping[str, BasisState] | None) -> list[str]:
    """The right-hand side's terms: intercept, fixed terms, offsets as written
    (``offset(log(exposure))``), then ``(lhs | group)``."""
    parts = _r_terms(spec.fixed, bases)
    parts += [r_expr(call) for call in spec.offsets]
    for r in spec.random:
        group = ":".join(r_name(v.name) for v in r.group_vars)
        parts.append(f"({' + '.join(_r_terms(r.lhs, bases))} | {group})")
    return parts


def r_formula(spec: ModelSpec, bases: Mapping[str, BasisState] | None = None) -> str:
    """The model as an R formula with every term written out (lme4's own expansion); basis
    calls with the knots and coefficients of ``bases`` written out."""
    return f"{r_expr(spec.response)} ~ {' + '.join(_r_parts(spec, bases))}"


def _r_formula_lines(spec: ModelSpec, bases: Mapping[str, BasisState]) -> list[str]:
    """The model formula for a call: one line, or one term a line when bases make it
    long (each line but the last ending with `` +``)."""
    if not bases:
        return [r_formula(spec)]
    parts = _r_parts(spec, bases)
    body = [f"  {p} +" for p in parts[1:]]
    lines = [f"{r_expr(spec.response)} ~ {parts[0]}" + (" +" if body else "")] + body
    lines[-1] = lines[-1].removesuffix(" +")
    return lines


def _r_lmer(spec: ModelSpec, bases: Mapping[str, BasisState], reml: bool) -> list[str]:
    """The ``lmer()`` call: one line, or one term a line when bases make it long."""
    args = f"data = d, REML = {'TRUE' if reml else 'FALSE'}"
    fml = _r_formula_lines(spec, bases)
    if len(fml) == 1:
        return [f"m <- lmer({fml[0]}, {args})"]
    fml[-1] += ","
    return ["m <- lmer(", *(f"  {ln}" for ln in fml), f"  {args}", ")"]


def _r_library(spec: ModelSpec, glmm: GLMMSettings | None) -> str:
    if spec.residual is not None:
        return nlme_code.R_LIBRARY if spec.random else mmrm_code.R_LIBRARY
    return glmm_code.R_LIBRARY if glmm is not None else R_LIBRARY


def _r_factor_lines(spec: ModelSpec, data: pd.DataFrame, skip: set[str]) -> list[str]:
    """Categorical columns as factors, levels in LMM Explorer's order when they are fixed
    effects (the first level is the reference); ``skip``: columns made factors elsewhere."""
    fixed_cols = fixed_columns(spec)
    cats = [c for c in categorical_columns(spec, data) if c not in skip]
    lines = ["# Categorical columns, levels in LMM Explorer's order (first = reference)"] * bool(
        cats
    )
    for col in cats:
        ref = f"d[[{r_string(col)}]]"
        levels = levels_of(data[col]) if col in fixed_cols else []
        if pd.api.types.is_bool_dtype(data[col].dtype):
            levels = ["FALSE", "TRUE"] if col in fixed_cols else []
            ref = f"toupper({ref})"  # read.csv may keep "True"/"False" as text
        if levels and len(levels) <= MAX_LISTED_LEVELS:
            listed = ", ".join(r_string(v) for v in levels)
            lines.append(f"d[[{r_string(col)}]] <- factor({ref}, levels = c({listed}))")
        else:
            lines.append(f"d[[{r_string(col)}]] <- factor({ref})")
    return lines


def _r_mmrm(spec: ModelSpec, data: pd.DataFrame, learned, reml: bool, df_method: str):
    """An MMRM: ``mmrm()``, or ``nlme::lme()`` with random effects above the subject.

    Neither package reads names that need backticks in its model: such columns are copied
    under plain names (:func:`plain_copies`) just before the call, which names them so."""
    res = spec.residual
    assert res is not None
    fixed_cols = fixed_columns(spec)
    cats = categorical_columns(spec, data)
    visit = res.visit.name
    numeric_visit = visit in fixed_cols and visit not in cats
    if spec.random:
        fixed = f"{r_expr(spec.response)} ~ {' + '.join(_r_terms(spec.fixed, learned))}"
        lines = nlme_code.r_lme_lines(spec, fixed, reml, data, lambda tl: _r_terms(tl, learned))
    else:
        fml = f"{r_expr(spec.response)} ~ {' + '.join(_r_parts(spec, learned))}"
        visit_done = (
            visit in cats
            and visit in fixed_cols
            and len(levels_of(data[visit])) <= MAX_LISTED_LEVELS
        )
        lines = mmrm_code.r_mmrm_lines(spec, fml, reml, df_method, data, visit_done, numeric_visit)
    return _with_plain_names(lines, [nm.name for nm in spec.column_refs()], data)


def _with_plain_names(lines: list[str], names: list[str], data: pd.DataFrame) -> list[str]:
    """``lines`` with the model call's quoted names replaced by plain copies made first."""
    copies = plain_copies(names, {str(c) for c in data.columns})
    if not copies or "m <- " not in "\n".join(lines):
        return lines
    at = next(i for i, ln in enumerate(lines) if ln.startswith("m <- "))
    call = lines[at:]
    for old, new in copies.items():
        call = [ln.replace(r_name(old), new) for ln in call]
    made = [f"d[[{r_string(new)}]] <- d[[{r_string(old)}]]" for old, new in copies.items()]
    note = "# The package reads only plain names: these columns are copied under plain ones"
    return lines[:at] + [note, *made] + call


def r_code(
    formula: str,
    reml: bool,
    file_name: str,
    data: pd.DataFrame,
    *,
    df_method: str = "satterthwaite",
    title: str = "",
    bases: Mapping[str, BasisState] | None = None,
    glmm: GLMMSettings | None = None,
) -> str:
    """R code that refits the model and prints its summary: lme4 + lmerTest (``lmer``);
    ``glmer`` for a GLMM (``glmm`` given); ``mmrm`` for a covariance structure of the visits;
    ``nlme::lme`` for random effects above the subject with such a structure.

    Spline and polynomial terms are written with the basis of ``bases`` (the fit's
    ``result.design.bases``; learned from ``data`` when not given): knots and polynomial
    coefficients written out, so that R uses the same basis on any rows.
    """
    spec = parse_formula(formula)
    learned = bc.learned_bases(spec, data, bases)
    lines = [
        f"# {one_line(title)}" if title else "# Model fitted in LMM Explorer",
        f"# Formula in LMM Explorer: {one_line(formula)}",
        "# Put the data file (Export page download) in R's working directory.",
        _r_library(spec, glmm),
    ]
    lines += _r_basis_notes(learned)
    lines += [
        f'd <- read.csv({r_string(file_name)}, check.names = FALSE, na.strings = "")',
    ]
    binary = glmm_code.r_binary_response(spec, data) if glmm is not None else []
    skip = {strip_parens(spec.response).name} if binary else set()  # type: ignore[union-attr]
    lines += _r_factor_lines(spec, data, skip) + binary
    if spec.residual is not None:
        lines += _r_mmrm(spec, data, learned, reml, df_method)
    elif glmm is not None:
        lines += glmm_code.r_glmer_lines(_r_formula_lines(spec, learned), glmm)
    else:
        lines += _r_lmer(spec, learned, reml)
        lines += [
            f'summary(m, ddf = "{R_DDF.get(df_method, "Satterthwaite")}")',
            "as.data.frame(VarCorr(m))  # variance components as LMM Explorer lists them",
        ]
    return "\n".join(lines + [""])


def _r_basis_notes(learned: Mapping[str, BasisState]) -> list[str]:
    """``library(splines)`` when needed and a comment per basis: what the user wrote and
    what is written out."""
    if not learned:
        return []
    lines = []
    if any(state.func in ("ns", "bs") for state in learned.values()):
        lines.append("library(splines)  # ns() and bs()")
    lines.append("# Bases as LMM Explorer learned them from the data, written out in the model")
    lines.append("# below so that R uses the same basis on any rows:")
    for label, state in learned.items():
        what = (
            _knots_text(state)
            if state.func in ("ns", "bs")
            else "coefficients alpha and norm2 written out"
            if not state.raw
            else "plain powers"
        )
        lines.append(f"#   {one_line(label)} in the app: {what}")
    lines.append("# R names the coefficients after the written-out calls.")
    return lines
