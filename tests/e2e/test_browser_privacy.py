"""Real browser, privacy: a session that uploads a CSV, fits a model and visits every page.

* Every request of the session (HTTP and websocket) goes to 127.0.0.1.
* The app never writes the uploaded data to disk: the server runs from a copy of the app
  folder (so that files other people edit meanwhile in the repository do not count) with
  its own ``TMPDIR``. The file lists (size, mtime) of that app folder, the repository
  (without ``artifacts/``, ``.git`` and caches), the ``TMPDIR`` and Streamlit's
  ``~/.streamlit`` folder are taken before and after the session. No new or modified file
  may contain the upload's marker (a unique string in its file name, a column name and the
  values), the app folder must have no new file at all (bytecode caches aside), and the
  server's log holds no marker either.

``test_browser_models.py`` checks the requests of a builder session on an example dataset;
this one adds the upload (the user's own data) and the disk.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path

import pytest

from tests.e2e import support

pytestmark = pytest.mark.browser

SKIP_DIRS = {"artifacts", ".pytest_cache", "__pycache__", ".git", ".ruff_cache", ".mypy_cache"}
MAX_READ = 64 * 2**20  # larger files are not searched (none is expected to change)
APP_PARTS = ["app.py", "pages", "dashboard", "lmm_core", "data", ".streamlit"]


def copy_app(folder: Path) -> Path:
    """A copy of everything ``streamlit run app.py`` reads, in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for part in APP_PARTS:
        src = support.ROOT / part
        if src.is_dir():
            shutil.copytree(src, folder / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, folder / part)
    return folder


def snapshot(root: Path, skip: set[str] = frozenset()) -> dict[str, tuple[int, int]]:
    """``{path: (size, mtime_ns)}`` of every file under ``root`` (skipping folders named in
    ``skip``); empty when ``root`` does not exist."""
    found: dict[str, tuple[int, int]] = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in skip]
        for name in files:
            path = os.path.join(folder, name)
            try:
                st = os.stat(path, follow_symlinks=False)
            except OSError:  # removed meanwhile
                continue
            found[path] = (st.st_size, st.st_mtime_ns)
    return found


def changed(before: dict, after: dict) -> tuple[list[str], list[str]]:
    """New files and modified files (size or mtime) between two snapshots."""
    new = sorted(set(after) - set(before))
    modified = sorted(p for p in set(after) & set(before) if after[p] != before[p])
    return new, modified


def files_holding(paths: list[str], needles: list[bytes]) -> list[str]:
    """The files among ``paths`` whose bytes contain any of ``needles``."""
    hits = []
    for path in paths:
        try:
            if os.path.getsize(path) > MAX_READ:
                continue
            data = Path(path).read_bytes()
        except OSError:
            continue
        if any(n in data for n in needles):
            hits.append(path)
    return hits


def marked_csv(folder: Path, mark: str) -> Path:
    """A small long-format table whose file name, one column name and values hold ``mark``."""
    lines = [f"patient,week,sbp,note_{mark}"]
    for i in range(12):
        for week in range(5):
            sbp = 120 + 3 * i % 7 + 0.8 * week + (i * week % 5) * 0.6
            lines.append(f"{mark}-P{i:02d},{week},{sbp:.1f},{mark} visit {week}")
    path = folder / f"privacy_{mark}.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_upload_fit_every_page_stays_local_and_off_disk(browser, tmp_path):
    mark = "ZQX" + uuid.uuid4().hex[:12].upper()
    needles = [mark.encode(), mark.encode("utf-16-le"), mark.lower().encode()]
    upload = marked_csv(tmp_path, mark)
    server_tmp = tmp_path / "server_tmp"
    server_tmp.mkdir()
    app_dir = copy_app(tmp_path / "app")
    home_streamlit = Path.home() / ".streamlit"
    roots = {
        "app": (app_dir, {"__pycache__"}),
        "repo": (support.ROOT, SKIP_DIRS),
        "tmpdir": (server_tmp, set()),
        "streamlit": (home_streamlit, set()),
    }

    ports: list[int] = []
    before = {key: snapshot(root, skip) for key, (root, skip) in roots.items()}
    with support.running_app(env={"TMPDIR": str(server_tmp)}, cwd=app_dir) as url:
        ports.append(int(url.rsplit(":", 1)[1]))
        context = browser.new_context(viewport=support.VIEWPORT)
        page = context.new_page()
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        page.on("websocket", lambda ws: requests.append(ws.url))
        support.open_app(page, url)
        page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(upload)
        page.wait_for_selector(f"text=Loaded {upload.name}", timeout=60_000)
        support.wait_idle(page)
        sidebar = page.locator('[data-testid="stSidebar"]').inner_text()
        assert upload.name in sidebar and "60 rows x 4 columns" in sidebar, sidebar
        support.go_to(page, "Model")
        page.get_by_role("textbox", name="Or type a formula").fill("sbp ~ week + (1 | patient)")
        page.get_by_role("button", name="Fit model").click()
        page.wait_for_selector("text=Fitted M1", timeout=120_000)
        support.wait_idle(page)
        shown = support.visit_all_pages(page, prefix="privacy_")
        assert len(shown) >= 8 and all(not errors for errors in shown.values()), shown
        support.go_to(page, "Data")
        assert mark in page.inner_text("body")  # the session really holds the marked data
        context.close()
        time.sleep(1.0)  # let the server drop the session
    after = {key: snapshot(root, skip) for key, (root, skip) in roots.items()}

    outside = [u for u in requests if not support.is_local(u)]
    assert requests and not outside, outside
    assert any(u.startswith("ws://127.0.0.1") for u in requests), "no websocket recorded"

    report = {}
    for key in roots:
        new, modified = changed(before[key], after[key])
        report[key] = {"new": new, "modified": modified}
        holding = files_holding(new + modified, needles)
        assert not holding, f"uploaded data written to disk ({key}): {holding}"
    print("files changed during the session:", report)
    assert not report["app"]["new"], f"new files in the app folder: {report['app']['new']}"
    assert not report["app"]["modified"], f"changed files in the app folder: {report['app']}"
    log = support.ROOT / "artifacts" / f"streamlit-{ports[0]}.log"
    assert log.exists() and not files_holding([str(log)], needles), "the marker is in the log"
