"""Real browser: names that need quoting, one fit per model, the builder at 1024 px (issue 11
items 3, 5, 7 and 8).

A table with "Patient ID", "Visit day", "SBP (mmHg)", Sex and Treatment is uploaded. The
builder starts from main effects (no interaction, no `*`) and quotes the names; the model is
fitted, then the same model is requested again by the button and by Ctrl+Enter in the formula
box: it is selected, not fitted twice. The random-effects ladder fits every rung with these
names and its header says so. Screenshots of the Model and Compare pages at 1400 and 1024 px
wide: ``artifacts/screenshots/quoted_*.png``; a long formula wraps instead of running off
sideways.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.e2e import support

pytestmark = pytest.mark.browser

TYPED = "Or type a formula"
BUILT = "`SBP (mmHg)` ~ `Visit day` + Sex + Treatment + (`Visit day` | `Patient ID`)"


def _table(seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(40):
        n = int(rng.integers(3, 9))
        days = np.sort(np.r_[0, rng.choice(np.arange(1, 730), n - 1, replace=False)])
        sex, arm = "MF"[int(rng.integers(2))], "AB"[p % 2]
        base, slope = 135 + rng.normal(0, 10), (-3 if arm == "B" else -0.5) + rng.normal(0, 2)
        for d in days:
            sbp = round(base + slope * d / 365.25 + rng.normal(0, 6), 1)
            rows.append((f"P{p + 1:03d}", int(d), sbp, sex, arm))
    return pd.DataFrame(rows, columns=["Patient ID", "Visit day", "SBP (mmHg)", "Sex",
                                       "Treatment"])  # fmt: skip


def _fitted_models(page) -> list[str]:
    """The model names listed in the sidebar's 'Fitted models' radio."""
    radio = page.locator(
        '[data-testid="stSidebar"] [data-testid="stRadio"] [role="radiogroup"] label'
    )
    return [radio.nth(i).inner_text().splitlines()[0] for i in range(radio.count())]


@pytest.mark.parametrize("width", [1024, 1400])
def test_quoted_names_one_fit_per_model_and_the_ladder(browser, app_url, tmp_path, width):
    context = browser.new_context(viewport={"width": width, "height": 2600})
    page = context.new_page()
    try:
        support.open_app(page, app_url)
        path = tmp_path / "bp.csv"
        _table().to_csv(path, index=False)
        page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(path)
        support.wait_for_text(page, "Loaded bp.csv")

        support.go_to(page, "Model")
        slopes = page.locator('[data-testid="stMultiSelect"]', has_text="Random slopes per")
        slopes.locator("input").click()
        page.keyboard.type("Visit day")
        page.keyboard.press("Enter")
        page.keyboard.press("Escape")
        support.wait_idle(page)
        built = page.locator('[data-testid="stCode"]').first.inner_text().strip()
        assert built == BUILT  # main effects only, names quoted, one notation
        page.get_by_role("button", name="Fit model").click()
        support.wait_for_text(page, "Summary of M1")
        assert _fitted_models(page) == ["M1: random slope + Sex + Treatment"]
        body = page.inner_text("body")
        assert f"Formula {BUILT}, estimated by REML" in body  # one intact code span

        # the same model again: by the button, then typed differently + Ctrl+Enter
        page.get_by_role("button", name="Fit model").click()
        support.wait_for_text(page, "already fitted by REML as M1")
        box = page.get_by_role("textbox", name=TYPED)
        box.fill("`SBP (mmHg)`~Treatment+Sex+`Visit day`+(1+`Visit day`|`Patient ID`)")
        box.press("Control+Enter")
        support.wait_idle(page)
        support.wait_for_text(page, "already fitted by REML as M1")
        assert _fitted_models(page) == ["M1: random slope + Sex + Treatment"]
        # another model gets a name that says what differs
        box.fill("`SBP (mmHg)` ~ `Visit day` + (1 | `Patient ID`)")
        page.get_by_role("button", name="Fit model").click()
        support.wait_for_text(page, "Summary of M2")
        assert _fitted_models(page) == [
            "M1: random slope + Sex + Treatment",
            "M2: random intercept",
        ]
        # a long formula wraps in the box and in the builder's code block: nothing sideways
        box.fill(" + ".join([BUILT] + [f"I(`Visit day`^{k})" for k in range(2, 12)]))
        assert box.evaluate("e => e.scrollWidth <= e.clientWidth + 1")
        code = page.locator('[data-testid="stCode"] pre').first
        assert code.evaluate("e => e.scrollWidth <= e.clientWidth + 1")
        assert not support.exceptions_on(page)
        support.screenshot(page, f"quoted_model_{width}")

        support.go_to(page, "Compare")
        page.get_by_role("button", name="Fit the ladder").click()
        support.wait_for_text(page, "Ladder fitted in")
        body = page.inner_text("body")
        assert "Unknown function" not in body and "could not be fitted" not in body
        assert "Step 2 vs 1" in body and "Step 3 vs 2" in body
        assert not support.exceptions_on(page)
        support.screenshot(page, f"quoted_compare_{width}")
    finally:
        context.close()
