"""The layer order (pyproject.toml [tool.importlinter]: core, errors/paths, console, models,
backends, export, devices, analysis, harness, reports and gate, commands and cli) is kept, and no
two modules import each other at module level."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import effbench

ROOT = Path(effbench.__file__).parent


def test_import_linter_contract_is_kept():
    lint = Path(sys.executable).parent / "lint-imports"
    if not lint.exists():
        pytest.skip("import-linter not installed (pip install import-linter)")
    r = subprocess.run([str(lint)], capture_output=True, text=True, timeout=300, cwd=ROOT.parents[1])
    assert r.returncode == 0, r.stdout[-3000:]


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _top_level_imports(path: Path, name: str) -> set[str]:
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.add(mod)
            out |= {f"{mod}.{a.name}" for a in node.names}
    return {m for m in out if m.startswith("effbench")}


def test_no_module_level_import_cycles():
    modules = {_module_name(p): p for p in ROOT.rglob("*.py")}
    graph = {
        name: {m for m in _top_level_imports(path, name) if m in modules and m != name}
        for name, path in modules.items()
    }
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node: str, stack: list[str]) -> bool:
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                cycle.extend(stack[stack.index(nxt) :] + [node, nxt] if nxt in stack else [node, nxt])
                return True
            if nxt not in state and visit(nxt, stack + [node]):
                return True
        state[node] = 2
        return False

    for name in sorted(graph):
        if name not in state and visit(name, []):
            break
    assert not cycle, " -> ".join(cycle)


def _imports_anywhere(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            out.add(node.module.split(".")[0])
    return out


def test_only_the_command_line_imports_typer():
    """Commands live in effbench.commands (and cli.py); the packages below them are libraries. console.py
    holds the one-line-error decorator the commands share."""
    allowed = {"effbench.cli", "effbench.console"}
    found = sorted(
        name
        for path in ROOT.rglob("*.py")
        if (name := _module_name(path)) not in allowed
        and not name.startswith("effbench.commands")
        and "typer" in _imports_anywhere(path)
    )
    assert found == [], f"typer imported outside effbench.commands: {found}"
