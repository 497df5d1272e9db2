"""Export of GLMMs (issue 15): R's glmer, SAS's PROC GLIMMIX, Python's fit_glmm; the
generated R code, run by R when it is installed, gives our log-likelihood and estimates."""

from __future__ import annotations

import shutil
import subprocess
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from dashboard.export.code import canonical_csv, python_code, r_code
from dashboard.export.glmm_code import glmm_settings
from dashboard.export.programs import record_glmm, record_programs
from dashboard.export.sas_code import sas_code
from lmm_core import fit_glmm
from tests.dashboard.test_export_code import _line

INFECTION = "infection ~ week * arm + I((age - 50) / 10) + (week | patient)"
SEIZURES = "seizures ~ period * arm + offset(log(exposure)) + (1 | patient)"
BINOMIAL = glmm_settings("binomial")
POISSON5 = glmm_settings("poisson", nagq=5)


@pytest.fixture(scope="module")
def infections() -> pd.DataFrame:
    return pd.read_csv("data/infections.csv")


@pytest.fixture(scope="module")
def seizures() -> pd.DataFrame:
    return pd.read_csv("data/seizures.csv")


def _herds() -> pd.DataFrame:
    """Binomial counts per herd and period (cbpp-like)."""
    rng = np.random.default_rng(3)
    herd = np.repeat([f"h{i}" for i in range(12)], 4)
    period = np.tile(["p1", "p2", "p3", "p4"], 12)
    size = rng.integers(5, 25, herd.size)
    u = np.repeat(rng.normal(scale=0.7, size=12), 4)
    p = 1 / (1 + np.exp(-(-1.5 + u - 0.3 * (period != "p1"))))
    inc = rng.binomial(size, p)
    return pd.DataFrame({"herd": herd, "period": period, "incidence": inc, "size": size,
                         "prop": inc / size})  # fmt: skip


def _sas_lines(code: str, start: str) -> list[str]:
    return [ln.strip() for ln in code.splitlines() if ln.strip().startswith(start)]


# ----------------------------------------------------------------- text of each language
def test_logistic_glmm_in_r_sas_and_python(infections):
    rc = r_code(INFECTION, True, "infections.csv", infections, glmm=BINOMIAL)
    assert rc.count("library(") == 1 and "library(lme4)" in rc and "lmerTest" not in rc
    fml = "infection ~ 1 + week + arm + I((age - 50)/10) + week:arm + (1 + week | patient),"
    assert f"  {fml}" in rc
    assert 'data = d, family = binomial(link = "logit"), nAGQ = 1,' in rc
    assert 'd[["arm"]] <- factor(d[["arm"]], levels = c("placebo", "vaccine"))' in rc
    assert "(ll <- logLik(m))" in rc and "REML" not in rc
    sas = sas_code(INFECTION, True, "infections.csv", infections, glmm=BINOMIAL)
    assert "PROC GLIMMIX DATA=work.lmm METHOD=LAPLACE;" in sas and "PROC MIXED" not in sas
    assert _line(sas, "MODEL ") == (
        "MODEL infection(EVENT='1') = week arm I_age_50_10 week*arm / DIST=BINARY LINK=LOGIT "
        "SOLUTION CL DDFM=NONE ODDSRATIO;"
    )
    assert _line(sas, "RANDOM ") == "RANDOM INTERCEPT week / SUBJECT=patient TYPE=UN;"
    assert _line(sas, "CLASS ") == "CLASS arm patient;"
    assert "I_age_50_10 = ((age - 50) / 10);" in sas
    assert sas.count("RUN;") == sas.count("PROC ") + sas.count("DATA work.lmm;")
    py = python_code(INFECTION, True, "infections.csv", infections, glmm=BINOMIAL)
    assert "from lmm_core import fit_glmm" in py and "fit_lmm" not in py
    assert "family='binomial'," in py and "link='logit'," in py and "nagq=1," in py
    compile(py, "glmm.py", "exec")


def test_poisson_with_offset_and_quadrature(seizures):
    rc = r_code(SEIZURES, False, "seizures.csv", seizures, glmm=POISSON5)
    assert "seizures ~ 1 + period + arm + period:arm + offset(log(exposure)) + (1 | patient)," in rc
    assert 'family = poisson(link = "log"), nAGQ = 5,' in rc
    assert "family(m)$aic(r$y, r$n, r$y, r$weights, NULL) / 2" in rc  # the AGQ constant
    sas = sas_code(SEIZURES, False, "seizures.csv", seizures, glmm=POISSON5)
    assert "PROC GLIMMIX DATA=work.lmm METHOD=QUAD(QPOINTS=5);" in sas
    assert "log_exposure = LOG(exposure);" in sas
    assert _line(sas, "MODEL ") == (
        "MODEL seizures = period arm period*arm / DIST=POISSON LINK=LOG OFFSET=log_exposure "
        "SOLUTION CL DDFM=NONE;"
    )
    assert _line(sas, "RANDOM ") == "RANDOM INTERCEPT / SUBJECT=patient TYPE=VC;"
    py = python_code(SEIZURES, False, "seizures.csv", seizures, glmm=POISSON5)
    assert "family='poisson'" in py and "nagq=5" in py and "offset(log(exposure))" in py


def test_cbind_and_proportion_with_weights():
    data = _herds()
    formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
    rc = r_code(formula, True, "h.csv", data, glmm=BINOMIAL)
    assert "  cbind(incidence, size - incidence) ~ 1 + period + (1 | herd)," in rc
    sas = sas_code(formula, True, "h.csv", data, glmm=BINOMIAL)
    assert "trials = incidence + (size - incidence);" in sas
    assert _line(sas, "MODEL ").startswith(
        "MODEL incidence/trials = period / DIST=BINOMIAL LINK=LOGIT"
    )
    weighted = glmm_settings("binomial", "probit", 1, "size")
    rc = r_code("prop ~ period + (1 | herd)", True, "h.csv", data, glmm=weighted)
    assert 'family = binomial(link = "probit"), nAGQ = 1, weights = size,' in rc
    sas = sas_code("prop ~ period + (1 | herd)", True, "h.csv", data, glmm=weighted)
    assert "events = ROUND((prop) * size, 1E-8);" in sas
    model = _line(sas, "MODEL ")
    assert model.startswith("MODEL events/size = period / DIST=BINOMIAL LINK=PROBIT")
    assert "ODDSRATIO" not in model  # odds ratios belong to the logit link
    py = python_code("prop ~ period + (1 | herd)", True, "h.csv", data, glmm=weighted)
    assert "link='probit'" in py and "weights='size'" in py


@pytest.mark.parametrize(
    "values,levels,event",
    [
        (["no", "yes"], ("no", "yes"), "yes"),
        ([False, True], ("FALSE", "TRUE"), "True"),
        (pd.Categorical(["b", "a"], categories=["b", "a"]), ("b", "a"), "a"),
    ],
)
def test_two_valued_outcomes_name_the_event(values, levels, event):
    """The engine codes the first level 0 and the other 1: R gets the factor in that order,
    SAS ``EVENT=`` the event (PROC IMPORT reads logicals as the text True/False)."""
    n = 40
    y = pd.Series(values).take(np.arange(n) % 3 % 2).reset_index(drop=True)
    data = pd.DataFrame({"y": y, "x": np.arange(n) / n, "g": np.repeat(list("abcdefgh"), 5)})
    rc = r_code("y ~ x + (1 | g)", True, "d.csv", data, glmm=BINOMIAL)
    listed = ", ".join(f'"{v}"' for v in levels)
    assert f"levels = c({listed}))" in rc and rc.count('d[["y"]] <- factor(') == 1
    assert f"# The outcome: {levels[1]} is the event (1)" in rc
    sas = sas_code("y ~ x + (1 | g)", True, "d.csv", data, glmm=BINOMIAL)
    assert f"MODEL y(EVENT='{event}') = x /" in sas


MESSY = {"infection": "Infection (0/1)", "week": "Semaine [n°]", "arm": "Bras é",
         "patient": "Patient ID", "age": "âge"}  # fmt: skip
MESSY_FORMULA = (
    "`Infection (0/1)` ~ `Semaine [n°]` * `Bras é` + I((`âge` - 50) / 10) + (1 | `Patient ID`)"
)


def test_messy_names_in_each_language(infections, tmp_path, capsys):
    data = infections.rename(columns=MESSY)
    rc = r_code(MESSY_FORMULA, True, "d.csv", data, glmm=BINOMIAL)
    assert (
        "  `Infection (0/1)` ~ 1 + `Semaine [n°]` + `Bras é` + I((`âge` - 50)/10) + "
        "`Semaine [n°]`:`Bras é` + (1 | `Patient ID`)," in rc
    )
    sas = sas_code(MESSY_FORMULA, True, "d.csv", data, glmm=BINOMIAL)
    assert _line(sas, "MODEL ").startswith(
        "MODEL 'Infection (0/1)'n(EVENT='1') = 'Semaine [n°]'n 'Bras é'n "
    )
    assert "SUBJECT='Patient ID'n" in sas and "= (('âge'n - 50) / 10);" in sas
    path = tmp_path / "d.csv"
    path.write_bytes(canonical_csv(data))
    py = python_code(MESSY_FORMULA, True, str(path), data, glmm=BINOMIAL)
    namespace: dict = {}
    exec(py, namespace)  # the generated script, run as a user would
    ours = fit_glmm(MESSY_FORMULA, data)
    got = namespace["result"]
    assert got.x_names == ours.x_names
    np.testing.assert_allclose(got.beta, ours.beta, rtol=1e-8)
    assert got.loglik == pytest.approx(ours.loglik, rel=1e-10)
    assert "log-likelihood" in capsys.readouterr().out


def test_settings_and_records(seizures):
    assert glmm_settings("gaussian") is None and glmm_settings(None) is None
    assert glmm_settings("poisson").link == "log"
    with pytest.raises(ValueError, match="gamma"):
        glmm_settings("gamma")
    with pytest.raises(ValueError, match="probit"):
        glmm_settings("poisson", "probit")
    result = fit_glmm(SEIZURES, seizures, family="poisson", nagq=5)
    record = SimpleNamespace(
        name="M1: counts", data_name="seizures", formula=SEIZURES, reml=False, result=result,
        family="poisson", link="log", nagq=5,
    )  # fmt: skip
    assert record_glmm(record) == POISSON5
    programs = record_programs(record, seizures, "seizures.csv", "satterthwaite")
    assert "fit_glmm(" in programs["Python"] and "glmer(" in programs["R"]
    assert "METHOD=QUAD(QPOINTS=5)" in programs["SAS"]
    assert programs["R"].startswith("# M1: counts (LMM Explorer, data seizures)")
    old = SimpleNamespace(**{k: v for k, v in vars(record).items() if k not in ("family",)})
    assert record_glmm(old) is None  # records without a family are linear mixed models


# ----------------------------------------------------------------- R reproduces our numbers
R_CHECK = """
cat("LOGLIK", sprintf("%.12g", as.numeric(ll)), "\\n")
cat("FIXEF", sprintf("%.12g", fixef(m)), "\\n")
"""


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("Rscript") is None, reason="Rscript (R) is not installed")
def test_generated_glmer_code_gives_our_numbers(infections, seizures, tmp_path):
    cases = [
        (infections.rename(columns=MESSY), MESSY_FORMULA, BINOMIAL),
        (infections, INFECTION, BINOMIAL),
        (seizures, SEIZURES, POISSON5),
    ]
    scripts, expected = [], []
    for k, (data, formula, settings) in enumerate(cases):
        path = tmp_path / f"d{k}.csv"
        path.write_bytes(canonical_csv(data))
        scripts.append(r_code(formula, False, str(path), data, glmm=settings) + R_CHECK)
        expected.append(
            fit_glmm(formula, data, family=settings.family, link=settings.link, nagq=settings.nagq)
        )
    script = tmp_path / "check.R"
    script.write_text("\n".join(f"local({{\n{s}\n}})" for s in scripts), encoding="utf-8")
    proc = subprocess.run(["Rscript", str(script)], capture_output=True, timeout=600)
    if proc.returncode != 0 and b"there is no package called" in proc.stderr:
        pytest.skip("R is installed but lme4 is not")
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    out = proc.stdout.decode("utf-8").splitlines()
    logliks = [float(ln.split()[1]) for ln in out if ln.startswith("LOGLIK")]
    fixefs = [np.array(ln.split()[1:], float) for ln in out if ln.startswith("FIXEF")]
    for ours, ll, fe in zip(expected, logliks, fixefs, strict=True):
        assert ll == pytest.approx(ours.loglik, rel=1e-6)
        np.testing.assert_allclose(fe, ours.beta, rtol=1e-4)
