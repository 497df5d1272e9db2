"""lmm_core is an installable package (issue 11 item 12).

The wheel is built from a copy of only ``pyproject.toml``, ``README.md`` and ``lmm_core/``
(so nothing else of the checkout is needed, and the build leaves no ``build/`` or
``*.egg-info`` in the working tree), then checked for its contents and metadata, and imported
from an unrelated directory with the checkout off ``sys.path``.
"""

from __future__ import annotations

import ast
import importlib.metadata
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = {"numpy", "scipy", "pandas", "nlopt", "threadpoolctl", "numba"}
#: extras (pyproject's optional-dependencies): imported only inside the functions that use them
OPTIONAL = {"stream": {"duckdb", "pyarrow"}, "spark": {"pyspark", "pyarrow"}}


def _can_build_without_isolation() -> bool:
    """setuptools >= 70.1 builds wheels itself; older ones need the ``wheel`` package."""
    try:
        importlib.metadata.version("wheel")
        return True
    except importlib.metadata.PackageNotFoundError:
        pass
    major, minor = (int(p) for p in importlib.metadata.version("setuptools").split(".")[:2])
    return (major, minor) >= (70, 1)


def _imported(nodes) -> set[str]:
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m != "lmm_core"}


def _lmm_core_imports(module_level_only: bool = False) -> set[str]:
    """Third-party modules imported anywhere in lmm_core (or at module level only: what
    ``import lmm_core...`` itself needs)."""
    found: set[str] = set()
    for path in (ROOT / "lmm_core").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found |= _imported(tree.body if module_level_only else ast.walk(tree))
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src")
    shutil.copy(ROOT / "pyproject.toml", src)
    shutil.copy(ROOT / "README.md", src)
    shutil.copytree(ROOT / "lmm_core", src / "lmm_core", ignore=shutil.ignore_patterns("__py*"))
    out = tmp_path_factory.mktemp("wheel")
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(src)]
    if _can_build_without_isolation():
        cmd.insert(4, "--no-build-isolation")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=src)
    assert done.returncode == 0, done.stdout + done.stderr
    (whl,) = out.glob("*.whl")
    return whl


def test_wheel_holds_lmm_core_only(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    packages = {n.split("/")[0] for n in names if "/" in n and ".dist-info/" not in n}
    assert packages == {"lmm_core"}
    assert "lmm_core/__init__.py" in names
    shipped = {n for n in names if n.startswith("lmm_core/")}
    source = {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "lmm_core").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert shipped == source  # every module of the engine, subpackages included
    assert not any(n.startswith(("dashboard/", "pages/", "tests/", "app.py")) for n in names)


def test_wheel_requires_the_engine_dependencies_and_not_the_dashboard(wheel):
    (meta,) = [n for n in zipfile.ZipFile(wheel).namelist() if n.endswith(".dist-info/METADATA")]
    text = zipfile.ZipFile(wheel).read(meta).decode()

    def name(line: str) -> str:
        return line.split(":", 1)[1].strip().split(";")[0].split(">")[0].split("=")[0].strip()

    dists = [line for line in text.splitlines() if line.startswith("Requires-Dist:")]
    required = {name(line).lower() for line in dists if "extra ==" not in line}
    extras = {
        extra: {name(line).lower() for line in dists if f'extra == "{extra}"' in line}
        for extra in OPTIONAL
    }
    assert required == RUNTIME
    assert extras == OPTIONAL
    optional = set().union(*OPTIONAL.values())
    assert _lmm_core_imports() <= RUNTIME | optional  # every import of the engine is declared
    assert _lmm_core_imports(module_level_only=True) <= RUNTIME  # extras imported when used
    assert not required & {"streamlit", "plotly", "kaleido", "openpyxl", "pyarrow"}


def test_installed_wheel_fits_sleepstudy_from_another_directory(wheel, tmp_path):
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    data = ROOT / "data" / "sleepstudy.csv"
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(site)!r})
        import pandas as pd
        import lmm_core
        from lmm_core import fit_lmm
        assert lmm_core.__file__.startswith({str(site)!r}), lmm_core.__file__
        assert not any(p.rstrip("/") == {str(ROOT)!r} for p in sys.path)
        df = pd.read_csv({str(data)!r}, dtype={{"Subject": str}})
        res = fit_lmm("Reaction ~ Days + (Days | Subject)", df)
        print(round(float(res.fixef["Days"]), 4))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "10.4673"  # lme4: fixef(fm1)["Days"] = 10.467


def test_example_data_missing_is_a_clear_error(tmp_path):
    from lmm_core import DataError, datasets

    with pytest.raises(DataError, match="ship with the LMM Explorer repository"):
        datasets.load_example("sleepstudy", data_dir=tmp_path)
