"""The Trial page's logic (dashboard.analysis.trial) and its example data (trial_visits).

Oracles: mmrm 0.3.18 on its FEV data (tests/fixtures/mmrm: logLik, AIC, BIC of the same
formula), the truth record written by data/make_trial_visits.py (patients seen per arm and
visit), an independent least-squares fit with hand-made dummy columns (observed correlation)
and hand-counted small tables (drop-out, fallback).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from dashboard.analysis import trial as tr
from dashboard.io.roles import Roles
from lmm_core import DataError
from lmm_core.datasets import DATA_DIR, load_example

MMRM = Path(__file__).resolve().parents[1] / "fixtures" / "mmrm"


def visits_example() -> tuple[pd.DataFrame, Roles]:
    data, info = load_example("trial_visits")
    return data, Roles(**info.roles)


def fev() -> tuple[pd.DataFrame, Roles]:
    schema = json.loads((MMRM / "data" / "fev_data.schema.json").read_text())
    data = pd.read_csv(MMRM / "data" / "fev_data.csv")
    for col in schema["columns"]:
        if col["type"] == "factor":
            data[col["name"]] = pd.Categorical(
                data[col["name"]].astype(str), categories=col["levels"]
            )
    roles = Roles(
        subject="USUBJID", time="AVISIT", outcome="FEV1", covariates=("RACE", "SEX", "ARMCD")
    )
    return data, roles


@pytest.fixture(scope="module")
def example_fits():
    data, roles = visits_example()
    plan = tr.plan_trial(data, roles, "arm")
    return plan, tr.fit_structures(plan)


# --------------------------------------------------------------------------- the example data
def test_example_is_reproduced_by_its_script():
    spec = importlib.util.spec_from_file_location("mtv", DATA_DIR / "make_trial_visits.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows, realised = module.simulate()
    text = module.csv_text(rows).encode()
    truth = json.loads((DATA_DIR / "trial_visits_truth.json").read_text())
    assert hashlib.sha256(text).hexdigest() == truth["files"]["trial_visits.csv"]
    assert text == (DATA_DIR / "trial_visits.csv").read_bytes()
    assert realised == truth["realised"]
    cov = np.array(truth["true_parameters"]["covariance"])
    assert np.all(np.linalg.eigvalsh(cov) > 0)


def test_dropout_counts_match_the_truth_record():
    data, roles = visits_example()
    plan = tr.plan_trial(data, roles, "arm")
    per_visit, per_arm = tr.dropout_summary(plan)
    realised = json.loads((DATA_DIR / "trial_visits_truth.json").read_text())["realised"]
    for arm, seen in realised["seen_per_visit_and_arm"].items():
        assert per_visit.loc[per_visit["arm"] == arm, "seen"].tolist() == seen
    assert (
        dict(zip(per_arm["arm"], per_arm["completed"], strict=True))
        == (realised["completers_per_arm"])
    )
    assert per_arm["missed_visits"].sum() == realised["intermittent_missed"]
    ctrl = per_arm.set_index("arm").loc["control"]
    assert ctrl["dropped_out"] > per_arm.set_index("arm").loc["treatment", "dropped_out"]


# --------------------------------------------------------------------------- plan and formula
def test_formula_and_visit_order_on_the_example():
    data, roles = visits_example()
    assert tr.guess_arm(data, roles) == "arm"
    plan = tr.plan_trial(data, roles, "arm")
    assert plan.formula("us") == "score ~ baseline + sex + arm * visit + us(visit | patient)"
    assert plan.visits == [1, 2, 3, 4, 5, 6]
    assert plan.arms == ["control", "treatment"]
    assert plan.dropped == 0


def test_names_are_quoted_and_numbers_sort_as_numbers():
    data = pd.DataFrame(
        {
            "pt id": np.repeat(["a", "b", "c", "d"], 3),
            "Visit": np.tile([2, 10, 1], 4),
            "SBP (mmHg)": np.arange(12.0),
            "Treatment group": np.repeat(["B", "A", "B", "A"], 3),
        }
    )
    roles = Roles(subject="pt id", time="Visit", outcome="SBP (mmHg)")
    assert tr.guess_arm(data, roles) == "Treatment group"
    plan = tr.plan_trial(data, roles, "Treatment group")
    assert plan.formula("ar1") == (
        "`SBP (mmHg)` ~ `Treatment group` * Visit + ar1(Visit | `pt id`)"
    )
    assert plan.visits == [1, 2, 10]
    assert plan.arms == ["A", "B"]


def test_week_labels_sort_in_visit_order():
    data, roles = visits_example()
    plan = tr.plan_trial(data, Roles(**{**roles.to_dict(), "time": "VISIT"}), "arm")
    assert plan.visits == ["W02", "W04", "W08", "W12", "W16", "W24"]


def test_fev_factor_order_and_arm_guess():
    data, roles = fev()
    assert tr.guess_arm(data, roles) == "ARMCD"
    plan = tr.plan_trial(data, roles, "ARMCD")
    assert plan.visits == ["VIS1", "VIS2", "VIS3", "VIS4"]
    assert plan.arms == ["PBO", "TRT"]
    assert plan.dropped == 800 - 537


@pytest.mark.parametrize(
    ("change", "arm", "message"),
    [
        ({"subject": None}, "arm", "needs a subject"),
        ({}, None, "arm column with two levels"),
        ({}, "sex_x3", "has 3 levels"),
        ({"time": "score"}, "arm", "distinct values"),
        ({}, "score", "also the subject, visit or outcome"),
        ({"outcome": "arm"}, "sex", "must be numeric"),
    ],
)
def test_bad_roles_give_clear_messages(change, arm, message):
    data, roles = visits_example()
    data = data.assign(sex_x3=np.resize(["a", "b", "c"], len(data)))
    with pytest.raises(DataError, match=message):
        tr.plan_trial(data, Roles(**{**roles.to_dict(), **change}), arm)


def test_arm_changing_within_a_patient_and_visit_twice_are_refused():
    data, roles = visits_example()
    flipped = data.copy()
    flipped.loc[0, "arm"] = "treatment" if data.loc[0, "arm"] == "control" else "control"
    with pytest.raises(DataError, match="arm must be fixed"):
        tr.plan_trial(flipped, roles, "arm")
    twice = pd.concat([data, data.iloc[[0]]], ignore_index=True)
    with pytest.raises(DataError, match="twice"):
        tr.plan_trial(twice, roles, "arm")


# --------------------------------------------------------------------------- fits
def test_comparison_on_fev_matches_mmrm():
    data, roles = fev()
    plan = tr.plan_trial(data, roles, "ARMCD")
    fits = tr.fit_structures(plan, ["us", "ar1", "cs"])
    table = tr.comparison_table(fits).set_index("term")
    for s in ("us", "ar1", "cs"):
        case = json.loads((MMRM / "cases" / f"mmrm_fev_{s}_reml.json").read_text())
        assert plan.formula(s) == case["formula"]
        ref = case["satterthwaite"]
        assert table.loc[s, "logLik"] == pytest.approx(ref["logLik"], rel=1e-6)
        assert table.loc[s, "AIC"] == pytest.approx(ref["AIC"], rel=1e-6)
        assert table.loc[s, "BIC"] == pytest.approx(ref["BIC"], rel=1e-6)
    assert table.loc["us", "parameters"] == 10
    assert table.loc["ar1", "parameters"] == 2
    assert (table["converged"] == "yes").all()
    assert tr.primary_structure(fits).structure == "us"


def test_comparison_on_the_example(example_fits):
    plan, fits = example_fits
    table = tr.comparison_table(fits)
    assert list(table.columns) == [
        "structure", "term", "parameters", "logLik", "AIC", "BIC", "converged", "seconds",
    ]  # fmt: skip
    assert list(table["term"]) == list(tr.STRUCTURES)
    m = 6
    expected = {"us": m * (m + 1) // 2, "toeph": 2 * m - 1, "ar1h": m + 1, "csh": m + 1,
                "toep": m, "ar1": 2, "cs": 2, "ad": m}  # fmt: skip
    assert dict(zip(table["term"], table["parameters"], strict=True)) == expected
    assert (table["converged"] == "yes").all()
    # the truth is Toeplitz with its own variance per visit: us and toeph fit it, cs cannot
    loglik = table.set_index("term")["logLik"]
    assert loglik["us"] >= loglik["toeph"] >= loglik["toep"] >= loglik["cs"]
    best = table.loc[table["AIC"].idxmin(), "term"]
    assert best in ("us", "toeph", "ar1h")
    assert table.loc[table["AIC"].idxmax(), "term"] == "cs"
    primary = tr.primary_structure(fits)
    assert primary.structure == "us"
    # the primary model recovers the growing treatment effect (truth -0.5 ... -3.5)
    table = primary.result.fixef_table("satterthwaite")
    assert (
        table.loc["armtreatment:visit6", "ci_lower"]
        < -3.0
        < table.loc["armtreatment:visit6", "ci_upper"]
    )
    words = " ".join(tr.verdict(fits))
    assert "unstructured (us)" in words and "AIC prefers" in words and "BIC prefers" in words


def _fake(structure: str, converged: bool | None, aic: float = 0.0) -> tr.StructureFit:
    result = (
        None
        if converged is None
        else SimpleNamespace(converged=converged, aic=aic, bic=aic, npar=2, loglik=-aic / 2)
    )
    return tr.StructureFit(structure, f"y ~ {structure}", result, "" if result else "boom", 0.1)


def test_fallback_takes_the_first_that_converges():
    fits = [_fake("us", None), _fake("toeph", False, 10), _fake("ar1h", True, 12),
            _fake("cs", True, 5), _fake("ar1", True, 3)]  # fmt: skip
    primary = tr.primary_structure(fits)
    assert primary.structure == "ar1h"
    words = tr.verdict(fits)
    assert "did not converge" in words[0] and "ar1h" in words[0]
    assert words[1].startswith("AIC prefers AR(1) (ar1) by 2.0")
    assert "keeps the AR(1), variance per visit covariance" in words[-1]
    table = tr.comparison_table(fits)
    assert list(table["converged"]) == ["failed", "no", "yes", "yes", "yes"]
    assert np.isnan(table.loc[0, "AIC"])


def test_no_structure_converges():
    fits = [_fake(s, False) for s in tr.FALLBACK]
    assert tr.primary_structure(fits) is None
    assert "no primary model" in tr.verdict(fits)[0]


# --------------------------------------------------------------------------- the data's patterns
def test_dropout_counts_by_hand():
    data = pd.DataFrame(
        {
            "id": ["a", "a", "a", "b", "b", "c", "c", "d"],
            "v": [1, 2, 3, 1, 3, 1, 2, 1],
            "y": np.arange(8.0),
            "arm": ["T", "T", "T", "T", "T", "C", "C", "C"],
        }
    )
    plan = tr.plan_trial(data, Roles(subject="id", time="v", outcome="y"), "arm")
    per_visit, per_arm = tr.dropout_summary(plan)
    seen = per_visit.set_index(["arm", "visit"])["seen"]
    assert seen[("C", 1)] == 2 and seen[("C", 2)] == 1 and seen[("C", 3)] == 0
    assert seen[("T", 1)] == 2 and seen[("T", 2)] == 1 and seen[("T", 3)] == 2
    arms = per_arm.set_index("arm")
    assert arms.loc["T", "completed"] == 2 and arms.loc["T", "missed_visits"] == 1
    assert arms.loc["C", "completed"] == 0 and arms.loc["C", "dropped_out"] == 2
    words = tr.dropout_sentences(plan, per_arm)
    assert words[0].startswith("C: 0 of 2 patients (0%)") and "1 visits were missed" in words[1]


def test_visit_patterns_by_hand():
    data = pd.DataFrame(
        {
            "id": ["a", "a", "a", "b", "b", "c", "c", "d", "e", "e", "e"],
            "v": [1, 2, 3, 1, 3, 1, 2, 1, 1, 2, 3],
            "y": np.arange(11.0),
            "arm": ["T", "T", "T", "T", "T", "C", "C", "C", "C", "C", "C"],
        }
    )
    plan = tr.plan_trial(data, Roles(subject="id", time="v", outcome="y"), "arm")
    cells, counts = tr.visit_patterns(plan)
    assert counts["pattern"].tolist() == ["all visits", "up to 2", "missed 2", "up to 1"]
    assert cells.to_numpy().tolist() == [[1, 1, 1], [1, 1, 0], [1, 0, 1], [1, 0, 0]]
    assert counts["monotone"].tolist() == [True, True, False, True]
    assert counts["patients"].tolist() == [2, 1, 1, 1]
    assert counts["by_arm"][0] == {"C": 1, "T": 1}
    assert tr.pattern_sentence(counts) == (
        "4 patterns of visits: 2 of 5 patients seen at every visit, 2 left for good "
        "(monotone drop-out), 1 missed a visit and came back."
    )
    # pooled: the last two patterns (one patient each) -> shares seen per visit
    cells, counts = tr.visit_patterns(plan, most=3)
    assert counts["pattern"].tolist()[-1] == "2 rarer patterns"
    assert counts["monotone"].tolist()[-1] is None and counts["patients"].tolist() == [2, 1, 2]
    np.testing.assert_allclose(cells.to_numpy()[-1], [1.0, 0.0, 0.5])
    assert counts["by_arm"].iloc[-1] == {"C": 1, "T": 1}
    assert tr.pattern_sentence(counts).endswith("came back, 2 in rarer patterns.")


def test_visit_patterns_agree_with_the_counts_per_visit():
    data, roles = visits_example()
    plan = tr.plan_trial(data, roles, tr.guess_arm(data, roles))
    cells, counts = tr.visit_patterns(plan, most=10_000)
    per_visit, per_arm = tr.dropout_summary(plan)
    seen = cells.to_numpy().T @ counts["patients"].to_numpy()
    np.testing.assert_array_equal(seen, per_visit.groupby("visit", sort=False)["seen"].sum())
    assert counts["patients"].sum() == per_arm["patients"].sum()
    complete = counts.loc[counts["pattern"] == "all visits", "patients"].sum()
    assert complete == per_arm["completed"].sum() - _intermittent_completers(cells, counts)


def _intermittent_completers(cells: pd.DataFrame, counts: pd.DataFrame) -> int:
    """Patients seen at the last visit who missed one before it."""
    last_seen = cells.iloc[:, -1].to_numpy() > 0
    return int(counts["patients"][last_seen & ~counts["monotone"].astype(bool)].sum())


def test_observed_correlation_matches_an_independent_fit():
    data, roles = visits_example()
    plan = tr.plan_trial(data, roles, "arm")
    corr, pairs = tr.observed_correlation(plan)
    f = plan.frame
    trt = (f["arm"] == "treatment").to_numpy(float)
    visits = pd.get_dummies(f["visit"], drop_first=True, dtype=float).to_numpy()
    X = np.column_stack(
        [np.ones(len(f)), f["baseline"], f["sex"] == "M", trt, visits, visits * trt[:, None]]
    ).astype(float)
    coef, *_ = np.linalg.lstsq(X, f["score"].to_numpy(float), rcond=None)
    wide = f.assign(r=f["score"] - X @ coef).pivot(index="patient", columns="visit", values="r")
    expected = wide.corr().to_numpy()
    np.testing.assert_allclose(corr.to_numpy(), expected, rtol=1e-10)
    assert pairs.iloc[0, 0] == 300 and pairs.iloc[5, 5] == 230
    assert pairs.iloc[0, 5] == wide[[1, 6]].dropna().shape[0]
    # unit-free: the outcome in tenths gives the same correlation
    scaled = tr.plan_trial(data.assign(score=10 * data["score"]), roles, "arm")
    np.testing.assert_allclose(tr.observed_correlation(scaled)[0], corr, rtol=1e-10)


def test_lsmeans_and_treatment_differences(example_fits):
    plan, fits = example_fits
    primary = tr.primary_structure(fits).result
    means = tr.arm_lsmeans(plan, primary)
    assert len(means) == 12 and list(means["arm"].unique()) == ["control", "treatment"]
    diff = tr.treatment_differences(plan, primary)
    assert list(diff["contrast"].unique()) == ["treatment - control"]
    wide = means.pivot(index="visit", columns="arm", values="estimate")
    np.testing.assert_allclose(
        diff["estimate"], (wide["treatment"] - wide["control"]).to_numpy(), rtol=1e-10
    )
    # at the first visit the difference is the arm coefficient (treatment contrasts)
    assert diff["estimate"].iloc[0] == pytest.approx(primary.fixef["armtreatment"], rel=1e-10)
    assert diff["ci_lower"].iloc[-1] < -3.5 < diff["ci_upper"].iloc[-1]  # truth at visit 6
    assert (diff["ci_lower"] < diff["estimate"]).all() and (
        diff["estimate"] < diff["ci_upper"]
    ).all()
