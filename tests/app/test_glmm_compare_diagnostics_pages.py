"""Compare and Diagnostics with GLMMs (issue 15) and with random effects plus a covariance of
the visits (issue 14), in AppTest: fits put into the session as fit records; the numbers on
the pages checked against computations made here from the fits."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from scipy import stats

from dashboard.analysis.records import FitRecord
from dashboard.base.numbers import fmt
from dashboard.state.session import Keys
from lmm_core import datasets, fit_glmm, fit_lmm
from tests.app.conftest import figures_on, texts

INF = {
    "M1: random intercept": "infection ~ week * arm + (1 | patient)",
    "M2: uncorrelated slope": "infection ~ week * arm + (week || patient)",
    "M3: random slope": "infection ~ week * arm + (week | patient)",
}
SEIZ = {
    "M1: random intercept": "seizures ~ period * arm + offset(log(exposure)) + (1 | patient)",
    "M2: random slope": "seizures ~ period * arm + offset(log(exposure)) + (period | patient)",
}
COMBINED = "y ~ time * arm + (1 | hospital) + ar1(visit | patient)"


@cache
def glmm(dataset: str, formula: str):
    family = "binomial" if dataset == "infections" else "poisson"
    return fit_glmm(formula, datasets.load_example(dataset)[0], family=family)


@cache
def lmm(dataset: str, formula: str, reml: bool = True):
    return fit_lmm(formula, datasets.load_example(dataset)[0], reml=reml)


def record(name, formula, dataset, result, reml=False) -> FitRecord:
    return FitRecord(name, formula, reml, f"example:{dataset}", dataset, result, 0.0)


def page(app, dataset, records, path, active=None):
    app.selectbox(key=Keys.W_EXAMPLE).select(dataset).run()
    app.session_state[Keys.FITS] = records
    app.session_state[Keys.ACTIVE_FIT] = active or records[-1].name
    at = app.switch_page(path).run()
    assert not at.exception, at.exception
    assert not at.error, texts(at.error)
    return at


def frame_with(at, column):
    return next(d.value for d in at.dataframe if column in d.value.columns)


def infection_records(with_linear: bool = False):
    records = [record(n, f, "infections", glmm("infections", f)) for n, f in INF.items()]
    if with_linear:
        f = "infection ~ week * arm + (1 | patient)"
        records.append(record("M4: linear", f, "infections", lmm("infections", f), reml=True))
    return records


# --------------------------------------------------------------------------- Compare
def test_compare_glmms_table_tests_and_the_linear_model_kept_apart(app):
    records = infection_records(with_linear=True)
    at = page(app, "infections", records, "pages/compare.py", active="M1: random intercept")
    assert "cannot be compared: each kind is compared on its own" in texts(at.info)
    table = frame_with(at, "deviance")
    assert list(table.index) == list(INF)  # ordered by npar, the linear model apart
    fits = [r.result for r in records[:3]]
    npar = [len(f.fixef) + k for f, k in zip(fits, (1, 2, 3), strict=True)]
    assert list(table["npar"]) == npar == [5, 6, 7]
    loglik = np.array([f.loglik for f in fits])
    np.testing.assert_allclose(table["AIC"], -2 * loglik + 2 * np.array(npar), rtol=1e-12)
    np.testing.assert_allclose(
        table["BIC"], -2 * loglik + np.array(npar) * np.log(len(fits[0].y)), rtol=1e-12
    )
    np.testing.assert_allclose(table["deviance"], -2 * loglik, rtol=1e-12)
    assert set(table["method"]) == {"Laplace"} and set(table["converged"]) == {"yes"}
    tests = frame_with(at, "p (chi-bar-square)")
    chisq = 2 * np.diff(loglik)
    np.testing.assert_allclose(tests["Chisq"], chisq, rtol=1e-9)
    np.testing.assert_allclose(tests["p (chi-square)"], stats.chi2.sf(chisq, 1), rtol=1e-9)
    # the uncorrelated slope adds one variance: 50:50 mixture of chi2(0) and chi2(1)
    assert tests["p (chi-bar-square)"].iloc[0] == pytest.approx(0.5 * stats.chi2.sf(chisq[0], 1))
    assert np.isnan(tests["p (chi-bar-square)"].iloc[1])  # a correlation: plain chi-square
    assert list(tests["nested"]) == ["yes", "yes"]
    assert "Laplace vs quadrature" in [h.value for h in at.header]
    assert at.button(key="compare_quadrature_run")  # a single random intercept: offered
    assert "this section does not apply" in texts(at.info)  # curve and ladder sections


def test_compare_quadrature_refused_for_a_random_slope(app):
    at = page(app, "infections", infection_records(), "pages/compare.py")
    assert "Laplace vs quadrature" in [h.value for h in at.header]
    assert not [b for b in at.button if b.key == "compare_quadrature_run"]


def test_compare_poisson_glmms(app):
    records = [record(n, f, "seizures", glmm("seizures", f)) for n, f in SEIZ.items()]
    at = page(app, "seizures", records, "pages/compare.py")
    table = frame_with(at, "deviance")
    loglik = np.array([r.result.loglik for r in records])
    assert list(table["npar"]) == [5, 7]
    assert table["delta_AIC"].min() == 0
    np.testing.assert_allclose(
        table["delta_AIC"], -2 * loglik + 2 * np.array([5, 7]) - table["AIC"].min(), rtol=1e-9
    )
    tests = frame_with(at, "p (chi-bar-square)")
    chisq = 2 * (loglik[1] - loglik[0])
    assert tests["Chisq"].iloc[0] == pytest.approx(chisq, rel=1e-9)
    assert tests["p (chi-square)"].iloc[0] == pytest.approx(stats.chi2.sf(chisq, 2), rel=1e-9)


def test_compare_counts_parameters_of_a_combined_model_as_lme4(app):
    data = datasets.load_example("trial_small")[0]
    fits = {
        "M1: combined": fit_lmm(COMBINED, data),
        "M2: AR(1) visits": fit_lmm("y ~ time * arm + ar1(visit | patient)", data),
        "M3: random slope": lmm("trial_small", "y ~ time * arm + (time | patient)"),
    }
    records = [record(n, f.formula, "trial_small", f, reml=True) for n, f in fits.items()]
    at = page(app, "trial_small", records, "pages/compare.py", active="M1: combined")
    table = frame_with(at, "kind")
    assert list(table["kind"]) == ["random effects + AR(1)", "MMRM: AR(1)", "random effects"]
    # fixed effects (4) + AR(1) SD and correlation + hospital SD; + AR(1) alone; lme4's 4 + 4
    assert list(table["npar"]) == [7, 6, 8]
    loglik = np.array([f.loglik for f in fits.values()])
    np.testing.assert_allclose(table["AIC"], -2 * loglik + 2 * np.array([7, 6, 8]), rtol=1e-12)
    info = texts(at.info)
    assert "works on random-effects models" in info  # curve and ladder: the active model


# --------------------------------------------------------------------------- Diagnostics
def _binned_by_hand(y, mu, n_bins):
    """arm::binnedplot's bins: rows sorted by mu, equal sizes, mean residual and its SE."""
    order = np.argsort(mu, kind="stable")
    out = []
    for idx in np.array_split(order, n_bins):
        se = np.sqrt(np.sum(mu[idx] * (1 - mu[idx]))) / len(idx)
        out.append((mu[idx].mean(), (y[idx] - mu[idx]).mean(), se))
    return np.array(out)


def test_diagnostics_of_a_binary_glmm(app):
    records = infection_records()
    at = page(app, "infections", records, "pages/diagnostics.py", active="M3: random slope")
    res = records[2].result
    binned, qq, qres_fitted, ranef = figures_on(at)
    y, mu = np.asarray(res.y, float), np.asarray(res.fitted, float)
    expect = _binned_by_hand(y, mu, int(np.sqrt(len(y))))
    shown = np.concatenate([np.c_[t["x"], t["y"]] for t in binned["data"][1:]])
    shown = shown[np.argsort(shown[:, 0])]
    np.testing.assert_allclose(shown, expect[:, :2], rtol=1e-10, atol=1e-14)
    band = binned["data"][0]["y"]
    np.testing.assert_allclose(band[: len(expect)], 2 * expect[:, 2], rtol=1e-10)
    outside = int(np.sum(np.abs(expect[:, 1]) > 2 * expect[:, 2]))
    assert f"{outside} of {len(expect)} bins" in texts(at.markdown)
    # quantile residuals of a 0/1 outcome: y = 1 gives r >= Phi^-1(1 - mu), y = 0 below
    first = np.sort(qres_fitted["data"][0]["y"])
    np.testing.assert_allclose(np.sort(qq["data"][0]["y"])[[0, -1]], first[[0, -1]])
    r = np.asarray(qres_fitted["data"][0]["y"], float)
    low = stats.norm.ppf(1 - mu)
    assert np.all(r[y == 1] >= low[y == 1] - 1e-9) and np.all(r[y == 0] <= low[y == 0] + 1e-9)
    assert abs(r.mean()) < 0.1 and abs(r.std() - 1) < 0.1
    assert not [m for m in at.metric if m.label == "Dispersion ratio"]  # 0/1: none
    modes = np.sort(res.ranef["patient"]["week"].to_numpy())
    np.testing.assert_allclose(ranef["data"][2]["y"], modes)
    # "Draw again": new draws, the same for the same seed
    assert at.number_input(key=Keys.W_DIAG_QRES_SEED).value == 1
    at = at.button(key=Keys.W_DIAG_QRES_AGAIN).click().run()
    assert at.number_input(key=Keys.W_DIAG_QRES_SEED).value == 2
    again = np.asarray(figures_on(at)[2]["data"][0]["y"], float)
    assert not np.allclose(again, r)
    at = at.number_input(key=Keys.W_DIAG_QRES_SEED).set_value(1).run()
    np.testing.assert_allclose(figures_on(at)[2]["data"][0]["y"], r)


def test_diagnostics_of_a_count_glmm_with_overdispersion_check(app):
    records = [record(n, f, "seizures", glmm("seizures", f)) for n, f in SEIZ.items()]
    at = page(app, "seizures", records, "pages/diagnostics.py")
    res = records[1].result
    y, mu = np.asarray(res.y, float), np.asarray(res.fitted, float)
    pearson = np.sum((y - mu) ** 2 / mu)
    df = len(y) - (len(res.fixef) + 3)
    ratio = next(m for m in at.metric if m.label == "Dispersion ratio")
    assert ratio.value == fmt(pearson / df, 3)
    p = stats.chi2.sf(pearson, df)
    assert f"ratio {fmt(pearson / df, 3)}" in texts(at.markdown)
    ratio = pearson / df
    word = "Overdispersion:" if ratio > 1.2 and p < 0.05 else "No overdispersion"
    word = "vary less around the fitted means" if ratio < 0.8 else word
    assert word in texts(at.markdown)
    figures = figures_on(at)
    assert len(figures) == 3  # no binned residuals for counts: QQ, vs fitted, random effects
    assert figures[1]["layout"]["xaxis"]["type"] == "log"


def test_diagnostics_of_random_effects_with_a_covariance_of_the_visits(app):
    data = datasets.load_example("trial_small")[0]
    res = fit_lmm(COMBINED, data)
    at = page(app, "trial_small", [record("M1: combined", COMBINED, "trial_small", res, True)],
              "pages/diagnostics.py")  # fmt: skip
    assert "not available yet" not in texts(at.info)
    resid_fitted, qq, ranef, corr = figures_on(at)
    assert "QQ of normalized residuals" in qq["layout"]["title"]["text"]
    # the hospital intercepts' QQ panel: their conditional modes
    np.testing.assert_allclose(
        ranef["data"][0]["y"], np.sort(res.ranef["hospital"]["(Intercept)"]), rtol=1e-10
    )
    # the model's correlation of two visits: (s_h^2 + s^2 rho^|j-k|) / (s_h^2 + s^2)
    vc = res.varcorr_table()
    s_h2 = float(vc.loc[vc["group"] == "hospital", "vcov"].iloc[0])
    sigma = res.residual_covariance().to_numpy(float)
    model = np.asarray(corr["data"][0]["z"], float)
    np.testing.assert_allclose(model, (s_h2 + sigma) / (s_h2 + sigma[0, 0]), rtol=1e-9)
    assert "normalized residuals beyond 3" in texts(at.markdown)
    assert "L_h^-1 r_h" in texts(at.caption)
