"""The Export page with a GLMM active (issue 15, AppTest): the three code tabs hold glmer,
PROC GLIMMIX and fit_glmm with the record's family, link and quadrature points; the result
CSVs are offered; figures and the report say they are for linear mixed models."""

from __future__ import annotations

import pytest

from dashboard.analysis.records import FitRecord
from dashboard.state.session import Keys
from lmm_core import datasets, fit_glmm
from tests.app.conftest import texts

CASES = {
    "infections": (
        "infection ~ week * arm + (week | patient)",
        "binomial",
        "probit",
        1,
        ['family = binomial(link = "probit"), nAGQ = 1,', "MODEL infection(EVENT='1') = ",
         "DIST=BINARY LINK=PROBIT", "METHOD=LAPLACE;", "link='probit'"],
    ),
    "seizures": (
        "seizures ~ period * arm + offset(log(exposure)) + (1 | patient)",
        "poisson",
        "log",
        7,
        ['family = poisson(link = "log"), nAGQ = 7,', "OFFSET=log_exposure",
         "METHOD=QUAD(QPOINTS=7);", "nagq=7", "offset(log(exposure))"],
    ),
}  # fmt: skip


@pytest.mark.parametrize("dataset", list(CASES))
def test_export_page_writes_the_glmm_in_three_languages(app, dataset):
    formula, family, link, nagq, expected = CASES[dataset]
    data = datasets.load_example(dataset)[0]
    result = fit_glmm(formula, data, family=family, link=link, nagq=nagq)
    record = FitRecord(
        "M1: GLMM", formula, False, f"example:{dataset}", dataset, result, 0.0,
        family=family, link=link, nagq=nagq,
    )  # fmt: skip
    app.selectbox(key=Keys.W_EXAMPLE).select(dataset).run()
    app.session_state[Keys.FITS] = [record]
    app.session_state[Keys.ACTIVE_FIT] = record.name
    at = app.switch_page("pages/export.py").run()
    assert not at.exception, at.exception
    assert not at.error, texts(at.error)
    python, r, sas = (c.value for c in at.code)
    assert "from lmm_core import fit_glmm" in python and f"family={family!r}" in python
    assert "m <- glmer(" in r and "library(lme4)" in r
    assert "PROC GLIMMIX DATA=work.lmm" in sas and "PROC MIXED" not in sas
    code = "\n".join((python, r, sas))
    for piece in expected:
        assert piece in code, piece
    labels = [b.label for b in at.get("download_button")]
    assert "Fixed effects" in labels and "HTML report" not in labels
    assert "made for linear mixed models" in texts(at.info)
    # Wald z tests: no degrees-of-freedom choice
    assert not any("Degrees of freedom" in sb.label for sb in at.selectbox)
    assert "Wald z tests" in texts(at.caption)
