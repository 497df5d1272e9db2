"""Own-data fits, mixed-model estimates and shrinkage factors (lmm_core.predict.per_group)."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lmm_core import ModelError, datasets, fit_lmm
from lmm_core.predict.per_group import covariance_ellipse, deviation_by, shrinkage_estimates

SLEEP = "Reaction ~ Days + (Days | Subject)"
TRIAL = "y ~ time * arm + (time | patient) + (1 | hospital)"


@cache
def _example(name: str) -> pd.DataFrame:
    return datasets.load_example(name)[0]


@cache
def _fit(name: str, formula: str):
    return fit_lmm(formula, _example(name))


def test_own_estimates_equal_lstsq_per_subject():
    data = _example("sleepstudy")
    est = shrinkage_estimates(_fit("sleepstudy", SLEEP), "Subject")
    assert est.columns == ("(Intercept)", "Days")
    assert len(est.table) == 18 and est.left_out.empty
    for subject, rows in data.groupby("Subject"):
        X = np.column_stack([np.ones(len(rows)), rows["Days"]])
        coef = np.linalg.lstsq(X, rows["Reaction"].to_numpy(), rcond=None)[0]
        got = est.table.loc[str(subject), ["own:(Intercept)", "own:Days"]].to_numpy(float)
        np.testing.assert_allclose(got, coef, rtol=1e-10)
        assert est.table.loc[str(subject), "n"] == len(rows)


def test_mixed_equals_fixef_plus_ranef_and_population_equals_fixef():
    res = _fit("sleepstudy", SLEEP)
    est = shrinkage_estimates(res)  # default: the group with most levels
    coef = res.ranef["Subject"] + res.fixef[["(Intercept)", "Days"]].to_numpy()
    for c in est.columns:
        np.testing.assert_allclose(est.table[f"mixed:{c}"], coef[c], rtol=1e-10)
        np.testing.assert_allclose(est.table[f"population:{c}"], res.fixef[c], rtol=1e-10)
        np.testing.assert_allclose(est.table[f"blup:{c}"], res.ranef["Subject"][c])
        np.testing.assert_allclose(est.table[f"blup_sd:{c}"], res.ranef_sd["Subject"][c])
    np.testing.assert_allclose(est.covariance, res.covariance_matrices()[0])
    own, mixed = est.table["own:Days"], est.table["mixed:Days"]
    assert (mixed - res.fixef["Days"]).std() < (own - res.fixef["Days"]).std()  # shrunk


def test_random_intercept_factor_is_n_tau2_over_n_tau2_plus_sigma2_balanced():
    res = fit_lmm("Reaction ~ Days + (1 | Subject)", _example("sleepstudy"))
    est = shrinkage_estimates(res, "Subject")
    tau2 = res.covariance_matrices()[0][0, 0]
    n = 10
    expected = n * tau2 / (n * tau2 + res.sigma**2)
    factor = est.table["shrinkage:(Intercept)"]
    np.testing.assert_allclose(factor, expected, rtol=1e-8)
    assert ((factor > 0) & (factor < 1)).all()


def test_random_intercept_factor_unbalanced_depends_on_n():
    data = _example("sleepstudy")
    rng = np.random.default_rng(3)
    keep = data.groupby("Subject").head(10).sample(frac=0.6, random_state=4)
    keep = keep[~keep.index.isin(rng.choice(keep.index, 5))]
    res = fit_lmm("Reaction ~ 1 + (1 | Subject)", keep)
    est = shrinkage_estimates(res, "Subject")
    tau2, s2 = res.covariance_matrices()[0][0, 0], res.sigma**2
    n = est.table["n"].to_numpy()
    np.testing.assert_allclose(
        est.table["shrinkage:(Intercept)"], n * tau2 / (n * tau2 + s2), rtol=1e-8
    )
    assert len(set(n)) > 2


def test_left_out_subjects_and_reasons():
    data = _example("sleepstudy").copy()
    data = data[~((data["Subject"].astype(str) == "308") & (data["Days"] > 0))]  # one visit
    same = (data["Subject"].astype(str) == "309") & (data["Days"] != 3)
    data.loc[same, "Days"] = 3  # every visit at day 3: slope not estimable
    res = fit_lmm(SLEEP, data)
    est = shrinkage_estimates(res, "Subject")
    assert list(est.left_out.index) == ["308", "309"]
    assert "1 observation: fewer than the 2" in est.left_out.loc["308", "reason"]
    assert "same time" in est.left_out.loc["309", "reason"]
    assert est.table.loc["308", "own:Days"] != est.table.loc["308", "own:Days"]  # NaN
    assert not est.table.loc["309", "fitted_own"]
    assert np.isfinite(est.table.loc["308", "blup:Days"])
    assert est.table["fitted_own"].sum() == 16


def test_covariates_enter_the_subject_coefficients_and_hospital_is_added():
    res = _fit("trial_small", TRIAL)
    est = shrinkage_estimates(res, "patient")
    fe = res.fixef
    data = _example("trial_small")
    fitted = est.table["fitted_own"]
    arm = data.groupby("patient")["arm"].first().reindex(est.table.index) == "treatment"
    np.testing.assert_allclose(
        est.table["population:time"][fitted],
        (fe["time"] + arm * fe["time:armtreatment"])[fitted],
        atol=1e-8,
    )
    np.testing.assert_allclose(
        est.table["population:(Intercept)"][fitted],
        (fe["(Intercept)"] + arm * fe["armtreatment"])[fitted],
        atol=1e-8,
    )
    assert est.table.loc[~fitted, "population:time"].isna().all()
    hospital = data.groupby("patient")["hospital"].first().reindex(est.table.index)
    hosp_b = res.ranef["hospital"]["(Intercept)"].reindex(hospital).to_numpy()
    extra = est.table["mixed:(Intercept)"] - est.table["population:(Intercept)"]
    np.testing.assert_allclose(
        extra[fitted], (est.table["blup:(Intercept)"] + hosp_b)[fitted], atol=1e-8
    )
    np.testing.assert_allclose(
        (est.table["mixed:time"] - est.table["population:time"])[fitted],
        est.table["blup:time"][fitted],
        atol=1e-8,
    )
    assert len(est.left_out) > 0 and (est.left_out["n"] < 2).all()


def test_unknown_group_is_an_error():
    with pytest.raises(ModelError, match="no random effects for `nope`"):
        shrinkage_estimates(_fit("sleepstudy", SLEEP), "nope")


def test_covariance_ellipse_is_the_level_contour():
    cov = np.array([[4.0, 1.5], [1.5, 2.0]])
    pts = covariance_ellipse(np.array([1.0, -2.0]), cov, 0.95, 50)
    d = pts - [1.0, -2.0]
    q = np.einsum("ij,jk,ik->i", d, np.linalg.inv(cov), d)
    np.testing.assert_allclose(q, stats.chi2.ppf(0.95, 2), rtol=1e-10)
    np.testing.assert_allclose(pts[0], pts[-1])


def test_deviation_by_subject_is_rms_of_random_part():
    res = _fit("sleepstudy", SLEEP)
    data = _example("sleepstudy")
    dev = deviation_by(res, data, "Subject")
    rows = (data["Subject"].astype(str) == "308").to_numpy()
    part = res.fitted[rows] - res.design.X[rows] @ res.beta
    assert dev[data.loc[rows, "Subject"].iloc[0]] == pytest.approx(np.sqrt(np.mean(part**2)))
    assert len(dev) == 18
