"""GLMMs (issue 15): Laplace and adaptive quadrature fits against lme4's glmer.

Oracles (``tests/fixtures/glmm``, lme4 1.1-31; README of the reference folder):
- every reference case: the log-likelihood (all constants) within 1e-5 relative of the exact
  value (glmer's fit with ``tolPwrss = 1e-12`` for Laplace; the 100-node maximum or the
  independent quadrature for nAGQ > 1) and never below glmer's default fit; estimates 1e-3,
  standard errors and SDs 1e-2 relative to the tight fit; conditional modes 1e-3 (at glmer's
  estimates, so that the comparison is of the modes alone) and their SDs 1e-2;
- dense brute force: the Laplace criterion at fixed parameters equals ``h(u~) - log|H| / 2``
  with ``u~`` maximising ``h(u) = log p(y | u) - |u|^2 / 2`` numerically and ``H`` the dense
  (expected) information, on small random problems (nested, crossed, slopes, probit,
  Poisson with an offset);
- quadrature: 25-point adaptive Gauss-Hermite equals ``scipy.integrate.quad`` per group.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, optimize

from lmm_core import DataError, FormulaError, ModelError, fit_glmm
from lmm_core.datasets import load_example
from lmm_core.glmm.agq import agq_loglik
from lmm_core.glmm.family import make_family
from lmm_core.glmm.fit import refit_quadrature
from lmm_core.glmm.pirls import GLMMCriterion
from lmm_core.glmm.response import build_glmm_data
from lmm_core.glmm.results import conditional_effects

GLMM = Path(__file__).resolve().parents[1] / "fixtures" / "glmm"
CASES = sorted(p.stem for p in (GLMM / "cases").glob("*.json"))


def dataset(file: str) -> pd.DataFrame:
    schema = json.loads((GLMM / "data" / file.replace(".csv", ".schema.json")).read_text())
    data = pd.read_csv(GLMM / "data" / file)
    for col in schema["columns"]:
        if col["type"] == "factor":
            data[col["name"]] = pd.Categorical(
                data[col["name"]].astype(str), categories=col["levels"]
            )
    return data


def case(name: str) -> dict:
    return json.loads((GLMM / "cases" / f"{name}.json").read_text())


_FITS: dict = {}


def fitted(name: str):
    if name not in _FITS:
        c = case(name)
        _FITS[name] = fit_glmm(
            c["formula"],
            dataset(c["dataset"]),
            c["glm_family"],
            c["link"],
            c["nAGQ"],
            c["weights"],
        )
    return _FITS[name]


def exact_loglik(c: dict) -> tuple[float, float]:
    """``(exact value, glmer's default value)``, both with every constant."""
    if c["nAGQ"] == 1:
        return c["tight_pwrss"]["logLik"], c["logLik"]
    sat = c["independent_loglik"]["at_default_fit"]["saturated_loglik"]
    exact = (
        c["exact_ml"]["logLik"]
        if c["nAGQ"] >= 25
        else c["independent_loglik"]["at_tight_fit"]["agq"]
    )
    return exact, c["logLik"] + sat


@pytest.mark.parametrize("name", CASES)
def test_loglik_matches_exact_and_never_below_glmer(name):
    c = case(name)
    res = fitted(name)
    exact, glmer = exact_loglik(c)
    assert abs(res.loglik - exact) <= 1e-5 * abs(exact)
    assert res.loglik >= glmer - 1e-9 * abs(glmer)
    assert res.converged
    assert res.objective == pytest.approx(-2 * res.loglik)
    k = len(c["beta"]["values"]) + len(c["theta"]["values"])
    assert res.npar == k == c["logLik_df"]
    assert res.aic == pytest.approx(-2 * res.loglik + 2 * k)
    assert res.bic == pytest.approx(-2 * res.loglik + k * np.log(c["n_obs"]))


@pytest.mark.parametrize("name", CASES)
def test_estimates_ses_and_sds_match_tight_glmer(name):
    c = case(name)
    res = fitted(name)
    tight = c["tight_pwrss"]
    assert res.x_names == c["beta"]["names"]
    ref = np.array(tight["beta"]["values"])
    se = np.array(tight["se"])
    np.testing.assert_array_less(np.abs(res.beta - ref), 1e-3 * np.maximum(np.abs(ref), se))
    np.testing.assert_allclose(res.std_errors, se, rtol=1e-2)
    np.testing.assert_allclose(res.varcorr_table()["sdcor"], tight["varcorr_sdcor"], rtol=1e-2)
    table = res.fixef_table()
    np.testing.assert_allclose(table["z_value"], c["coefficients"]["z value"], rtol=2e-2)
    assert (table["ci_lower"] < res.beta).all() and (table["ci_upper"] > res.beta).all()
    assert not res.is_singular


@pytest.mark.parametrize("name", CASES)
def test_conditional_modes_and_sds_at_glmer_estimates(name):
    c = case(name)
    fam = make_family(c["glm_family"], c["link"])
    data = build_glmm_data(c["formula"], dataset(c["dataset"]), fam.name, c["weights"])
    crit = GLMMCriterion(data, fam)
    state = crit.laplace_state(np.array(c["theta"]["values"]), np.array(c["beta"]["values"]))
    b, cov = conditional_effects(crit, state)
    for k, ref in enumerate(c["ranef"]):
        assert crit.reterms[k].group == ref["group"]
        assert list(crit.reterms[k].levels) == ref["levels"]
        values = np.array(ref["values"])
        assert np.max(np.abs(b[k] - values)) <= 1e-3 * np.max(np.abs(values))
        sd = np.sqrt(np.diagonal(cov[k], axis1=1, axis2=2))
        np.testing.assert_allclose(sd, ref["cond_sd"], rtol=1e-2)


def test_fitted_modes_close_to_tight_fit():
    res = fitted("glmm_cbpp_agq25")
    ref = case("glmm_cbpp_agq25")["ranef"][0]
    modes = res.ranef["herd"].loc[ref["levels"], "(Intercept)"].to_numpy()
    assert np.max(np.abs(modes - np.ravel(ref["values"]))) <= 1e-3 * np.max(np.abs(modes))
    sds = res.ranef_sd["herd"]["(Intercept)"].to_numpy()
    assert (sds > 0).all() and (sds < res.varcorr_table()["sdcor"][0]).all()


def test_prediction_scales_and_offset():
    c = case("glmm_simcount_offset")
    data = dataset(c["dataset"])
    res = fitted("glmm_simcount_offset")
    np.testing.assert_allclose(res.predict(data), res.fitted, rtol=1e-12)
    np.testing.assert_allclose(res.predict(data, scale="link"), np.log(res.fitted), rtol=1e-10)
    pop = res.predict(data, include_re=False, scale="link")
    expected = res.design.X @ res.beta + np.log(data["exposure"].to_numpy())
    np.testing.assert_allclose(pop, expected, rtol=1e-12)
    doubled = data.assign(exposure=2 * data["exposure"])
    np.testing.assert_allclose(res.predict(doubled), 2 * res.fitted, rtol=1e-10)
    np.testing.assert_allclose(res.predict(), res.fitted)
    np.testing.assert_allclose(res.predict(include_re=False, scale="link"), pop, rtol=1e-12)
    new = data.iloc[:3].assign(patient="new patient")
    np.testing.assert_allclose(res.predict(new), np.exp(pop[:3]), rtol=1e-10)
    with pytest.raises(DataError, match="scale"):
        res.predict(data, scale="probability")
    assert res.fitted.sum() == pytest.approx(c["fitted_sum"], rel=1e-3)


# --------------------------------------------------------------------------- brute force
def _dense_laplace(crit: GLMMCriterion, theta, beta) -> float:
    """``max_u h(u) - log|H| / 2`` by dense numerical optimisation and linear algebra."""
    sys = crit.system
    cols = []
    for t, lam in zip(sys.merged, sys.lambdas(theta), strict=True):
        zl = t.z @ lam
        block = np.zeros((crit.X.shape[0], t.n_levels * t.n_columns))
        for j in range(t.n_columns):
            block[np.arange(len(t.codes)), t.codes * t.n_columns + j] = zl[:, j]
        cols.append(block)
    zl_dense = np.hstack(cols)
    fam = crit.family
    base = crit.offset + crit.X @ beta

    def neg_h(u):
        mu = fam.link.linkinv(base + zl_dense @ u)
        return -(np.sum(fam.loglik_terms(crit.y, mu, crit.w)) - 0.5 * u @ u)

    res = optimize.minimize(
        neg_h,
        np.zeros(zl_dense.shape[1]),
        method="BFGS",
        options={"gtol": 1e-10, "maxiter": 10_000},
    )
    u = res.x
    eta = base + zl_dense @ u
    mu = fam.link.linkinv(eta)
    w = crit.w * fam.link.mu_eta(eta) ** 2 / fam.variance(mu)
    hess = zl_dense.T @ (w[:, None] * zl_dense) + np.eye(zl_dense.shape[1])
    return -res.fun - 0.5 * np.linalg.slogdet(hess)[1]


def _random_problem(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 60
    g = rng.integers(0, 6, n)
    h = rng.integers(0, 4, n)
    x = rng.normal(size=n)
    eta = -0.3 + 0.8 * x + rng.normal(0, 0.8, 6)[g] + rng.normal(0, 0.5, 4)[h]
    return pd.DataFrame(
        {
            "g": [f"g{k}" for k in g],
            "h": [f"h{k}" for k in h],
            "x": x,
            "y": rng.binomial(1, 1 / (1 + np.exp(-eta))),
            "count": rng.poisson(np.exp(0.5 + 0.3 * x + rng.normal(0, 0.4, 6)[g])),
            "expo": rng.uniform(0.5, 2.0, n),
        }
    )


BRUTE = [
    ("y ~ x + (1 | g)", "binomial", "logit", 1),
    ("y ~ x + (x | g)", "binomial", "logit", 2),
    ("y ~ x + (1 | g) + (1 | h)", "binomial", "logit", 3),
    ("y ~ x + (1 | g)", "binomial", "probit", 4),
    ("y ~ x + (1 | g)", "binomial", "cloglog", 5),
    ("count ~ x + offset(log(expo)) + (x || g)", "poisson", "log", 6),
    ("count ~ x + (1 | g) + (1 | h)", "poisson", "log", 7),
]


@pytest.mark.parametrize(("formula", "family", "link", "seed"), BRUTE)
def test_laplace_equals_dense_brute_force(formula, family, link, seed):
    data = _random_problem(seed)
    fam = make_family(family, link)
    crit = GLMMCriterion(build_glmm_data(formula, data, family), fam)
    rng = np.random.default_rng(seed + 100)
    theta = np.where(
        crit.lower == 0,
        rng.uniform(0.3, 1.2, crit.lower.size),
        rng.uniform(-0.3, 0.3, crit.lower.size),
    )
    beta = rng.normal(0, 0.3, crit.X.shape[1])
    ours = -0.5 * crit.laplace(theta, beta)
    dense = _dense_laplace(crit, theta, beta)
    assert ours == pytest.approx(dense, rel=1e-8, abs=1e-7)


def test_laplace_with_observation_level_effect_equals_dense_brute_force():
    """A first term with one level per row makes A21 sparse (its own factorization path)."""
    data = _random_problem(8).assign(obs=lambda d: [f"r{k}" for k in range(len(d))])
    fam = make_family("poisson", "log")
    crit = GLMMCriterion(
        build_glmm_data("count ~ x + (1 | obs) + (1 | g) + (1 | h)", data, "poisson"), fam
    )
    assert crit.system.a21_sparse
    theta, beta = np.array([0.4, 0.7, 0.5]), np.array([0.3, 0.2])
    dense = _dense_laplace(crit, theta, beta)
    assert -0.5 * crit.laplace(theta, beta) == pytest.approx(dense, rel=1e-8, abs=1e-7)
    state = crit.laplace_state(theta, beta)
    b, cov = conditional_effects(crit, state)
    assert [c.shape[0] for c in cov] == [60, 6, 4]


@pytest.mark.parametrize(
    ("family", "link"), [("binomial", "logit"), ("binomial", "probit"), ("poisson", "log")]
)
def test_agq_converges_to_numerical_integration(family, link):
    data = _random_problem(11)
    formula = "y ~ x + (1 | g)" if family == "binomial" else "count ~ x + (1 | g)"
    fam = make_family(family, link)
    crit = GLMMCriterion(build_glmm_data(formula, data, family), fam)
    theta, beta = np.array([1.3]), np.array([-0.2, 0.5])
    state = crit.laplace_state(theta, beta)
    codes = crit.reterms[0].codes
    total = 0.0
    for i in range(crit.reterms[0].n_levels):
        rows = codes == i

        def integrand(b, rows=rows):
            eta = crit.offset[rows] + crit.X[rows] @ beta + b
            ll = fam.loglik_terms(crit.y[rows], fam.link.linkinv(eta), crit.w[rows]).sum()
            return np.exp(ll - 0.5 * (b / theta[0]) ** 2) / (np.sqrt(2 * np.pi) * theta[0])

        value, _ = integrate.quad(
            integrand, -12 * theta[0], 12 * theta[0], epsabs=0, epsrel=1e-12, limit=200
        )
        total += np.log(value)
    assert agq_loglik(crit, state, 25) == pytest.approx(total, rel=1e-9)
    laplace = -0.5 * crit.minus2_loglik(state)
    assert agq_loglik(crit, state, 1) == pytest.approx(laplace, rel=1e-12)
    assert abs(agq_loglik(crit, state, 9) - total) < abs(laplace - total)


# --------------------------------------------------------------------------- outcome coding
def _binary_cbpp() -> pd.DataFrame:
    cbpp = dataset("cbpp.csv")
    rows = []
    for r in cbpp.itertuples():
        rows += [(r.herd, r.period, 1)] * int(r.incidence)
        rows += [(r.herd, r.period, 0)] * int(r.size - r.incidence)
    out = pd.DataFrame(rows, columns=["herd", "period", "y"])
    out["herd"] = pd.Categorical(out["herd"], categories=cbpp["herd"].cat.categories)
    out["period"] = pd.Categorical(out["period"], categories=cbpp["period"].cat.categories)
    out["sick"] = out["y"] == 1
    out["status"] = pd.Categorical(
        np.where(out["y"] == 1, "sick", "healthy"), categories=["healthy", "sick"]
    )
    out["text"] = np.where(out["y"] == 1, "yes", "no")
    return out


def test_outcome_codings_give_the_same_fit():
    binary = _binary_cbpp()
    rhs = "period + (1 | herd)"
    y01 = build_glmm_data(f"y ~ {rhs}", binary, "binomial")
    for column, coded in [
        ("sick", "1 for 'TRUE'"),
        ("status", "1 for 'sick'"),
        ("text", "1 for 'yes'"),
    ]:
        other = build_glmm_data(f"{column} ~ {rhs}", binary, "binomial")
        np.testing.assert_array_equal(other.y, y01.y)
        assert any(coded in m for m in other.messages)
    fit01 = fit_glmm(f"status ~ {rhs}", binary)
    grouped = fitted("glmm_cbpp_laplace")
    weighted = fitted("glmm_cbpp_weights_laplace")
    for res in (fit01, weighted):
        np.testing.assert_allclose(res.beta, grouped.beta, rtol=1e-4)
        np.testing.assert_allclose(res.theta, grouped.theta, rtol=1e-4)
        np.testing.assert_allclose(res.std_errors, grouped.std_errors, rtol=1e-3)
    assert weighted.loglik == pytest.approx(grouped.loglik, rel=1e-10)
    # the binary data lack the binomial coefficients log C(size, incidence) of the grouped
    cbpp = dataset("cbpp.csv")
    from scipy.special import gammaln

    n, k = cbpp["size"].to_numpy(), cbpp["incidence"].to_numpy()
    const = np.sum(gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1))
    assert fit01.loglik + const == pytest.approx(grouped.loglik, rel=1e-7)


# --------------------------------------------------------------------------- bad input
def test_bad_input_gives_clear_messages():
    cbpp = dataset("cbpp.csv")
    with pytest.raises(DataError, match="values other than 0 and 1"):
        fit_glmm("incidence ~ period + (1 | herd)", cbpp)
    with pytest.raises(DataError, match="between 0 and 1"):
        fit_glmm("I(incidence / size) ~ period + (1 | herd)", cbpp)
    with pytest.raises(DataError, match="negative"):
        fit_glmm("I(incidence - 3) ~ period + (1 | herd)", cbpp, family="poisson")
    with pytest.raises(DataError, match="negative"):
        fit_glmm("cbind(incidence, incidence - size) ~ period + (1 | herd)", cbpp)
    with pytest.raises(DataError, match="whole numbers"):
        fit_glmm("I(incidence / 2) ~ period + (1 | herd)", cbpp, family="poisson")
    sim = dataset("sim_binary_slope.csv")
    with pytest.raises(ModelError, match="single random intercept"):
        fit_glmm("y ~ time + (time | patient)", sim, nagq=5)
    with pytest.raises(ModelError, match="nagq"):
        fit_glmm("y ~ time + (1 | patient)", sim, nagq=30)
    with pytest.raises(ModelError, match="nagq"):
        fit_glmm("y ~ time + (1 | patient)", sim, nagq=1.5)
    with pytest.raises(ModelError, match="Unknown family"):
        fit_glmm("y ~ time + (1 | patient)", sim, family="gamma")
    with pytest.raises(ModelError, match="no 'probit' link"):
        fit_glmm("y ~ time + (1 | patient)", sim, family="poisson", link="probit")
    with pytest.raises(DataError, match="3 categories"):
        fit_glmm(
            "arm3 ~ time + (1 | patient)", sim.assign(arm3=np.resize(["a", "b", "c"], len(sim)))
        )
    with pytest.raises(DataError, match="one value"):
        fit_glmm("y ~ time + (1 | patient)", sim.assign(y=0))
    with pytest.raises(FormulaError, match="two columns"):
        fit_glmm("cbind(incidence) ~ period + (1 | herd)", cbpp)
    with pytest.raises(FormulaError, match="Unknown column `exposur`"):
        fit_glmm("y ~ time + offset(log(exposur)) + (1 | patient)", sim, family="poisson")
    with pytest.raises(DataError, match="weights"):
        fit_glmm("incidence / size ~ period + (1 | herd)", cbpp, weights="sizes")
    with pytest.raises(DataError, match="finite"):
        fit_glmm("y ~ time + offset(log(time)) + (1 | patient)", sim, family="poisson")


def test_missing_values_in_cbind_columns_are_left_out():
    cbpp = dataset("cbpp.csv")
    holes = cbpp.assign(size=cbpp["size"].where(cbpp.index != 3))
    res = fit_glmm("cbind(incidence, size - incidence) ~ period + (1 | herd)", holes)
    assert res.nobs == len(cbpp) - 1
    assert any("left out" in m for m in res.messages)
    np.testing.assert_array_equal(res.data.rows, np.delete(np.arange(len(cbpp)), 3))


def test_refit_quadrature_equals_a_fresh_fit_with_those_points():
    cbpp = dataset("cbpp.csv")
    formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
    laplace = fit_glmm(formula, cbpp, family="binomial")
    again = refit_quadrature(laplace, 7)
    fresh = fit_glmm(formula, cbpp, family="binomial", nagq=7)
    assert again.nagq == 7
    assert again.loglik == pytest.approx(fresh.loglik, rel=1e-9)
    np.testing.assert_allclose(again.beta, fresh.beta, rtol=1e-5)
    slope = fit_glmm(
        "cbind(incidence, size - incidence) ~ period + (period | herd)", cbpp, family="binomial"
    )
    with pytest.raises(ModelError, match="single random intercept"):
        refit_quadrature(slope, 5)


@pytest.mark.parametrize("per_week", [1 / 52, 7, 10_080])
def test_the_fit_does_not_depend_on_the_unit_of_time(per_week):
    """Time in years, days or minutes: the same optimum, the slope scaled by the unit (the
    start is unit-free: it used to stall at another point with time in minutes)."""
    data = load_example("infections")[0]
    formula = "infection ~ week * arm + age + (week | patient)"
    base = fit_glmm(formula, data, family="binomial")
    scaled = fit_glmm(formula, data.assign(week=data["week"] * per_week), family="binomial")
    assert scaled.converged
    assert scaled.loglik == pytest.approx(base.loglik, rel=1e-8)
    assert scaled.fixef["week"] * per_week == pytest.approx(base.fixef["week"], rel=1e-4)
