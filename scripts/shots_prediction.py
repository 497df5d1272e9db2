"""Screenshots of the Prediction page and the Model page's inference section (headless chromium).

Usage: ``python scripts/shots_prediction.py`` from the repository root. Fits sleepstudy
``Reaction ~ Days + (Days | Subject)`` and trial_small
``y ~ time * arm + (time | patient) + (1 | hospital)`` through the Model page's formula box,
runs the profile and a 50-replicate bootstrap on the Model page, then writes
``artifacts/screenshots/model_inference_<data>.png`` and ``prediction_<data>.png``.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

from scripts.shots_trajectories_shrinkage import fit, load_example  # noqa: E402
from tests.e2e import support  # noqa: E402

CASES = [
    ("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
    ("trial_small", "y ~ time * arm + (time | patient) + (1 | hospital)"),
]
TALL = {"width": 1400, "height": 3400}


def inference_on_request(page) -> None:
    """Open the profile and bootstrap expanders and run both (50 replicates)."""
    page.get_by_text("Profile confidence intervals").first.click()
    page.get_by_role("button", name="Compute profile intervals").click()
    support.wait_idle(page, timeout_ms=180_000)
    page.get_by_text("Parametric bootstrap intervals").first.click()
    box = page.get_by_role("spinbutton", name="Replicates")
    box.fill("50")
    box.press("Enter")
    support.wait_idle(page)
    page.get_by_role("button", name="Run the bootstrap").click()
    support.wait_idle(page, timeout_ms=300_000)


def main() -> None:
    """Fit, visit, screenshot."""
    with support.running_app() as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=support.CHROMIUM, args=support.CHROMIUM_ARGS)
        page = browser.new_context(viewport=TALL).new_page()
        support.open_app(page, url)
        for name, formula in CASES:
            if name != "sleepstudy":
                load_example(page, name)
            fit(page, formula)
            inference_on_request(page)
            print(f"{name} Model: exceptions {support.exceptions_on(page)}")
            print("wrote", support.screenshot(page, f"model_inference_{name}"))
            support.go_to(page, "Prediction")
            print(f"{name} Prediction: exceptions {support.exceptions_on(page)}")
            print("wrote", support.screenshot(page, f"prediction_{name}"))
        browser.close()


if __name__ == "__main__":
    main()
