"""Real browser, issue 16: every page passes axe-core with no serious or critical violation.

axe-core (Deque, MPL-2.0) is vendored as ``tests/e2e/vendor/axe.min.js`` (see the README
there) and injected into the running app. On each page of the menu, with every expander
opened so that the text inside is checked too, ``axe.run`` applies the WCAG 2.0 and 2.1
A and AA rules (text contrast of 4.5:1, names of controls and images, labels, ...); any
violation of impact ``serious`` or ``critical`` fails the test with the rule, the element and
axe's explanation. Pages are visited at 1400 px with content on them: sleepstudy with a
fitted linear mixed model, then the ``infections`` example with a fitted logistic GLMM, then
the ``trial_visits`` example with an MMRM fitted from the Model builder.
"""

from __future__ import annotations

import pytest

from tests.e2e import support

pytestmark = pytest.mark.browser

AXE = support.ROOT / "tests" / "e2e" / "vendor" / "axe.min.js"
#: the rule sets checked: WCAG 2.0 and 2.1, levels A and AA
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING = {"serious", "critical"}
RUN_AXE = """async tags => {
    const result = await axe.run(document, {
        runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']});
    return result.violations.map(v => ({
        id: v.id, impact: v.impact, help: v.help,
        nodes: v.nodes.map(n => ({target: n.target.join(' '), html: n.html.slice(0, 160),
                                  summary: n.failureSummary}))}));
}"""
#: open every closed expander (client side: no rerun)
OPEN_EXPANDERS = """() => {
    const closed = [...document.querySelectorAll('[data-testid="stExpander"] details')]
        .filter(d => !d.open);
    closed.forEach(d => d.querySelector('summary').click());
    return closed.length;
}"""


def blocking_violations(page) -> list[str]:
    """Serious and critical axe-core violations of the page as it is now, one line each."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    if page.evaluate(OPEN_EXPANDERS):
        page.wait_for_timeout(500)
        support.wait_idle(page)
    found = []
    for violation in page.evaluate(RUN_AXE, TAGS):
        if violation["impact"] not in BLOCKING:
            continue
        for node in violation["nodes"]:
            found.append(
                f"{violation['id']} ({violation['impact']}): {violation['help']} | "
                f"{node['target']} | {node['html']} | {' '.join(node['summary'].split())}"
            )
    return found


def check_pages(page, labels: list[str], prefix: str) -> dict[str, list[str]]:
    """Visit each page of ``labels``; return its blocking violations (pages without none)."""
    found = {}
    for label in labels:
        support.go_to(page, label)
        assert not support.exceptions_on(page), label
        violations = blocking_violations(page)
        if violations:
            support.screenshot(page, f"a11y_{prefix}_{label.lower()}")
            found[label] = violations
    return found


def _wait_for_text(page, text: str, timeout_ms: int = 180_000) -> None:
    page.wait_for_function("t => document.body.innerText.includes(t)", arg=text, timeout=timeout_ms)
    support.wait_idle(page, timeout_ms=timeout_ms)


def _example(page, name: str) -> None:
    support.go_to(page, "Data")
    page.locator('[data-testid="stSelectbox"]').first.click()
    page.keyboard.type(name)
    page.keyboard.press("Enter")
    support.wait_idle(page, timeout_ms=120_000)


def _fit(page, formula: str = "") -> None:
    support.go_to(page, "Model")
    if formula:
        page.get_by_role("textbox", name="Or type a formula").fill(formula)
    page.get_by_role("button", name="Fit model").click()
    _wait_for_text(page, "Fitted M")


def _report(found: dict[str, list[str]]) -> str:
    lines = [f"{label}: {len(items)} violation(s)" for label, items in found.items()]
    for label, items in found.items():
        lines += [f"  [{label}] {item}" for item in items[:15]]
    return "\n".join(lines)


@pytest.fixture
def wide(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1600})
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    yield page
    context.close()
    outside = [url for url in requests if not support.is_local(url)]
    assert not outside, outside


def test_every_page_passes_axe_with_a_fitted_lmm(app_url, wide):
    page = wide
    support.open_app(page, app_url)
    found = check_pages(page, ["Data", "Model"], "start")  # before any fit
    _fit(page, "Reaction ~ Days + (Days | Subject)")
    found |= {
        f"{k} (fitted)": v for k, v in check_pages(page, support.sidebar_links(page), "lmm").items()
    }
    assert not found, _report(found)


def test_glmm_and_mmrm_pages_pass_axe(app_url, wide):
    page = wide
    support.open_app(page, app_url)
    _example(page, "infections")
    _fit(page)
    result_pages = ["Model", "Trajectories", "Prediction", "Shrinkage", "Compare", "Diagnostics"]
    found = check_pages(page, result_pages, "glmm")
    _example(page, "trial_visits")
    support.go_to(page, "Trial")
    page.get_by_role("button", name="Fit the covariance structures").click()
    _wait_for_text(page, "LS-means and the treatment effect per visit")
    found |= {
        f"{k} (MMRM)": v for k, v in check_pages(page, ["Trial", "Diagnostics"], "mmrm").items()
    }
    assert not found, _report(found)
