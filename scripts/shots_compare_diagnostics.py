"""Screenshots and render timings of the Compare and Diagnostics pages (headless chromium).

Usage: ``python scripts/shots_compare_diagnostics.py`` from the repository root. Fits three
sleepstudy models through the Model page's formula box, screenshots Compare and Diagnostics
(``artifacts/screenshots/compare.png``, ``diagnostics.png``), then loads trial_large, fits
``y ~ time * arm + (time | patient)`` and its random-intercept version, and prints how long
each page takes to render (click on the sidebar link until the script is idle and every chart
is drawn); screenshots ``compare_large.png`` and ``diagnostics_large.png``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

from tests.e2e import support  # noqa: E402

SLEEP = [
    "Reaction ~ Days + (1 | Subject)",
    "Reaction ~ Days + (Days || Subject)",
    "Reaction ~ Days + (Days | Subject)",
]
LARGE = ["y ~ time * arm + (1 | patient)", "y ~ time * arm + (time | patient)"]
TYPED = "Or type a formula"


def fit(page, formula: str) -> None:
    """Type ``formula`` into the Model page's box and press Fit."""
    support.go_to(page, "Model")
    box = page.get_by_role("textbox", name=TYPED)
    box.fill(formula)
    box.press("Enter")  # inside a form, Enter submits it: the Fit button's action
    support.wait_idle(page, timeout_ms=120_000)


def timed_visit(page, label: str) -> float:
    """Seconds from the sidebar click until the page is drawn."""
    start = time.perf_counter()
    support.go_to(page, label)
    return time.perf_counter() - start - 0.6  # wait_idle sleeps 0.3 s twice


def main(sleep: bool = True) -> None:
    """Fit, visit, screenshot and time (``--large-only``: skip the sleepstudy part)."""
    with support.running_app() as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=support.CHROMIUM, args=support.CHROMIUM_ARGS)
        page = browser.new_context(viewport=support.VIEWPORT).new_page()
        support.open_app(page, url)
        for formula in SLEEP if sleep else []:
            fit(page, formula)
        for label in ("Compare", "Diagnostics") if sleep else []:
            support.go_to(page, label)
            print(label, "exceptions:", support.exceptions_on(page))
            print("wrote", support.screenshot(page, label.lower()))
        support.go_to(page, "Data")
        page.locator('[data-testid="stSelectbox"]').first.click()
        page.keyboard.type("trial_large")
        page.keyboard.press("Enter")
        support.wait_idle(page, timeout_ms=120_000)
        for formula in LARGE:
            fit(page, formula)
        for label in ("Compare", "Diagnostics", "Compare", "Diagnostics"):
            support.go_to(page, "Data")
            seconds = timed_visit(page, label)
            print(f"trial_large {label}: {seconds:.2f} s")
            print(label, "exceptions:", support.exceptions_on(page))
        for label in ("Compare", "Diagnostics"):
            support.go_to(page, label)
            print("wrote", support.screenshot(page, f"{label.lower()}_large"))
        browser.close()


if __name__ == "__main__":
    main(sleep="--large-only" not in sys.argv)
