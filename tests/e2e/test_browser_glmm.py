"""Real browser, issue 15: GLMMs from the Model page and their result pages.

The shipped ``infections`` example (a 0/1 outcome) is chosen on the Data page: the Model
page proposes a logistic model by itself, the fit shows odds ratios, Trajectories draws the
typical patient's curve and the population-averaged curve (two distinct curves on the
probability scale), Shrinkage and Prediction show the GLMM's words. Then the same data with
messy column names ("Patient n°", "Infection (yes/no)", "Semaine [w]") and the outcome written
as "yes"/"no" are uploaded: the Data page notes a yes/no outcome for a logistic model (no
error) and the Model page fits it. Last the ``seizures`` example: a Poisson model whose
exposure column becomes ``offset(log(exposure))`` by itself, with rates per unit of
exposure on Trajectories. No exception at 1400 and 1024 pixels wide, no request leaving
127.0.0.1. Screenshots in ``artifacts/screenshots/glmm_*.png``.
"""

from __future__ import annotations

import pytest

from lmm_core import datasets
from tests.e2e import support

pytestmark = pytest.mark.browser

LOGISTIC = "yes/no: logistic (binomial)"
TYPED = "infection ~ week * arm + age + (1 | patient)"
NAMES = {"patient": "Patient n°", "infection": "Infection (yes/no)", "week": "Semaine [w]"}
#: the traces of the Trajectories chart (plotly keeps them on its graph div)
TRACES = """() => [...document.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot')]
    .flatMap(g => g._fullData.map(t => ({name: t.name || '', y: Array.from(t.y || [])})))"""


def _choose(page, control: str, option: str) -> None:
    """Pick ``option`` in the selectbox whose label is ``control``."""
    page.get_by_role("combobox", name=control, exact=True).click()
    page.get_by_role("option", name=option, exact=True).click()
    support.wait_idle(page)


def _value(page, control: str) -> str:
    """The value shown by the selectbox whose label is ``control``."""
    return page.get_by_role("combobox", name=control, exact=True).input_value()


def _fit(page, typed: str = "") -> str:
    """Fit the builder's model (or ``typed``) on the Model page; return the page's text."""
    if typed:
        page.get_by_role("textbox", name="Or type a formula").fill(typed)
    page.get_by_role("button", name="Fit model").click()
    support.wait_for_text(page, "The fit converged.")
    assert not support.exceptions_on(page)
    return page.inner_text("body")


def _curves(page) -> dict[str, list[float]]:
    """The Trajectories chart's typical-patient and population-average curves by name."""
    traces = page.evaluate(TRACES)
    return {
        t["name"]: [float(v) for v in t["y"]]
        for t in traces
        if t["name"].startswith(("typical patient (", "population average ("))
    }


def _page(page, label: str, text: str, shot: str) -> str:
    support.go_to(page, label)
    support.wait_for_text(page, text)
    assert not support.exceptions_on(page)
    support.screenshot(page, shot)
    return page.inner_text("body")


def _logistic_example(page, width: int) -> None:
    support.open_example(page, "infections")
    support.go_to(page, "Model")
    assert _value(page, "Kind of outcome") == LOGISTIC  # the default for a 0/1 outcome
    body = _fit(page, TYPED)
    assert "logistic (binomial) mixed model" in body and "median odds ratio" in body
    assert "Odds ratios (exp of the estimates)" in body  # the tables are canvases
    support.screenshot(page, f"glmm_model_{width}")

    body = _page(page, "Trajectories", "population average", f"glmm_trajectories_{width}")
    assert "probability of infection" in body
    curves = _curves(page)
    for arm in ("placebo", "vaccine"):
        typical = curves[f"typical patient ({arm})"]
        averaged = curves[f"population average ({arm})"]
        assert all(0 <= y <= 1 for y in typical + averaged)  # the probability scale
        assert max(abs(a - b) for a, b in zip(typical, averaged, strict=True)) > 0.02
    assert "Here the two curves differ most at week" in body
    legend = page.eval_on_selector_all(".legendtext", "els => els.map(e => e.textContent)")
    assert {"typical patient", "population average"} <= set(legend)

    body = _page(page, "Shrinkage", "Left out of the own-data fits", f"glmm_shrinkage_{width}")
    assert "logit (log-odds) scale" in body and "conditional mode" in body
    body = _page(page, "Prediction", "Forecast for a typical patient", f"glmm_prediction_{width}")
    assert "probability (%) of infection = 1 over week per arm" in body
    assert "closer to 50% than the typical patient's" in body


def _messy_upload(page, width: int, tmp_path) -> None:
    data = datasets.load_example("infections")[0].rename(columns=NAMES)
    data["Infection (yes/no)"] = data["Infection (yes/no)"].map({0: "no", 1: "yes"})
    path = tmp_path / "infections messy.csv"
    data.to_csv(path, index=False)
    support.go_to(page, "Data")
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(path)
    support.wait_for_text(page, "Loaded")
    _choose(page, "Time", "Semaine [w]")
    _choose(page, "Outcome", "Infection (yes/no)")
    support.wait_for_text(page, "two categories ('no' and 'yes')")
    body = page.inner_text("body")
    assert "contains text" not in body and "linear mixed model needs numbers" in body
    support.screenshot(page, f"glmm_messy_data_{width}")
    support.go_to(page, "Model")
    _choose(page, "Outcome (what is measured)", "Infection (yes/no)")
    assert _value(page, "Kind of outcome") == LOGISTIC
    built = page.locator('[data-testid="stCode"]').first.inner_text().strip()
    assert built.startswith("`Infection (yes/no)` ~ `Semaine [w]`"), built
    assert "(1 | `Patient n°`)" in built
    _fit(page)
    support.screenshot(page, f"glmm_messy_model_{width}")
    body = _page(page, "Trajectories", "population average", f"glmm_messy_trajectories_{width}")
    assert "probability of Infection (yes/no)" in body


def _poisson_example(page, width: int) -> None:
    support.open_example(page, "seizures")
    support.go_to(page, "Model")
    assert _value(page, "Kind of outcome") == "counts: Poisson"
    assert _value(page, "Exposure (time at risk), optional") == "exposure"  # by its name
    built = page.locator('[data-testid="stCode"]').first.inner_text().strip()
    assert "offset(log(exposure))" in built and "+ exposure +" not in built, built
    body = _fit(page)
    assert "Poisson mixed model" in body and "median rate ratio" in body
    support.screenshot(page, f"glmm_poisson_model_{width}")
    body = _page(page, "Trajectories", "population average", f"glmm_poisson_trajectories_{width}")
    assert "rate per unit of exposure of seizures" in body
    assert "lies above the typical patient's curve" in body
    curves = _curves(page)
    for arm in ("drug", "placebo"):
        typical = curves[f"typical patient ({arm})"]
        averaged = curves[f"population average ({arm})"]
        assert all(a > t for a, t in zip(averaged, typical, strict=True))
    _page(page, "Prediction", "Forecast for a typical patient", f"glmm_poisson_prediction_{width}")


@pytest.mark.parametrize("width", [1400, 1024])
def test_glmms_from_the_model_page_on_every_result_page(browser, app_url, tmp_path, width):
    context = browser.new_context(viewport={"width": width, "height": 2400})
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    try:
        support.open_app(page, app_url)
        _logistic_example(page, width)
        _messy_upload(page, width, tmp_path)
        _poisson_example(page, width)
        outside = [url for url in requests if not support.is_local(url)]
        assert not outside, outside
    finally:
        context.close()
