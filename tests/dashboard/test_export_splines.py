"""Export of spline and polynomial models (issue 13): R, Python and SAS code fit the model of
the app, with the basis the fit learned.

R: the committed reference values (``tests/fixtures/export_splines/reference_r.json``) come
from running the exported R scripts in R (``run_exported.R`` there); the scripts are checked
to be today's export, and our fits to give R's numbers. When ``Rscript`` with lme4 and
lmerTest is installed, a slow test runs the scripts in R again.

Regenerate the reference (from the repository root; ``D=tests/fixtures/export_splines``)::

    PYTHONPATH=. .venv/bin/python -m tests.dashboard.test_export_splines $D
    Rscript $D/run_exported.R $D
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dashboard.export.basis_code import python_formula
from dashboard.export.code import canonical_csv, python_code, r_code
from lmm_core import LMMResult, datasets, fit_lmm
from lmm_core.formula.terms import parse_formula

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "export_splines"
#: id -> (example data set, formula, REML)
CASES = {
    "sleep_ns3": ("sleepstudy", "Reaction ~ ns(Days, 3) + (Days | Subject)", True),
    "sleep_bs_df4": ("sleepstudy", "Reaction ~ bs(Days, df = 4) + (Days | Subject)", True),
    "sleep_poly2": ("sleepstudy", "Reaction ~ poly(Days, 2) + (poly(Days, 2) | Subject)", True),
    "sleep_polyraw3_ml": (
        "sleepstudy", "Reaction ~ poly(Days, 3, raw = TRUE) + (Days | Subject)", False
    ),
    "chick_ns3_diet": ("chickweight", "weight ~ ns(Time, 3) * Diet + (ns(Time, 2) | Chick)", True),
    "chick_bs_knots": (
        "chickweight", "weight ~ bs(Time, knots = c(7, 14), degree = 2) + Diet + (Time | Chick)",
        True,
    ),
    "chick_poly2_diet": (
        "chickweight", "weight ~ poly(Time, 2) * Diet + (poly(Time, 2) | Chick)", True
    ),
    "chick_polyraw2_ml": (
        "chickweight", "weight ~ poly(Time, 2, raw = TRUE) + Diet + (Time | Chick)", False
    ),
}  # fmt: skip


@cache
def _data(name: str) -> pd.DataFrame:
    return datasets.load_example(name)[0]


@cache
def _fit(case_id: str) -> LMMResult:
    name, formula, reml = CASES[case_id]
    return fit_lmm(formula, _data(name), reml=reml)


def _script(case_id: str) -> str:
    name, formula, reml = CASES[case_id]
    res = _fit(case_id)
    return r_code(formula, reml, f"{name}.csv", _data(name), bases=res.design.bases)


def write_cases(directory: Path) -> None:
    """The exported R script, our theta and the data file of every case, into
    ``directory`` (what ``run_exported.R`` reads)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in {name for name, _, _ in CASES.values()}:
        (directory / f"{name}.csv").write_bytes(canonical_csv(_data(name)))
    for case_id in CASES:
        (directory / f"case_{case_id}.R").write_text(_script(case_id), encoding="utf-8")
        theta = "".join(f"{float(t)!r}\n" for t in _fit(case_id).theta)
        (directory / f"case_{case_id}.theta").write_text(theta, encoding="utf-8")


def _code_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def _r_names_as_ours(case_id: str, r_names: list[str]) -> list[str]:
    """R's coefficient names with each written-out call put back as the user wrote it."""
    res = _fit(case_id)
    cols = res.design.basis_columns()
    out = []
    for name in r_names:
        for label, state in res.design.bases.items():
            name = name.replace(state.r_call(cols[label][0]), label)
        out.append(name)
    return out


def _se(res: LMMResult) -> np.ndarray:
    return res.fixef_table(df_method="wald")["std_error"].to_numpy()


#: cases where lme4's default optimizer stops within 1e-6 relative of our coefficients
LME4_TIGHT = {"sleep_ns3", "sleep_bs_df4", "sleep_poly2", "sleep_polyraw3_ml"}


def check_against_r(case_id: str, ref: dict) -> None:
    """Our fit against R's numbers for one case (``reference_r.json`` or a fresh R run).

    At our theta (lme4 evaluating without optimizing), R's coefficients, criterion and sigma
    are ours: the two programs fit the same model with the same basis. R's own optimum is
    never better than ours; where lme4 reaches it (criterion within 1e-8 relative) its
    coefficients are ours within 1e-3 standard errors (lme4's default tolerance stops
    early on the flat ChickWeight surfaces), within 1e-6 relative on sleepstudy.
    """
    res = _fit(case_id)
    assert _r_names_as_ours(case_id, ref["names"]) == res.x_names
    at = ref["at_ours"]
    np.testing.assert_allclose(at["fixef"], res.beta, rtol=1e-8)
    assert at["criterion"][0] == pytest.approx(res.objective, rel=1e-12)
    assert at["sigma"][0] == pytest.approx(res.sigma, rel=1e-10)
    gap = (ref["criterion"][0] - res.objective) / abs(res.objective)
    assert gap > -1e-9, "R found a better optimum than ours"
    if gap < 1e-8:
        assert np.all(np.abs(np.asarray(ref["fixef"]) - res.beta) <= 1e-3 * _se(res))
    if case_id in LME4_TIGHT:
        np.testing.assert_allclose(ref["fixef"], res.beta, rtol=1e-6)
        assert ref["criterion"][0] == pytest.approx(res.objective, rel=1e-9)


# ----------------------------------------------------------------------- R, committed numbers
@pytest.fixture(scope="module")
def reference() -> dict:
    return json.loads((FIXTURES / "reference_r.json").read_text(encoding="utf-8"))


def test_reference_scripts_are_todays_export(reference):
    """The committed R numbers belong to the code the Export page writes today."""
    assert set(reference) - {"_about"} == set(CASES)
    for case_id in CASES:
        committed = (FIXTURES / f"case_{case_id}.R").read_text(encoding="utf-8")
        assert _code_lines(committed) == _code_lines(_script(case_id)), (
            f"{case_id}: the exported R code changed; regenerate the reference (module doc)"
        )


@pytest.mark.parametrize("case_id", list(CASES))
def test_r_fits_our_model(reference, case_id):
    check_against_r(case_id, reference[case_id])


def test_lme4_stops_at_a_worse_optimum_on_the_chickweight_spline(reference):
    """What the reference shows for ns(Time, 3) * Diet + (ns(Time, 2) | Chick): lme4's
    default run ends singular, 57 REML units above our optimum; at our theta it agrees."""
    ref, res = reference["chick_ns3_diet"], _fit("chick_ns3_diet")
    assert ref["singular"] and ref["criterion"][0] - res.objective > 50
    assert ref["at_ours"]["criterion"][0] == pytest.approx(res.objective, rel=1e-12)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("Rscript") is None, reason="Rscript (R) is not installed")
def test_exported_r_scripts_give_our_fits_in_r(tmp_path):
    """Runs today's exported scripts in R (one R process for all cases)."""
    write_cases(tmp_path)
    proc = subprocess.run(
        ["Rscript", str(FIXTURES / "run_exported.R"), str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if proc.returncode != 0 and "there is no package called" in proc.stderr:
        pytest.skip("R is installed but lme4/lmerTest are not")
    assert proc.returncode == 0, proc.stderr[-2000:]
    fresh = json.loads((tmp_path / "reference_r.json").read_text(encoding="utf-8"))
    for case_id in CASES:
        check_against_r(case_id, fresh[case_id])


# ----------------------------------------------------------------------- R, the text
def test_r_code_writes_every_basis_out():
    rc = _script("sleep_ns3")
    assert "library(splines)  # ns() and bs()" in rc
    assert "#   ns(Days, 3) in the app: knots 3, 6; boundary knots 0, 9" in rc
    assert (
        "m <- lmer(\n"
        "  Reaction ~ 1 +\n"
        "    ns(Days, knots = c(3, 6), Boundary.knots = c(0, 9)) +\n"
        "    (1 + Days | Subject),\n"
        "  data = d, REML = TRUE\n"
        ")\n"
    ) in rc
    assert rc.index("library(splines)") < rc.index("m <- lmer(")
    bs = _script("sleep_bs_df4")
    assert "bs(Days, knots = c(4.5), degree = 3, Boundary.knots = c(0, 9))" in bs
    poly = _script("sleep_poly2")
    call = "poly(Days, 2, coefs = list(alpha = c(4.5, 4.5), norm2 = c(1, 180, 1485, 9504)))"
    assert f"  Reaction ~ 1 +\n    {call} +\n    (1 + {call} | Subject),\n" in poly
    assert "library(splines)" not in poly  # poly() is base R
    raw = _script("sleep_polyraw3_ml")
    assert (
        "    poly(Days, 3, raw = TRUE) +\n    (1 + Days | Subject),\n  data = d, REML = FALSE"
        in raw
    )
    chick = _script("chick_ns3_diet")
    ns3 = "ns(Time, knots = c(6, 14), Boundary.knots = c(0, 21))"
    ns2 = "ns(Time, knots = c(10), Boundary.knots = c(0, 21))"
    assert f"    {ns3} +\n    Diet +\n    {ns3}:Diet +\n    (1 + {ns2} | Chick),\n" in chick
    assert "#   ns(Time, 2) in the app: knots 10; boundary knots 0, 21" in chick


def test_r_code_learns_the_basis_when_not_given():
    """Without the fit's bases the code learns them from the data as the fit does."""
    name, formula, reml = CASES["chick_bs_knots"]
    assert r_code(formula, reml, "c.csv", _data(name)) == r_code(
        formula, reml, "c.csv", _data(name), bases=_fit("chick_bs_knots").design.bases
    )
    with pytest.raises(ValueError, match="no basis for ns"):
        r_code("weight ~ ns(Time, 3) + (1 | Chick)", True, "c.csv", _data(name),
               bases=_fit("chick_bs_knots").design.bases)  # fmt: skip


# ----------------------------------------------------------------------- Python
@pytest.mark.parametrize("case_id", list(CASES))
def test_python_script_refits_the_same_model(tmp_path, capsys, case_id):
    name, formula, reml = CASES[case_id]
    ours = _fit(case_id)
    path = tmp_path / f"{name}.csv"
    path.write_bytes(canonical_csv(_data(name)))
    code = python_code(formula, reml, str(path), _data(name), bases=ours.design.bases)
    namespace: dict = {}
    exec(code, namespace)  # the generated script, run as a user would
    got = namespace["result"]
    assert got.formula == python_formula(parse_formula(formula), ours.design.bases)
    assert _r_names_as_ours(case_id, got.x_names) == ours.x_names  # R's names, too
    np.testing.assert_allclose(got.beta, ours.beta, rtol=1e-8)
    np.testing.assert_allclose(got.theta, ours.theta, rtol=1e-6, atol=1e-8)
    assert got.objective == pytest.approx(ours.objective, rel=1e-10)
    assert "Fixed effects" in capsys.readouterr().out


def test_python_script_writes_knots_and_explains_poly():
    name, formula, reml = CASES["chick_ns3_diet"]
    code = python_code(
        formula, reml, "c.csv", _data(name), bases=_fit("chick_ns3_diet").design.bases
    )
    assert (
        "FORMULA = (\n"
        "    'weight ~ ns(Time, knots = c(6, 14), Boundary.knots = c(0, 21)) * Diet'\n"
        "    ' + (ns(Time, knots = c(10), Boundary.knots = c(0, 21)) | Chick)'\n"
        ")\n"
        "result = fit_lmm(FORMULA, data, reml=True)\n"
    ) in code
    assert f"# Formula in LMM Explorer: {formula}" in code
    assert "#   ns(Time, 3) in the app: knots 6, 14; boundary knots 0, 21" in code
    name, formula, reml = CASES["sleep_poly2"]
    code = python_code(formula, reml, "s.csv", _data(name), bases=_fit("sleep_poly2").design.bases)
    assert f"result = fit_lmm({formula!r}, data, reml=True)" in code  # poly as written
    assert "# poly(Days, 2): orthogonal polynomial. The formula cannot carry its" in code
    assert "learned again from the data" in code


def test_written_out_knots_keep_the_basis_on_a_subset():
    """The exported formula fitted on part of the rows uses the basis of the whole fit;
    the formula as written would learn other knots there."""
    full = _fit("chick_ns3_diet")
    spec = parse_formula(CASES["chick_ns3_diet"][1])
    written = python_formula(spec, full.design.bases)
    subset = _data("chickweight").query("Time >= 4")
    again = fit_lmm(written, subset)
    grid = np.linspace(-3.0, 25.0, 57)
    for state in full.design.bases.values():
        twin = again.design.bases[state.r_call("Time")]  # our label of the written call
        np.testing.assert_array_equal(twin.knots, state.knots)
        np.testing.assert_allclose(twin.evaluate(grid), state.evaluate(grid), rtol=1e-13)
    relearned = fit_lmm(CASES["chick_ns3_diet"][1], subset).design.bases["ns(Time, 3)"]
    assert relearned.knots != full.design.bases["ns(Time, 3)"].knots


def test_python_formula_keeps_formulas_without_splines():
    spec = parse_formula("Reaction ~ poly(Days, 2) + (Days | Subject)")
    assert python_formula(spec, _fit("sleep_poly2").design.bases) == spec.text


# ----------------------------------------------------------------------- awkward names
def test_awkward_column_name_in_a_spline():
    data = _data("sleepstudy").rename(columns={"Days": "Visit day [d]", "Subject": "Patient ü"})
    formula = "Reaction ~ ns(`Visit day [d]`, 3) + (1 | `Patient ü`)"
    res = fit_lmm(formula, data)
    rc = r_code(formula, True, "d.csv", data, bases=res.design.bases)
    assert "ns(`Visit day [d]`, knots = c(3, 6), Boundary.knots = c(0, 9))" in rc
    py = python_code(formula, True, "d.csv", data, bases=res.design.bases)
    assert "ns(`Visit day [d]`, knots = c(3, 6), Boundary.knots = c(0, 9))" in py


if __name__ == "__main__":
    write_cases(Path(sys.argv[1]))
