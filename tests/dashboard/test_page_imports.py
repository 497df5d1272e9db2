"""Pages import the dashboard and only lmm_core's error types: numbers and engine calls go
through dashboard/ (issue 12). ``pages/`` is no package, so import-linter cannot see it: this
checks the source with ast. Imports under ``if TYPE_CHECKING:`` (annotations only) are
allowed."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py"))]


def _type_checking_only(tree: ast.AST) -> set[int]:
    """ids of the import nodes inside ``if TYPE_CHECKING:`` blocks."""
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in {
            "TYPE_CHECKING",
            "typing.TYPE_CHECKING",
        }:
            ids |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return ids


def engine_imports(path: Path) -> list[str]:
    """``line: import`` of every runtime lmm_core import that is not an error type."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_only(tree)
    bad = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            bad += [
                f"{node.lineno}: import {a.name}"
                for a in node.names
                if a.name.split(".")[0] == "lmm_core"
            ]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "lmm_core":
            names = [a.name for a in node.names]
            errors_only = node.module == "lmm_core" and all(n.endswith("Error") for n in names)
            if node.module != "lmm_core.errors" and not errors_only:
                bad.append(f"{node.lineno}: from {node.module} import {', '.join(names)}")
    return bad


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_pages_import_only_engine_errors(path):
    bad = engine_imports(path)
    assert not bad, f"{path.name} uses lmm_core beyond its errors; go through dashboard/:\n" + (
        "\n".join(bad)
    )


def test_the_check_sees_engine_imports(tmp_path):
    page = tmp_path / "page.py"
    page.write_text(
        "from typing import TYPE_CHECKING\n"
        "from lmm_core import LMMError, FormulaError\n"
        "from lmm_core.errors import ModelError\n"
        "from lmm_core import fit_lmm\n"
        "import lmm_core.datasets\n"
        "if TYPE_CHECKING:\n"
        "    from lmm_core import LMMResult\n"
    )
    assert engine_imports(page) == [
        "4: from lmm_core import fit_lmm",
        "5: import lmm_core.datasets",
    ]
