"""MMRMs on the general pages (issue 14): the builder's visit structure, the visit column,
labels, normalized residuals, the model vs data correlation, the comparison with
random-effects models and the R export of a numeric visit. Messy column names throughout."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashboard.analysis import compare_mmrm as cm
from dashboard.analysis.mmrm_diagnostics import mmrm_residuals, visit_correlations
from dashboard.analysis.mmrm_models import is_mmrm, mmrm_label, structure_of, visit_column
from dashboard.analysis.model_builder import (
    BuilderChoices,
    GroupLevel,
    VisitStructure,
    build_formula,
    model_rows,
)
from dashboard.analysis.records import FitRecord
from dashboard.export.code import r_code
from lmm_core import datasets, fit_lmm

NAMES = {
    "patient": "Patient ID",
    "score": "Score (points)",
    "visit": "Visite n°",
    "arm": "Arm [group]",
}
FIXED = "`Score (points)` ~ `Visite n°` + `Arm [group]` + baseline"


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return datasets.load_example("trial_visits")[0].rename(columns=NAMES)


@pytest.fixture(scope="module")
def fits(data) -> dict[str, FitRecord]:
    """REML fits of the same fixed effects: four structures and a random intercept."""
    out = {}
    terms = {s: f"{s}(`Visite n°` | `Patient ID`)" for s in ("us", "ar1", "ar1h", "cs")} | {
        "ri": "(1 | `Patient ID`)"
    }
    for i, (key, term) in enumerate(terms.items()):
        formula = f"{FIXED} + {term}"
        result = fit_lmm(formula, data, reml=True)
        out[key] = FitRecord(f"M{i + 1}: {key}", result.formula, True, "k", "d", result, 0.0)
    return out


def test_visit_column_is_the_time_column_with_few_values(data):
    found = visit_column(data, "Patient ID", "Visite n°")
    assert found.column == "Visite n°" and found.levels == (1, 2, 3, 4, 5, 6)
    assert "6 values" in found.note and "`Visite n°`" in found.note
    many = data.assign(t=np.arange(len(data), dtype=float))
    refused = visit_column(many, "Patient ID", "t")
    assert refused.column is None and "at most 15" in refused.reason
    twice = pd.concat([data.head(3), data.head(1)])
    assert "twice" in visit_column(twice, "Patient ID", "Visite n°").reason
    assert visit_column(data, "Patient ID", None).column is None


def test_structure_replaces_the_patient_level_and_keeps_the_hospital():
    choices = BuilderChoices(
        "Score (points)",
        ("Visite n°",),
        levels=(GroupLevel("Patient ID", slopes=("Visite n°",)), GroupLevel("hôpital")),
        visits=VisitStructure("ar1", "Visite n°", "Patient ID"),
    )
    formula = build_formula(choices)
    assert formula == (
        "`Score (points)` ~ `Visite n°` + (1 | hôpital) + ar1(`Visite n°` | `Patient ID`)"
    )
    assert structure_of(formula) == "ar1"
    frame = pd.DataFrame(
        {
            "Score (points)": [1.0, None],
            "Visite n°": [1, 2],
            "Patient ID": ["a", "a"],
            "hôpital": ["h", "h"],
        }
    )
    assert len(model_rows(frame, choices)) == 1


def test_label_names_the_structure():
    formula = f"{FIXED} + ar1h(`Visite n°` | `Patient ID`)"
    assert mmrm_label(formula, "no random effects + Arm [group] + baseline") == (
        "heterogeneous AR(1) visits + Arm [group] + baseline"
    )
    taken = {"AR(1) visits + sex"}
    assert mmrm_label("y ~ sex + ar1(v | p)", "no random effects + sex", taken) == (
        "AR(1) visits + sex #2"
    )
    assert mmrm_label("y ~ sex + (1 | p)", "random intercept") == "random intercept"


def test_normalized_residuals_whiten_each_patient(data, fits):
    result = fits["us"].result
    assert is_mmrm(result) and not is_mmrm(fits["ri"].result)
    frame = mmrm_residuals(result, data)
    assert np.allclose(frame["residual"], result.design.y - result.predict())
    cov = result.residual_covariance()
    quad = 0.0  # sum over patients of r_i' Sigma_i^-1 r_i = sum of squared normalized
    for _, rows in frame.groupby("subject"):
        labels = list(rows["visit"])
        sigma = cov.loc[labels, labels].to_numpy()
        r = rows["residual"].to_numpy()
        quad += float(r @ np.linalg.solve(sigma, r))
        first = rows.iloc[0]  # the first visit is only scaled by its SD
        assert np.isclose(first["normalized"], first["residual"] / np.sqrt(sigma[0, 0]))
    assert np.isclose(np.sum(frame["normalized"] ** 2), quad, rtol=1e-10)
    assert frame["subject"].iloc[0] == data["Patient ID"].iloc[result.design.rows[0]]
    assert 0.9 < frame["normalized"].std() < 1.1  # a fitting model: about unit variance


def test_visit_correlations_model_and_data(fits):
    corr = visit_correlations(fits["ar1"].result)
    z = corr.model.to_numpy()
    assert np.allclose(np.diag(z), 1.0) and np.isclose(z[0, 2], z[0, 1] ** 2)
    assert list(corr.model.index) == ["1", "2", "3", "4", "5", "6"]
    assert corr.pairs.iloc[0, 0] > corr.pairs.iloc[5, 5] > 0  # drop-out
    assert np.allclose(np.diag(corr.observed.to_numpy()), 1.0)
    us = visit_correlations(fits["us"].result)
    assert us.largest_gap() < 0.1  # unstructured follows the data


def test_comparison_table_counts_parameters_as_lme4(fits):
    records = list(fits.values())
    table = cm.criteria_table(records)
    p = len(fits["us"].result.x_names)
    assert table.loc["M1: us", "npar"] == 21 + p
    assert table.loc["M5: ri", "npar"] == fits["ri"].result.npar
    # compound symmetry (correlation > 0 here) is the random intercept model: same logLik
    cs, ri = table.loc["M4: cs"], table.loc["M5: ri"]
    assert cs["npar"] == ri["npar"]
    assert np.isclose(cs["logLik"], ri["logLik"], rtol=1e-6)
    assert np.isclose(cs["AIC"], ri["AIC"], rtol=1e-6)
    n = fits["us"].result.nobs
    assert np.isclose(
        table.loc["M2: ar1", "BIC"],
        -2 * table.loc["M2: ar1", "logLik"] + table.loc["M2: ar1", "npar"] * np.log(n),
    )
    assert table["delta_AIC"].min() == 0 and table["converged"].eq("yes").all()


def test_lrt_only_between_nested_structures(fits, data):
    tests = cm.structure_tests(list(fits.values()))
    assert set(tests["test"]) == {"M2 in M1", "M4 in M1", "M2 in M3", "M3 in M1"}
    row = tests.set_index("test").loc["M2 in M3"]  # ar1 in ar1h: 5 more variances
    assert row["Df"] == 5
    gain = fits["ar1h"].result.loglik - fits["ar1"].result.loglik
    assert np.isclose(row["Chisq"], 2 * gain)
    other = fit_lmm(f"{FIXED} + sex + cs(`Visite n°` | `Patient ID`)", data)
    extra = FitRecord("M9: cs + sex", other.formula, True, "k", "d", other, 0.0)
    assert "M9" not in " ".join(cm.structure_tests([fits["us"], extra])["test"])
    notes = " ".join(cm.comparison_notes([fits["us"], fits["ri"], extra]))
    assert "not nested" in notes and "same fixed effects" in notes
    assert cm.structures_nested("cs", "us") and not cm.structures_nested("us", "cs")


def test_r_export_keeps_a_numeric_visit_a_number(data):
    text = r_code(f"{FIXED} + ar1(`Visite n°` | `Patient ID`)", True, "trial é.csv", data)
    # the factor is a copy (the visit stays a number in the fixed effects); mmrm needs plain
    # names in its covariance term, so the columns are copied under plain names
    assert 'd[["Visite_n_factor"]] <- factor(d[["Visite n°"]], levels = c("1", "2"' in text
    assert "Visite_n + Arm_group + baseline + ar1(Visite_n_factor | Patient_ID)" in text
    assert "library(mmrm)" in text
    formula = "`Score (points)` ~ `Arm [group]` * VISIT + us(VISIT | `Patient ID`)"
    text = r_code(formula, False, "trial é.csv", data, df_method="kenward-roger")
    assert "_factor" not in text and "us(VISIT | Patient_ID)" in text
    assert 'reml = FALSE, method = "Kenward-Roger"' in text
