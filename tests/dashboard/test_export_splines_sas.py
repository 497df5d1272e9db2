"""SAS export of spline and polynomial models (issue 13).

PROC MIXED has no spline effect, so the exported SAS code computes the basis columns in a
DATA step (polynomial pieces between knots; R's recurrence for orthogonal polynomials) and
fits them as plain columns. These tests run that DATA step here, row by row as SAS does
(a small interpreter for the statements the generator writes), and check that its columns
are our basis, that fitting them as plain columns gives our fit, and the SAS text.
"""

from __future__ import annotations

import math
import re
from functools import cache

import numpy as np
import pandas as pd
import pytest

from dashboard.export.basis_code import basis_pieces, sas_stem
from dashboard.export.sas_code import sas_code
from lmm_core import LMMResult, datasets, fit_lmm
from lmm_core.design.splines import BasisState

CASES = {
    "sleep_ns3": ("sleepstudy", "Reaction ~ ns(Days, 3) + (Days | Subject)"),
    "sleep_bs_df4": ("sleepstudy", "Reaction ~ bs(Days, df = 4) + (Days | Subject)"),
    "sleep_poly2": ("sleepstudy", "Reaction ~ poly(Days, 2) + (poly(Days, 2) | Subject)"),
    "sleep_polyraw3": ("sleepstudy", "Reaction ~ poly(Days, 3, raw = TRUE) + (Days | Subject)"),
    "sleep_log_ns": ("sleepstudy", "Reaction ~ ns(log(Days + 1), df = 2) + (1 | Subject)"),
    "chick_ns3_diet": ("chickweight", "weight ~ ns(Time, 3) * Diet + (ns(Time, 2) | Chick)"),
    "chick_bs_knots": (
        "chickweight", "weight ~ bs(Time, knots = c(7, 14), degree = 2) + Diet + (Time | Chick)"
    ),
}  # fmt: skip


@cache
def _data(name: str) -> pd.DataFrame:
    return datasets.load_example(name)[0]


@cache
def _fit(case_id: str) -> LMMResult:
    name, formula = CASES[case_id]
    return fit_lmm(formula, _data(name))


def _sas(case_id: str, data: pd.DataFrame | None = None) -> str:
    name, formula = CASES[case_id]
    data = _data(name) if data is None else data
    return sas_code(formula, True, f"{name}.csv", data, bases=_fit(case_id).design.bases)


# --------------------------------------------------------------------------- interpreter
_MISSING = re.compile(r"IF MISSING\((\w+)\) THEN CALL MISSING\(([\w, ]+)\);")
_ELSE_IF = re.compile(r"ELSE IF (\w+) (<=|<) (\S+) THEN DO;")
_ASSIGN = re.compile(r"(\w+) = (.+);")
_FUNCS = {"LOG": math.log, "EXP": math.exp, "SQRT": math.sqrt}


def _basis_step(sas: str) -> list[str]:
    """The statements of the DATA step that makes the basis columns, comments removed."""
    start = sas.index("DATA work.lmm;", sas.index("/* Columns of the spline"))
    body = re.sub(r"/\*.*?\*/", "", sas[start : sas.index("RUN;", start)], flags=re.S)
    return _join(body.splitlines()[1:])


def _join(lines: list[str]) -> list[str]:
    """Statements one a line: a statement continued on the next lines is joined."""
    out: list[str] = []
    open_statement = False
    for ln in (ln.strip() for ln in lines if ln.strip()):
        if open_statement:
            out[-1] += " " + ln
        else:
            out.append(ln)
        open_statement = not out[-1].endswith(";")
    return out


def _run_row(statements: list[str], env: dict) -> None:
    """One observation through the DATA step, as SAS executes it."""
    taken, in_block, active = False, False, True
    for st in statements:
        if st.startswith(("SET ", "DROP ")):
            continue
        if m := _MISSING.fullmatch(st):
            taken = math.isnan(env[m[1]])
            for name in m[2].split(", ") if taken else ():
                env[name] = math.nan
        elif m := _ELSE_IF.fullmatch(st):
            x, bound = env[m[1]], float(m[3])
            active = not taken and (x <= bound if m[2] == "<=" else x < bound)
            taken, in_block = taken or active, True
        elif st == "ELSE DO;":
            active, taken, in_block = not taken, True, True
        elif st == "END;":
            in_block = False
        else:
            m = _ASSIGN.fullmatch(st)
            assert m, f"statement the interpreter does not know: {st}"
            if not in_block or active:
                env[m[1]] = eval(m[2], {"__builtins__": {}, **_FUNCS}, env)  # noqa: S307


def run_basis_step(sas: str, columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """Run the basis DATA step on ``columns`` (name -> values); all variables it sets."""
    statements = _basis_step(sas)
    n = len(next(iter(columns.values())))
    rows = []
    for i in range(n):
        env = {k: float(v[i]) for k, v in columns.items()}
        _run_row(statements, env)
        rows.append({k: v for k, v in env.items() if k not in columns})
    return pd.DataFrame(rows)


def _sas_columns(label: str, state: BasisState) -> list[str]:
    return [f"{sas_stem(label)}_{j}" for j in range(1, state.n_columns + 1)]


# --------------------------------------------------------------------------- the columns
@pytest.mark.parametrize("case_id", list(CASES))
def test_sas_data_step_computes_our_basis(case_id):
    """On the data, below and above the range and on missing values, the DATA step's
    columns are our basis (R's values)."""
    name, _ = CASES[case_id]
    res = _fit(case_id)
    time = "Days" if name == "sleepstudy" else "Time"
    values = _data(name)[time].to_numpy(dtype=float)
    x = np.concatenate([values, np.linspace(-5.0, 30.0, 71), [np.nan]])
    if case_id == "sleep_log_ns":
        x = x[~(x <= -1)]  # log(Days + 1) needs Days > -1
    got = run_basis_step(_sas(case_id), {time: x})
    for label, state in res.design.bases.items():
        names = _sas_columns(label, state)
        arg = np.log(x + 1) if case_id == "sleep_log_ns" else x
        want = state.evaluate(arg)
        np.testing.assert_allclose(got[names].to_numpy(), want, rtol=1e-11, atol=1e-12)
        assert np.isnan(got[names].to_numpy()[-1]).all()


@pytest.mark.parametrize("case_id", ["sleep_ns3", "sleep_poly2", "chick_ns3_diet"])
def test_fitting_the_sas_columns_gives_our_fit(case_id):
    """What PROC MIXED fits (the DATA step's columns as plain covariates, the MODEL and
    RANDOM statements read back as a formula) is our model: same likelihood, sigma and
    coefficients (by name; SAS's own reference level for CLASS variables aside)."""
    name, _ = CASES[case_id]
    res, sas = _fit(case_id), _sas(case_id)
    data = _data(name)
    time = "Days" if name == "sleepstudy" else "Time"
    cols = run_basis_step(sas, {time: data[time].to_numpy(dtype=float)})
    wide = pd.concat([data.reset_index(drop=True), cols], axis=1)
    model = re.search(r"MODEL (\w+) = (.*?) /", sas)
    fixed = " + ".join(e.replace("*", ":") for e in model[2].split())
    randoms = []
    for eff, subject in re.findall(r"RANDOM (.*?) / SUBJECT=(\w+)", sas):
        terms = ["1" if e == "INTERCEPT" else e for e in eff.split()]
        randoms.append(f"({' + '.join(terms)} | {subject})")
    again = fit_lmm(f"{model[1]} ~ {fixed} + {' + '.join(randoms)}", wide)
    assert again.objective == pytest.approx(res.objective, rel=1e-9)
    assert again.sigma == pytest.approx(res.sigma, rel=1e-6)
    rename = {}
    for label, state in res.design.bases.items():
        rename |= {s: f"{label}{j}" for j, s in enumerate(_sas_columns(label, state), 1)}
    names = [":".join(rename.get(p, p) for p in n.split(":")) for n in again.x_names]
    theirs = pd.Series(again.beta, index=names)
    ours = pd.Series(res.beta, index=res.x_names)
    assert set(theirs.index) == set(ours.index)
    np.testing.assert_allclose(theirs[ours.index], ours, rtol=1e-5, atol=1e-6 * ours.abs().max())


@pytest.mark.parametrize(
    "state",
    [
        BasisState("ns", 3, (2.0, 5.5), (0.0, 9.0), intercept=True),
        BasisState("ns", 3, (), (1.0, 4.0)),
        BasisState("bs", 1, (3.0,), (0.0, 9.0)),
        BasisState("bs", 2, (1.0, 2.5, 7.0), (0.0, 9.0), intercept=True),
        BasisState("bs", 3, (), (-2.0, 2.0)),
        BasisState("bs", 3, (86400.0 * 30 + 1e6,), (1e6, 1e6 + 86400.0 * 90)),
    ],
)
def test_polynomial_pieces_are_the_basis(state):
    """Each piece's polynomial equals the basis on its interval (knots at seconds too)."""
    low, high = state.boundary
    width = high - low
    x = np.linspace(low - 0.5 * width, high + 0.5 * width, 401)
    want = state.evaluate(x)
    for piece in basis_pieces(state):
        inside = np.ones_like(x, dtype=bool)
        if piece.lower is not None:
            inside &= x >= piece.lower
        if piece.upper is not None:
            inside &= (x <= piece.upper) if piece.closed else (x < piece.upper)
        got = piece.evaluate(x[inside])
        np.testing.assert_allclose(got, want[inside], rtol=1e-10, atol=1e-11)


def test_polynomials_have_no_pieces():
    with pytest.raises(ValueError, match="polynomial"):
        basis_pieces(BasisState("poly", 2, alpha=(1.0, 1.0), norm2=(1.0, 3.0, 2.0, 1.0)))


# --------------------------------------------------------------------------- the text
def _statements(sas: str) -> list[str]:
    return _join(re.sub(r"/\*.*?\*/", "", sas, flags=re.S).splitlines())


def test_sas_text_of_the_chickweight_spline_model():
    sas = _sas("chick_ns3_diet")
    st = _statements(sas)
    assert "CLASS Diet Chick;" in st
    assert (
        "MODEL weight = ns_Time_3_1 ns_Time_3_2 ns_Time_3_3 Diet ns_Time_3_1*Diet "
        "ns_Time_3_2*Diet ns_Time_3_3*Diet / SOLUTION CL DDFM=SATTERTHWAITE;"
    ) in st
    assert "RANDOM INTERCEPT ns_Time_2_1 ns_Time_2_2 / SUBJECT=Chick TYPE=UN;" in st
    # the note comes first, the basis DATA step between PROC IMPORT and PROC MIXED
    assert sas.index("PROC MIXED has no spline effect") < sas.index("PROC IMPORT")
    assert sas.index("PROC IMPORT") < sas.index("ns_Time_3_1 =") < sas.index("PROC MIXED DATA")
    assert "EFFECT ... = SPLINE()" in sas and "same curve, other coefficients" in sas
    assert (
        "ns(Time, 3) in LMM Explorer: natural cubic spline, knots 6, 14, boundary knots 0, 21"
        in (sas)
    )
    assert (
        "ns(Time, 2) in LMM Explorer: natural cubic spline, knots 10, boundary knots 0, 21" in sas
    )
    assert "ELSE IF _lmm_x < 6 THEN DO;" in st and "ELSE IF _lmm_x <= 21 THEN DO;" in st
    assert "DROP _lmm_x _lmm_u;" in st
    assert max(len(ln) for ln in sas.splitlines() if "_lmm_u" in ln) <= 96  # wrapped
    starts = [s for s in st if s.startswith(("PROC ", "DATA "))]
    assert st.count("RUN;") == len(starts) == 3  # PROC IMPORT, DATA, PROC MIXED
    assert "LAST level as reference" in sas  # the CLASS note stays


def test_sas_text_of_polynomials():
    st = _statements(_sas("sleep_poly2"))
    assert "_lmm_p1 = _lmm_x - 4.5;" in st
    assert "MODEL Reaction = poly_Days_2_1 poly_Days_2_2 / SOLUTION CL DDFM=SATTERTHWAITE;" in st
    assert "RANDOM INTERCEPT poly_Days_2_1 poly_Days_2_2 / SUBJECT=Subject TYPE=UN;" in st
    raw = _statements(_sas("sleep_polyraw3"))
    assert [s for s in raw if s.startswith("poly_")] == [
        "poly_Days_3_raw_TRUE_1 = _lmm_x;",
        "poly_Days_3_raw_TRUE_2 = _lmm_x**2;",
        "poly_Days_3_raw_TRUE_3 = _lmm_x**3;",
    ]
    assert "_lmm_x = LOG(Days + 1);" in _statements(_sas("sleep_log_ns"))


def test_sas_names_avoid_the_data_columns():
    """A data column already named like a basis column or a temporary variable."""
    data = _data("sleepstudy").assign(ns_Days_3_1=1.0, _lmm_x=2.0)
    sas = _sas("sleep_ns3", data)
    st = _statements(sas)
    (model,) = [s for s in st if s.startswith("MODEL ")]
    assert model.startswith("MODEL Reaction = ns_Days_3_2_1 ns_Days_3_2_2 ns_Days_3_2_3 /")
    assert "_lmm2_x = Days;" in st and "DROP _lmm2_x _lmm2_u;" in st
    assert "ns_Days_3_1 =" not in sas


def test_sas_awkward_column_in_a_spline():
    data = _data("sleepstudy").rename(columns={"Days": "Visit day [d]", "Subject": "Patient ü"})
    formula = "Reaction ~ ns(`Visit day [d]`, 3) + (1 | `Patient ü`)"
    res = fit_lmm(formula, data)
    st = _statements(sas_code(formula, True, "d.csv", data, bases=res.design.bases))
    assert "_lmm_x = 'Visit day [d]'n;" in st
    assert "MODEL Reaction = ns_Visit_day_d_3_1 ns_Visit_day_d_3_2 ns_Visit_day_d_3_3 / " in (
        " ".join(st)
    )
    assert "RANDOM INTERCEPT / SUBJECT='Patient ü'n TYPE=VC;" in st
