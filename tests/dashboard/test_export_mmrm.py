"""Export of MMRM models (issue 14): R's mmrm, SAS's PROC MIXED REPEATED, Python."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from dashboard.export.code import canonical_csv, python_code, r_code
from dashboard.export.mmrm_code import SAS_TYPES
from dashboard.export.sas_code import sas_code
from lmm_core import fit_lmm
from lmm_core.design.residual_structures import STRUCTURES
from tests.core.test_mmrm import fev

FEV = "FEV1 ~ RACE + SEX + ARMCD * AVISIT + us(AVISIT | USUBJID)"


def test_r_code_calls_mmrm_with_the_visit_order():
    code = r_code(FEV, True, "fev.csv", fev(), df_method="kenward-roger")
    assert "library(mmrm)" in code and "lmerTest" not in code
    assert "m <- mmrm(" in code and "+ us(AVISIT | USUBJID)," in code
    assert 'reml = TRUE, method = "Kenward-Roger"' in code
    assert 'factor(d[["AVISIT"]], levels = c("VIS1", "VIS2", "VIS3", "VIS4"))' in code
    assert code.count('d[["AVISIT"]] <- factor') == 1


def test_r_code_makes_a_numeric_visit_an_ordered_factor():
    data = fev()
    data["VISITN"] = data["VISITN"].astype(int) * 4  # weeks 4..16, numbers in the data
    code = r_code("FEV1 ~ ARMCD + ar1(VISITN | ARMCD / USUBJID)", False, "f.csv", data)
    assert 'factor(d[["VISITN"]], levels = c("4", "8", "12", "16"))' in code
    assert "ar1(VISITN | ARMCD / USUBJID)" in code and "reml = FALSE" in code


@pytest.mark.parametrize("structure", [s for s in STRUCTURES if s != "sp_exp"])
def test_sas_repeated_statement(structure):
    code = sas_code(
        f"FEV1 ~ ARMCD * AVISIT + {structure}(AVISIT | ARMCD / USUBJID)", True, "fev.csv", fev()
    )
    sas_type = SAS_TYPES[structure] or "ANTE(1)"
    assert f"  REPEATED AVISIT / SUBJECT=USUBJID GROUP=ARMCD TYPE={sas_type};" in code
    class_line = next(line for line in code.splitlines() if line.strip().startswith("CLASS"))
    assert {"AVISIT", "USUBJID", "ARMCD"} <= set(class_line.rstrip(";").split()[1:])
    assert ("has no SAS TYPE" in code) == (structure == "ad")
    assert "RANDOM" not in code


def test_python_code_refits_the_same_mmrm(tmp_path, capsys):
    data = fev()
    path = tmp_path / "fev.csv"
    path.write_bytes(canonical_csv(data))
    code = python_code(FEV, True, str(path), data)
    namespace: dict = {}
    exec(code, namespace)  # the generated script, run as a user would
    ours = fit_lmm(FEV, data)
    got = namespace["result"]
    assert got.x_names == ours.x_names
    np.testing.assert_allclose(got.beta, ours.beta, rtol=1e-8)
    assert got.loglik == pytest.approx(ours.loglik, rel=1e-10)
    assert "VIS4" in capsys.readouterr().out


# ----------------------------------------------------------------- numeric visits, sp_exp
def _trial() -> pd.DataFrame:
    """30 hospitals, 5 visits, some missing (nlme::lme's references, tests/fixtures)."""
    return pd.read_csv("tests/fixtures/mmrm_random/trial_small.csv")


def _lines(code: str, start: str) -> list[str]:
    return [ln.strip() for ln in code.splitlines() if ln.strip().startswith(start)]


def test_sas_copies_a_numeric_visit_that_is_a_fixed_effect():
    """CLASS visit would make MODEL fit the visit as a factor: another model."""
    sas = sas_code("y ~ visit * arm + ar1(visit | patient)", True, "t.csv", _trial())
    assert "  visit_c = visit;" in sas
    assert _lines(sas, "CLASS") == ["CLASS visit_c patient arm;"]
    assert _lines(sas, "MODEL") == [
        "MODEL y = visit arm visit*arm / SOLUTION CL DDFM=SATTERTHWAITE;"
    ]
    assert _lines(sas, "REPEATED") == ["REPEATED visit_c / SUBJECT=patient TYPE=AR(1);"]
    plain = sas_code("y ~ time * arm + ar1(visit | patient)", True, "t.csv", _trial())
    assert "visit_c" not in plain and "REPEATED visit / SUBJECT=patient TYPE=AR(1);" in plain


def test_sp_exp_keeps_the_time_a_number():
    data = _trial()
    rc = r_code("y ~ time * arm + sp_exp(time | patient)", True, "t.csv", data)
    assert "+ sp_exp(time | patient)," in rc and 'factor(d[["time"]]' not in rc
    sas = sas_code("y ~ time * arm + sp_exp(time | patient)", True, "t.csv", data)
    assert _lines(sas, "REPEATED") == ["REPEATED / SUBJECT=patient TYPE=SP(EXP)(time);"]
    assert "exp(-d / theta)" in sas and "rho = exp(-1 / theta)" in sas
    assert _lines(sas, "CLASS") == ["CLASS patient arm;"]  # the time stays continuous


# ----------------------------------------------------------------- random effects + structure
COMBINED = {
    "ar1": ("corAR1(form = ~ visit_index | hospital/patient)", False),
    "us": ("corSymm(form = ~ visit_index | hospital/patient)", True),
    "cs": ("corCompSymm(form = ~ 1 | hospital/patient)", False),
    "csh": ("corCompSymm(form = ~ 1 | hospital/patient)", True),
    "ar1h": ("corAR1(form = ~ visit_index | hospital/patient)", True),
}


@pytest.mark.parametrize("structure", list(COMBINED))
def test_random_effects_with_a_structure_use_nlme(structure):
    data = _trial()
    formula = f"y ~ time * arm + (time | hospital) + {structure}(visit | patient)"
    rc = r_code(formula, False, "t.csv", data)
    correlation, by_visit = COMBINED[structure]
    assert "library(nlme)" in rc and "mmrm" not in rc.split("\n", 3)[3].split("#")[0]
    assert "  fixed = y ~ 1 + time + arm + time:arm," in rc
    assert "  random = ~ 1 + time | hospital," in rc
    assert f"  correlation = {correlation}," in rc
    assert ("weights = varIdent(form = ~ 1 | visit_factor)" in rc) == by_visit
    assert 'method = "ML", na.action = na.omit' in rc
    sas = sas_code(formula, False, "t.csv", data)
    assert _lines(sas, "RANDOM") == ["RANDOM INTERCEPT time / SUBJECT=hospital TYPE=UN;"]
    assert len(_lines(sas, "REPEATED")) == 1


def test_nlme_nested_groups_sp_exp_and_what_it_cannot_fit():
    data = _trial()
    rc = r_code("y ~ time + (1 | hospital) + sp_exp(time | patient)", True, "t.csv", data)
    assert "correlation = corExp(form = ~ time | hospital/patient)," in rc
    data["ward"] = data["patient"].str[-1]
    nested = r_code("y ~ time + (1 | hospital/ward) + ar1(visit | patient)", True, "t.csv", data)
    assert "random = list(hospital = ~ 1, ward = ~ 1)," in nested
    assert "corAR1(form = ~ visit_index | hospital/ward/patient)" in nested
    for formula, why in [
        ("y ~ time + (1 | hospital) + toep(visit | patient)", "like mmrm's `toep`"),
        ("y ~ time + (1 | hospital) + (1 | ward) + ar1(visit | patient)", "crossed"),
        ("y ~ time + (1 | hospital) + us(visit | arm / patient)", "per group"),
    ]:
        rc = r_code(formula, True, "t.csv", data)
        assert "R cannot fit this model" in rc and why in rc and "m <- " not in rc


MESSY_TRIAL = {"y": "Score (pts)", "visit": "Visite n°", "patient": "Patient ID",
               "hospital": "Hôpital [site]", "arm": "Arm"}  # fmt: skip


def test_messy_names_become_plain_copies_for_mmrm_and_nlme():
    """mmrm and nlme read only plain names (else R: 'object not found', 'could not find
    function'), so the code makes plain copies; SAS keeps the names."""
    data = _trial().rename(columns=MESSY_TRIAL)
    formula = "`Score (pts)` ~ `Visite n°` * Arm + ar1h(`Visite n°` | `Patient ID`)"
    rc = r_code(formula, True, "t.csv", data)
    assert 'd[["Visite_n_factor"]] <- factor(d[["Visite n°"]], levels = c("1", "2"' in rc
    assert 'd[["Score_pts"]] <- d[["Score (pts)"]]' in rc
    assert (
        "  Score_pts ~ 1 + Visite_n + Arm + Visite_n:Arm + ar1h(Visite_n_factor | Patient_ID),"
        in rc
    )
    combined = "`Score (pts)` ~ time + (1 | `Hôpital [site]`) + ar1(`Visite n°` | `Patient ID`)"
    rc = r_code(combined, True, "t.csv", data)
    assert 'd[["Hopital_site"]] <- d[["Hôpital [site]"]]' in rc
    assert "  random = ~ 1 | Hopital_site," in rc
    assert "corAR1(form = ~ Visite_n_index | Hopital_site/Patient_ID)" in rc
    assert "  fixed = Score_pts ~ 1 + time," in rc
    sas = sas_code(combined, True, "t.csv", data)
    assert _lines(sas, "REPEATED") == ["REPEATED 'Visite n°'n / SUBJECT='Patient ID'n TYPE=AR(1);"]
    assert _lines(sas, "RANDOM") == ["RANDOM INTERCEPT / SUBJECT='Hôpital [site]'n TYPE=VC;"]


R_CHECK = """
cat("LOGLIK", sprintf("%.12g", as.numeric(logLik(m))), "\\n")
cat("FIXEF", sprintf("%.12g", if (inherits(m, "lme")) fixef(m) else coef(m)), "\\n")
"""


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("Rscript") is None, reason="Rscript (R) is not installed")
def test_generated_nlme_and_mmrm_code_gives_our_numbers(tmp_path):
    trial = _trial()
    messy = trial.rename(columns=MESSY_TRIAL)
    cases = [
        (trial, "y ~ time * arm + (1 | hospital) + ar1(visit | patient)", True),
        (trial, "y ~ avisit * arm + (1 | hospital) + us(visit | patient)", False),
        (messy, "`Score (pts)` ~ time + (1 | `Hôpital [site]`) + ar1(`Visite n°` | `Patient ID`)",
         True),
        (trial, "y ~ time * arm + (1 | hospital) + sp_exp(time | patient)", True),
    ]  # fmt: skip
    mmrm_cases = [
        (trial, "y ~ time * arm + sp_exp(time | patient)", True),
        (messy, "`Score (pts)` ~ `Visite n°` * Arm + ar1h(`Visite n°` | `Patient ID`)", True),
    ]
    probe = subprocess.run(["Rscript", "-e", "library(mmrm)"], capture_output=True, timeout=120)
    if probe.returncode == 0:
        cases += mmrm_cases
    scripts, expected = [], []
    for k, (data, formula, reml) in enumerate(cases):
        path = tmp_path / f"t{k}.csv"
        path.write_bytes(canonical_csv(data))
        scripts.append(r_code(formula, reml, str(path), data) + R_CHECK)
        expected.append(fit_lmm(formula, data, reml=reml))
    script = tmp_path / "check.R"
    script.write_text("\n".join(f"local({{\n{s}\n}})" for s in scripts), encoding="utf-8")
    proc = subprocess.run(["Rscript", str(script)], capture_output=True, timeout=600)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    out = proc.stdout.decode("utf-8").splitlines()
    logliks = [float(ln.split()[1]) for ln in out if ln.startswith("LOGLIK")]
    fixefs = [np.array(ln.split()[1:], float) for ln in out if ln.startswith("FIXEF")]
    for ours, ll, fe in zip(expected, logliks, fixefs, strict=True):
        assert ll == pytest.approx(ours.loglik, rel=1e-6)
        np.testing.assert_allclose(fe, ours.beta, rtol=1e-4)
