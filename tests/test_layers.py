"""The architecture, checked: layer contracts, no hidden imports, small modules, documented packages.

The contracts live in ``pyproject.toml`` (``[tool.importlinter]``) and are checked here and by
``make contracts`` (``lint-imports``); the other rules are read off the source.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "yizhan"
#: A module may have this many lines at most (the guide says ~700).
MAX_LINES = 720
SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_layer_contracts_hold() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from importlinter.cli import lint_imports_command; lint_imports_command()",
            "--no-cache",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "BROKEN" not in out.stdout
    assert out.stdout.count("KEPT") >= 4


def _function_level_imports(path: Path) -> list[tuple[int, str]]:
    """``from yizhan…``/``import yizhan…`` statements inside functions, without a comment
    on the line before saying why (the only accepted reason is not a cycle)."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    found = []
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for inner in ast.walk(node):
            names: list[str] = []
            if isinstance(inner, ast.ImportFrom) and inner.module:
                names = [inner.module]
            elif isinstance(inner, ast.Import):
                names = [a.name for a in inner.names]
            if any(n == "yizhan" or n.startswith("yizhan.") for n in names):
                before = lines[inner.lineno - 2].strip() if inner.lineno > 1 else ""
                if not before.startswith("#"):
                    found.append((inner.lineno, lines[inner.lineno - 1].strip()))
    return found


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_import_hidden_in_a_function(path: Path) -> None:
    assert _function_level_imports(path) == []


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_module_is_small(path: Path) -> None:
    n = len(path.read_text(encoding="utf-8").splitlines())
    assert n <= MAX_LINES, f"{path.relative_to(ROOT)} has {n} lines: split it along its seams"


PACKAGES = sorted(p.parent for p in PACKAGE.rglob("__init__.py") if "static" not in p.parts)


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_package_says_what_it_holds_and_may_import(package: Path) -> None:
    doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text(encoding="utf-8")))
    assert doc, f"{package.relative_to(ROOT)}/__init__.py has no docstring"
    assert "import" in doc.lower(), f"{package.relative_to(ROOT)}: say what it may import"


def test_the_rule_finds_a_hidden_import(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "def f():\n    from yizhan.geo import crs\n    return crs\n\n"
        "def g():\n    # not a cycle: loaded late on purpose\n    from yizhan import settings\n"
        "    return settings\n",
        encoding="utf-8",
    )
    assert _function_level_imports(probe) == [(2, "from yizhan.geo import crs")]
