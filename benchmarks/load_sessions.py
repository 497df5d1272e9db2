"""Concurrent sessions against one LMM Explorer server: latency, errors, peak memory.

For each N in ``--sessions``, a fresh server (``streamlit run app.py`` on a free port) is
started and N browser sessions (Playwright contexts of one headless chromium, driven
concurrently by asyncio) each

1. open the app and load the 79,369-row ``trial_large`` example (Data page selectbox):
   *load* = from the first request until the Data page shows it and has drawn its charts;
2. type ``y ~ time * arm + (time | patient)`` on the Model page and click Fit:
   *fit* = from the click until "Fitted M1" is shown;
3. switch to the Trajectories page: *switch* = click until the page has drawn its charts.

Meanwhile ``/_stcore/health`` is polled every 0.5 s (slowest answer and failures) and the
server's memory is sampled from ``/proc/<pid>/status`` (``VmHWM``, the peak resident size).
A session *errors* when a step times out, raises, or the page shows an exception box.

Identical fits are shared between sessions by the app's fit cache (``dashboard.state.cached``),
as in a class fitting the same model; ``--distinct`` gives every session its own formula
(an aliased extra term ``I(time + k)``, dropped by the fit) so that every fit is computed.

Usage::

    .venv/bin/python benchmarks/load_sessions.py --sessions 1 5 20
    .venv/bin/python benchmarks/load_sessions.py --sessions 20 --distinct

Prints a Markdown table and writes ``artifacts/load_sessions.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.e2e import support  # noqa: E402

EXAMPLE = "trial_large"
FORMULA = "y ~ time * arm + (time | patient)"
SWITCH_TO = "Trajectories"
STEP_TIMEOUT_MS = 600_000
IDLE_JS = """() => document.querySelector('[data-testid="stApp"]')
        ?.getAttribute('data-test-script-state') === 'notRunning'
    && !document.querySelector('[data-testid="stSkeleton"]')
    && [...document.querySelectorAll('[data-testid="stPlotlyChart"]')]
        .every(c => c.querySelector('.main-svg'))"""


@dataclass
class SessionResult:
    """One browser session: latencies in seconds (``None`` when the step was not reached)."""

    index: int
    load: float | None = None
    fit: float | None = None
    switch: float | None = None
    fitted: bool = False
    error: str | None = None


@dataclass
class RunResult:
    """One N: the sessions, the server's health and memory, the machine's load."""

    sessions: int
    distinct: bool
    wall_seconds: float = 0.0
    results: list[SessionResult] = field(default_factory=list)
    health_max_seconds: float = 0.0
    health_failures: int = 0
    health_checks: int = 0
    peak_rss_mib: float = 0.0
    rss_before_mib: float = 0.0
    server_cpu_seconds: float = 0.0
    loadavg_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    loadavg_after: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def errors(self) -> int:
        return sum(r.error is not None for r in self.results)

    def stats(self, step: str) -> dict[str, float | None]:
        """p50, p90 and max of one step over the sessions that completed it."""
        values = sorted(v for r in self.results if (v := getattr(r, step)) is not None)
        if not values:
            return {"p50": None, "p90": None, "max": None}
        p90 = values[min(len(values) - 1, max(0, int(round(0.9 * len(values) + 0.5)) - 1))]
        return {"p50": statistics.median(values), "p90": p90, "max": values[-1]}

    def to_dict(self) -> dict:
        out = asdict(self)
        out["errors"] = self.errors
        out["latency"] = {step: self.stats(step) for step in ("load", "fit", "switch")}
        return out


# --------------------------------------------------------------------------- server probes
def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (``/proc/<pid>/stat``), in seconds."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _status_kib(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


class ServerWatch:
    """Polls the server's health and memory in a thread while the sessions run."""

    def __init__(self, url: str, pid: int, every: float = 0.5) -> None:
        self.url, self.pid, self.every = url, pid, every
        self.health_max = 0.0
        self.failures = 0
        self.checks = 0
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            start = time.perf_counter()
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=10) as resp:
                    ok = resp.read().strip() == b"ok"
            except OSError:
                ok = False
            self.checks += 1
            self.failures += not ok
            self.health_max = max(self.health_max, time.perf_counter() - start)
            try:
                self.peak_kib = max(self.peak_kib, _status_kib(self.pid, "VmHWM"))
            except OSError:
                pass
            self._stop.wait(self.every)

    def __enter__(self) -> ServerWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=15)
        try:
            self.peak_kib = max(self.peak_kib, _status_kib(self.pid, "VmHWM"))
        except OSError:
            pass


# --------------------------------------------------------------------------- one session
async def _idle(page, timeout_ms: int = STEP_TIMEOUT_MS) -> None:
    await page.wait_for_timeout(300)
    await page.wait_for_function(IDLE_JS, timeout=timeout_ms)


#: the app's own menu (dashboard.views.menu: links in the container keyed ``app_menu``);
#: Streamlit's page menu is off (.streamlit/config.toml)
MENU_LINKS = ".st-key-app_menu a"


async def _go_to(page, label: str) -> None:
    await page.locator(MENU_LINKS, has_text=label).first.click()
    await page.wait_for_selector(f"h1:has-text('{label}')", timeout=STEP_TIMEOUT_MS)
    await _idle(page)


async def _exceptions(page) -> int:
    return await page.locator('[data-testid="stException"]').count()


async def run_session(browser, url: str, index: int, formula: str) -> SessionResult:
    """Load the example, fit, switch page; latencies and the first error."""
    result = SessionResult(index)
    context = await browser.new_context(viewport={"width": 1400, "height": 1600})
    page = await context.new_page()
    step = "open"
    try:
        start = time.perf_counter()
        await page.goto(url, wait_until="domcontentloaded", timeout=STEP_TIMEOUT_MS)
        await page.wait_for_selector("h1", timeout=STEP_TIMEOUT_MS)
        await _idle(page)
        step = "load"
        await page.locator('[data-testid="stSelectbox"]').first.click()
        await page.keyboard.type(EXAMPLE)
        await page.keyboard.press("Enter")
        sidebar = page.locator('[data-testid="stSidebar"]')
        await sidebar.get_by_text(f"{EXAMPLE}: ", exact=False).wait_for(timeout=STEP_TIMEOUT_MS)
        await _idle(page)
        result.load = time.perf_counter() - start
        if await _exceptions(page):
            raise RuntimeError("exception box on the Data page")

        step = "fit"
        await _go_to(page, "Model")
        await page.get_by_role("textbox", name="Or type a formula").fill(formula)
        start = time.perf_counter()
        await page.get_by_role("button", name="Fit model").click()
        await page.get_by_text("Fitted M1", exact=False).first.wait_for(timeout=STEP_TIMEOUT_MS)
        result.fit = time.perf_counter() - start
        await _idle(page)
        body = await page.inner_text("body")
        result.fitted = "Fitted M1" in body and "could not be fitted" not in body
        if await _exceptions(page):
            raise RuntimeError("exception box on the Model page")

        step = "switch"
        start = time.perf_counter()
        await _go_to(page, SWITCH_TO)
        result.switch = time.perf_counter() - start
        if await _exceptions(page):
            raise RuntimeError(f"exception box on the {SWITCH_TO} page")
    except Exception as err:  # a timeout or a page error: this session failed at `step`
        result.error = f"{step}: {type(err).__name__}: {str(err).splitlines()[0][:200]}"
    finally:
        await context.close()
    return result


async def _run_sessions(url: str, n: int, distinct: bool) -> list[SessionResult]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=support.CHROMIUM, args=support.CHROMIUM_ARGS
        )
        try:
            formulas = [f"{FORMULA} + I(time + {i + 1})" if distinct else FORMULA for i in range(n)]
            return list(
                await asyncio.gather(*(run_session(browser, url, i, formulas[i]) for i in range(n)))
            )
        finally:
            await browser.close()


def run(n: int, distinct: bool = False, step_timeout: float | None = None) -> RunResult:
    """Start a server, run ``n`` concurrent sessions against it, stop it.

    ``step_timeout`` (seconds) bounds each step of a session (default 600 s).
    """
    global STEP_TIMEOUT_MS
    if step_timeout is not None:
        STEP_TIMEOUT_MS = int(step_timeout * 1000)
    out = RunResult(sessions=n, distinct=distinct, loadavg_before=os.getloadavg())
    pids: list[int] = []
    with support.running_app(on_start=pids.append, timeout=120) as url:
        out.rss_before_mib = _status_kib(pids[0], "VmRSS") / 1024
        cpu_before = _cpu_seconds(pids[0])
        start = time.perf_counter()
        with ServerWatch(url, pids[0]) as watch:
            out.results = asyncio.run(_run_sessions(url, n, distinct))
        out.wall_seconds = time.perf_counter() - start
        out.server_cpu_seconds = _cpu_seconds(pids[0]) - cpu_before
        out.health_max_seconds = watch.health_max
        out.health_failures = watch.failures
        out.health_checks = watch.checks
        out.peak_rss_mib = watch.peak_kib / 1024
    out.loadavg_after = os.getloadavg()
    return out


# --------------------------------------------------------------------------- report
def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}"


def markdown_table(runs: list[RunResult]) -> str:
    head = (
        "| sessions | errors | fitted | load p50 / p90 / max (s) | fit p50 / p90 / max (s) "
        "| page switch p50 / p90 / max (s) | health max (s), failures | server peak RSS "
        "| server CPU (s) / wall (s) | load avg before -> after |\n"
        "|---|---|---|---|---|---|---|---|---|---|"
    )
    rows = []
    for r in runs:
        cells = []
        for step in ("load", "fit", "switch"):
            s = r.stats(step)
            cells.append(f"{_fmt(s['p50'])} / {_fmt(s['p90'])} / {_fmt(s['max'])}")
        fitted = sum(x.fitted for x in r.results)
        label = f"{r.sessions}{' (distinct fits)' if r.distinct else ''}"
        rows.append(
            f"| {label} | {r.errors} | {fitted}/{r.sessions} | {' | '.join(cells)} "
            f"| {r.health_max_seconds:.2f}, {r.health_failures}/{r.health_checks} "
            f"| {r.peak_rss_mib:.0f} MiB (idle {r.rss_before_mib:.0f}) "
            f"| {r.server_cpu_seconds:.0f} / {r.wall_seconds:.0f} "
            f"| {r.loadavg_before[0]:.1f} -> {r.loadavg_after[0]:.1f} |"
        )
    return "\n".join([head, *rows])


def main(argv: list[str] | None = None) -> list[RunResult]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 5, 20])
    parser.add_argument("--distinct", action="store_true", help="a different formula each")
    parser.add_argument("--json", default=str(ROOT / "artifacts" / "load_sessions.json"))
    args = parser.parse_args(argv)
    reason = support.browser_missing_reason()
    if reason:
        parser.error(reason)
    runs = []
    for n in args.sessions:
        result = run(n, distinct=args.distinct)
        runs.append(result)
        for r in result.results:
            if r.error:
                print(f"  N={n} session {r.index}: {r.error}", file=sys.stderr)
    print(f"`{FORMULA}` on {EXAMPLE}; {os.cpu_count()} cores")
    print(markdown_table(runs))
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "formula": FORMULA,
                "example": EXAMPLE,
                "cpus": os.cpu_count(),
                "runs": [r.to_dict() for r in runs],
            },
            indent=1,
        )
    )
    print(f"written {path}")
    return runs


if __name__ == "__main__":
    main()
