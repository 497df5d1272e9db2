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

Column names are quoted as each language needs: the Python script passes the formula as the
app holds it (names quoted by :func:`lmm_core.formula.quoting.quote_name`), R gets backticks
(:func:`r_name`), SAS gets name literals such as ``'SBP (mmHg)'n`` under
``VALIDVARNAME=ANY`` (:func:`sas_name`), so every column keeps its own name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from lmm_core.formula.grammar import (
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
from lmm_core.formula.quoting import is_syntactic, r_number
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
    formula: str, reml: bool, file_name: str, data: pd.DataFrame, *, title: str = ""
) -> str:
    """A Python script that refits the model with :func:`lmm_core.fit_lmm` and prints it.

    Text columns are read as text (``dtype=str``) and pandas Categoricals get their category
    order back, so the engine codes them exactly as in the app.
    """
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
    lines += [
        f"result = fit_lmm({formula!r}, data, reml={bool(reml)!r})",
        "print(result.summary_text())",
        'print(result.fixef_table(df_method="satterthwaite"))',
        "",
    ]
    return "\n".join(lines)


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


def r_expr(node: Node) -> str:
    """R text of a formula variable: ``C(x)`` becomes ``factor(x)``, ``center(x)`` becomes
    ``scale(x, scale = FALSE)``; everything else is written as R writes it."""
    if isinstance(node, Name):
        return r_name(node.name)
    if isinstance(node, Num):
        return r_number(node.value)
    if isinstance(node, Call):
        if node.func == "center":
            return f"scale({r_expr(node.arg)}, scale = FALSE)"
        func = "factor" if node.func == "C" else node.func
        return f"{func}({r_expr(node.arg)})"
    if isinstance(node, Unary):
        return f"{node.op}{r_expr(node.operand)}"
    if isinstance(node, Paren):
        return f"({r_expr(node.expr)})"
    if isinstance(node, BinOp):
        return f"{r_expr(node.left)}^{r_expr(node.right)}"
    parts = [r_expr(node.items[0])]
    for op, item in zip(node.ops, node.items[1:], strict=True):
        parts += [op if op in (":", "/") else f" {op} ", r_expr(item)]
    return "".join(parts)


def _r_terms(tl: TermList) -> str:
    terms = ["1" if tl.intercept else "0"]
    terms += [":".join(r_expr(tl.exprs[v]) for v in term) for term in tl.terms]
    return " + ".join(terms)


def r_formula(spec: ModelSpec) -> str:
    """The model as an R formula with every term written out (lme4's own expansion)."""
    parts = [_r_terms(spec.fixed)]
    for r in spec.random:
        group = ":".join(r_name(v.name) for v in r.group_vars)
        parts.append(f"({_r_terms(r.lhs)} | {group})")
    return f"{r_expr(spec.response)} ~ {' + '.join(parts)}"


def r_code(
    formula: str,
    reml: bool,
    file_name: str,
    data: pd.DataFrame,
    *,
    df_method: str = "satterthwaite",
    title: str = "",
) -> str:
    """R code (lme4 + lmerTest) that refits the model and prints its summary."""
    spec = parse_formula(formula)
    fixed_cols = _fixed_columns(spec)
    lines = [
        f"# {_one_line(title)}" if title else "# Model fitted in LMM Explorer",
        f"# Formula in LMM Explorer: {_one_line(formula)}",
        "# Put the data file (Export page download) in R's working directory.",
        "library(lmerTest)  # loads lme4; summary() gains df and p values",
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
    lines += [
        f"m <- lmer({r_formula(spec)}, data = d, REML = {'TRUE' if reml else 'FALSE'})",
    ]
    lines += [
        f'summary(m, ddf = "{R_DDF.get(df_method, "Satterthwaite")}")',
        "as.data.frame(VarCorr(m))  # variance components as LMM Explorer lists them",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- SAS
SAS_MAX_BYTES = 32  # SAS variable names hold at most 32 bytes
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


class _SasBuilder:
    """Collects derived variables (DATA step) and standardized ones (PROC STANDARD)."""

    def __init__(self) -> None:
        self.derived: dict[str, tuple[str, str]] = {}  # label -> (sas name, expression)
        self.standard: list[tuple[str, str, bool]] = []  # (sas name, expression, scale)
        self.used: set[str] = set()
        self.notes: list[str] = []

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
) -> str:
    """SAS code: PROC IMPORT of the data file, derived variables, then PROC MIXED."""
    spec = parse_formula(formula)
    cats = set(categorical_columns(spec, data))
    sb = _SasBuilder()
    sb.used |= {sas_name(c).upper() for c in data.columns}
    model = _sas_model(spec, cats, sb)
    lines = _sas_import(title, formula, file_name, data)
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

    def effect(tl: TermList, term: tuple[str, ...]) -> str:
        names = []
        for v in term:
            name = sb.variable(v, tl.exprs[v])
            if _is_factor_var(tl.exprs[v], cats):
                add_class(name)
            names.append(name)
        return "*".join(names)

    response = sb.variable(spec.response_label, spec.response)
    fixed = [effect(spec.fixed, t) for t in spec.fixed.terms]
    randoms: list[list] = []
    for r in spec.random:
        effects = (["INTERCEPT"] if r.lhs.intercept else []) + [
            effect(r.lhs, t) for t in r.lhs.terms
        ]
        subject = _sas_subject(r, spec)
        for v in r.group_vars:
            add_class(sas_name(v.name))
        key = (r.pos, subject)
        prev = randoms[-1] if randoms else None
        if prev and len(effects) == 1 and prev[2] == "VC" and prev[3] == key:
            prev[0].extend(effects)  # the pieces of one `||` term: one statement, TYPE=VC
        else:
            randoms.append([effects, subject, "UN" if len(effects) > 1 else "VC", key])
    return _SasModel(class_vars, response, fixed, randoms)


def _sas_import(title: str, formula: str, file_name: str, data: pd.DataFrame) -> list[str]:
    """Header comments and the PROC IMPORT of the data file."""
    cut = [(c, sas_cut(c)) for c in map(str, data.columns) if sas_cut(c) != c]
    lines = [f"/* {_one_line(title).replace('*/', '* /')} */" if title else "/* LMM Explorer */"]
    lines.append(f"/* Formula in LMM Explorer: {_one_line(formula).replace('*/', '* /')} */")
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
