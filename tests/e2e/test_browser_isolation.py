"""Real browser, isolation: two users at once on one server never see each other's data.

Two browser contexts (two sessions) upload different tables, each with its own unique
marker in the file name, a column name and the subject ids, and fit a model at the same
time. Each then sees its own marker, and never the other's, in the sidebar, the Data page,
the Model page, Explore and Trajectories; the fitted models of each session are its own.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from dashboard.views.layout import short_text
from tests.e2e import support

pytestmark = pytest.mark.browser


def marked_table(folder: Path, mark: str, rows_per_subject: int) -> Path:
    """Long-format CSV whose file name, outcome column and subject ids hold ``mark``."""
    lines = [f"patient,week,score_{mark}"]
    for i in range(10):
        for week in range(rows_per_subject):
            value = 50 + (7 * i) % 11 + 1.5 * week + ((i + week) % 3) * 0.9
            lines.append(f"{mark}-{i:02d},{week},{value:.1f}")
    path = folder / f"data_{mark}.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def texts_of(page) -> str:
    return page.inner_text("body")


def test_two_sessions_at_once_see_only_their_own_data(browser, app_url, tmp_path):
    marks = ["ISOA" + uuid.uuid4().hex[:10].upper(), "ISOB" + uuid.uuid4().hex[:10].upper()]
    files = [marked_table(tmp_path, marks[0], 4), marked_table(tmp_path, marks[1], 6)]
    formulas = [f"score_{m} ~ week + (1 | patient)" for m in marks]
    contexts = [browser.new_context(viewport=support.VIEWPORT) for _ in marks]
    pages = [c.new_page() for c in contexts]
    try:
        for page in pages:
            support.open_app(page, app_url)
        for page, path in zip(pages, files, strict=True):  # both uploads in flight together
            page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(path)
        for page, path in zip(pages, files, strict=True):
            page.wait_for_selector(f"text=Loaded {path.name}", timeout=60_000)
            support.wait_idle(page)
        for page in pages:
            support.go_to(page, "Model")
        for page, formula in zip(pages, formulas, strict=True):  # both fits at once
            page.get_by_role("textbox", name="Or type a formula").fill(formula)
            page.get_by_role("button", name="Fit model").click()
        for page in pages:
            page.wait_for_selector("text=Fitted M1", timeout=120_000)
            support.wait_idle(page)

        for me, page in enumerate(pages):
            mine, theirs = marks[me], marks[1 - me]
            rows = "40 rows x 3 columns" if me == 0 else "60 rows x 3 columns"
            side = page.locator('[data-testid="stSidebar"]').inner_text()
            assert files[me].name in side and rows in side, side
            assert short_text(formulas[me]) in side and theirs not in side, side  # one line
            model = texts_of(page)
            assert f"score_{mine}" in model and theirs not in model
            support.go_to(page, "Data")
            data = texts_of(page)
            assert mine in data and theirs not in data
            for label in ("Explore", "Trajectories"):  # a data page and a model page
                support.go_to(page, label)
                shown = texts_of(page)
                assert mine in shown and theirs not in shown, f"session {me}: {label}"
                assert not support.exceptions_on(page), label
    finally:
        for context in contexts:
            context.close()
