"""Screenshots and render timings of the Trajectories and Shrinkage pages (headless chromium).

Usage: ``python scripts/shots_trajectories_shrinkage.py`` from the repository root. Fits
sleepstudy ``Reaction ~ Days + (Days | Subject)`` and trial_small
``y ~ time * arm + (time | patient) + (1 | hospital)`` through the Model page's formula box
and screenshots both pages for each (``artifacts/screenshots/trajectories_<data>.png``,
``shrinkage_<data>.png``); then fits trial_large ``y ~ time * arm + (time | patient)`` and
prints how long each page takes to render (sidebar click until the script is idle and every
chart is drawn).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

from tests.e2e import support  # noqa: E402

CASES = [
    ("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
    ("trial_small", "y ~ time * arm + (time | patient) + (1 | hospital)"),
    ("trial_large", "y ~ time * arm + (time | patient)"),
]
PAGES = ("Trajectories", "Shrinkage")
VIEWPORT = {"width": 1400, "height": 2600}
TALL = {"width": 1400, "height": 3600}  # the Shrinkage page is long


def load_example(page, name: str) -> None:
    """Choose an example dataset on the Data page."""
    support.go_to(page, "Data")
    page.get_by_role("combobox", name="Example dataset").first.click()
    page.get_by_role("option", name=name).first.click()
    support.wait_idle(page, timeout_ms=120_000)


def fit(page, formula: str) -> None:
    """Type ``formula`` into the Model page's box and press Fit."""
    support.go_to(page, "Model")
    box = page.get_by_role("textbox", name="Or type a formula")
    box.fill(formula)
    box.press("Enter")
    page.get_by_role("button", name="Fit model").click()
    support.wait_idle(page, timeout_ms=180_000)


def timed_visit(page, label: str) -> float:
    """Seconds from the sidebar click until the page is drawn."""
    start = time.perf_counter()
    support.go_to(page, label)
    return time.perf_counter() - start - 0.6  # wait_idle sleeps 0.3 s twice


def main() -> None:
    """Fit, visit, screenshot and time."""
    with support.running_app() as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=support.CHROMIUM, args=support.CHROMIUM_ARGS)
        page = browser.new_context(viewport=VIEWPORT).new_page()
        support.open_app(page, url)
        for name, formula in CASES:
            if name != "sleepstudy":
                load_example(page, name)
            fit(page, formula)
            for label in PAGES:
                page.set_viewport_size(TALL if label == "Shrinkage" else VIEWPORT)
                support.go_to(page, "Model")
                seconds = timed_visit(page, label)
                print(f"{name} {label}: {seconds:.2f} s; exceptions: {support.exceptions_on(page)}")
                print("wrote", support.screenshot(page, f"{label.lower()}_{name}"))
        browser.close()


if __name__ == "__main__":
    main()
