"""Spline and polynomial terms (issue 13): bases as R's, fits as lme4's, safe prediction.

Oracles:
- ``tests/fixtures/spline_bases_r.json`` (made by ``make_spline_bases.R`` with R 4.2.2): 54
  ``ns``/``bs``/``poly`` bases on random, tied, offset, negative and rescaled inputs, and
  ``predict()`` on new values between, at and beyond the knots: 1e-10;
- ``tests/fixtures/splines/`` (lme4 1.1-31): model columns and their names, fits, and
  population and subject predictions on grids beyond the data: 1e-6 relative at lme4's theta;
  at our optimum, never worse than lme4's criterion.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lmm_core import fit_lmm
from lmm_core.design.build import build_design
from lmm_core.design.splines import BasisState, fitting_poly, learn_basis
from lmm_core.errors import DataError, FormulaError, ModelError
from lmm_core.formula.basis_args import BasisCall
from lmm_core.formula.terms import parse_formula
from lmm_core.model.fit import result_at_theta

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SPLINES = FIXTURES / "splines"
BASES = json.loads((FIXTURES / "spline_bases_r.json").read_text())["cases"]
CASES = sorted(p.stem for p in (SPLINES / "cases").glob("*.json"))


def load_dataset(name: str) -> pd.DataFrame:
    """A spline reference dataset, factors in the level order the fits used."""
    schema = json.loads((SPLINES / "data" / f"{name}.schema.json").read_text())
    data = pd.read_csv(SPLINES / "data" / schema["file"])
    for col in schema["columns"]:
        if col["type"] == "factor":
            data[col["name"]] = pd.Categorical(
                data[col["name"]].astype(str), categories=col["levels"]
            )
    return data


def load_case(name: str) -> dict:
    return json.loads((SPLINES / "cases" / f"{name}.json").read_text())


def _call(case: dict) -> BasisCall:
    args = case["args"]
    knots = args.get("knots")
    if knots is not None:
        knots = tuple(np.atleast_1d(knots).tolist())
    boundary = args.get("Boundary.knots")
    func = case["fun"]
    return BasisCall(
        func,
        df=args.get("df"),
        knots=knots,
        boundary=tuple(sorted(boundary)) if boundary else None,
        intercept=bool(args.get("intercept", False)),
        degree=3 if func == "ns" else args.get("degree", 1 if func == "poly" else 3),
        raw=bool(args.get("raw", False)),
    )


def _close(actual, expected, rtol) -> float:
    actual, expected = np.asarray(actual, float), np.asarray(expected, float)
    scale = max(1.0, float(np.max(np.abs(expected))))
    err = float(np.max(np.abs(actual - expected))) / scale
    assert err <= rtol, err
    return err


# --------------------------------------------------------------------------- bases
@pytest.mark.parametrize("case", BASES, ids=[c["id"] for c in BASES])
def test_basis_matches_r(case):
    """Basis on the fitting values, its learned knots/coefficients, and predict() on new
    values (between, at and beyond the knots) agree with R to 1e-10."""
    x = np.array(case["x"], float)
    state = learn_basis(_call(case), x, "basis")
    fitted = fitting_poly(x, state) if case["fun"] == "poly" and not state.raw else None
    _close(state.evaluate(x) if fitted is None else fitted, case["basis"], 1e-10)
    _close(state.evaluate(np.array(case["x_new"], float)), case["predict"], 1e-10)
    attrs = case["attributes"]
    if case["fun"] != "poly":
        np.testing.assert_allclose(state.knots, np.atleast_1d(attrs["knots"]), rtol=1e-12)
        np.testing.assert_allclose(state.boundary, attrs["Boundary.knots"], rtol=1e-12)
    elif not state.raw:
        np.testing.assert_allclose(state.alpha, attrs["alpha"], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(state.norm2, attrs["norm2"], rtol=1e-10)


def test_recurrence_reproduces_fitting_poly():
    """On the fitting values the three-term recurrence (used for new data) equals R's QR."""
    x = np.random.default_rng(3).uniform(-5, 40, 200)
    state = learn_basis(BasisCall("poly", degree=5), x, "poly(x, 5)")
    _close(state.evaluate(x), fitting_poly(x, state), 1e-10)


def test_basis_is_unit_free():
    """The same times in days, seconds (with an offset) and years give the same basis."""
    days = np.random.default_rng(5).uniform(0, 30, 90)
    for func, call in (
        ("ns", BasisCall("ns", df=4)),
        ("bs", BasisCall("bs", df=5, degree=2)),
        ("poly", BasisCall("poly", degree=3)),
    ):
        ref = learn_basis(call, days, func).evaluate(days)
        for t in (86400 * days + 1e6, days / 365.25):
            got = learn_basis(call, t, func)
            basis = fitting_poly(t, got) if func == "poly" else got.evaluate(t)
            _close(basis, ref, 1e-8)


def test_r_call_writes_the_learned_basis():
    state = learn_basis(BasisCall("ns", df=3), np.arange(10.0), "ns(Days, 3)")
    assert state.r_call("Days") == "ns(Days, knots = c(3, 6), Boundary.knots = c(0, 9))"
    bs = BasisState("bs", 2, (3.0,), (0.0, 9.0), intercept=True)
    assert bs.r_call("t") == "bs(t, knots = c(3), degree = 2, Boundary.knots = c(0, 9), " + (
        "intercept = TRUE)"
    )
    assert BasisState("poly", 2, raw=True).r_call("t") == "poly(t, 2, raw = TRUE)"


# --------------------------------------------------------------------------- lme4 fits
@pytest.mark.parametrize("name", CASES)
def test_model_matrix_as_lme4(name):
    case = load_case(name)
    design = build_design(case["formula"], load_dataset(case["dataset"].removesuffix(".csv")))
    assert design.x_names == tuple(case["X_colnames"])
    head = np.array(case["X_head"])
    _close(design.X[: len(head)], head, 1e-10)
    _close(design.X.sum(axis=0), case["X_colsums"], 1e-10)
    for block in case["random_terms"]:
        term = next(t for t in design.reterms if t.group == block["group"])
        assert list(term.cnames) == block["terms"]


@pytest.mark.parametrize("name", CASES)
def test_engine_at_lme4_theta(name):
    """At lme4's theta: criterion 1e-6, estimates, SEs, BLUPs and both kinds of predictions
    (on a grid between and beyond the data) 1e-6 relative."""
    case = load_case(name)
    design = build_design(case["formula"], load_dataset(case["dataset"].removesuffix(".csv")))
    res = result_at_theta(design, np.array(case["theta"]["values"]), reml=case["REML"])
    expected = case["REML_criterion"] if case["REML"] else case["deviance"]
    assert abs(res.objective - expected) <= 1e-6 * max(1.0, abs(expected))
    _close(res.beta, case["beta"]["values"], 1e-6)
    np.testing.assert_allclose(res.std_errors, case["beta_se"]["values"], rtol=1e-6)
    np.testing.assert_allclose(res.sigma, case["sigma"], rtol=1e-6)
    block = case["ranef"][0]
    modes = res.ranef[block["group"]].loc[block["levels"], block["terms"]].to_numpy()
    _close(modes, block["values"], 1e-6)
    _assert_predictions(res, case, 1e-6)


@pytest.mark.parametrize("name", CASES)
def test_fit_reaches_lme4_optimum(name):
    """Our fit is never worse than lme4's; predictions agree to 1e-4 (lme4's optimizer
    stops up to 8e-7 short on the 3x3 polynomial term)."""
    case = load_case(name)
    res = fit_lmm(
        case["formula"], load_dataset(case["dataset"].removesuffix(".csv")), reml=case["REML"]
    )
    expected = case["REML_criterion"] if case["REML"] else case["deviance"]
    assert res.objective <= expected + 1e-8 * abs(expected)
    assert res.converged and res.is_singular == case["isSingular"]
    _close(res.beta, case["beta"]["values"], 1e-6)
    _assert_predictions(res, case, 1e-4)
    table = res.fixef_table("satterthwaite")
    np.testing.assert_allclose(table["df"], case["satterthwaite"]["df"], rtol=1e-3)


def _assert_predictions(res, case: dict, rtol: float) -> None:
    grid = case["prediction"]
    population = pd.DataFrame(grid["population"]["newdata"])
    np.testing.assert_allclose(
        res.predict(population, include_re=False),
        grid["population"]["pred"]["values"],
        rtol=rtol,
    )
    subject = pd.DataFrame(grid["subject"]["newdata"])
    np.testing.assert_allclose(
        res.predict(subject, include_re=True), grid["subject"]["pred_subject"]["values"], rtol=rtol
    )


def test_prediction_never_relearns_the_basis():
    """Safe prediction: a single new row gets the fit's basis, not one learned from itself."""
    data = load_dataset("sleepstudy")
    res = fit_lmm("Reaction ~ ns(Days, 3) + (ns(Days, 2) | Subject)", data)
    one = data.iloc[[5]]
    np.testing.assert_allclose(res.predict(one), res.fitted[5], rtol=1e-10)
    late = data[data["Days"] >= 6]
    np.testing.assert_allclose(res.predict(late), res.fitted[data["Days"].to_numpy() >= 6])


def test_time_unit_does_not_change_the_fit():
    """Days, seconds since an origin, or years: the same spline fit and predictions."""
    data = load_dataset("sleepstudy")
    ref = fit_lmm("Reaction ~ ns(Days, 3) + (ns(Days, 2) | Subject)", data)
    for scale, shift in ((86400.0, 1e6), (1 / 365.25, 0.0)):
        other = data.assign(Days=data["Days"] * scale + shift)
        res = fit_lmm("Reaction ~ ns(Days, 3) + (ns(Days, 2) | Subject)", other)
        assert abs(res.objective - ref.objective) <= 1e-7 * abs(ref.objective)
        np.testing.assert_allclose(res.fitted, ref.fitted, rtol=1e-5)


def test_labels_and_names_as_r():
    spec = parse_formula("y ~ ns(t,df=3)*arm + poly(t, 2, raw=T) + (bs(t, knots=c(2,5)) | id)")
    assert spec.fixed.labels() == (
        "ns(t, df = 3)",
        "arm",
        "poly(t, 2, raw = T)",
        "ns(t, df = 3):arm",
    )
    assert spec.random[0].lhs.labels() == ("bs(t, knots = c(2, 5))",)


def test_interaction_columns_as_lme4():
    data = load_dataset("Orthodont")
    design = build_design("distance ~ Sex * poly(age, 2) + (1 | Subject)", data)
    assert design.x_names == (
        "(Intercept)",
        "SexFemale",
        "poly(age, 2)1",
        "poly(age, 2)2",
        "SexFemale:poly(age, 2)1",
        "SexFemale:poly(age, 2)2",
    )


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("formula", "error", "words"),
    [
        ("Reaction ~ ns(Days, 12) + (1 | Subject)", DataError, "distinct values"),
        ("Reaction ~ poly(Days, 10) + (1 | Subject)", DataError, "less than the number"),
        (
            "Reaction ~ ns(Days, knots = c(4, 12), Boundary.knots = c(0, 9)) + (1 | Subject)",
            FormulaError,
            "not strictly inside",
        ),
        ("Reaction ~ ns(Days, knots = c(4, 12)) + (1 | Subject)", DataError, "outside the range"),
        ("Reaction ~ ns(Subject, 3) + (1 | Subject)", FormulaError, "categorical"),
        ("Reaction ~ ns(one, 2) + (1 | Subject)", DataError, "all the same"),
        ("Reaction ~ ns(Days, df = 2.5) + (1 | Subject)", FormulaError, "whole number"),
        ("Reaction ~ ns(Days, dg = 2) + (1 | Subject)", FormulaError, "unknown option"),
        ("Reaction ~ log(ns(Days, 2)) + (1 | Subject)", FormulaError, "several columns"),
        ("Reaction ~ poly(Days, Subject) + (1 | Subject)", FormulaError, "several columns"),
        ("Reaction ~ Days + (ns(Days, 2) | Subject)", None, None),
        ("Reaction ~ ns(Days, 3) + (ns(few, 3) | Subject)", ModelError, "fewer degrees"),
        ("Reaction ~ ns(Days, knots = c(0.2, 0.4)) + (1 | Subject)", DataError, "between"),
    ],
)
def test_bad_spline_input_is_explained(formula, error, words):
    data = load_dataset("sleepstudy").assign(one=1.0)
    jitter = 0.05 * data["Subject"].cat.codes  # many distinct times, 3 visits per subject
    data["few"] = np.where(data["Days"] < 3, data["Days"] + jitter, np.nan)
    if error is None:
        fit_lmm(formula, data)
        return
    with pytest.raises(error, match=words):
        fit_lmm(formula, data)


def test_random_curve_on_few_visits_is_noted():
    data = load_dataset("sleepstudy")
    keep = data["Days"].isin([0, 3, 6, 9]) | (data["Subject"].astype(str) < "335")
    res = fit_lmm("Reaction ~ ns(Days, 4) + (ns(Days, 4) | Subject)", data[keep])
    assert any("random curve" in m for m in res.messages)


def test_type3_anova_of_a_spline_by_factor_as_lmertest():
    """lmerTest 3.1-3 ``anova(lmer(weight ~ ns(Time, 3) * Diet + (Time | Chick), ChickWeight))``,
    Satterthwaite and Kenward-Roger (sum of squares from the unscaled F, as lmerTest):
    F, df and sums of squares to 1e-4 (lme4 stops 1e-5 short of our optimum here)."""
    from lmm_core import anova_table
    from lmm_core.datasets import load_example

    data, _ = load_example("chickweight")
    res = fit_lmm("weight ~ ns(Time, 3) * Diet + (Time | Chick)", data)
    expected = {
        "satterthwaite": (
            [55647.53025, 23.87627, 9372.13751],
            [115.15549363, 75.65702997, 115.31131798],
            [159.88478, 0.06860, 8.97591],
        ),
        "kenward-roger": (
            [55633.83178, 23.87609, 9368.60835],
            [179.06940533, 75.04868694, 224.34164078],
            [158.81780, 0.06860, 8.89484],
        ),
    }
    for method, (sum_sq, den_df, f) in expected.items():
        table = anova_table(res, method)
        assert list(table.index) == ["ns(Time, 3)", "Diet", "ns(Time, 3):Diet"]
        assert list(table["num_df"]) == [3, 3, 9]
        np.testing.assert_allclose(table["sum_sq"], sum_sq, rtol=1e-4)
        np.testing.assert_allclose(table["den_df"], den_df, rtol=1e-4)
        np.testing.assert_allclose(table["F"], f, rtol=1e-4, atol=1e-5)


def test_profile_bootstrap_simulate_and_implied_on_a_spline_model():
    """Inference downstream of a spline fit: profile intervals as lme4's ``confint(fit,
    method = "profile")`` (lme4 1.1-31, sleepstudy ``Reaction ~ ns(Days, 3) + (Days |
    Subject)``) to 5e-4; a parametric bootstrap and ``simulate`` use the fit's basis; the
    implied correlation finds the time behind a random curve."""
    from lmm_core import parametric_bootstrap, profile_confint, simulate
    from lmm_core.predict.implied import implied_covariance

    data = load_dataset("sleepstudy")
    res = fit_lmm("Reaction ~ ns(Days, 3) + (Days | Subject)", data)
    lme4 = {
        "sd_(Intercept)|Subject": (14.4701294742, 37.7475744733),
        "cor_Days.(Intercept)|Subject": (-0.4821514162, 0.6784532596),
        "sd_Days|Subject": (3.8126088793, 8.7581579782),
        "sigma": (22.7767861773, 28.7049008214),
        "(Intercept)": (240.0284368641, 271.0223063092),
        "ns(Days, 3)1": (29.2549628013, 71.1010193957),
        "ns(Days, 3)2": (61.7828399323, 139.5185423142),
        "ns(Days, 3)3": (56.8576983277, 103.7598202743),
    }
    ci = profile_confint(res)
    assert list(ci.index) == list(lme4)
    np.testing.assert_allclose(ci.to_numpy(), np.array(list(lme4.values())), rtol=5e-4)

    boot = parametric_bootstrap(res, 20, seed=3)
    assert np.isfinite(np.asarray(boot.estimates, float)).all()
    ystar = simulate(res, 200, seed=4)  # (200, n): the simulated means follow the spline
    beta_star = np.linalg.lstsq(res.design.X, ystar.mean(axis=0), rcond=None)[0]
    np.testing.assert_allclose(beta_star, res.beta, rtol=0.05, atol=5.0)

    curve = fit_lmm("Reaction ~ ns(Days, 3) + (ns(Days, 2) | Subject)", data)
    implied = implied_covariance(curve, [0, 3, 6, 9])
    term = curve.reterms[0]
    z = term.z[:10][[0, 3, 6, 9]]  # subject 308's rows: days 0..9, in order
    expected = z @ curve.covariance_matrices()[0] @ z.T + curve.sigma**2 * np.eye(4)
    np.testing.assert_allclose(implied.covariance, expected, rtol=1e-10)
