"""GLMMs in the app (issue 15): the population-averaged curve against Monte Carlo, fit keys
and records, the family choice rules, the GLMM shrinkage and summary numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashboard.analysis.formula_text import model_key
from dashboard.analysis.glmm_curves import glmm_curves, largest_gap, population_curves
from dashboard.analysis.glmm_family import exposure_problem, guess_exposure, quadrature_reason
from dashboard.analysis.glmm_shrinkage import glmm_shrinkage, own_fit
from dashboard.analysis.glmm_summary import fixed_table, median_ratio
from dashboard.analysis.records import FitKey, FitRecord
from lmm_core import datasets, fit_glmm
from lmm_core.glmm.family import make_family


@pytest.fixture(scope="module")
def infections():
    data = datasets.load_example("infections")[0]
    return data, fit_glmm("infection ~ week * arm + (week | patient)", data, family="binomial")


@pytest.fixture(scope="module")
def seizures():
    data = datasets.load_example("seizures")[0]
    formula = "seizures ~ period * arm + offset(log(exposure)) + (1 | patient)"
    return data, fit_glmm(formula, data, family="poisson")


def test_population_average_equals_monte_carlo_on_the_fitted_covariance(infections):
    data, result = infections
    curves = glmm_curves(result, data, "patient", "week", ["V001"], by="arm")
    pop = curves.population.iloc[::15]
    (g,) = result.covariance_matrices()
    rng = np.random.default_rng(7)
    b = rng.multivariate_normal(np.zeros(2), g, size=200_000)
    beta = result.fixef
    for row in pop.itertuples():
        vaccine = float(row.group == "vaccine")
        eta = (
            beta["(Intercept)"]
            + beta["week"] * row.x
            + beta["armvaccine"] * vaccine
            + beta["week:armvaccine"] * row.x * vaccine
        )
        p = 1 / (1 + np.exp(-(eta + b[:, 0] + b[:, 1] * row.x)))
        se = p.std() / np.sqrt(p.size)
        assert abs(p.mean() - row.averaged) < 3 * se
        assert row.typical == pytest.approx(1 / (1 + np.exp(-eta)), rel=1e-10)
    # the average of the patients' curves is flatter than the typical patient's
    for _, g_pop in curves.population.groupby("group"):
        assert np.ptp(g_pop["averaged"]) < np.ptp(g_pop["typical"])


def test_poisson_population_average_is_the_lognormal_mean_per_unit_exposure(seizures):
    data, result = seizures
    grid = pd.DataFrame({"period": [0.0, 3.0], "arm": ["drug", "placebo"], "exposure": [5, 9]})
    typical, averaged = population_curves(result, grid)
    tau2 = result.covariance_matrices()[0][0, 0]
    np.testing.assert_allclose(averaged, typical * np.exp(tau2 / 2), rtol=1e-9)
    eta = result.design.fixed_matrix(grid) @ result.beta  # no offset: a rate per unit
    np.testing.assert_allclose(typical, np.exp(eta), rtol=1e-12)
    curves = glmm_curves(result, data, "patient", "period", ["E001"], by="arm")
    assert curves.scale == "rate per unit of exposure"
    first = data[(data["period"] == 0) & (data["arm"] == "drug")]
    observed = curves.observed.query("group == 'drug' and x == 0")["value"].item()
    assert observed == pytest.approx(first["seizures"].sum() / first["exposure"].sum())


def test_fit_keys_and_records_carry_the_family():
    assert FitKey("d", "y ~ t", True) == ("d", "y ~ t", True, "gaussian", None, 1)
    record = FitRecord("M1: x", "y ~ t + (1 | g)", True, "d", "data", None, 0.0)
    assert record.key[:3] == ("d", "y ~ t + (1 | g)", True) and not record.is_glmm
    assert record.method == "REML"
    glmm = FitRecord(
        "M2: x", "y ~ t + (1 | g)", False, "d", "data", None, 0.0, "binomial", "logit", 9
    )
    assert glmm.is_glmm and glmm.key.family == "binomial" and glmm.method == "AGQ (9 points)"
    assert glmm.key != record.key


def test_model_key_tells_families_links_and_offsets_apart():
    f = "y ~ t + (1 | g)"
    assert model_key(f) == model_key("y~t+(1|g)")
    assert model_key(f) != model_key(f, "binomial")
    assert model_key(f, "binomial") == model_key(f, "binomial", "logit")
    assert model_key(f, "binomial", "probit") != model_key(f, "binomial")
    assert model_key("y ~ t + offset(log(e)) + (1 | g)", "poisson") != model_key(f, "poisson")


def test_quadrature_and_exposure_rules():
    assert quadrature_reason("y ~ t + (1 | g)") is None
    assert "random slopes" in quadrature_reason("y ~ t + (t | g)")
    assert "2 random-effects terms" in quadrature_reason("y ~ t + (1 | g) + (1 | h)")
    assert exposure_problem(pd.Series([1.0, 2.5]), "e") is None
    problem = exposure_problem(pd.Series([1.0, 0.0, -2.0]), "Temps à risque (j)")
    assert "zero or negative in 2 row(s)" in problem and "-2" in problem


def test_glmm_shrinkage_is_honest_about_infinite_own_estimates(infections):
    data, _ = infections
    result = fit_glmm("infection ~ week * arm + (1 | patient)", data, family="binomial")
    est = glmm_shrinkage(result)
    y = data.groupby("patient")["infection"]
    all_zero = set(y.max()[y.max() == 0].index)
    left = est.left_out
    assert set(left.index[left["reason"].str.startswith("every outcome 0")]) == all_zero
    kept = est.table[est.table["fitted_own"]]
    shrink = kept["shrinkage:(Intercept)"]
    assert ((shrink > 0) & (shrink < 1)).all()  # pulled toward the population, never past
    assert np.isfinite(est.table["mixed:(Intercept)"]).all()


def test_fixed_table_gives_odds_ratios_with_intervals(infections):
    _, result = infections
    table = fixed_table(result)
    np.testing.assert_allclose(table["Odds ratio"], np.exp(table["Estimate"]))
    np.testing.assert_allclose(table["Odds ratio lower"], np.exp(table["95% CI lower"]))
    assert median_ratio(0.0) == 1.0
    assert median_ratio(1.0) == pytest.approx(2.6, rel=0.01)  # Larsen & Merlo: variance 1 -> 2.6


def test_every_patient_with_both_outcomes_has_a_finite_own_estimate(infections):
    data, _ = infections
    result = fit_glmm("infection ~ week + arm + age + (1 | patient)", data, family="binomial")
    left = glmm_shrinkage(result).left_out
    y = data.groupby("patient")["infection"]
    both = set(y.max()[(y.max() == 1) & (y.min() == 0)].index)
    assert not both & set(left.index)  # only all-0 and all-1 patients are left out


def test_own_fit_is_the_maximum_likelihood_even_far_from_the_offset():
    # 7 of 8 ones with an offset near -1.75: undamped scoring overshoots and diverges here
    y = np.array([1, 1, 1, 1, 1, 0, 1, 1], dtype=float)
    f = np.linspace(-1.75, -1.79, 8)
    b, ok = own_fit(make_family("binomial"), np.ones((8, 1)), y, np.ones(8), f)
    assert ok
    p = 1 / (1 + np.exp(-(f + b[0])))
    assert np.sum(y - p) == pytest.approx(0.0, abs=1e-8)  # the score equation
    counts = np.array([0.0, 3.0, 40.0])
    b, ok = own_fit(make_family("poisson"), np.ones((3, 1)), counts, np.ones(3), np.zeros(3))
    assert ok and np.exp(b[0]) == pytest.approx(counts.mean(), rel=1e-8)


def test_an_exposure_column_is_recognised_by_its_name_and_values():
    data = pd.DataFrame(
        {"count": [1, 2], "Time at risk (d)": [0.0, 3.0], "Person-Years": [1.5, 2.0]}
    )
    assert guess_exposure(data, "count") == "Person-Years"  # the first has a zero
    assert guess_exposure(data.drop(columns="Person-Years"), "count") is None
    assert guess_exposure(datasets.load_example("seizures")[0], "seizures") == "exposure"
    assert guess_exposure(pd.DataFrame({"exposure": [2, 3]}), "exposure") is None


def test_largest_gap_is_where_the_two_curves_differ_most(infections):
    data, result = infections
    pop = glmm_curves(result, data, "patient", "week", ["V001"], by="arm").population
    row = largest_gap(pop)
    gap = (pop["averaged"] - pop["typical"]).abs()
    assert abs(row["averaged"] - row["typical"]) == gap.max() > 0


def test_forecast_table_has_the_typical_and_a_new_patient_per_arm(infections):
    from dashboard.views.glmm_prediction import glmm_forecast_table

    data, result = infections
    table, held = glmm_forecast_table(result, data, "week", "arm")
    assert held == {} and set(table["group"]) == {"placebo", "vaccine"}
    row = table[(table["group"] == "vaccine") & (table["week"] == 3.0)].iloc[0]
    beta = result.fixef
    eta = beta["(Intercept)"] + 3 * (beta["week"] + beta["week:armvaccine"]) + beta["armvaccine"]
    assert row["typical patient"] == pytest.approx(1 / (1 + np.exp(-eta)), rel=1e-10)
    grid = pd.DataFrame({"week": [3.0], "arm": ["vaccine"]})
    assert row["new patient"] == pytest.approx(population_curves(result, grid)[1][0], rel=1e-10)


def test_trajectory_legend_names_each_kind_of_curve_once_and_panels_split_the_arms(infections):
    from dashboard.figures.glmm_trajectories import glmm_trajectories_figure

    data, result = infections
    curves = glmm_curves(result, data, "patient", "week", ["V001", "P001"], by="arm")
    fig = glmm_trajectories_figure(curves, by_label="arm <b>")
    shown = [t.name for t in fig.data if t.showlegend is not False]
    assert shown == ["patients' own curves", "typical patient", "population average",
                     "observed share"]  # fmt: skip
    title = fig.layout.legend.title.text
    assert "placebo" in title and "vaccine" in title and "arm &lt;b&gt;" in title
    panels = glmm_trajectories_figure(curves, by_label="arm", facet=True)
    assert {t.xaxis for t in panels.data if t.x[0] is not None} == {"x", "x2"}


def test_the_trajectory_sentences_name_a_messy_subject_column_patient():
    from dashboard.views.glmm_trajectories import subject_word

    assert subject_word("patient") == "patient" and subject_word("child") == "child"
    assert subject_word("Patient n°") == "patient" and subject_word("ID") == "patient"
