"""Privacy defaults that can be checked without a browser: no telemetry, bounded caches.

* ``.streamlit/config.toml`` turns Streamlit's usage statistics off (they are on by default,
  even headless) and keeps the server headless.
* Every ``st.cache_data``/``st.cache_resource`` in the app's source (``dashboard/``,
  ``pages/``, ``app.py``) has ``max_entries`` and ``ttl`` (an AST scan), and none persists to
  disk: uploaded data and fits live in memory, bounded in number and time.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted([*(ROOT / "dashboard").rglob("*.py"), *(ROOT / "pages").rglob("*.py")]) + [
    ROOT / "app.py"
]
CACHES = {"cache_data", "cache_resource", "experimental_memo", "experimental_singleton", "cache"}
MAX_TTL_SECONDS = 24 * 3600
MAX_ENTRIES = 256


def test_usage_statistics_are_off_and_server_headless():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["browser"]["gatherUsageStats"] is False
    assert config["server"]["headless"] is True


def _cache_calls(tree: ast.AST) -> list[tuple[int, str, ast.expr]]:
    """``(line, name, node)`` of every use of a Streamlit cache decorator or call."""
    found = []
    for node in ast.walk(tree):
        target = node.func if isinstance(node, ast.Call) else node
        if isinstance(target, ast.Attribute) and target.attr in CACHES:
            if isinstance(target.value, ast.Name) and target.value.id in {"st", "streamlit"}:
                found.append((node.lineno, target.attr, node))
    # a bare decorator is an Attribute; a call is a Call whose func is that Attribute: keep
    # the Call and drop the Attribute it contains
    calls = {id(n.func) for _, _, n in found if isinstance(n, ast.Call)}
    return [f for f in found if id(f[2]) not in calls]


_OPS = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.Pow: lambda a, b: a**b,
}


def _number(node: ast.expr | None) -> float | None:
    """Value of a numeric constant expression such as ``6 * 3600``; ``None`` otherwise (a
    name, a ``timedelta``...: then only the presence of the argument is checked)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        left, right = _number(node.left), _number(node.right)
        if left is not None and right is not None:
            return _OPS[type(node.op)](left, right)
    return None


def cache_problems(source: str, name: str = "<source>") -> list[str]:
    """What is wrong with the caches in ``source`` (empty when every one is bounded)."""
    problems = []
    for line, attr, node in _cache_calls(ast.parse(source)):
        where = f"{name}:{line} st.{attr}"
        if not isinstance(node, ast.Call):
            problems.append(f"{where} without arguments (unbounded)")
            continue
        kw = {k.arg: k.value for k in node.keywords}
        for required in ("max_entries", "ttl"):
            value = kw.get(required)
            if value is None or (isinstance(value, ast.Constant) and value.value is None):
                problems.append(f"{where} has no {required}")
        if "persist" in kw and not (
            isinstance(kw["persist"], ast.Constant) and kw["persist"].value in (None, False)
        ):
            problems.append(f"{where} persists to disk")
        ttl, entries = _number(kw.get("ttl")), _number(kw.get("max_entries"))
        if ttl is not None and not 0 < ttl <= MAX_TTL_SECONDS:
            problems.append(f"{where} ttl {ttl} s is not within a day")
        if entries is not None and not 0 < entries <= MAX_ENTRIES:
            problems.append(f"{where} max_entries {entries} is not a small bound")
    return problems


def test_every_cache_in_the_app_is_bounded_in_size_and_time():
    found, problems = 0, []
    for path in SOURCES:
        source = path.read_text()
        found += len(_cache_calls(ast.parse(source)))
        problems += cache_problems(source, str(path.relative_to(ROOT)))
    assert found >= 5, "the scan found no caches: did the module move?"
    assert not problems, problems


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("import streamlit as st\n@st.cache_data\ndef f(): pass\n", "without arguments"),
        ("import streamlit as st\n@st.cache_data(ttl=60)\ndef f(): pass\n", "no max_entries"),
        ("import streamlit as st\n@st.cache_resource(max_entries=2)\ndef f(): pass", "no ttl"),
        ("import streamlit as st\nf = st.cache_data(lambda: 1)\n", "no max_entries"),
        (
            "import streamlit as st\n@st.cache_data(max_entries=2, ttl=None)\ndef f(): pass",
            "no ttl",
        ),
        (
            "import streamlit as st\n"
            "@st.cache_data(max_entries=2, ttl=60, persist='disk')\ndef f(): pass",
            "persists to disk",
        ),
        ("import streamlit as st\n@st.cache_data(max_entries=2, ttl=10**9)\ndef f(): pass", "ttl"),
    ],
)
def test_the_scan_finds_unbounded_caches(source, problem):
    problems = cache_problems(source)
    assert problems and problem in problems[0], problems


def test_the_scan_accepts_a_bounded_cache():
    source = "import streamlit as st\n@st.cache_data(max_entries=4, ttl=1800)\ndef f(): pass\n"
    assert cache_problems(source) == []
