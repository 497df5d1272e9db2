"""The spatial exponential structure ``sp_exp(time | subject)`` (issue 14).

Oracle: nlme::gls with ``corExp(form = ~ time | subject)`` by REML (``rho = exp(-1 / range)``)
on FEV-like data with irregular times and with scheduled times and missing visits
(``tests/fixtures/mmrm_spexp``: data, R script, JSON). logLik 1e-6 relative and never below
gls's, estimates 1e-4 relative to their scale, SEs 1e-3; the fit does not depend on the unit
of time; equally spaced times give AR(1); a duplicated time is an error.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lmm_core import DataError, ModelError, fit_lmm

HERE = Path(__file__).resolve().parents[1] / "fixtures" / "mmrm_spexp"
REF = json.loads((HERE / "reference.json").read_text())
LEVELS = {
    "AVISIT": ["VIS1", "VIS2", "VIS3", "VIS4"],
    "ARMCD": ["PBO", "TRT"],
    "RACE": ["Asian", "Black or African American", "White"],
    "SEX": ["Male", "Female"],
}


def read(name: str) -> pd.DataFrame:
    data = pd.read_csv(HERE / name)
    for col, levels in LEVELS.items():
        data[col] = pd.Categorical(data[col], categories=levels)
    return data


def _scaled_close(actual, expected, rtol: float) -> None:
    actual, expected = np.asarray(actual, float), np.asarray(expected, float)
    assert np.max(np.abs(actual - expected)) / np.max(np.abs(expected)) <= rtol


@pytest.mark.parametrize("case", ["irregular", "scheduled_missing"])
def test_fit_matches_nlme_gls_corexp(case):
    ref = REF[case]
    res = fit_lmm(ref["formula"], read(ref["data"]))
    assert res.converged
    assert res.loglik >= ref["logLik"] - 1e-9 * abs(ref["logLik"])
    assert res.loglik == pytest.approx(ref["logLik"], rel=1e-6)
    assert list(res.fixef.index) == ref["coefficients"]["names"]
    _scaled_close(res.beta, ref["coefficients"]["Estimate"], 1e-4)
    np.testing.assert_allclose(res.std_errors, ref["coefficients"]["SE"], rtol=1e-3)
    structure = res.design.residual.structure
    assert structure.rho(res.theta) == pytest.approx(ref["rho"], rel=1e-3)
    cov = res.residual_covariance()
    times = np.array([float(t) for t in cov.index])
    assert np.all(np.diff(times) > 0)  # the distinct observed times, sorted
    expected = ref["sigma"] ** 2 * ref["rho"] ** np.abs(np.subtract.outer(times, times))
    _scaled_close(cov.to_numpy(), expected, 1e-3)


def test_unit_of_time_does_not_change_the_fit():
    data = read("fev_irregular.csv")
    formula = REF["irregular"]["formula"]
    weeks = fit_lmm(formula, data)
    hours = fit_lmm(formula, data.assign(TIME=data["TIME"] * 168.0))
    assert hours.loglik == pytest.approx(weeks.loglik, rel=1e-10)
    np.testing.assert_allclose(hours.beta, weeks.beta, rtol=1e-8)
    rho_w = weeks.design.residual.structure.rho(weeks.theta)
    rho_h = hours.design.residual.structure.rho(hours.theta)
    assert rho_h == pytest.approx(rho_w ** (1 / 168.0), rel=1e-8)  # per hour, per week
    np.testing.assert_allclose(hours.fixef_table()["df"], weeks.fixef_table()["df"], rtol=1e-6)


def test_equally_spaced_times_give_ar1():
    data = read("fev_irregular.csv")
    data["VISITNUM"] = data["AVISIT"].cat.codes.astype(float) * 3.0  # 0, 3, 6, 9
    sp = fit_lmm("FEV1 ~ ARMCD * AVISIT + sp_exp(VISITNUM | USUBJID)", data)
    ar = fit_lmm("FEV1 ~ ARMCD * AVISIT + ar1(AVISIT | USUBJID)", data)
    assert sp.loglik == pytest.approx(ar.loglik, rel=1e-9)
    rho = sp.design.residual.structure.rho(sp.theta)
    assert rho**3 == pytest.approx(ar.residual_correlation().iloc[0, 1], rel=1e-5)
    assert len(sp.design.residual.visits) == 4  # scheduled times: four shared "visits"


def test_group_specific_spatial_covariance():
    data = read("fev_irregular.csv")
    res = fit_lmm("FEV1 ~ ARMCD * AVISIT + sp_exp(TIME | ARMCD / USUBJID)", data)
    assert res.converged and len(res.theta) == 4
    assert set(res.residual_covariance()) == {"PBO", "TRT"}


@pytest.mark.parametrize(
    ("change", "error", "words"),
    [
        ("twice", DataError, "time .* more than once"),
        ("factor", ModelError, "numeric time"),
    ],
)
def test_bad_times_are_explained(change, error, words):
    data = read("fev_irregular.csv")
    term = "sp_exp(TIME | USUBJID)"
    if change == "twice":
        data.loc[1, "TIME"] = data.loc[0, "TIME"]
        data.loc[1, "USUBJID"] = data.loc[0, "USUBJID"]
    else:
        term = "sp_exp(AVISIT | USUBJID)"
    with pytest.raises(error, match=words):
        fit_lmm(f"FEV1 ~ ARMCD + {term}", data)


def test_kenward_roger_runs_in_mmrm_parametrization():
    """mmrm's KR for sp_exp is checked in test_mmrm_extra; here on irregular times: its df are
    Satterthwaite's (one row), its SEs near the model-based ones. (In mmrm's parametrization,
    logit of rho per unit of time, the KR adjustment depends on the unit slightly.)"""
    res = fit_lmm(REF["irregular"]["formula"], read("fev_irregular.csv"))
    kr = res.fixef_table("kenward-roger")
    sat = res.fixef_table("satterthwaite")
    np.testing.assert_allclose(kr["df"], sat["df"], rtol=1e-6)
    np.testing.assert_allclose(kr["std_error"], sat["std_error"], rtol=0.05)
    assert not np.allclose(kr["std_error"], sat["std_error"], rtol=1e-4)


# --------------------------------------------------------------------------- coordinates
COORDS = json.loads((HERE / "reference_coords.json").read_text())["two_coordinates"]


def test_two_coordinates_match_nlme_gls_corexp():
    """``sp_exp(TIME, POS | USUBJID)`` against gls ``corExp(form = ~ TIME + POS | USUBJID)``
    (Euclidean distance between the distinct (TIME, POS) points)."""
    res = fit_lmm(COORDS["formula"], read(COORDS["data"]))
    assert res.converged
    assert res.loglik >= COORDS["logLik"] - 1e-9 * abs(COORDS["logLik"])
    assert res.loglik == pytest.approx(COORDS["logLik"], rel=1e-6)
    assert list(res.fixef.index) == COORDS["coefficients"]["names"]
    _scaled_close(res.beta, COORDS["coefficients"]["Estimate"], 1e-4)
    np.testing.assert_allclose(res.std_errors, COORDS["coefficients"]["SE"], rtol=1e-3)
    residual = res.design.residual
    assert residual.structure.rho(res.theta) == pytest.approx(COORDS["rho"], rel=1e-3)
    assert residual.spec.label == "sp_exp(TIME, POS | USUBJID)"
    assert residual.visits[0].startswith("(") and len(residual.visits) == residual.structure.m
    points = np.array([[float(v) for v in lab.strip("()").split(", ")] for lab in residual.visits])
    assert np.all(np.diff(points[:, 0]) >= 0)  # sorted by the first coordinate
    cov = res.residual_covariance().to_numpy()
    dist = np.sqrt(((points[:, None, :] - points[None, :, :]) ** 2).sum(axis=2))
    expected = COORDS["sigma"] ** 2 * COORDS["rho"] ** dist
    _scaled_close(cov, expected, 1e-3)


def test_two_coordinates_do_not_depend_on_the_unit():
    data = read(COORDS["data"])
    base = fit_lmm(COORDS["formula"], data)
    days = fit_lmm(COORDS["formula"], data.assign(TIME=data["TIME"] * 7, POS=data["POS"] * 7))
    assert days.loglik == pytest.approx(base.loglik, rel=1e-10)
    np.testing.assert_allclose(days.beta, base.beta, rtol=1e-8)
    rho_b = base.design.residual.structure.rho(base.theta)
    rho_d = days.design.residual.structure.rho(days.theta)
    assert rho_d == pytest.approx(rho_b ** (1 / 7.0), rel=1e-8)


def test_a_constant_second_coordinate_changes_nothing():
    data = read("fev_irregular.csv").assign(ZERO=0.0)
    one = fit_lmm("FEV1 ~ ARMCD * AVISIT + sp_exp(TIME | USUBJID)", data)
    two = fit_lmm("FEV1 ~ ARMCD * AVISIT + sp_exp(TIME, ZERO | USUBJID)", data)
    assert two.loglik == pytest.approx(one.loglik, rel=1e-10)
    np.testing.assert_allclose(two.beta, one.beta, rtol=1e-8)
    assert two.design.residual.structure.scale == one.design.residual.structure.scale


def test_bad_coordinates_are_explained():
    from lmm_core import FormulaError

    data = read(COORDS["data"])
    with pytest.raises(ModelError, match="numeric coordinates; ARMCD"):
        fit_lmm("FEV1 ~ AVISIT + sp_exp(TIME, ARMCD | USUBJID)", data)
    twice = pd.concat([data, data.iloc[[0]]], ignore_index=True)
    with pytest.raises(DataError, match=r"more than once"):
        fit_lmm(COORDS["formula"], twice)
    with pytest.raises(FormulaError, match="exactly one argument"):
        fit_lmm("FEV1 ~ AVISIT + ar1(AVISIT, TIME | USUBJID)", data)
    with pytest.raises(FormulaError, match="must be a column name"):
        fit_lmm("FEV1 ~ AVISIT + sp_exp(TIME, log(POS) | USUBJID)", data)
