"""Export of MMRM models (issue 14): R's mmrm, SAS's PROC MIXED REPEATED, Python."""

from __future__ import annotations

import numpy as np
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
