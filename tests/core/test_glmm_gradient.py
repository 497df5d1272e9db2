"""The analytic gradient of the Laplace deviance (lmm_core.glmm.gradient) against differences.

Oracle: central differences (step ``1e-5`` relative) of the Laplace deviance recomputed by
penalized IRLS at each perturbed point; agreement to ``1e-6`` relative to the largest element,
on every reference case with each link its family offers and on small random problems (nested,
crossed, random slopes, diagonal terms, an observation-level effect, weights, an offset).
The same for the adaptive quadrature log-likelihood (lmm_core.glmm.agq_gradient) on cbpp with
7 and 25 nodes and on random scalar-effect problems for every link.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lmm_core.glmm.family import LINKS, eta_derivatives, make_family
from lmm_core.glmm.gradient import LaplaceGradient
from lmm_core.glmm.pirls import GLMMCriterion
from lmm_core.glmm.response import build_glmm_data

GLMM = Path(__file__).resolve().parents[1] / "fixtures" / "glmm"
CASES = sorted(p.stem for p in (GLMM / "cases").glob("*.json"))


def _dataset(file: str) -> pd.DataFrame:
    schema = json.loads((GLMM / "data" / file.replace(".csv", ".schema.json")).read_text())
    data = pd.read_csv(GLMM / "data" / file)
    for col in schema["columns"]:
        if col["type"] == "factor":
            data[col["name"]] = pd.Categorical(
                data[col["name"]].astype(str), categories=col["levels"]
            )
    return data


def _check(crit: GLMMCriterion, theta: np.ndarray, beta: np.ndarray) -> None:
    grad = LaplaceGradient(crit)
    assert grad.available
    state = crit.laplace_state(theta, beta)
    ours = grad(state)
    x = np.concatenate([theta, beta])
    nt = theta.size

    def dev(z):
        return crit.pirls(z[:nt], z[nt:], state.u).lme4_deviance

    diff = np.empty(x.size)
    for j in range(x.size):
        h = 1e-5 * max(1.0, abs(x[j]))
        e = np.zeros(x.size)
        e[j] = h
        diff[j] = (dev(x + e) - dev(x - e)) / (2 * h)
    scale = max(1.0, float(np.max(np.abs(diff))))
    np.testing.assert_allclose(ours, diff, rtol=0, atol=1e-6 * scale)


def _reference_points():
    for name in CASES:
        c = json.loads((GLMM / "cases" / f"{name}.json").read_text())
        if c["nAGQ"] > 1:
            continue
        for link in LINKS[c["glm_family"]]:
            if link != "log" or c["glm_family"] == "poisson":
                yield name, link


@pytest.mark.parametrize(("name", "link"), list(_reference_points()))
def test_gradient_matches_differences_on_reference_cases(name, link):
    c = json.loads((GLMM / "cases" / f"{name}.json").read_text())
    data = build_glmm_data(c["formula"], _dataset(c["dataset"]), c["glm_family"], c["weights"])
    crit = GLMMCriterion(data, make_family(c["glm_family"], link))
    rng = np.random.default_rng(len(name))
    theta = np.asarray(c["theta"]["values"], float) * rng.uniform(0.8, 1.2, crit.lower.size)
    theta = np.where(crit.lower == 0, np.maximum(theta, 0.1), theta)
    beta = np.asarray(c["beta"]["values"], float)
    if link != c["link"]:
        beta = crit.pirls(theta, None).beta
    _check(crit, theta, beta + rng.normal(0, 0.05, beta.size))


def _random_problem(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 80
    g, h = rng.integers(0, 7, n), rng.integers(0, 4, n)
    x = rng.normal(size=n)
    eta = -0.3 + 0.8 * x + rng.normal(0, 0.8, 7)[g] + rng.normal(0, 0.5, 4)[h]
    size = rng.integers(1, 6, n)
    return pd.DataFrame(
        {
            "g": [f"g{k}" for k in g],
            "h": [f"h{k}" for k in h],
            "obs": [f"r{k}" for k in range(n)],
            "x": x,
            "y": rng.binomial(1, 1 / (1 + np.exp(-eta))),
            "k": rng.binomial(size, 1 / (1 + np.exp(-eta))),
            "size": size,
            "rare": rng.binomial(1, 0.15, n),
            "count": rng.poisson(np.exp(0.5 + 0.3 * x + rng.normal(0, 0.4, 7)[g])),
            "expo": rng.uniform(0.5, 2.0, n),
        }
    )


RANDOM = [
    ("y ~ x + (1 | g)", "binomial", "logit", None),
    ("y ~ x + (x | g)", "binomial", "probit", None),
    ("y ~ x + (x | g) + (1 | h)", "binomial", "logit", None),
    ("y ~ x + (1 | g) + (x || h)", "binomial", "cloglog", None),
    ("cbind(k, size - k) ~ x + (x | g)", "binomial", "probit", None),
    ("I(k / size) ~ x + (1 | g) + (1 | h)", "binomial", "cloglog", "size"),
    ("rare ~ x + (1 | g)", "binomial", "log", None),
    ("count ~ x + offset(log(expo)) + (x || g)", "poisson", "log", None),
    ("count ~ x + (1 | obs) + (1 | g)", "poisson", "log", None),
    ("count ~ x + (1 | g) + (1 | h)", "poisson", "log", None),
]


@pytest.mark.parametrize(("formula", "family", "link", "weights"), RANDOM)
def test_gradient_matches_differences_on_random_problems(formula, family, link, weights):
    data = _random_problem(len(formula))
    crit = GLMMCriterion(build_glmm_data(formula, data, family, weights), make_family(family, link))
    rng = np.random.default_rng(len(formula) + 1)
    theta = np.where(
        crit.lower == 0,
        rng.uniform(0.3, 1.2, crit.lower.size),
        rng.uniform(-0.3, 0.3, crit.lower.size),
    )
    beta = rng.normal(0, 0.3, crit.X.shape[1])
    if link == "log" and family == "binomial":
        beta[0] = -2.5  # probabilities well below 1
    _check(crit, theta, beta)


@pytest.mark.parametrize(("family", "link"), [(f, k) for f in LINKS for k in LINKS[f]])
def test_eta_derivatives_match_differences(family, link):
    fam = make_family(family, link)
    rng = np.random.default_rng(3)
    eta = rng.uniform(-2.5, -0.2, 12) if link == "log" else rng.uniform(-2.0, 2.0, 12)
    y = rng.integers(0, 2, 12).astype(float) if family == "binomial" else rng.poisson(2.0, 12)
    w = rng.uniform(0.5, 3.0, 12)

    def at(e):
        return eta_derivatives(fam, y, w, e, fam.link.linkinv(e))

    h = 1e-6
    up, down, mid = at(eta + h), at(eta - h), at(eta)
    dev = fam.dev_resids
    half_score = (dev(y, fam.link.linkinv(eta + h), w) - dev(y, fam.link.linkinv(eta - h), w)) / (
        4 * h
    )
    np.testing.assert_allclose(mid.half_score, half_score, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(
        mid.observed, (up.half_score - down.half_score) / (2 * h), rtol=1e-6, atol=1e-9
    )
    np.testing.assert_allclose(
        mid.dweights, (up.weights - down.weights) / (2 * h), rtol=1e-6, atol=1e-9
    )


@pytest.mark.parametrize(("formula", "family", "link", "weights"), RANDOM[:7:2] + RANDOM[8:])
def test_first_stage_gradient_matches_differences(formula, family, link, weights):
    data = _random_problem(len(formula) + 5)
    crit = GLMMCriterion(build_glmm_data(formula, data, family, weights), make_family(family, link))
    rng = np.random.default_rng(len(formula))
    theta = np.where(
        crit.lower == 0,
        rng.uniform(0.3, 1.2, crit.lower.size),
        rng.uniform(-0.3, 0.3, crit.lower.size),
    )
    ours = LaplaceGradient(crit)(crit.pirls(theta, None), free_beta=True)
    diff = np.empty(theta.size)
    for j in range(theta.size):
        e = np.zeros(theta.size)
        e[j] = 1e-5 * max(1.0, abs(theta[j]))
        diff[j] = (crit.profiled(theta + e) - crit.profiled(theta - e)) / (2 * e[j])
    scale = max(1.0, float(np.max(np.abs(diff))))
    np.testing.assert_allclose(ours, diff, rtol=0, atol=1e-6 * scale)


def test_first_stage_end_mapped_into_the_bounds_keeps_the_model():
    from lmm_core.design.reterms import split_theta
    from lmm_core.glmm.fit import _canonical_theta

    data = _random_problem(4)
    formula = "y ~ x + (x | g) + (1 | h)"
    crit = GLMMCriterion(build_glmm_data(formula, data, "binomial"), make_family("binomial"))
    theta = np.array([-0.7, 0.4, -0.5, -0.3])  # (x | g): l11, l21, l22; (1 | h)
    mapped = _canonical_theta(crit, theta)
    assert np.all(mapped >= crit.lower)
    for term, a, b in zip(
        crit.reterms,
        split_theta(crit.reterms, theta),
        split_theta(crit.reterms, mapped),
        strict=True,
    ):
        la, lb = term.structure.factor(a), term.structure.factor(b)
        np.testing.assert_allclose(la @ la.T, lb @ lb.T, rtol=1e-12)
    assert crit.profiled(mapped) == pytest.approx(crit.profiled(theta), rel=1e-9)


def _check_agq(crit: GLMMCriterion, theta: np.ndarray, beta: np.ndarray, nagq: int) -> None:
    """The quadrature gradient (and value) against central differences of ``-2 log L``
    recomputed with its mode at each perturbed point."""
    from lmm_core.glmm.agq import agq_loglik, agq_minus2
    from lmm_core.glmm.agq_gradient import AGQGradient

    state = crit.laplace_state(theta, beta)
    value, ours = AGQGradient(crit, nagq)(state)
    assert value == pytest.approx(agq_minus2(crit, theta, beta, nagq), rel=1e-12)
    x = np.concatenate([theta, beta])
    nt = theta.size

    def dev(z):
        return -2.0 * agq_loglik(crit, crit.pirls(z[:nt], z[nt:], state.u), nagq)

    diff = np.empty(x.size)
    for j in range(x.size):
        h = 1e-5 * max(1.0, abs(x[j]))
        e = np.zeros(x.size)
        e[j] = h
        diff[j] = (dev(x + e) - dev(x - e)) / (2 * h)
    scale = max(1.0, float(np.max(np.abs(diff))))
    np.testing.assert_allclose(ours, diff, rtol=0, atol=1e-6 * scale)


@pytest.mark.parametrize("nagq", [7, 25])
@pytest.mark.parametrize("link", LINKS["binomial"][:3])
def test_quadrature_gradient_matches_differences_on_cbpp(nagq, link):
    c = json.loads((GLMM / "cases" / f"glmm_cbpp_agq{nagq}.json").read_text())
    data = build_glmm_data(c["formula"], _dataset(c["dataset"]), c["glm_family"], c["weights"])
    crit = GLMMCriterion(data, make_family("binomial", link))
    theta = np.asarray(c["theta"]["values"], float) * 1.1
    beta = np.asarray(c["beta"]["values"], float)
    if link != c["link"]:
        beta = crit.pirls(theta, None).beta
    _check_agq(crit, theta, beta + 0.03, nagq)


AGQ_RANDOM = [
    ("y ~ x + (1 | g)", "binomial", "logit", None, 9),
    ("I(k / size) ~ x + (1 | g)", "binomial", "probit", "size", 12),
    ("cbind(k, size - k) ~ x + (1 | g)", "binomial", "cloglog", None, 5),
    ("y ~ x + (0 + x | g)", "binomial", "cloglog", None, 7),
    ("rare ~ x + (1 | g)", "binomial", "log", None, 5),
    ("count ~ x + offset(log(expo)) + (1 | g)", "poisson", "log", None, 11),
]


@pytest.mark.parametrize(("formula", "family", "link", "weights", "nagq"), AGQ_RANDOM)
def test_quadrature_gradient_matches_differences_on_random_problems(
    formula, family, link, weights, nagq
):
    data = _random_problem(len(formula) + 2)
    crit = GLMMCriterion(build_glmm_data(formula, data, family, weights), make_family(family, link))
    rng = np.random.default_rng(len(formula))
    theta = rng.uniform(0.4, 1.0, 1)
    beta = rng.normal(0, 0.3, crit.X.shape[1])
    if link == "log" and family == "binomial":
        beta[0], theta[0] = -4.0, 0.5  # every node's probability below 1
    _check_agq(crit, theta, beta, nagq)


def test_one_node_quadrature_gradient_is_the_laplace_gradient():
    from lmm_core.glmm.agq_gradient import AGQGradient

    data = _random_problem(11)
    crit = GLMMCriterion(
        build_glmm_data("y ~ x + (1 | g)", data, "binomial"), make_family("binomial")
    )
    state = crit.laplace_state(np.array([0.9]), np.array([-0.2, 0.5]))
    value, grad = AGQGradient(crit, 1)(state)
    assert value == pytest.approx(crit.minus2_loglik(state), rel=1e-12)
    np.testing.assert_allclose(grad, LaplaceGradient(crit)(state), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("formula", ["y ~ x + (1 | g)", "y ~ x + (0 + x | g)"])
def test_scalar_term_fast_path_matches_the_blocked_factor(formula):
    data = build_glmm_data(formula, _random_problem(21), "binomial")
    fast = GLMMCriterion(data, make_family("binomial")).system
    general = GLMMCriterion(data, make_family("binomial")).system
    general.scalar = False
    assert fast.scalar
    rng = np.random.default_rng(2)
    theta, w = np.array([0.7]), rng.uniform(0.05, 0.25, fast.n)
    zl = fast.zl(theta)
    u, v = rng.normal(size=fast.q), rng.normal(size=(fast.n, 3))
    np.testing.assert_allclose(fast.times_u(zl, u), general.times_u(zl, u), rtol=1e-12)
    np.testing.assert_allclose(fast.t_times(zl, v), general.t_times(zl, v), rtol=1e-12)
    np.testing.assert_allclose(fast.t_times(zl, v[:, 0]), general.t_times(zl, v[:, 0]), rtol=1e-12)
    a, b = fast.factor(zl, w, with_x=True), general.factor(zl, w, with_x=True)
    assert a.ldl2 == pytest.approx(b.ldl2, rel=1e-12)
    for x, y in [(a.l11_inv, b.l11_inv), (a.r_zx, b.r_zx), (a.l_x, b.l_x)]:
        np.testing.assert_allclose(x, y, rtol=1e-12)
    r = rng.normal(size=(fast.q, 2))
    dense = np.diag(1.0 / a.l11_inv[:, 0, 0])  # L_Z
    np.testing.assert_allclose(a.forward(r), np.linalg.solve(dense, r), rtol=1e-12)
    np.testing.assert_allclose(a.backward(r[:, 0]), np.linalg.solve(dense.T, r[:, 0]), rtol=1e-12)
