"""Code export: exact R and SAS text for a table of formulas, the Python snippet refits the
same model, and (when ``Rscript`` with lme4/lmerTest is installed) R gives our estimates."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from dashboard.export.code import (
    canonical_csv,
    data_file_name,
    python_code,
    r_code,
    r_string,
)
from dashboard.export.sas_code import sas_code, sas_name
from lmm_core import datasets, fit_lmm


@pytest.fixture(scope="module")
def examples() -> dict[str, pd.DataFrame]:
    return {n: datasets.load_example(n)[0] for n in ("sleepstudy", "orthodont", "trial_small")}


def _line(code: str, start: str) -> str:
    (line,) = [ln.strip() for ln in code.splitlines() if ln.strip().startswith(start)]
    return line


# data, formula, R lmer call (model part), SAS CLASS, MODEL, RANDOM statements
CASES = [
    (
        "sleepstudy",
        "Reaction ~ 1 + (1 | Subject)",
        "Reaction ~ 1 + (1 | Subject)",
        "CLASS Subject;",
        "MODEL Reaction = / SOLUTION CL DDFM=SATTERTHWAITE;",
        ["RANDOM INTERCEPT / SUBJECT=Subject TYPE=VC;"],
    ),
    (
        "sleepstudy",
        "Reaction ~ Days + (Days | Subject)",
        "Reaction ~ 1 + Days + (1 + Days | Subject)",
        "CLASS Subject;",
        "MODEL Reaction = Days / SOLUTION CL DDFM=SATTERTHWAITE;",
        ["RANDOM INTERCEPT Days / SUBJECT=Subject TYPE=UN;"],
    ),
    (
        "sleepstudy",
        "Reaction ~ Days + (Days || Subject)",
        "Reaction ~ 1 + Days + (1 | Subject) + (0 + Days | Subject)",
        "CLASS Subject;",
        "MODEL Reaction = Days / SOLUTION CL DDFM=SATTERTHWAITE;",
        ["RANDOM INTERCEPT Days / SUBJECT=Subject TYPE=VC;"],
    ),
    (
        "sleepstudy",
        "Reaction ~ Days + (0 + Days | Subject)",
        "Reaction ~ 1 + Days + (0 + Days | Subject)",
        "CLASS Subject;",
        "MODEL Reaction = Days / SOLUTION CL DDFM=SATTERTHWAITE;",
        ["RANDOM Days / SUBJECT=Subject TYPE=VC;"],
    ),
    (
        "trial_small",
        "y ~ time * arm + (time | hospital/patient_in_hospital)",
        "y ~ 1 + time + arm + time:arm + (1 + time | patient_in_hospital:hospital) "
        "+ (1 + time | hospital)",
        "CLASS arm patient_in_hospital hospital;",
        "MODEL y = time arm time*arm / SOLUTION CL DDFM=SATTERTHWAITE;",
        [
            "RANDOM INTERCEPT time / SUBJECT=patient_in_hospital(hospital) TYPE=UN;",
            "RANDOM INTERCEPT time / SUBJECT=hospital TYPE=UN;",
        ],
    ),
    (
        "trial_small",
        "y ~ time + (1 | patient) + (1 | hospital)",
        "y ~ 1 + time + (1 | patient) + (1 | hospital)",
        "CLASS patient hospital;",
        "MODEL y = time / SOLUTION CL DDFM=SATTERTHWAITE;",
        [
            "RANDOM INTERCEPT / SUBJECT=patient TYPE=VC;",
            "RANDOM INTERCEPT / SUBJECT=hospital TYPE=VC;",
        ],
    ),
    (
        "trial_small",
        "y ~ time + (1 | hospital:patient_in_hospital)",
        "y ~ 1 + time + (1 | hospital:patient_in_hospital)",
        "CLASS hospital patient_in_hospital;",
        "MODEL y = time / SOLUTION CL DDFM=SATTERTHWAITE;",
        ["RANDOM INTERCEPT / SUBJECT=hospital*patient_in_hospital TYPE=VC;"],
    ),
    (
        "trial_small",
        "y ~ time + factor(visit) + (1 | patient)",
        "y ~ 1 + time + factor(visit) + (1 | patient)",
        "CLASS visit patient;",
        "MODEL y = time visit / SOLUTION CL DDFM=SATTERTHWAITE;",
        ["RANDOM INTERCEPT / SUBJECT=patient TYPE=VC;"],
    ),
    (
        "orthodont",
        "distance ~ 0 + Sex + I(age^2) + C(Sex):log(age) + (1 | Subject)",
        "distance ~ 0 + Sex + I(age^2) + factor(Sex):log(age) + (1 | Subject)",
        "CLASS Sex Subject;",
        "MODEL distance = Sex I_age_2 Sex*log_age / NOINT SOLUTION CL DDFM=SATTERTHWAITE;",
        ["RANDOM INTERCEPT / SUBJECT=Subject TYPE=VC;"],
    ),
]


@pytest.mark.parametrize("name,formula,r_model,sas_class,sas_model,sas_random", CASES)
def test_r_and_sas_text(examples, name, formula, r_model, sas_class, sas_model, sas_random):
    data = examples[name]
    rc = r_code(formula, True, f"{name}.csv", data)
    assert _line(rc, "m <- lmer(") == f"m <- lmer({r_model}, data = d, REML = TRUE)"
    assert f'd <- read.csv("{name}.csv", check.names = FALSE, na.strings = "")' in rc
    assert _line(rc, "library(").startswith("library(lmerTest)")
    assert 'summary(m, ddf = "Satterthwaite")' in rc
    sas = sas_code(formula, True, f"{name}.csv", data)
    assert f'PROC IMPORT DATAFILE="{name}.csv" OUT=work.lmm DBMS=CSV REPLACE;' in sas
    assert "PROC MIXED DATA=work.lmm METHOD=REML;" in sas
    assert _line(sas, "CLASS ") == sas_class
    assert _line(sas, "MODEL ") == sas_model
    assert [ln.strip() for ln in sas.splitlines() if ln.strip().startswith("RANDOM")] == sas_random
    assert sas.count("RUN;") == sas.count("PROC ") + sas.count("DATA work.lmm;")


def test_ml_kenward_roger_and_categorical_levels(examples):
    data = examples["orthodont"]
    rc = r_code("distance ~ age * Sex + (age | Subject)", False, "o.csv", data,
                df_method="kenward-roger")  # fmt: skip
    assert 'd[["Sex"]] <- factor(d[["Sex"]], levels = c("Female", "Male"))' in rc
    assert 'd[["Subject"]] <- factor(d[["Subject"]])' in rc
    assert "REML = FALSE" in rc and 'summary(m, ddf = "Kenward-Roger")' in rc
    sas = sas_code("distance ~ age * Sex + (age | Subject)", False, "o.csv", data,
                   df_method="kenward-roger")  # fmt: skip
    assert "METHOD=ML;" in sas and "DDFM=KR;" in sas
    assert "LAST level as reference" in sas and "Sex: Female" in sas


def test_sas_data_step_for_derived_variables(examples):
    sas = sas_code("log(y) ~ I(time^2) + scale(time) + log1p(time) + (1 | patient)", True,
                   "t.csv", examples["trial_small"])  # fmt: skip
    assert "log_y = LOG(y);" in sas
    assert "I_time_2 = (time**2);" in sas
    assert "log1p_time = LOG(1 + time);" in sas
    assert "scale_time = time;" in sas
    assert "PROC STANDARD DATA=work.lmm OUT=work.lmm MEAN=0 STD=1; VAR scale_time; RUN;" in sas
    assert _line(sas, "MODEL ") == (
        "MODEL log_y = I_time_2 scale_time log1p_time / SOLUTION CL DDFM=SATTERTHWAITE;"
    )
    # the standardization runs before the DATA step that could use it, both before PROC MIXED
    assert sas.index("PROC STANDARD") < sas.index("I_time_2 =") < sas.index("PROC MIXED")


def test_awkward_column_names():
    data = pd.DataFrame(
        {
            "blood pressure": [1.0, 2.0, 3.0, 4.0],
            "<script>id": ["a", "a", "b", "b"],
            "2nd": [0.0, 1.0, 0.0, 1.0],
        }
    )
    formula = "`blood pressure` ~ `2nd` + (1 | `<script>id`)"
    rc = r_code(formula, True, 'we"ird\\name.csv', data)
    assert "m <- lmer(`blood pressure` ~ 1 + `2nd` + (1 | `<script>id`)" in rc
    assert 'read.csv("we\\"ird\\\\name.csv"' in rc
    sas = sas_code(formula, True, "x.csv", data)
    # SAS name literals keep the names (issue 11: no guessed V7 renaming)
    assert _line(sas, "MODEL ").startswith("MODEL 'blood pressure'n = '2nd'n /")
    assert "SUBJECT='<script>id'n" in sas
    assert "OPTIONS VALIDVARNAME=ANY;" in sas
    assert sas_name("a" * 40) == "a" * 32
    assert r_string("a\nb") == '"a\\nb"'


def test_data_file_names():
    assert data_file_name("sleepstudy") == "sleepstudy.csv"
    assert data_file_name("trial.xlsx [Visits]") == "trial_Visits.csv"
    assert data_file_name("my data.csv (long)") == "my_data_long.csv"
    assert data_file_name("<script>") == "script.csv"
    assert data_file_name("") == "data.csv"


@pytest.mark.parametrize(
    "name,formula,reml",
    [
        ("sleepstudy", "Reaction ~ Days + (Days | Subject)", True),
        ("orthodont", "distance ~ age * Sex + (1 | Subject)", False),
        ("trial_small", "y ~ time * arm + (time | hospital/patient_in_hospital)", True),
    ],
)
def test_python_snippet_refits_the_same_model(examples, tmp_path, capsys, name, formula, reml):
    data = examples[name]
    path = tmp_path / f"{name}.csv"
    path.write_bytes(canonical_csv(data))
    code = python_code(formula, reml, str(path), data, title="M1: test")
    compile(code, "snippet", "exec")
    namespace: dict = {}
    exec(code, namespace)  # the generated snippet, run as a user would
    ours = fit_lmm(formula, data, reml=reml)
    got = namespace["result"]
    assert got.x_names == ours.x_names
    np.testing.assert_allclose(got.beta, ours.beta, rtol=1e-10)
    np.testing.assert_allclose(got.theta, ours.theta, rtol=1e-8, atol=1e-10)
    assert got.objective == pytest.approx(ours.objective, rel=1e-12)
    assert "Fixed effects" in capsys.readouterr().out


def test_python_snippet_keeps_categorical_order(tmp_path):
    data = pd.DataFrame(
        {
            "y": np.arange(12.0) % 5,
            "arm": pd.Categorical(["z", "a"] * 6, categories=["z", "a"]),
            "g": list("abcdef") * 2,
        }
    )
    code = python_code("y ~ arm + (1 | g)", True, "d.csv", data)
    assert "data['arm'] = pd.Categorical(data['arm'], categories=['z', 'a'])" in code
    assert "dtype={'arm': 'str', 'g': 'str'}" in code


R_CHECK = """
cat("FIXEF", sprintf("%.12g", fixef(m)), "\\n")
cat("SIGMA", sprintf("%.12g", sigma(m)), "\\n")
"""


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("Rscript") is None, reason="Rscript (R) is not installed")
def test_generated_r_code_gives_our_estimates(examples, tmp_path):
    cases = [
        ("sleepstudy", "Reaction ~ Days + (Days | Subject)", True),
        ("orthodont", "distance ~ age * Sex + (age | Subject)", False),
        ("trial_small", "y ~ time * arm + (time | hospital/patient_in_hospital)", True),
    ]
    scripts, expected = [], []
    for name, formula, reml in cases:
        data = examples[name]
        path = tmp_path / f"{name}.csv"
        path.write_bytes(canonical_csv(data))
        scripts.append(r_code(formula, reml, str(path), data) + R_CHECK)
        expected.append(fit_lmm(formula, data, reml=reml))
    script = tmp_path / "check.R"
    # one R process for all models: loading lmerTest takes most of the time
    script.write_text("\n".join(f"local({{\n{s}\n}})" for s in scripts))
    proc = subprocess.run(["Rscript", str(script)], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0 and "there is no package called" in proc.stderr:
        pytest.skip("R is installed but lme4/lmerTest are not")
    assert proc.returncode == 0, proc.stderr[-2000:]
    fixefs = [ln.split()[1:] for ln in proc.stdout.splitlines() if ln.startswith("FIXEF")]
    sigmas = [float(ln.split()[1]) for ln in proc.stdout.splitlines() if ln.startswith("SIGMA")]
    for ours, fe, sigma in zip(expected, fixefs, sigmas, strict=True):
        np.testing.assert_allclose(np.array(fe, dtype=float), ours.beta, rtol=1e-4)
        assert sigma == pytest.approx(ours.sigma, rel=1e-3)


# ----------------------------------------------------------------- names that need quoting
AWKWARD = {  # role -> column name with spaces, brackets, units, non-ASCII letters, operators
    "y": "SBP (mmHg)",
    "time": "Visit day [d]",
    "x": "Größe/Âge-é",
    "arm": "Treatment: A+B*C",
    "g": "Patient ID ü",
}


def _awkward_data() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n_g, n_t = 12, 5
    g = np.repeat([f"p{i}" for i in range(n_g)], n_t)
    t = np.tile(np.arange(n_t, dtype=float), n_g)
    x = np.repeat(rng.normal(size=n_g), n_t)
    arm = np.repeat(["A", "B"] * (n_g // 2), n_t)
    u = np.repeat(rng.normal(scale=2.0, size=n_g), n_t)
    y = 120 + 1.5 * t + x + (arm == "B") * 2 + u + rng.normal(size=n_g * n_t)
    cols = dict(zip(AWKWARD.values(), (y, t, x, arm, g), strict=True))
    return pd.DataFrame(cols)


def _awkward_formula() -> str:
    from dashboard.analysis.model_builder import BuilderChoices, GroupLevel, build_formula

    a = AWKWARD
    return build_formula(BuilderChoices(
        a["y"], (a["time"], a["x"], a["arm"]), ((a["time"], a["arm"]),),
        (GroupLevel(a["g"], slopes=(a["time"],)),),
    ))  # fmt: skip


def test_python_script_says_how_to_get_lmm_core():
    """Issue 11 item 12: `from lmm_core import ...` failed outside the repository."""
    code = python_code("y ~ x + (1 | g)", True, "d.csv", pd.DataFrame({"y": [1.0]}))
    header = code.split("import pandas")[0]
    assert "pip install /path/to/lmm-explorer" in header
    assert "pip install git+" in header and "lmm_core" in header
    assert all(ln.startswith("#") for ln in header.strip().splitlines())


def test_awkward_names_in_python_r_and_sas(tmp_path, capsys):
    """Every generated program names every column as the data do, quoted as its language
    needs: the Python formula parses with our grammar (and the script runs), R gets
    backticks, SAS name literals."""
    import ast

    from lmm_core.formula.terms import parse_formula

    data, formula = _awkward_data(), _awkward_formula()
    path = tmp_path / "d.csv"
    path.write_bytes(canonical_csv(data))
    py = python_code(formula, True, str(path), data)
    namespace: dict = {}
    exec(py, namespace)
    np.testing.assert_allclose(namespace["result"].beta, fit_lmm(formula, data).beta)
    assert "SBP (mmHg)" in capsys.readouterr().out
    (call,) = [n for n in ast.walk(ast.parse(py)) if isinstance(n, ast.Call)
               and getattr(n.func, "id", "") == "fit_lmm"]  # fmt: skip
    spec = parse_formula(call.args[0].value)
    assert {r.name for r in spec.column_refs()} == set(AWKWARD.values())

    rc = r_code(formula, True, "d.csv", data)
    lmer = _line(rc, "m <- lmer(")
    for name in AWKWARD.values():
        assert f"`{name}`" in lmer, name
    assert f'd[["{AWKWARD["arm"]}"]] <- factor(' in rc

    sas = sas_code(formula, True, "d.csv", data)
    assert _line(sas, "MODEL ") == (
        "MODEL 'SBP (mmHg)'n = 'Visit day [d]'n 'Größe/Âge-é'n 'Treatment: A+B*C'n "
        "'Visit day [d]'n*'Treatment: A+B*C'n / SOLUTION CL DDFM=SATTERTHWAITE;"
    )
    assert _line(sas, "RANDOM ") == (
        "RANDOM INTERCEPT 'Visit day [d]'n / SUBJECT='Patient ID ü'n TYPE=UN;"
    )
    assert _line(sas, "CLASS ") == "CLASS 'Treatment: A+B*C'n 'Patient ID ü'n;"
    assert sas_name("it's") == "'it''s'n" and sas_name("é" * 20) == "'" + "é" * 16 + "'n"


def test_r_names_are_escaped():
    from dashboard.export.code import r_name

    assert r_name("Days") == "Days" and r_name("Âge") == "`Âge`"
    assert r_name("a`b") == "`a\\`b`" and r_name("a\\b") == "`a\\\\b`"
    assert r_name("if") == "`if`" and r_name("2nd") == "`2nd`"


@pytest.mark.skipif(shutil.which("Rscript") is None, reason="Rscript (R) is not installed")
def test_r_parses_the_awkward_formula_to_the_same_columns(tmp_path):
    """R itself reads the generated lmer() call: its variables are exactly our columns."""
    data, formula = _awkward_data(), _awkward_formula()
    lmer = _line(r_code(formula, True, "d.csv", data), "m <- lmer(")
    script = tmp_path / "parse.R"
    script.write_text(
        f"e <- parse(text = {r_string(lmer)}, encoding = 'UTF-8')[[1]]\n"
        "f <- e[[3]][[2]]\n"
        "writeLines(enc2utf8(all.vars(f)), con = stdout(), useBytes = TRUE)\n",
        encoding="utf-8",
    )
    proc = subprocess.run(["Rscript", str(script)], capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    got = proc.stdout.decode("utf-8").splitlines()
    assert sorted(got) == sorted(AWKWARD.values())


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("Rscript") is None, reason="Rscript (R) is not installed")
def test_r_fits_the_awkward_names_as_we_do(tmp_path):
    data, formula = _awkward_data(), _awkward_formula()
    path = tmp_path / "awkward.csv"
    path.write_bytes(canonical_csv(data))
    script = tmp_path / "fit.R"
    script.write_text(r_code(formula, True, str(path), data) + R_CHECK, encoding="utf-8")
    proc = subprocess.run(["Rscript", str(script)], capture_output=True, timeout=300)
    if proc.returncode != 0 and b"there is no package called" in proc.stderr:
        pytest.skip("R is installed but lme4/lmerTest are not")
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    out = proc.stdout.decode("utf-8").splitlines()
    (fe,) = [ln.split()[1:] for ln in out if ln.startswith("FIXEF")]
    ours = fit_lmm(formula, data)
    np.testing.assert_allclose([float(v) for v in fe], ours.beta, rtol=1e-5, atol=1e-6)
