"""SAS code that reproduces a fit: PROC IMPORT of the data file, then PROC MIXED.

Pure functions, no Streamlit. Generated from the parsed formula, as the Python and R code of
:mod:`dashboard.export.code`, and reading the same data file. Where SAS cannot express a
formula element the code works around it: a DATA step for ``I()``, ``log()`` and other derived
variables, ``PROC STANDARD`` for ``scale()``/``center()``, a DATA step that computes the
columns of ``ns``/``bs``/``poly`` terms from the basis the fit learned (PROC MIXED has no
spline effect; :func:`dashboard.export.basis_code.sas_basis_lines`), and comments on SAS's
own coding of categorical variables.

Columns keep their own names: SAS gets name literals such as ``'SBP (mmHg)'n`` under
``VALIDVARNAME=ANY`` (:func:`sas_name`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from dashboard.export import basis_code as bc
from dashboard.export import glimmix_code, mmrm_code
from dashboard.export.code import categorical_columns, fixed_columns, levels_of, one_line
from dashboard.export.glmm_code import GLMMSettings
from dashboard.export.sas_text import SAS_MAX_BYTES, sas_cut, sas_name
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
    strip_parens,
)
from lmm_core.formula.quoting import r_number
from lmm_core.formula.spec import ModelSpec, RandomSpec, TermList
from lmm_core.formula.terms import parse_formula

__all__ = ["sas_code", "sas_cut", "sas_name"]

#: df method of lmm_core -> SAS ``DDFM=``
SAS_DDFM = {"satterthwaite": "SATTERTHWAITE", "kenward-roger": "KR", "wald": "RESIDUAL"}
SAS_BASIS_NOTE = (
    "/* Spline and polynomial terms (ns, bs, poly): PROC MIXED has no spline effect, so a",
    "   DATA step computes their columns with the knots and coefficients LMM Explorer learned",
    "   from the data. They are the columns of LMM Explorer and R, so the estimates are theirs",
    "   (CLASS variables aside, see the note at the end). PROC GLIMMIX's EFFECT ... = SPLINE()",
    "   is not used: it builds other bases (its natural cubic splines are truncated power",
    "   functions: the same curve, other coefficients). */",
)


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
    """The PROC MIXED statements' parts: CLASS variables, response, fixed effects, randoms
    and the repeated effect (the visit, or its copy)."""

    class_vars: list[str]
    response: str
    fixed: list[str]
    randoms: list[list]  # [effects, subject, type, (term position, subject)]
    repeated: str = ""


def sas_code(
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
    """SAS code: PROC IMPORT of the data file, derived variables, then PROC MIXED (a GLMM,
    ``glmm`` given: PROC GLIMMIX, :mod:`dashboard.export.glimmix_code`).

    PROC MIXED has no spline effect, so the columns of ``ns``/``bs``/``poly`` terms are
    computed in a DATA step from the basis of ``bases`` (the fit's ``result.design.bases``;
    learned from ``data`` when not given): the same columns as in the app, so the same
    estimates (:func:`dashboard.export.basis_code.sas_basis_lines`).
    """
    spec = parse_formula(formula)
    cats = set(categorical_columns(spec, data))
    learned = bc.learned_bases(spec, data, bases)
    sb = _SasBuilder({sas_name(c).upper() for c in data.columns}, learned)
    model = _sas_model(spec, cats, sb, response=glmm is None)
    if glmm is not None:
        proc = glimmix_code.proc_glimmix(spec, data, glmm, sb, model)
    else:
        proc = _sas_proc_mixed(model, spec, reml, df_method)
    lines = _sas_import(title, formula, file_name, data, bool(learned))
    lines += _sas_data_steps(sb)
    lines += proc
    lines += _sas_notes(spec, cats, data, df_method if glmm is None else "")
    lines.append("")
    return "\n".join(lines)


def _sas_model(
    spec: ModelSpec, cats: set[str], sb: _SasBuilder, response: bool = True
) -> _SasModel:
    """Variables and effects of the formula, SAS names made by ``sb`` (``response``: also the
    response's; a GLMM's is PROC GLIMMIX's business)."""
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

    repeated = _repeated_effect(spec, cats, sb)
    for col in mmrm_code.residual_columns(spec):  # REPEATED visit / SUBJECT=subject
        add_class(repeated if spec.residual and col == spec.residual.visit.name else sas_name(col))
    response_name = sb.variable(spec.response_label, spec.response) if response else ""
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
    return _SasModel(class_vars, response_name, fixed, randoms, repeated)


def _repeated_effect(spec: ModelSpec, cats: set[str], sb: _SasBuilder) -> str:
    """The SAS name of REPEATED's effect: the visit, or a copy of it when the visit is also
    a numeric fixed effect (CLASS would make MODEL fit it as a factor: another model)."""
    res = spec.residual
    if res is None or res.structure == "sp_exp":
        return ""
    visit = res.visit.name
    if visit in cats or visit not in fixed_columns(spec):
        return sas_name(visit)
    copy = sb.new_name(f"{visit}_c")
    sb.derived["\0visit copy"] = (copy, sas_name(visit))
    return copy


def _sas_import(
    title: str, formula: str, file_name: str, data: pd.DataFrame, bases: bool
) -> list[str]:
    """Header comments (with :data:`SAS_BASIS_NOTE` when the formula has bases) and the
    PROC IMPORT of the data file."""
    cut = [(c, sas_cut(c)) for c in map(str, data.columns) if sas_cut(c) != c]
    lines = [f"/* {one_line(title).replace('*/', '* /')} */" if title else "/* LMM Explorer */"]
    lines.append(f"/* Formula in LMM Explorer: {one_line(formula).replace('*/', '* /')} */")
    if bases:
        lines += SAS_BASIS_NOTE
    lines.append("/* Put the data file (Export page download) where SAS can read it. */")
    if cut:
        shown = "; ".join(f"{one_line(a)} -> {one_line(b)}" for a, b in cut).replace("*/", "* /")
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
        lines += ["", "/* Variables the model computes (I(), log(), copies, ...) */",
                  "DATA work.lmm;", "  SET work.lmm;"]  # fmt: skip
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
    if spec.residual is not None:
        names = {nm.name: sas_name(nm.name) for nm in spec.column_refs()}
        lines += mmrm_code.sas_repeated(spec.residual, names, model.repeated)
    lines.append("RUN;")
    return lines


def _sas_notes(spec: ModelSpec, cats: set[str], data: pd.DataFrame, df_method: str) -> list[str]:
    """Where SAS's output differs from the app's: reference levels, Wald df."""
    lines = []
    fixed_cats = [c for c in cats if c in fixed_columns(spec)]
    if fixed_cats:
        lines.append(
            "/* SAS codes CLASS variables with the LAST level as reference; LMM Explorer and R "
            "use the FIRST ("
            + ", ".join(
                f"{sas_name(c)}: {one_line(levels_of(data[c])[0])[:40]}" for c in fixed_cats
            ).replace("*/", "* /")
            + "). Fitted values, variance components and likelihood agree; coefficients of "
            "categorical terms are contrasts against another level. */"
        )
    if df_method == "wald":
        lines.append("/* Wald in LMM Explorer uses the normal distribution (df = infinity). */")
    return lines
