"""A class through nginx and two replicas: latency per action, server CPU, leaks between sessions.

The deployment of ``tests/deploy/proxy_support.py`` is started (two ``deploy/replica.py``
replicas, each with its fork server for the jobs, behind nginx with TLS and a self-signed
certificate), then N browser sessions (Playwright contexts of a few headless Debian chromiums,
driven by asyncio) arrive one after the other over ``--arrive-over`` seconds, like a class.
Each session

1. opens ``https://localhost:<port>`` (*page load*: request until the Data page is idle);
2. uploads its own small CSV (60 rows), whose column names and values hold a marker unique to
   the session (``ZQX`` + 10 hex digits) (*upload*: file chosen until "Loaded" and idle);
3. opens the Model page, types ``sbp_<marker> ~ week + (1 | patient)`` and clicks Fit
   (*fit*: click until "Fitted M1");
4. switches to Trajectories, Diagnostics, Shrinkage and Data (*page switch*: click until the
   page's title is shown and it is idle), and checks that its own marker is on the Data page;
5. fits ``... ~ week + (week | patient)`` (*fit*, until "Fitted M2") and opens Compare
   (*page switch*).

Every distinct fit is computed (no two sessions share data). After every action the page's
text is searched for markers, and so is every WebSocket frame the browser receives: a marker
of another session is a **leak**. A session *errors* when a step times out or raises, when the
page shows an exception box or the lost-session notice, when its marker is missing, or when
nginx's route cookie changes (the session lives on one replica).

Server side, ``/proc`` is read: the CPU time (``utime + stime + cutime + cstime``) of every
process of each replica's tree (the replica, its fork server and resource tracker; job
children, once they exit, are counted in the fork server's ``cutime``) at the start and the
end of the run; the peak resident memory (``VmHWM``) of each replica, and the largest sum of
``VmRSS`` over a replica's tree (sampled every 0.5 s). Server CPU per action is the CPU of
both trees over the run divided by the number of actions; per replica, by the actions of the
sessions nginx sent to it (its ``lmm_route`` cookie). The chromiums' CPU is measured the same
way, to show how much of the two cores the browsers took. ``/_stcore/health`` is polled
through nginx every second, with each replica's route cookie in turn. Unless ``--cold``, one
page is first opened on each replica (its first session imports the pages and starts the
jobs' fork server; that time is reported, not counted). Unless ``--no-solo``, one session
then runs alone, with the servers' CPU read around each of its actions: the server CPU of
each kind of action.

Usage::

    .venv/bin/python benchmarks/load_proxy.py                 # 30 sessions over 60 s
    .venv/bin/python benchmarks/load_proxy.py --quick         # 3 sessions, cold, no solo run
    .venv/bin/python benchmarks/load_proxy.py --max-open 10    # at most 10 browsers at once
    .venv/bin/python benchmarks/load_proxy.py --sessions 10 --browsers 2 --arrive-over 30

Prints a Markdown table and writes ``artifacts/load_proxy.json``. The uploads are given to
the browser from memory (nothing is written to disk but the deployment's own temporary
folder: certificate, nginx configuration, logs; removed at the end).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import re
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.deploy import proxy_support  # noqa: E402
from tests.e2e import support  # noqa: E402

ACTIONS = ("page load", "upload", "fit", "page switch")
SWITCHES_AFTER_FIRST_FIT = ("Trajectories", "Diagnostics", "Shrinkage", "Data")
SWITCH_AFTER_SECOND_FIT = "Compare"
MARK_RE = re.compile(r"ZQX[0-9A-F]{10}", re.IGNORECASE)
MARK_RE_BYTES = re.compile(rb"ZQX[0-9A-F]{10}", re.IGNORECASE)
LOST_NOTICE = "Your previous session has ended"
ROUTE = "lmm_route"  # nginx's sticky-session cookie: the replica's name
#: milliseconds between two looks for the idle page (polling on every animation frame would
#: take a core's share of the browsers' CPU away from the servers)
POLL_MS = 100
IDLE_JS = """() => document.querySelector('[data-testid="stApp"]')
        ?.getAttribute('data-test-script-state') === 'notRunning'
    && !document.querySelector('[data-testid="stSkeleton"]')
    && [...document.querySelectorAll('[data-testid="stPlotlyChart"]')]
        .every(c => c.querySelector('.main-svg'))"""


# --------------------------------------------------------------------------- data
def new_mark() -> str:
    """A marker no data set holds by chance: ``ZQX`` and 10 upper-case hex digits."""
    return "ZQX" + uuid.uuid4().hex[:10].upper()


def marked_csv(mark: str, patients: int = 12, weeks: int = 5) -> bytes:
    """A long table (patient, week, outcome, note) whose column names and values hold ``mark``.

    The outcome is ``120 + a_i + (0.8 + b_i) week + e`` with patient intercepts ``a_i ~ N(0, 4^2)``,
    slopes ``b_i ~ N(0, 0.5^2)`` and residuals ``e ~ N(0, 1.5^2)``, seeded by the marker, so
    that both ``(1 | patient)`` and ``(week | patient)`` are fitted without trouble.
    """
    rng = random.Random(mark)
    lines = [f"patient,week,sbp_{mark},note_{mark}"]
    for i in range(patients):
        a, b = rng.gauss(0, 4), rng.gauss(0, 0.5)
        for week in range(weeks):
            sbp = 120 + a + (0.8 + b) * week + rng.gauss(0, 1.5)
            lines.append(f"{mark}-P{i:02d},{week},{sbp:.2f},{mark} visit {week}")
    return ("\n".join(lines) + "\n").encode()


# --------------------------------------------------------------------------- /proc
def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()


def _children_map() -> dict[int, list[int]]:
    """``{parent pid: [child pids]}`` of every process visible in ``/proc``."""
    found: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                ppid = int(_stat(int(name))[1])
            except (OSError, IndexError, ValueError):
                continue
            found.setdefault(ppid, []).append(int(name))
    return found


def process_tree(root: int, children: dict[int, list[int]] | None = None) -> list[int]:
    """``root`` and all its descendants."""
    children = _children_map() if children is None else children
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def tree_cpu_seconds(roots: list[int]) -> dict[int, float]:
    """CPU seconds of each root's tree: ``utime + stime + cutime + cstime`` (``/proc/<pid>/stat``
    fields 14-17) summed over the live processes; children that exited and were waited for are
    in their parent's ``cutime``/``cstime``, so nothing is counted twice."""
    tick = os.sysconf("SC_CLK_TCK")
    children = _children_map()
    out = {}
    for root in roots:
        total = 0
        for pid in process_tree(root, children):
            try:
                fields = _stat(pid)
            except OSError:
                continue
            total += sum(int(fields[k]) for k in (11, 12, 13, 14))
        out[root] = total / tick
    return out


def _status_kib(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Watch:
    """A thread that polls the health check through nginx and the replicas' memory while the
    sessions run. Each check carries the route cookie of one replica in turn: nginx's pool
    then sees only the browsers' first requests (cookie-less), which it spreads over the
    replicas, as in a class (an operator's cookie-less checks would take turns with them)."""

    def __init__(
        self, url: str, replica_pids: list[int], routes: list[str], every: float = 0.5
    ) -> None:
        self.url, self.pids, self.routes, self.every = url, replica_pids, routes, every
        self.health_checks = self.health_failures = 0
        self.health_max = 0.0
        self.tree_rss_kib = {pid: 0 for pid in replica_pids}
        self.client_rss_kib = 0  # this process and its children: the driver and chromiums
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        last_health = 0.0
        while not self._stop.is_set():
            children = _children_map()
            for pid in self.pids:
                rss = sum(_status_kib(p, "VmRSS") for p in process_tree(pid, children))
                self.tree_rss_kib[pid] = max(self.tree_rss_kib[pid], rss)
            client = sum(_status_kib(p, "VmRSS") for p in process_tree(os.getpid(), children))
            self.client_rss_kib = max(self.client_rss_kib, client)
            if time.monotonic() - last_health >= 1.0:
                last_health = time.monotonic()
                status = 0
                try:
                    route = self.routes[self.health_checks % len(self.routes)]
                    status, _, body = proxy_support.get(
                        f"{self.url}/_stcore/health", headers={"Cookie": f"{ROUTE}={route}"}
                    )
                except OSError:
                    body = b""
                self.health_checks += 1
                self.health_failures += not (status == 200 and body.strip() == b"ok")
                self.health_max = max(self.health_max, time.monotonic() - last_health)
            self._stop.wait(self.every)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


# --------------------------------------------------------------------------- one session
@dataclass
class Action:
    """One timed action of a session."""

    kind: str
    seconds: float
    label: str = ""
    server_cpu: float | None = None  # solo run only: both replicas' CPU seconds during it


@dataclass
class SessionResult:
    """What one session did and saw."""

    index: int
    mark: str
    route: str | None = None
    routes: list[str | None] = field(default_factory=list)  # every route seen, in order
    actions: list[Action] = field(default_factory=list)
    foreign_marks: list[str] = field(default_factory=list)  # leaks: other sessions' markers
    own_mark_seen: bool = False
    frames: int = 0
    error: str | None = None


class Session:
    """Drives one browser context through the steps of the module docstring."""

    def __init__(self, browser, url: str, index: int, timeout_ms: int, cpu_probe=None) -> None:
        self.browser, self.url, self.timeout_ms = browser, url, timeout_ms
        self.result = SessionResult(index, new_mark())
        self.cpu_probe = cpu_probe  # () -> server CPU seconds, for the solo run

    def _frame(self, payload) -> None:
        self.result.frames += 1
        raw = payload if isinstance(payload, bytes) else payload.encode()
        for found in MARK_RE_BYTES.findall(raw):
            self._seen(found.decode().upper(), "a WebSocket frame")

    def _seen(self, mark: str, where: str) -> None:
        if mark != self.result.mark and mark not in self.result.foreign_marks:
            self.result.foreign_marks.append(mark)
            print(f"  LEAK: session {self.result.index} got {mark} in {where}", file=sys.stderr)

    async def _idle(self, page) -> None:
        await page.wait_for_timeout(300)
        await page.wait_for_function(IDLE_JS, polling=POLL_MS, timeout=self.timeout_ms)

    async def _check(self, page, where: str) -> str:
        cookies = await page.context.cookies()
        route = next((c["value"] for c in cookies if c["name"] == ROUTE), None)
        if route not in self.result.routes:
            self.result.routes.append(route)
        if len(self.result.routes) > 1:  # the session lives on the first replica only
            raise RuntimeError(f"the route cookie changed on {where}: {self.result.routes}")
        text = await page.inner_text("body")
        for found in MARK_RE.findall(text):
            self._seen(found.upper(), f"the text of {where}")
        if await page.locator('[data-testid="stException"]').count():
            raise RuntimeError(f"an exception box on {where}")
        if LOST_NOTICE in text:
            raise RuntimeError(f"the lost-session notice on {where}")
        return text

    async def _timed(self, kind: str, label: str, coro) -> None:
        cpu0 = self.cpu_probe() if self.cpu_probe else None
        start = time.perf_counter()
        await coro
        seconds = time.perf_counter() - start
        cpu = self.cpu_probe() - cpu0 if self.cpu_probe else None
        self.result.actions.append(Action(kind, seconds, label, cpu))

    async def _switch(self, page, label: str) -> None:
        await page.locator(support.MENU_LINKS, has_text=label).first.click()
        await page.wait_for_selector(f"h1:has-text('{label}')", timeout=self.timeout_ms)
        await self._idle(page)

    async def _open(self, page) -> None:
        await page.goto(self.url, wait_until="domcontentloaded", timeout=self.timeout_ms)
        await page.wait_for_selector("h1", timeout=self.timeout_ms)
        await self._idle(page)

    async def _upload(self, page, name: str) -> None:
        files = {"name": name, "mimeType": "text/csv", "buffer": marked_csv(self.result.mark)}
        uploader = page.locator('[data-testid="stFileUploader"] input[type="file"]')
        await uploader.set_input_files(files)
        await page.wait_for_selector(f"text=Loaded {name}", timeout=self.timeout_ms)
        await self._idle(page)

    async def _fit(self, page, formula: str, model: str) -> None:
        await page.get_by_role("textbox", name="Or type a formula").fill(formula)
        await page.get_by_role("button", name="Fit model").click()
        await page.get_by_text(f"Fitted {model}", exact=False).first.wait_for(
            timeout=self.timeout_ms
        )
        await self._idle(page)

    async def run(self) -> SessionResult:
        """Run the steps; the first failure ends the session and is kept in ``error``."""
        mark, step = self.result.mark, "open"
        context = await self.browser.new_context(
            viewport={"width": 1400, "height": 1600}, ignore_https_errors=True
        )
        try:
            page = await context.new_page()
            page.on("websocket", lambda ws: ws.on("framereceived", self._frame))
            await self._timed("page load", "Data", self._open(page))
            await self._check(page, "the first page")
            step = "upload"
            name = f"class_{self.result.index:02d}.csv"
            await self._timed("upload", "", self._upload(page, name))
            self.result.own_mark_seen = mark in await self._check(page, "the Data page")
            step = "Model"
            await self._timed("page switch", "Model", self._switch(page, "Model"))
            await self._check(page, "the Model page")
            step = "fit M1"
            formula = f"sbp_{mark} ~ week + (1 | patient)"
            await self._timed("fit", "M1", self._fit(page, formula, "M1"))
            await self._check(page, "the Model page after M1")
            for label in SWITCHES_AFTER_FIRST_FIT:
                step = label
                await self._timed("page switch", label, self._switch(page, label))
                text = await self._check(page, f"the {label} page")
            if mark not in text:  # the Data page, after the switches
                self.result.own_mark_seen = False
                raise RuntimeError("the session's own marker is not on the Data page")
            step = "fit M2"
            await self._timed("page switch", "Model", self._switch(page, "Model"))
            formula = f"sbp_{mark} ~ week + (week | patient)"
            await self._timed("fit", "M2", self._fit(page, formula, "M2"))
            await self._check(page, "the Model page after M2")
            step = SWITCH_AFTER_SECOND_FIT
            await self._timed("page switch", step, self._switch(page, SWITCH_AFTER_SECOND_FIT))
            await self._check(page, f"the {step} page")
        except Exception as err:  # a timeout, a page error, a missing marker
            first = (str(err).splitlines() or [""])[0][:200]
            self.result.error = f"{step}: {type(err).__name__}: {first}"
        finally:
            cookies = await context.cookies()
            self.result.route = next((c["value"] for c in cookies if c["name"] == ROUTE), None)
            await context.close()
        return self.result


def count_events(log: str) -> dict[str, int]:
    """Counts of a replica's JSON log events (``deploy/README.md``, "Logs") by kind; a session
    start that found the browser's previous session gone counts as ``lost_previous``; job ends
    are also counted by job and status (``job_end:fit:done``)."""
    counts: dict[str, int] = {}
    for line in log.splitlines():
        if line.startswith("{") and '"event"' in line:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            kind = str(event.get("event"))
            if kind == "session_start" and event.get("lost_previous"):
                kind = "lost_previous"
            counts[kind] = counts.get(kind, 0) + 1
            if kind == "job_end":  # and by job and status: "job_end:fit:done"
                key = f"job_end:{event.get('job')}:{event.get('status')}"
                counts[key] = counts.get(key, 0) + 1
    return counts


# --------------------------------------------------------------------------- the run
def percentile(values: list[float], p: float) -> float | None:
    """The nearest-rank ``p``-th percentile: the ``ceil(p n / 100)``-th smallest value."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p * len(ordered) / 100) - 1)]


@dataclass
class ReplicaUsage:
    """One replica over the run: its sessions, actions, CPU and memory."""

    route: str
    pid: int
    port: int
    sessions: int = 0
    actions: int = 0
    cpu_seconds: float = 0.0
    rss_idle_mib: float = 0.0
    peak_hwm_mib: float = 0.0  # VmHWM of the replica process
    peak_tree_rss_mib: float = 0.0  # largest sampled sum of VmRSS over its process tree
    events: dict[str, int] = field(default_factory=dict)  # its JSON log events, by kind
    first_page_seconds: float | None = None  # the warm-up: its first session's first page


@dataclass
class RunResult:
    """One benchmark run: the sessions, the solo session, the replicas, the machine."""

    sessions: int
    browsers: int
    arrive_over: float
    max_open: int = 0  # most browser contexts open at once (0: no cap)
    wall_seconds: float = 0.0
    results: list[SessionResult] = field(default_factory=list)
    solo: SessionResult | None = None
    replicas: list[ReplicaUsage] = field(default_factory=list)
    client_cpu_seconds: float = 0.0
    client_peak_rss_mib: float = 0.0  # the driver and the chromiums (sum of VmRSS, sampled)
    max_open_contexts: int = 0
    health_checks: int = 0
    health_failures: int = 0
    health_max_seconds: float = 0.0
    marks_in_logs: int = 0
    loadavg_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    loadavg_after: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def errors(self) -> list[str]:
        return [f"session {r.index}: {r.error}" for r in self.results if r.error]

    @property
    def leaks(self) -> list[str]:
        return [f"session {r.index}: {m}" for r in self.results for m in r.foreign_marks]

    @property
    def actions(self) -> int:
        return sum(len(r.actions) for r in self.results)

    @property
    def server_cpu_seconds(self) -> float:
        return sum(r.cpu_seconds for r in self.replicas)

    def latencies(self, kind: str) -> list[float]:
        return [a.seconds for r in self.results for a in r.actions if a.kind == kind]

    def stats(self, kind: str) -> dict[str, float | int | None]:
        values = self.latencies(kind)
        out: dict[str, float | int | None] = {"n": len(values)}
        out.update({f"p{p}": percentile(values, p) for p in (50, 90, 99)})
        out["max"] = max(values) if values else None
        return out

    def to_dict(self) -> dict:
        out = asdict(self)
        out["errors"], out["leaks"] = self.errors, self.leaks
        out["latency"] = {kind: self.stats(kind) for kind in ACTIONS}
        out["server_cpu_per_action"] = self.server_cpu_seconds / max(1, self.actions)
        return out


async def _arrive(
    session: Session, delay: float, run: RunResult, open_now: list[int], gate: asyncio.Semaphore
) -> SessionResult:
    await asyncio.sleep(delay)
    async with gate:  # at most ``max_open`` contexts at once: the others wait their turn
        open_now[0] += 1
        run.max_open_contexts = max(run.max_open_contexts, open_now[0])
        try:
            return await session.run()
        finally:
            open_now[0] -= 1


async def _first_page(browser, url: str, route: str) -> float:
    """Seconds to the first idle page of a fresh replica (its cookie set beforehand): the
    replica's first session imports the pages' modules and starts the jobs' fork server."""
    context = await browser.new_context(ignore_https_errors=True)
    await context.add_cookies([{"name": ROUTE, "value": route, "url": url}])
    try:
        page = await context.new_page()
        start = time.perf_counter()
        await page.goto(url, wait_until="domcontentloaded")
        await page.wait_for_selector("h1", timeout=300_000)
        await page.wait_for_function(IDLE_JS, polling=POLL_MS, timeout=300_000)
        return time.perf_counter() - start
    finally:
        await context.close()


async def _drive(
    url: str, run: RunResult, pids: list[int], solo: bool, warm: bool, timeout_ms: int
) -> None:
    from playwright.async_api import async_playwright

    me = os.getpid()
    cpu0 = tree_cpu_seconds([me])[me]
    async with async_playwright() as pw:
        browsers = [
            await pw.chromium.launch(executable_path=support.CHROMIUM, args=support.CHROMIUM_ARGS)
            for _ in range(run.browsers)
        ]
        try:
            if warm:
                for usage in run.replicas:
                    usage.first_page_seconds = await _first_page(browsers[0], url, usage.route)
            if solo:

                def probe() -> float:
                    return sum(tree_cpu_seconds(pids).values())

                run.solo = await Session(browsers[0], url, -1, timeout_ms, probe).run()
            server0 = tree_cpu_seconds(pids)
            start = time.perf_counter()
            n, open_now = run.sessions, [0]
            gate = asyncio.Semaphore(run.max_open or n)
            sessions = [Session(browsers[i % len(browsers)], url, i, timeout_ms) for i in range(n)]
            run.results = list(
                await asyncio.gather(
                    *(
                        _arrive(s, i * run.arrive_over / n, run, open_now, gate)
                        for i, s in enumerate(sessions)
                    )
                )
            )
            run.wall_seconds = time.perf_counter() - start
            server1 = tree_cpu_seconds(pids)
            for usage in run.replicas:
                usage.cpu_seconds = server1[usage.pid] - server0[usage.pid]
            run.client_cpu_seconds = tree_cpu_seconds([me])[me] - cpu0
        finally:
            for browser in browsers:
                await browser.close()


def run(
    sessions: int = 30,
    *,
    browsers: int = 3,
    arrive_over: float = 60.0,
    max_open: int = 0,
    solo: bool = True,
    warm: bool = True,
    step_timeout: float = 300.0,
    keep: Path | None = None,
) -> RunResult:
    """Start the deployment, run the sessions (module docstring), stop it; the measurements.

    Parameters
    ----------
    sessions
        Number of sessions; session ``i`` starts ``i * arrive_over / sessions`` seconds after
        the first.
    browsers
        Chromium processes; session ``i`` is a context of browser ``i % browsers``.
    arrive_over
        Seconds over which the sessions arrive.
    max_open
        Most browser contexts open at once (0: no cap); a session arriving when that many are
        open waits for one to end. The browsers' rendering, not the servers, fills two cores
        long before 30 sessions (``benchmarks/README.md``).
    solo
        Run one session alone first, with the servers' CPU read around each action.
    warm
        Open one page on each replica first (not counted): the sessions meet warm replicas,
        as in a class that starts after the teacher's check.
    step_timeout
        Seconds one step of a session may take before the session fails.
    keep
        A folder for the deployment's files (certificate, nginx's configuration and logs, the
        replicas' logs), kept after the run; by default a temporary folder, removed.
    """
    out = RunResult(sessions, browsers, arrive_over, max_open, loadavg_before=os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="lmm-load-proxy-") as temporary:
        with proxy_support.deployment(Path(keep or temporary)) as deployed:
            out.replicas = [ReplicaUsage(r.route, r.proc.pid, r.port) for r in deployed.replicas]
            for usage in out.replicas:
                usage.rss_idle_mib = _status_kib(usage.pid, "VmRSS") / 1024
            pids = [u.pid for u in out.replicas]
            with Watch(deployed.url, pids, [u.route for u in out.replicas]) as watch:
                asyncio.run(_drive(deployed.url, out, pids, solo, warm, int(step_timeout * 1000)))
            out.health_checks, out.health_failures = watch.health_checks, watch.health_failures
            out.health_max_seconds = watch.health_max
            out.client_peak_rss_mib = watch.client_rss_kib / 1024
            for usage in out.replicas:
                usage.peak_hwm_mib = _status_kib(usage.pid, "VmHWM") / 1024
                usage.peak_tree_rss_mib = watch.tree_rss_kib[usage.pid] / 1024
                mine = [r for r in out.results if r.route == usage.route]
                usage.sessions, usage.actions = len(mine), sum(len(r.actions) for r in mine)
            for name, text in deployed.logs().items():
                usage = next((u for u in out.replicas if name.endswith(f"-{u.port}.out")), None)
                if usage is not None:
                    usage.events = count_events(text)
            marks = [r.mark for r in out.results] + ([out.solo.mark] if out.solo else [])
            logs = "\n".join(deployed.logs().values())
            out.marks_in_logs = sum(m in logs or m.lower() in logs for m in marks)
    out.loadavg_after = os.getloadavg()
    return out


# --------------------------------------------------------------------------- report
def _s(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def markdown(result: RunResult) -> str:
    """The latency table, the server table and (with a solo run) the CPU per kind of action."""
    lines = [
        "| action | n | p50 (s) | p90 (s) | p99 (s) | max (s) |",
        "|---|---|---|---|---|---|",
    ]
    for kind in ACTIONS:
        st = result.stats(kind)
        lines.append(
            f"| {kind} | {st['n']} | {_s(st['p50'])} | {_s(st['p90'])} | {_s(st['p99'])} "
            f"| {_s(st['max'])} |"
        )
    total = result.server_cpu_seconds
    lines += [
        "",
        f"{result.sessions} sessions over {result.arrive_over:.0f} s in {result.browsers} "
        f"chromium(s), at most {result.max_open_contexts} open at once (cap "
        f"{result.max_open or 'none'}); wall "
        f"{result.wall_seconds:.0f} s; errors {len(result.errors)}, leaks {len(result.leaks)}, "
        f"markers in the logs {result.marks_in_logs}; health through nginx "
        f"{result.health_failures} failed of {result.health_checks}, slowest "
        f"{result.health_max_seconds:.2f} s; load average {result.loadavg_before[0]:.1f} -> "
        f"{result.loadavg_after[0]:.1f} ({os.cpu_count()} cores).",
        "",
        "| replica | sessions (logged starts, lost) | actions | fits done (log) | CPU (s) "
        "| CPU per action (s) | VmHWM | peak tree RSS |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for u in result.replicas:
        per = u.cpu_seconds / u.actions if u.actions else None
        starts = u.events.get("session_start", 0) + u.events.get("lost_previous", 0)
        lines.append(
            f"| {u.route} | {u.sessions} ({starts}, {u.events.get('lost_previous', 0)}) "
            f"| {u.actions} | {u.events.get('job_end:fit:done', 0)} | {u.cpu_seconds:.1f} "
            f"| {_s(per, 3)} "
            f"| {u.peak_hwm_mib:.0f} MiB (idle {u.rss_idle_mib:.0f}) "
            f"| {u.peak_tree_rss_mib:.0f} MiB |"
        )
    lines.append(
        f"| both | {result.sessions} | {result.actions} | "
        f"| {total:.1f} | {_s(total / max(1, result.actions), 3)} | | |"
    )
    if any(u.first_page_seconds is not None for u in result.replicas):
        firsts = ", ".join(f"{u.route} {_s(u.first_page_seconds, 1)} s" for u in result.replicas)
        lines.append(f"\nWarm-up, first page of each fresh replica (not counted): {firsts}.")
    lines.append(
        f"\nBrowsers and driver: {result.client_cpu_seconds:.0f} s of CPU, peak RSS "
        f"{result.client_peak_rss_mib:.0f} MiB; servers: {total:.0f} s "
        f"(wall {result.wall_seconds:.0f} s, {os.cpu_count()} cores)."
    )
    if result.solo is not None:
        lines += [
            "",
            f"Solo session (alone, before the class; error: {result.solo.error or 'none'}):",
            "",
            "| action | latency (s) | server CPU (s) |",
            "|---|---|---|",
        ]
        for a in result.solo.actions:
            label = f"{a.kind} ({a.label})" if a.label else a.kind
            lines.append(f"| {label} | {a.seconds:.2f} | {_s(a.server_cpu, 3)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> RunResult:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="3 sessions, no solo run")
    parser.add_argument("--browsers", type=int, default=3, help="chromium processes")
    parser.add_argument("--arrive-over", type=float, default=60.0, help="seconds")
    parser.add_argument("--max-open", type=int, default=0, help="most contexts open at once")
    parser.add_argument("--no-solo", action="store_true", help="no solo session first")
    parser.add_argument("--cold", action="store_true", help="no warm-up page per replica")
    parser.add_argument("--step-timeout", type=float, default=300.0, help="seconds")
    parser.add_argument("--keep", type=Path, help="keep the deployment's logs in this folder")
    parser.add_argument("--json", default=str(ROOT / "artifacts" / "load_proxy.json"))
    args = parser.parse_args(argv)
    for reason in (support.browser_missing_reason(), proxy_support.nginx_missing_reason()):
        if reason:
            parser.error(reason)
    if args.quick:
        args.sessions, args.browsers, args.arrive_over = 3, 1, 3.0
        args.no_solo = args.cold = True
    result = run(
        args.sessions,
        browsers=args.browsers,
        arrive_over=args.arrive_over,
        max_open=args.max_open,
        solo=not args.no_solo,
        warm=not args.cold,
        step_timeout=args.step_timeout,
        keep=args.keep,
    )
    for line in result.errors:
        print(f"  error: {line}", file=sys.stderr)
    for line in result.leaks:
        print(f"  leak: {line}", file=sys.stderr)
    print(markdown(result))
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.to_dict(), indent=1))
    print(f"written {path}")
    return result


if __name__ == "__main__":
    main()
