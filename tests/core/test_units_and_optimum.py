"""Results that do not depend on units, and an optimizer that reaches the best optimum.

The same data with time in seconds, minutes, hours, days, weeks or years (and the outcome in
another unit) must give the same fit up to the implied scale: SDs, correlations, t values,
Satterthwaite and Kenward-Roger df, p-values, profile intervals, forecasts and bootstrap
replicates, and the same singular/converged verdicts. Four situations, each on every unit:

* an interior optimum (sleepstudy ``(Days | Subject)``; lme4: 24.740, 5.922, 0.066, df 17);
* a fit that stalled next to a bound (ChickWeight, ``weight ~ Time * Diet + (Time | Chick)``
  by ML: lme4's bobyqa reaches deviance 4800.2323956 at theta (0.796, -0.244, 0.0406) and
  lmerTest's df for Time is 51.08; the slope's theta is 0.04 per day, 5e-7 per second);
* two boundary optima (stress-corpus case 12: intercept SD 0 with criterion 5403.670, or
  intercept and slope perfectly correlated with 5403.419, the better one);
* a true singular fit (stress-corpus case 6: slope SD 0 in the simulation, on the boundary
  at every start) and an interior optimum with a small slope variance (600 simulated
  subjects: dropping it costs 2.7 in the criterion; in seconds its theta is 3e-7, which
  lme4's raw ``isSingular`` rule would call singular).
"""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lmm_core import fit_lmm, fixef_inference, parametric_bootstrap, profile_confint
from lmm_core.predict.forecast import new_subject_forecast

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
sys.path.insert(0, str(ROOT / "benchmarks"))
from stress_corpus import best_of_starts, make_case, tolerance  # noqa: E402

#: Time units per day.
UNITS = {
    "seconds": 86400.0,
    "minutes": 1440.0,
    "hours": 24.0,
    "days": 1.0,
    "weeks": 1 / 7,
    "years": 1 / 365.25,
}
#: Relative agreement between units: what an optimizer that stops at the optimum gives.
REL = 1e-5


def sleepstudy(unit: float, y_unit: float = 1.0) -> pd.DataFrame:
    df = pd.read_csv(FIXTURES / "reference" / "data" / "sleepstudy.csv", dtype={"Subject": str})
    df["T"] = df["Days"] * unit
    df["Reaction"] = df["Reaction"] * y_unit
    return df


def chickweight(unit: float) -> pd.DataFrame:
    df = pd.read_csv(FIXTURES / "chickweight.csv", dtype={"Chick": str, "Diet": str})
    df["T"] = df["Time"] * unit
    return df


@cache
def sleep_fit(unit_name: str):
    return fit_lmm("Reaction ~ T + (T | Subject)", sleepstudy(UNITS[unit_name]))


@cache
def chick_fit(unit_name: str):
    return fit_lmm("weight ~ T * Diet + (T | Chick)", chickweight(UNITS[unit_name]), reml=False)


def per_day(fit, unit: float) -> dict[str, float]:
    """Unit-free summaries: SDs per day, correlation, sigma, slope per day, t, df, p."""
    vc = fit.varcorr_table()
    tab = fit.fixef_table()
    return {
        "sd_intercept": vc.sdcor.iloc[0],
        "sd_slope_per_day": vc.sdcor.iloc[1] * unit,
        "corr": vc.sdcor.iloc[2],
        "sigma": fit.sigma,
        "slope_per_day": fit.fixef.iloc[1] * unit,
        "se_intercept": tab.std_error.iloc[0],
        "t_slope": tab.t_value.iloc[1],
        "df_slope": tab.df.iloc[1],
        "p_slope": tab.p_value.iloc[1],
        "df_intercept": tab.df.iloc[0],
    }


def assert_same(a: dict, b: dict, rel: float = REL) -> None:
    for key in a:
        assert b[key] == pytest.approx(a[key], rel=rel, abs=1e-12), key


@pytest.mark.parametrize("unit_name", UNITS)
def test_sleepstudy_same_fit_df_and_p_in_every_unit(unit_name):
    fit = sleep_fit(unit_name)
    got = per_day(fit, UNITS[unit_name])
    assert_same(per_day(sleep_fit("days"), 1.0), got)
    assert got["sd_intercept"] == pytest.approx(24.740, abs=1e-3)
    assert got["sd_slope_per_day"] == pytest.approx(5.922, abs=1e-3)
    assert got["df_slope"] == pytest.approx(17.0, abs=0.01)
    assert fit.converged and not fit.is_singular


@pytest.mark.parametrize("factor", [1e-6, 1e-3, 1e3, 1e6])
def test_extreme_rescaling_of_time_and_outcome(factor):
    base = per_day(sleep_fit("days"), 1.0)
    fit = fit_lmm("Reaction ~ T + (T | Subject)", sleepstudy(factor, y_unit=1 / factor))
    got = per_day(fit, factor)
    for key in ("sd_intercept", "sd_slope_per_day", "sigma", "slope_per_day", "se_intercept"):
        got[key] *= factor  # outcome in other units
    assert_same(base, got)
    assert fit.converged and not fit.is_singular


@pytest.mark.parametrize("unit_name", ["seconds", "days", "years"])
def test_kenward_roger_and_profile_in_every_unit(unit_name):
    unit = UNITS[unit_name]
    fit = sleep_fit(unit_name)
    kr = fixef_inference(fit, method="kenward-roger")
    ref_kr = fixef_inference(sleep_fit("days"), method="kenward-roger")
    assert kr.df.iloc[1] == pytest.approx(ref_kr.df.iloc[1], rel=REL)
    assert kr.std_error.iloc[1] * unit == pytest.approx(ref_kr.std_error.iloc[1], rel=REL)
    assert kr.p_value.iloc[1] == pytest.approx(ref_kr.p_value.iloc[1], rel=1e-4)
    which = ["sd_T|Subject", "cor_T.(Intercept)|Subject", "T"]
    prof = profile_confint(fit, which=which)
    ref = profile_confint(sleep_fit("days"), which=which)
    scale = np.array([unit, 1.0, unit])[:, None]
    assert np.allclose(prof.to_numpy() * scale, ref.to_numpy(), rtol=1e-4)
    assert ref.loc["sd_T|Subject", "lower"] == pytest.approx(3.801, abs=2e-3)  # lme4


def test_forecast_and_bootstrap_in_seconds_and_days():
    fits = {name: sleep_fit(name) for name in ("seconds", "days")}
    tables = {}
    for name, fit in fits.items():
        unit = UNITS[name]
        observed = pd.DataFrame({"T": [0.0, unit, 2 * unit], "Reaction": [250.0, 262.0, 270.0]})
        future = pd.DataFrame({"T": [5 * unit, 9 * unit]})
        tables[name] = new_subject_forecast(fit, observed, future).table
    cols = ["fit", "lower_mean", "upper_total"]
    assert np.allclose(tables["seconds"][cols], tables["days"][cols], rtol=1e-7)
    boots = {n: parametric_bootstrap(f, 12, seed=3).samples for n, f in fits.items()}
    slope_sd = "sd_T|Subject"
    assert np.allclose(boots["seconds"][slope_sd] * 86400, boots["days"][slope_sd], rtol=1e-4)
    assert np.allclose(boots["seconds"]["sigma"], boots["days"]["sigma"], rtol=1e-5)


@pytest.mark.parametrize("unit_name", UNITS)
def test_no_stall_next_to_the_bound(unit_name):
    """ChickWeight by ML: the slope's theta is small; the fit must reach lme4's interior
    optimum (it used to stop at theta 7e-5, call the fit converged and singular)."""
    fit = chick_fit(unit_name)
    assert fit.objective == pytest.approx(4800.2323956, abs=1e-6)  # ML: unit-free deviance
    assert fit.converged and not fit.is_singular
    unit = UNITS[unit_name]
    assert fit.theta[0] == pytest.approx(0.79640, abs=2e-4)
    assert fit.theta[1:] * unit == pytest.approx([-0.24424, 0.040583], abs=2e-4)
    assert fit.fixef_table().df.iloc[1] == pytest.approx(51.081, abs=0.01)  # lmerTest


@cache
def corpus_fit(index: int, unit: float):
    case = make_case(index)
    data = case.data.copy()
    data["t"] = data["t"] * unit
    return case, fit_lmm(case.formula, data, reml=case.reml)


@pytest.mark.parametrize("unit", [1e-4, 1.0, 60.0, 3600.0])
def test_two_boundary_optima_the_better_one_is_found(unit):
    case, fit = corpus_fit(12, unit)
    # REML: log|X'V^-1 X| gains 2 log(unit) when the column t is multiplied by unit
    assert fit.objective - 2 * np.log(unit) == pytest.approx(5403.4193566, abs=1e-5)
    assert fit.objective - 2 * np.log(unit) < 5403.670 - 0.2  # not the other face
    assert fit.is_singular and fit.converged
    vc = fit.varcorr_table()
    assert abs(vc.sdcor.iloc[2]) == pytest.approx(1.0, abs=1e-6)  # correlation at +-1


@pytest.mark.parametrize("unit", [1e-4, 1.0, 60.0, 3600.0])
def test_true_singular_fit_is_singular_in_every_unit(unit):
    case, fit = corpus_fit(6, unit)
    best, _ = best_of_starts(case, 4)
    assert fit.objective <= best + tolerance(best)
    assert fit.is_singular and fit.converged


@cache
def tiny_slope_data() -> pd.DataFrame:
    """600 subjects x 10 daily visits; slope SD 0.006 per day against a residual SD of 0.3."""
    rng = np.random.default_rng(11)
    n, v = 600, 10
    t = np.tile(np.arange(v, dtype=float), n)
    ids = np.repeat(np.arange(n), v)
    b0, b1 = rng.normal(0, 1.0, n), rng.normal(0, 0.006, n)
    y = 5 + 0.2 * t + b0[ids] + b1[ids] * t + rng.normal(0, 0.3, n * v)
    return pd.DataFrame({"id": [f"p{i}" for i in ids], "t": t, "y": y})


@pytest.mark.parametrize("unit_name", ["seconds", "days", "years"])
def test_tiny_interior_variance_is_not_singular(unit_name):
    unit = UNITS[unit_name]
    data = tiny_slope_data().assign(t=lambda d: d["t"] * unit)
    fit = fit_lmm("y ~ t + (t | id)", data)
    without = fit_lmm("y ~ t + (1 | id)", data)
    assert without.objective - fit.objective == pytest.approx(2.7127, abs=1e-3)  # real
    assert not fit.is_singular and fit.converged
    assert fit.varcorr_table().sdcor.iloc[1] * unit == pytest.approx(0.008284, rel=1e-4)
    if unit_name == "seconds":  # lme4's raw rule (theta < 1e-4) would call this singular
        assert fit.theta[2] < 1e-4
