"""Real browser: the teaching and sharing views of issue 6.

On trial_small (hospitals > patients > visits) after a fit of the correlated random slope:
the Compare page's random-effects ladder (one click, four rungs, a verdict), the Diagnostics
page's implied vs observed correlation, the Teach page's "Repeat" run, the Glossary search
and the Export page's code and HTML report download (the report is parsed: its tables are
there, nothing in it points outside the file). Screenshots: ``artifacts/screenshots/teach_*``.
"""

from __future__ import annotations

import re

import pytest

from tests.dashboard.test_report import _Refs
from tests.e2e import support
from tests.e2e.test_browser_models import choose_example, fit_typed

pytestmark = pytest.mark.browser

FORMULA = "y ~ time * arm + (time | patient)"


def _clean(page, name: str) -> str:
    assert not support.exceptions_on(page), name
    support.screenshot(page, f"teach_{name}")
    return page.inner_text("body")


def test_ladder_correlation_teach_glossary_export(app_url, tab):
    page = tab.page
    support.open_app(page, app_url)
    choose_example(page, "trial_small")
    fit_typed(page, FORMULA)
    assert "Fitted M1" in page.inner_text("body")

    support.go_to(page, "Compare")
    page.get_by_role("button", name="Fit the ladder").click()
    # a job of the runner: a long ladder shows its progress first, then its outcome
    page.wait_for_selector("text=Ladder fitted in", timeout=support.WAIT_MS)
    support.wait_idle(page, timeout_ms=support.WAIT_MS)
    body = _clean(page, "compare_ladder")
    for rung in ("(1 | patient)", "(time || patient)", "(time | patient)", "(1 | hospital)"):
        assert rung in body, rung
    assert "AIC" in body and "BIC" in body

    support.go_to(page, "Diagnostics")
    body = _clean(page, "diagnostics_correlation")
    assert "Correlation between visits: model vs data" in body
    assert page.locator('[data-testid="stPlotlyChart"]').count() >= 4

    support.go_to(page, "Teach")
    button = page.get_by_role("button", name=re.compile(r"^Repeat \d+ times$"))
    button.click()
    page.wait_for_selector("text=Coverage, mixed", timeout=support.WAIT_MS)  # a job too
    support.wait_idle(page, timeout_ms=support.WAIT_MS)
    body = _clean(page, "teach")
    assert "coverage" in body.lower() and "singular" in body.lower()

    support.go_to(page, "Glossary")
    page.get_by_role("textbox", name="Search the glossary").fill("shrinkage")
    page.keyboard.press("Enter")
    support.wait_idle(page)
    body = _clean(page, "glossary")
    assert "Shrinkage" in body

    support.go_to(page, "Export")
    body = _clean(page, "export")
    assert "from lmm_core import fit_lmm" in body
    page.get_by_role("tab", name="R", exact=True).click()
    page.wait_for_selector("text=library(lmerTest)", timeout=support.WAIT_MS)
    page.get_by_role("tab", name="SAS", exact=True).click()
    page.wait_for_selector("text=PROC MIXED", timeout=support.WAIT_MS)
    with page.expect_download(timeout=support.WAIT_MS) as info:
        page.get_by_role("button", name="HTML report").click()
    html = open(info.value.path(), encoding="utf-8").read()
    assert FORMULA in html and "<table" in html
    refs = _Refs()  # src/href of the report's tags (plotly.js's own text mentions URLs)
    refs.feed(html)
    assert not [r for r in refs.refs if r.lower().startswith(("http:", "https:", "//"))]
    assert "default-src 'none'" in html
    outside = [url for url in tab.requests if not support.is_local(url)]
    assert not outside, outside
