"""The architecture's arrows point one way (shared/DESIGN.md): an ast scan of every package's imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {"tools", "portfolio", "memory", "prompts", "agent", "evals", "schedules"}
# package -> what of ours it may import ("portfolio.models" means that module alone)
ALLOWED: dict[str, set[str]] = {
    "tools": {"tools", "portfolio.models", "portfolio.storage"},
    "portfolio": {"portfolio"},
    "memory": {"memory"},
    "prompts": {"prompts"},
    "agent": {"agent", "tools", "portfolio", "memory", "prompts"},
    "evals": {"evals", "agent", "tools", "portfolio", "memory", "prompts"},
    "schedules": {"schedules", "agent", "tools", "portfolio", "memory", "prompts"},
}
FORBIDDEN_THIRD_PARTY = {"tools": {"langgraph", "langchain", "langchain_core"}, "portfolio": {"langgraph", "langchain", "langchain_core", "openai"}}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)  # "from portfolio import models" counts as "portfolio": spell the module
    return names


def _allowed(name: str, rules: set[str]) -> bool:
    return any(name == r or name.startswith(r + ".") for r in rules)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_the_layers_below_it(package: str) -> None:
    offences = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for name in _imports(path):
            top = name.split(".")[0]
            if top in OURS and not _allowed(name, ALLOWED[package]):
                offences.append(f"{path.relative_to(ROOT)} imports {name}")
            if top in FORBIDDEN_THIRD_PARTY.get(package, set()):
                offences.append(f"{path.relative_to(ROOT)} imports {name} (forbidden in {package}/)")
    assert offences == []


def test_the_scan_sees_real_imports() -> None:
    # guards the test above against passing vacuously (e.g. a wrong ROOT)
    assert "portfolio.models" in _imports(ROOT / "tools" / "portfolio_tools.py")
