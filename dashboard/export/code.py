"""Code that reproduces a fit elsewhere: Python (lmm_core), R (lme4 + lmerTest), SAS (PROC MIXED).

Pure functions, no Streamlit. Everything is generated from the parsed formula
(:func:`lmm_core.formula.terms.parse_formula`: the expanded fixed terms and the random terms after
lme4's ``||`` and ``/`` expansion), never by editing the formula text. Each program reads the
data file the Export page offers for download (:func:`data_file_name`,
:func:`canonical_csv`): the rows exactly as the app holds them, written as UTF-8 CSV with
empty cells for missing values, so that every target reads the same numbers.

Where a target cannot express a formula element the code says so or works around it:
SAS gets a DATA step for ``I()``, ``log()`` and other derived variables, ``PROC STANDARD``
for ``scale()``/``center()``, and comments on its own coding of categorical variables.

Spline and polynomial terms (``ns``, ``bs``, ``poly``) are written with the basis the fit
learned (knots, polynomial coefficients; see :mod:`dashboard.export.basis_code`), so that
every target fits exactly the same model, even on a subset of the rows: R gets the calls with
the knots written out, Python the formula with the splines' knots written out, SAS a DATA
step that computes the basis columns (PROC MIXED has no spline effect).

Column names are quoted as each language needs: the Python script passes the formula as the
app holds it (names quoted by :func:`lmm_core.formula.quoting.quote_name`), R gets backticks
(:func:`r_name`), SAS gets name literals such as ``'SBP (mmHg)'n`` under
``VALIDVARNAME=ANY`` (:func:`sas_name`), so every column keeps its own name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from dashboard.export import basis_code as bc
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
from lmm_core.formula.quoting import deparse, is_syntactic, r_number
from lmm_core.formula.spec import ModelSpec, RandomSpec, TermList
from lmm_core.formula.terms import parse_formula

__all__ = [
    "canonical_csv",
    "categorical_columns",
    "data_file_name",
    "python_code",
    "r_code",
    "sas_code",
    "sas_name",
]

#: df method of lmm_core -> lmerTest ``ddf`` and SAS ``DDFM=``
R_DDF = {"satterthwaite": "Satterthwaite", "kenward-roger": "Kenward-Roger", "wald": "lme4"}
SAS_DDFM = {"satterthwaite": "SATTERTHWAITE", "kenward-roger": "KR", "wald": "RESIDUAL"}
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


def _grouping_columns(spec: ModelSpec) -> list[str]:
    return list(dict.fromkeys(v.name for r in spec.random for v in r.group_vars))


def _fixed_columns(spec: ModelSpec) -> set[str]:
    tls = [spec.fixed] + [r.lhs for r in spec.random]
    return {n.name for tl in tls for v in tl.variables for n in names_in(tl.exprs[v])}


def _levels(s: pd.Series) -> list[str]:
    """Levels as the engine orders them (Categorical order, else sorted by code point)."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        return [str(c) for c in s.cat.categories]
    return sorted({str(v) for v in s.dropna()})


def _one_line(text: str) -> str:
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
) -> str:
    """A Python script that refits the model with :func:`lmm_core.fit_lmm` and prints it.

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
        f"# {_one_line(title)}" if title else "# Model fitted in LMM Explorer",
        *PYTHON_INSTALL,
        "# Put the data file (Export page download) next to this script, then run it.",
        "import pandas as pd",
        "",
        "from lmm_core import fit_lmm",
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
            lines.append(
                f"data[{col!r}] = pd.Categorical(data[{col!r}], categories={_levels(data[col])!r})"
            )
    if fit_formula != formula:
        lines.append(f"# Formula in LMM Explorer: {_one_line(formula)}")
    lines += _python_basis_notes(learned)
    lines += _python_fit(fit_formula, fit_formula != formula, reml)
    lines += [
        "print(result.summary_text())",
        'print(result.fixef_table(df_method="satterthwaite"))',
        "",
    ]
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
        lines += [f"#   {_one_line(k)} in the app: {_knots_text(v)}" for k, v in splines.items()]
    for label, state in learned.items():
        if state.func == "poly" and not state.raw:
            lines += [
                f"# {_one_line(label)}: orthogonal polynomial. The formula cannot carry its",
                "# coefficients: they are learned again from the data (the same rows as in the",
                "# app give the same basis).",
            ]
    return lines


def _python_fit(formula: str, long: bool, reml: bool) -> list[str]:
    """``result = fit_lmm(...)``; a long formula as adjacent string pieces split before
    `` + `` (Python joins them back into the same text)."""
    call = f"result = fit_lmm({formula!r}, data, reml={bool(reml)!r})"
    if not long or len(call) <= PY_WIDTH:
        return [call]
    pieces = [""]
    for i, part in enumerate(formula.split(" + ")):
        part = part if i == 0 else " + " + part
        if pieces[-1] and len(repr(pieces[-1] + part)) > PY_WIDTH - 4:
            pieces.append(part)
        else:
            pieces[-1] += part
    return ["FORMULA = (", *(f"    {p!r}" for p in pieces), ")",
            f"result = fit_lmm(FORMULA, data, reml={bool(reml)!r})"]  # fmt: skip


def _knots_text(state: BasisState) -> str:
    """``knots 6, 14; boundary knots 0, 21`` (R's number format)."""
    knots = ", ".join(r_number(k) for k in state.knots) or "none"
    return f"knots {knots}; boundary knots {', '.join(r_number(b) for b in state.boundary)}"


# --------------------------------------------------------------------------- R
def r_string(text: str) -> str:
    """An R string literal (double quotes, backslash escapes)."""
    esc = str(text).replace("\\", "\\\\").replace('"', '\\"')
    esc = esc.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f'"{esc}"'


def r_name(name: str) -> str:
    """A column name as an R symbol: bare when syntactic ASCII, else in backticks.

    Non-ASCII names (``Âge``) are quoted too, since R reads them bare only in a UTF-8
    locale. Inside the backticks a backslash or a backtick is escaped with a backslash.
    """
    if is_syntactic(name) and name.isascii():
        return name
    esc = name.replace("\\", "\\\\").replace("`", "\\`")
    esc = esc.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f"`{esc}`"


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
        return f"{func}({r_expr(node.arg)})"
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
    """The right-hand side's terms: intercept, fixed terms, then ``(lhs | group)``."""
    parts = _r_terms(spec.fixed, bases)
    for r in spec.random:
        group = ":".join(r_name(v.name) for v in r.group_vars)
        parts.append(f"({' + '.join(_r_terms(r.lhs, bases))} | {group})")
    return parts


def r_formula(spec: ModelSpec, bases: Mapping[str, BasisState] | None = None) -> str:
    """The model as an R formula with every term written out (lme4's own expansion); basis
    calls with the knots and coefficients of ``bases`` written out."""
    return f"{r_expr(spec.response)} ~ {' + '.join(_r_parts(spec, bases))}"


def _r_lmer(spec: ModelSpec, bases: Mapping[str, BasisState], reml: bool) -> list[str]:
    """The ``lmer()`` call: one line, or one term a line when bases make it long."""
    args = f"data = d, REML = {'TRUE' if reml else 'FALSE'}"
    if not bases:
        return [f"m <- lmer({r_formula(spec)}, {args})"]
    parts = _r_parts(spec, bases)
    body = [f"    {p} +" for p in parts[1:]]
    lines = [f"  {r_expr(spec.response)} ~ {parts[0]}" + (" +" if body else "")] + body
    lines[-1] = lines[-1].removesuffix(" +") + ","
    return ["m <- lmer(", *lines, f"  {args}", ")"]


def r_code(
    formula: str,
    reml: bool,
    file_name: str,
    data: pd.DataFrame,
    *,
    df_method: str = "satterthwaite",
    title: str = "",
    bases: Mapping[str, BasisState] | None = None,
) -> str:
    """R code (lme4 + lmerTest) that refits the model and prints its summary.

    Spline and polynomial terms are written with the basis of ``bases`` (the fit's
    ``result.design.bases``; learned from ``data`` when not given): knots and polynomial
    coefficients written out, so that R uses the same basis on any rows.
    """
    spec = parse_formula(formula)
    learned = bc.learned_bases(spec, data, bases)
    fixed_cols = _fixed_columns(spec)
    lines = [
        f"# {_one_line(title)}" if title else "# Model fitted in LMM Explorer",
        f"# Formula in LMM Explorer: {_one_line(formula)}",
        "# Put the data file (Export page download) in R's working directory.",
        "library(lmerTest)  # loads lme4; summary() gains df and p values",
    ]
    lines += _r_basis_notes(learned)
    lines += [
        f'd <- read.csv({r_string(file_name)}, check.names = FALSE, na.strings = "")',
    ]
    cats = categorical_columns(spec, data)
    if cats:
        lines.append("# Categorical columns, levels in LMM Explorer's order (first = reference)")
    for col in cats:
        ref = f"d[[{r_string(col)}]]"
        levels = _levels(data[col]) if col in fixed_cols else []
        if pd.api.types.is_bool_dtype(data[col].dtype):
            levels = ["FALSE", "TRUE"] if col in fixed_cols else []
            ref = f"toupper({ref})"  # read.csv may keep "True"/"False" as text
        if levels and len(levels) <= MAX_LISTED_LEVELS:
            listed = ", ".join(r_string(v) for v in levels)
            lines.append(f"d[[{r_string(col)}]] <- factor({ref}, levels = c({listed}))")
        else:
            lines.append(f"d[[{r_string(col)}]] <- factor({ref})")
    lines += _r_lmer(spec, learned, reml)
    lines += [
        f'summary(m, ddf = "{R_DDF.get(df_method, "Satterthwaite")}")',
        "as.data.frame(VarCorr(m))  # variance components as LMM Explorer lists them",
        "",
    ]
    return "\n".join(lines)


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
        lines.append(f"#   {_one_line(label)} in the app: {what}")
    lines.append("# R names the coefficients after the written-out calls.")
    return lines


# --------------------------------------------------------------------------- SAS
SAS_MAX_BYTES = 32  # SAS variable names hold at most 32 bytes
SAS_BASIS_NOTE = (
    "/* Spline and polynomial terms (ns, bs, poly): PROC MIXED has no spline effect, so a",
    "   DATA step computes their columns with the knots and coefficients LMM Explorer learned",
    "   from the data. They are the columns of LMM Explorer and R, so the estimates are theirs",
    "   (CLASS variables aside, see the note at the end). PROC GLIMMIX's EFFECT ... = SPLINE()",
    "   is not used: it builds other bases (its natural cubic splines are truncated power",
    "   functions: the same curve, other coefficients). */",
)
_SAS_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def sas_cut(name: str) -> str:
    """``name`` cut to the 32 bytes (UTF-8) a SAS variable name holds, as PROC IMPORT does."""
    raw = str(name).encode("utf-8")[:SAS_MAX_BYTES]
    return raw.decode("utf-8", errors="ignore")


def sas_name(name: str) -> str:
    """A column as SAS code refers to it under ``VALIDVARNAME=ANY`` (set by the script).

    A plain name (letters, digits, ``_``, not starting with a digit) stays bare; any other
    is a name literal, ``'SBP (mmHg)'n`` (a ``'`` doubled), so the column keeps its own name
    in ``PROC IMPORT``, ``CLASS``, ``MODEL`` and ``RANDOM``. Longer names are cut to 32 bytes.
    """
    cut = sas_cut(name) or "_"
    if _SAS_PLAIN.match(cut):
        return cut
    return "'" + cut.replace("'", "''") + "'n"


def _sas_plain(label: str) -> str:
    """A valid plain SAS name made from a formula label (for derived variables)."""
    s = re.sub(r"[^A-Za-z0-9_]", "_", label) or "_"
    return ("_" + s if s[0].isdigit() else s)[:SAS_MAX_BYTES]


_SAS_FUNCS = {"log": "LOG", "log2": "LOG2", "log10": "LOG10", "exp": "EXP", "sqrt": "SQRT",
              "abs": "ABS"}  # fmt: skip


def _temp_prefix(used: set[str]) -> str:
    """``_lmm_`` (else ``_lmm2_``, ...): a prefix that no column name (upper case in
    ``used``) starts with, for the DATA step's temporary variables."""
    k = 1
    while any(u.startswith(f"_LMM{k if k > 1 else ''}_") for u in used):
        k += 1
    return f"_lmm{k if k > 1 else ''}_"


class _SasBuilder:
    """Collects derived variables (DATA step), standardized ones (PROC STANDARD) and the
    columns of spline and polynomial bases (DATA step)."""

    def __init__(self, used: set[str], bases: Mapping[str, BasisState]) -> None:
        self.derived: dict[str, tuple[str, str]] = {}  # label -> (sas name, expression)
        self.standard: list[tuple[str, str, bool]] = []  # (sas name, expression, scale)
        self.used = set(used)
        self.bases = bases
        self.basis_cols: dict[str, list[str]] = {}  # label -> SAS names of its columns
        self.basis_lines: list[str] = []
        self.basis_temps: dict[str, None] = {}
        self.temp = _temp_prefix(self.used)

    def new_name(self, label: str) -> str:
        base = _sas_plain(re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9]+", "_", label)).strip("_"))
        name, k = base, 1
        while name.upper() in self.used:
            k += 1
            name = f"{base[:28]}_{k}"
        self.used.add(name.upper())
        return name

    def expr(self, node: Node) -> str:
        if isinstance(node, Name):
            return sas_name(node.name)
        if isinstance(node, Num):
            return r_number(node.value)
        if isinstance(node, Unary):
            return f"{node.op}{self.expr(node.operand)}"
        if isinstance(node, Paren):
            return f"({self.expr(node.expr)})"
        if isinstance(node, BinOp):
            return f"{self.expr(node.left)}**{self.expr(node.right)}"
        if isinstance(node, Call):
            return self._call(node)
        parts = [self.expr(node.items[0])]
        for op, item in zip(node.ops, node.items[1:], strict=True):
            parts += [f" {op} ", self.expr(item)]
        return "".join(parts)

    def _call(self, node: Call) -> str:
        """A function call; scale()/center() become a standardized variable."""
        inner = self.expr(node.arg)
        if node.func in ("I", "factor", "C"):
            return f"({inner})"
        if node.func == "log1p":
            return f"LOG(1 + {inner})"
        if node.func in ("scale", "center"):
            name = self.new_name(f"{node.func}_{inner}")
            self.standard.append((name, inner, node.func == "scale"))
            return name
        return f"{_SAS_FUNCS[node.func]}({inner})"

    def columns(self, label: str, node: Node) -> list[str]:
        """SAS names of a formula variable: one, or one per column of a basis."""
        inner = strip_parens(node)
        if not (isinstance(inner, Call) and inner.func in BASIS_FUNCTIONS):
            return [self.variable(label, node)]
        if label not in self.basis_cols:
            state = self.bases[label]
            stem, k = bc.sas_stem(label), 1
            names = [f"{stem}_{j}" for j in range(1, state.n_columns + 1)]
            while any(n.upper() in self.used for n in names):
                k += 1
                names = [f"{stem[:23]}_{k}_{j}" for j in range(1, state.n_columns + 1)]
            self.used |= {n.upper() for n in names}
            self.basis_cols[label] = names
            lines, temps = bc.sas_basis_lines(label, state, self.expr(inner.arg), names, self.temp)
            self.basis_lines += lines
            self.basis_temps.update(dict.fromkeys(temps))
        return self.basis_cols[label]

    def variable(self, label: str, node: Node) -> str:
        """SAS name of a formula variable; derived ones get a DATA-step line."""
        inner = strip_parens(node)
        if isinstance(inner, Call) and inner.func in ("factor", "C"):
            inner = strip_parens(inner.arg)
        if isinstance(inner, Name):
            return sas_name(inner.name)
        if label not in self.derived:
            expression = self.expr(inner)
            if isinstance(inner, Call) and inner.func in ("scale", "center"):
                self.derived[label] = (expression, "")  # PROC STANDARD made it already
            else:
                self.derived[label] = (self.new_name(label), expression)
        return self.derived[label][0]


def _is_factor_var(node: Node, cats: set[str]) -> bool:
    inner = strip_parens(node)
    if isinstance(inner, Call) and inner.func in ("factor", "C"):
        return True
    return isinstance(inner, Name) and inner.name in cats


def _sas_subject(r: RandomSpec, spec: ModelSpec) -> str:
    names = [sas_name(v.name) for v in r.group_vars]
    if len(names) == 1:
        return names[0]
    outer = tuple(v.name for v in r.group_vars[1:])
    from_slash = any(
        o.pos == r.pos and tuple(v.name for v in o.group_vars) == outer for o in spec.random
    )
    return f"{names[0]}({' '.join(names[1:])})" if from_slash else "*".join(names)


@dataclass
class _SasModel:
    """The PROC MIXED statements' parts: CLASS variables, response, fixed effects, randoms."""

    class_vars: list[str]
    response: str
    fixed: list[str]
    randoms: list[list]  # [effects, subject, type, (term position, subject)]


def sas_code(
    formula: str,
    reml: bool,
    file_name: str,
    data: pd.DataFrame,
    *,
    df_method: str = "satterthwaite",
    title: str = "",
    bases: Mapping[str, BasisState] | None = None,
) -> str:
    """SAS code: PROC IMPORT of the data file, derived variables, then PROC MIXED.

    PROC MIXED has no spline effect, so the columns of ``ns``/``bs``/``poly`` terms are
    computed in a DATA step from the basis of ``bases`` (the fit's ``result.design.bases``;
    learned from ``data`` when not given): the same columns as in the app, so the same
    estimates (:func:`dashboard.export.basis_code.sas_basis_lines`).
    """
    spec = parse_formula(formula)
    cats = set(categorical_columns(spec, data))
    learned = bc.learned_bases(spec, data, bases)
    sb = _SasBuilder({sas_name(c).upper() for c in data.columns}, learned)
    model = _sas_model(spec, cats, sb)
    lines = _sas_import(title, formula, file_name, data, bool(learned))
    lines += _sas_data_steps(sb)
    lines += _sas_proc_mixed(model, spec, reml, df_method)
    lines += _sas_notes(spec, cats, data, df_method)
    lines.append("")
    return "\n".join(lines)


def _sas_model(spec: ModelSpec, cats: set[str], sb: _SasBuilder) -> _SasModel:
    """Variables and effects of the formula, SAS names made by ``sb``."""
    class_vars: list[str] = []

    def add_class(name: str) -> None:
        if name not in class_vars:
            class_vars.append(name)

    def effects(tl: TermList, term: tuple[str, ...]) -> list[str]:
        """The SAS effects of a term: one, or one per column of a basis (the first
        variable's columns varying fastest, as R orders them)."""
        combos: list[list[str]] = [[]]
        for v in term:
            cols = sb.columns(v, tl.exprs[v])
            if _is_factor_var(tl.exprs[v], cats):
                add_class(cols[0])
            combos = [c + [col] for col in cols for c in combos]
        return ["*".join(c) for c in combos]

    response = sb.variable(spec.response_label, spec.response)
    fixed = [e for t in spec.fixed.terms for e in effects(spec.fixed, t)]
    randoms: list[list] = []
    for r in spec.random:
        effects_r = (["INTERCEPT"] if r.lhs.intercept else []) + [
            e for t in r.lhs.terms for e in effects(r.lhs, t)
        ]
        subject = _sas_subject(r, spec)
        for v in r.group_vars:
            add_class(sas_name(v.name))
        key = (r.pos, subject)
        prev = randoms[-1] if randoms else None
        if prev and len(effects_r) == 1 and prev[2] == "VC" and prev[3] == key:
            prev[0].extend(effects_r)  # the pieces of one `||` term: one statement, TYPE=VC
        else:
            randoms.append([effects_r, subject, "UN" if len(effects_r) > 1 else "VC", key])
    return _SasModel(class_vars, response, fixed, randoms)


def _sas_import(
    title: str, formula: str, file_name: str, data: pd.DataFrame, bases: bool
) -> list[str]:
    """Header comments (with :data:`SAS_BASIS_NOTE` when the formula has bases) and the
    PROC IMPORT of the data file."""
    cut = [(c, sas_cut(c)) for c in map(str, data.columns) if sas_cut(c) != c]
    lines = [f"/* {_one_line(title).replace('*/', '* /')} */" if title else "/* LMM Explorer */"]
    lines.append(f"/* Formula in LMM Explorer: {_one_line(formula).replace('*/', '* /')} */")
    if bases:
        lines += SAS_BASIS_NOTE
    lines.append("/* Put the data file (Export page download) where SAS can read it. */")
    if cut:
        shown = "; ".join(f"{_one_line(a)} -> {_one_line(b)}" for a, b in cut).replace("*/", "* /")
        lines.append(f"/* SAS cuts names to 32 bytes: {shown} */")
    path = str(file_name).replace('"', '""')
    lines += [
        "/* Column names as in the data: names with spaces or symbols are 'name'n literals */",
        "OPTIONS VALIDVARNAME=ANY;",
        f'PROC IMPORT DATAFILE="{path}" OUT=work.lmm DBMS=CSV REPLACE;',
        "  GETNAMES=YES;",
        "  GUESSINGROWS=MAX;",
        "RUN;",
    ]
    return lines


def _sas_data_steps(sb: _SasBuilder) -> list[str]:
    """DATA steps for standardized and computed variables (none when the formula has none)."""
    lines: list[str] = []
    if sb.standard:
        lines += ["", "/* scale()/center(): standardize over the non-missing values */",
                  "DATA work.lmm;", "  SET work.lmm;"]  # fmt: skip
        lines += [f"  {name} = {expr};" for name, expr, _ in sb.standard]
        lines.append("RUN;")
        for name, _, scale in sb.standard:
            std = " STD=1" if scale else ""
            lines.append(f"PROC STANDARD DATA=work.lmm OUT=work.lmm MEAN=0{std}; VAR {name}; RUN;")
    derived = [(n, e) for n, e in sb.derived.values() if e]
    if derived:
        lines += ["", "/* Variables the formula computes (I(), log(), ...) */", "DATA work.lmm;",
                  "  SET work.lmm;"]  # fmt: skip
        lines += [f"  {name} = {expr};" for name, expr in derived]
        lines.append("RUN;")
    if sb.basis_lines:
        lines += ["", "/* Columns of the spline and polynomial terms (LMM Explorer's basis) */",
                  "DATA work.lmm;",
                  "  SET work.lmm;", *sb.basis_lines,
                  f"  DROP {' '.join(sb.basis_temps)};", "RUN;"]  # fmt: skip
    return lines


def _sas_proc_mixed(model: _SasModel, spec: ModelSpec, reml: bool, df_method: str) -> list[str]:
    """The PROC MIXED step: CLASS, MODEL and one RANDOM statement per term."""
    opts = ["SOLUTION", "CL", f"DDFM={SAS_DDFM.get(df_method, 'SATTERTHWAITE')}"]
    if not spec.fixed.intercept:
        opts.insert(0, "NOINT")
    lines = ["", f"PROC MIXED DATA=work.lmm METHOD={'REML' if reml else 'ML'};"]
    if model.class_vars:
        lines.append(f"  CLASS {' '.join(model.class_vars)};")
    lines.append(
        f"  MODEL {model.response} = {' '.join(model.fixed)} / {' '.join(opts)};".replace(
            "=  /", "= /"
        )
    )
    for effects, subject, cov_type, _ in model.randoms:
        lines.append(f"  RANDOM {' '.join(effects)} / SUBJECT={subject} TYPE={cov_type};")
    lines.append("RUN;")
    return lines


def _sas_notes(spec: ModelSpec, cats: set[str], data: pd.DataFrame, df_method: str) -> list[str]:
    """Where SAS's output differs from the app's: reference levels, Wald df."""
    lines = []
    fixed_cats = [c for c in cats if c in _fixed_columns(spec)]
    if fixed_cats:
        lines.append(
            "/* SAS codes CLASS variables with the LAST level as reference; LMM Explorer and R "
            "use the FIRST ("
            + ", ".join(
                f"{sas_name(c)}: {_one_line(_levels(data[c])[0])[:40]}" for c in fixed_cats
            ).replace("*/", "* /")
            + "). Fitted values, variance components and likelihood agree; coefficients of "
            "categorical terms are contrasts against another level. */"
        )
    if df_method == "wald":
        lines.append("/* Wald in LMM Explorer uses the normal distribution (df = infinity). */")
    return lines
