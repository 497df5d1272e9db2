"""Speed paths of issue 19 give the numbers of the paths they replace.

* The one-term criterion through the compiled per-level loop
  (:func:`lmm_core.model.kernels.one_term_criterion`), a small model's criterion from one
  dense factor (:class:`lmm_core.model.small_model.SmallModelSystem`) and nested or crossed scalar
  terms' criterion through the same weights (:meth:`ProfiledDeviance._scalar_rest_schur`)
  equal the criterion of the blocked factor (:meth:`ProfiledDeviance.factor`) to rounding,
  REML and ML.
* The Teach page's repeated studies (:func:`run_replicates`, which reuses the first study's
  design) give, study by study, exactly the estimates and intervals of fitting each simulated
  table on its own with :func:`fit_lab`, also when some studies fail or need the long way.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lmm_core.design.build import build_design
from lmm_core.errors import LMMError
from lmm_core.model.deviance import ProfiledDeviance
from lmm_core.simulation import teaching_repeat as tr
from lmm_core.simulation.teaching import estimates, fit_lab, simulate_lab
from lmm_core.simulation.teaching_curves import contrast_interval, curve_rows
from lmm_core.simulation.teaching_truth import LabTruth


def _data() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    g = np.repeat(np.arange(15), 8)
    t = np.tile(np.arange(8.0), 15)
    u = rng.normal(size=(15, 2)) * [3.0, 0.8]
    y = 10 + u[g, 0] + (1.5 + u[g, 1]) * t + rng.normal(size=g.size)
    x = rng.normal(size=g.size)
    return pd.DataFrame({"y": y, "t": t, "x": x, "g": [f"g{k}" for k in g]})


@pytest.mark.parametrize(
    "formula", ["y ~ t + x + (t | g)", "y ~ t + (1 | g)", "y ~ t * x + (t || g)"]
)
@pytest.mark.parametrize("reml", [True, False])
def test_one_term_criterion_equals_blocked_factor(formula, reml):
    design = build_design(formula, _data())
    dev = ProfiledDeviance(design.X, design.y, design.reterms, reml)
    assert dev.a21 is None
    rng = np.random.default_rng(3)
    for _ in range(20):
        theta = dev.theta0 + np.abs(rng.normal(size=dev.theta0.size))
        fast = dev(theta)
        full = dev.criterion(dev.factor(theta))
        assert fast == pytest.approx(full, rel=1e-12)


def test_one_term_criterion_rejects_a_block_not_positive_definite():
    design = build_design("y ~ t + (t | g)", _data())
    dev = ProfiledDeviance(design.X, design.y, design.reterms, True)
    with pytest.raises(np.linalg.LinAlgError):
        dev(np.array([np.nan, 0.0, 1.0]))


@pytest.mark.parametrize(
    "formula",
    [
        "y ~ t + (1 | g) + (1 | h)",  # crossed scalar terms
        "y ~ t + (t | g) + (1 | h)",  # a slope on the first term
        "y ~ t + (1 | h/g)",  # nested
        "y ~ t + (1 | g) + (t | h)",  # a slope above the first term
    ],
)
@pytest.mark.parametrize("reml", [True, False])
def test_small_model_dense_criterion_equals_blocked_factor(formula, reml):
    data = _data()
    data["h"] = [f"h{k % 5}" for k in range(len(data))]
    design = build_design(formula, data)
    dev = ProfiledDeviance(design.X, design.y, design.reterms, reml)
    assert dev.a21 is not None and dev._dense is not None
    rng = np.random.default_rng(4)
    for _ in range(20):
        theta = dev.theta0 + np.abs(rng.normal(size=dev.theta0.size))
        assert dev(theta) == pytest.approx(dev.criterion(dev.factor(theta)), rel=1e-11)


def _nested_data() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    patient = np.repeat(np.arange(150), 5)
    t = np.tile(np.arange(5.0), 150)
    hospital, region = patient // 15, patient // 50
    u = rng.normal(size=(150, 2)) * [2.0, 0.5]
    y = 5 + u[patient, 0] + rng.normal(size=10)[hospital] + (1 + u[patient, 1]) * t
    y = y + rng.normal(size=3)[region] + rng.normal(size=patient.size)
    return pd.DataFrame(
        {
            "y": y,
            "t": t,
            "patient": [f"p{k}" for k in patient],
            "hospital": [f"h{k}" for k in hospital],
            "region": [f"r{k}" for k in region],
        }
    )


@pytest.mark.parametrize(
    "formula",
    [
        "y ~ t + (t | patient) + (1 | hospital)",
        "y ~ t + (1 | patient) + (1 | hospital)",
        "y ~ t + (t | patient) + (1 | region)",
    ],
)
@pytest.mark.parametrize("reml", [True, False])
def test_nested_criterion_equals_blocked_factor(formula, reml):
    design = build_design(formula, _nested_data())
    dev = ProfiledDeviance(design.X, design.y, design.reterms, reml)
    assert dev._dense is None and dev._scalar_rest and dev._nested
    rng = np.random.default_rng(6)
    for _ in range(20):
        theta = dev.theta0 + np.abs(rng.normal(size=dev.theta0.size))
        assert dev(theta) == pytest.approx(dev.criterion(dev.factor(theta)), rel=1e-11)


@pytest.mark.parametrize(
    "formula",
    [
        "y ~ t + (t | patient) + (1 | rater)",  # a slope on the first term, a crossed term
        "y ~ t + (1 | patient) + (1 | rater) + (1 | hospital)",  # crossed and nested above
        "y ~ t + (t || patient) + (1 | rater)",
    ],
)
@pytest.mark.parametrize("reml", [True, False])
def test_crossed_criterion_equals_blocked_factor(formula, reml):
    data = _nested_data()
    data["rater"] = [f"r{k}" for k in np.random.default_rng(2).integers(0, 40, len(data))]
    design = build_design(formula, data)
    dev = ProfiledDeviance(design.X, design.y, design.reterms, reml)
    assert dev._dense is None and dev._scalar_rest and not dev._nested
    rng = np.random.default_rng(8)
    for _ in range(20):
        theta = dev.theta0 + np.abs(rng.normal(size=dev.theta0.size))
        assert dev(theta) == pytest.approx(dev.criterion(dev.factor(theta)), rel=1e-11)


@pytest.mark.parametrize(
    "formula",
    [
        "y ~ t + (t | patient)",  # one term, closed form
        "y ~ t + (t | patient) + (1 | hospital)",  # nested above
        "y ~ t + (1 | patient) + (1 | rater)",  # crossed above
        "y ~ t + (t | patient) + (t | hospital)",  # a slope above: the blocked factor
    ],
)
def test_ldl2_pwrss_equals_blocked_factor(formula):
    data = _nested_data()
    data["rater"] = [f"r{k}" for k in np.random.default_rng(2).integers(0, 40, len(data))]
    design = build_design(formula, data)
    dev = ProfiledDeviance(design.X, design.y, design.reterms, False)
    theta = dev.theta0 + 0.4
    factor = dev.factor(theta)
    ldl2, pwrss = dev.ldl2_pwrss(theta)
    assert ldl2 == pytest.approx(factor.ldl2, rel=1e-12)
    assert pwrss == pytest.approx(factor.pwrss, rel=1e-10)


@pytest.mark.parametrize(
    ("formula", "j"),
    [
        ("y ~ t + (t | patient)", 1),
        ("y ~ t + (t | patient) + (1 | hospital)", 0),
        ("y ~ 1 + (1 | patient) + (1 | rater)", 0),  # no fixed effect left
    ],
)
def test_fixed_coefficient_model_from_cross_products_equals_rows(formula, j):
    data = _nested_data()
    data["rater"] = [f"r{k}" for k in np.random.default_rng(2).integers(0, 40, len(data))]
    design = build_design(formula, data)
    dev = ProfiledDeviance(design.X, design.y, design.reterms, False)
    keep = np.arange(design.X.shape[1]) != j
    rows = ProfiledDeviance(
        design.X[:, keep], design.y - 2.5 * design.X[:, j], design.reterms, False
    )
    fixed = dev.with_fixed_coefficient(j, 2.5)
    for shift in (0.1, 0.7):
        theta = dev.theta0 + shift
        assert fixed(theta) == pytest.approx(rows(theta), rel=1e-11)


@pytest.mark.parametrize(
    "truth",
    [
        LabTruth(),
        LabTruth(n_subjects=8, n_visits=4, dropout=0.5),  # failures and the long way
        LabTruth(time_df=2, curvature=1.0),  # a curve: every study the long way
    ],
)
def test_repeated_studies_equal_one_by_one_fits(truth):
    n = 12
    summary = tr.run_replicates(truth, n, seed=5)
    table = summary.table.set_index("replicate")
    fitted = 0
    for r, child in enumerate(np.random.SeedSequence(5).spawn(n), start=1):
        try:
            res = fit_lab(simulate_lab(truth, child), tr._FAST)
        except LMMError:
            assert r not in table.index
            continue
        fitted += 1
        row = table.loc[r]
        slope = curve_rows(res, truth.span)["slope"]
        est, se, nu, lower, upper = contrast_interval(res, slope, level=0.95, df="subjects")
        ols = tr.naive_interval(res, truth.span, 0.95)
        values = estimates(res, truth.span)
        expected = {
            "slope": est,
            "se": se,
            "df": nu,
            "lower": lower,
            "upper": upper,
            "slope_ols": ols["estimate"],
            "lower_ols": ols["lower"],
            "upper_ols": ols["upper"],
            "sd_intercept": values["sd_intercept"],
            "sd_slope": values["sd_slope"],
            "sigma": values["sigma"],
        }
        for key, value in expected.items():
            assert row[key] == pytest.approx(value, rel=1e-8, nan_ok=True), key
        assert bool(row["singular"]) == res.is_singular
    assert fitted == summary.n
    assert summary.n + summary.failures == n
