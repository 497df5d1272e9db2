"""The guided tour on a yes/no or count outcome: GLMMs, the naive GLM, link-scale sentences."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from dashboard.analysis import tour_texts as texts
from dashboard.analysis.glmm_summary import median_ratio
from dashboard.analysis.tour import INTERCEPT, SLOPE, TourColumns, naive_fit
from lmm_core import datasets, fit_glmm
from lmm_core.errors import ModelError

BINARY = TourColumns("patient", "infection", "week", "binomial")
COUNTS = TourColumns("patient", "seizures", "period", "poisson", "exposure")


@pytest.fixture(scope="module")
def infections():
    data, _ = datasets.load_example("infections")
    f = BINARY.formulas()
    return data, fit_glmm(f[INTERCEPT], data, "binomial"), fit_glmm(f[SLOPE], data, "binomial")


def test_glmm_columns_carry_family_link_and_offset():
    assert BINARY.is_glmm and BINARY.link == "logit"
    assert COUNTS.link == "log" and not TourColumns("s", "y", "t").is_glmm
    assert COUNTS.formulas()[SLOPE] == (
        "seizures ~ period + offset(log(exposure)) + (period | patient)"
    )
    odd = TourColumns("patient id", "n events", None, "poisson", "time at risk")
    assert odd.formulas() == {
        INTERCEPT: "`n events` ~ 1 + offset(log(`time at risk`)) + (1 | `patient id`)"
    }


def test_naive_fit_is_the_glm_of_the_same_family(infections):
    _, ri, _ = infections
    table = naive_fit(ri)
    # R: summary(glm(infection ~ week, binomial, infections))$coef
    assert table.loc["(Intercept)", "estimate"] == pytest.approx(-0.55117803, rel=1e-5)
    assert table.loc["week", "estimate"] == pytest.approx(-0.01215124, rel=1e-5)
    assert table.loc["week", "std_error"] == pytest.approx(0.02228746, rel=1e-5)
    assert table.loc["(Intercept)", "std_error"] == pytest.approx(0.08893055, rel=1e-5)


def test_naive_fit_of_counts_keeps_the_offset():
    data, _ = datasets.load_example("seizures")
    fit = fit_glmm(COUNTS.formulas()[INTERCEPT], data, "poisson")
    table = naive_fit(fit)
    # R: glm(seizures ~ period + offset(log(exposure)), poisson, seizures)
    assert table.loc["period", "estimate"] == pytest.approx(0.02687654, rel=1e-5)
    assert table.loc["period", "std_error"] == pytest.approx(0.008312216, rel=1e-5)
    assert table.loc["(Intercept)", "estimate"] == pytest.approx(-1.16944213, rel=1e-5)


def test_separated_outcome_is_a_clear_error(infections):
    _, ri, _ = infections
    week = ri.design.X[:, 1]
    separated = SimpleNamespace(  # a yes/no outcome that week splits perfectly
        design=ri.design,
        x_names=ri.x_names,
        y=(week >= 4).astype(float),
        data=SimpleNamespace(weights=np.ones(len(week)), offset=np.zeros(len(week))),
        family=ri.family,
    )
    with pytest.raises(ModelError, match="no finite estimate"):
        naive_fit(separated)


def test_glmm_sentences_speak_of_log_odds(infections):
    data, ri, rs = infections
    glm = naive_fit(ri)
    spaghetti = " ".join(texts.spaghetti_sentences(data, BINARY))
    share = data["infection"].mean()
    assert f"**{round(100 * share)}%** of the measurements are 1" in spaghetti
    assert "The share of yes at each week, over the **240 patients**" in spaghetti
    assert "logistic mixed models (binomial, logit link)" in spaghetti
    ols = " ".join(texts.ols_sentences(glm, rs, "random-slope model", BINARY, 240))
    assert "ordinary logistic regression" in ols and "− 0.0122 × week" in ols
    assert "The GLM standard error of the week slope on the log-odds scale" in ols
    ratio = float(rs.fixef_table().loc["week", "std_error"]) / float(glm.loc["week", "std_error"])
    assert f"GLM is **{ratio:.3g} times too confident**" in ols
    intercept = " ".join(texts.intercept_sentences(ri, BINARY, 0.0223))
    tau = texts.group_sd(ri, "patient", "(Intercept)")
    icc = tau**2 / (tau**2 + np.pi**2 / 3)
    assert f"{median_ratio(tau):.3g} times the lower's (median odds ratio)" in intercept
    assert f"**{round(100 * icc)}%** of the variance of the latent log-odds" in intercept
    assert "SD" in intercept and "residual" not in intercept
    slope = " ".join(texts.slope_sentences(rs, BINARY, 0.027))
    beta = float(rs.fixef["week"])
    assert f"(odds ratio {np.exp(beta):.3g} per unit of week)" in slope
    report = " ".join(texts.report_sentences(rs, BINARY, "chosen by AIC.", 240))
    assert "Binomial GLMM (logit link)" in report and "no residual SD" in report
    assert "REML" not in report


def test_glmm_forecast_step_says_it_has_no_glmm_version():
    table = pd.DataFrame(
        {"week": [0.0, 7.0], "group": "all", "typical patient": [0.32, 0.27],
         "new patient": [0.37, 0.36]}
    )  # fmt: skip
    text = " ".join(texts.glmm_forecast_sentences(table, BINARY))
    assert "no GLMM version" in text
    assert "**32%** at week = 0 to **27%** at 7" in text and "from 37% to 36%" in text
    counts = pd.DataFrame(
        {"period": [0.0, 5.0], "group": "all", "typical patient": [0.254, 0.239],
         "new patient": [0.314, 0.355]}
    )  # fmt: skip
    text = " ".join(texts.glmm_forecast_sentences(counts, COUNTS))
    assert "rate per unit of exposure of **0.254**" in text


def test_outcome_values_code_a_text_outcome_as_the_fit_does():
    coded = texts.outcome_values(pd.Series(["no", "yes", "no", "yes", "yes"]))
    assert coded.tolist() == [0.0, 1.0, 0.0, 1.0, 1.0]
    assert texts.outcome_values(pd.Series([True, False])).tolist() == [1.0, 0.0]
    assert texts.outcome_values(pd.Series([3, 0, 5])).tolist() == [3, 0, 5]
