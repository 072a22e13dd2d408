"""The package layout: imports run one way between the rooms, and no module imports itself back."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# each room, and the rooms it may import from (favit and baselines below everything)
LAYERS: dict[str, set[str]] = {
    "favit": set(),
    "baselines": {"favit"},
    "suites.engine": {"favit", "baselines"},
    "suites.training": {"favit", "baselines", "suites.engine"},
    "suites.measuring": {"favit", "baselines", "suites.engine", "suites.training"},
    "suites.analysis": {
        "favit",
        "baselines",
        "suites.engine",
        "suites.training",
        "suites.measuring",
        "suites.registry",
    },
    "suites.registry": {"suites.engine"},  # suites/__init__.py: the names of the suites
}


def room(module: str) -> str | None:
    """The room a project module belongs to (None for a module outside the project)."""
    parts = module.split(".")
    if parts[0] in ("favit", "baselines"):
        return parts[0]
    if parts[0] != "suites":
        return None
    if len(parts) == 1:
        return "suites.registry"
    if parts[1] in ("engine", "training", "analysis"):
        return f"suites.{parts[1]}"
    return "suites.measuring"


def project_modules() -> dict[str, Path]:
    modules = {}
    for package in ("favit", "baselines", "suites"):
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def imported_modules(path: Path, modules: dict[str, Path]) -> set[str]:
    """Every project module ``path`` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        found |= {name for name in names if name in modules}
    return found


MODULES = project_modules()
GRAPH = {name: imported_modules(path, MODULES) - {name} for name, path in MODULES.items()}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_run_one_way_between_rooms(module):
    own = room(module)
    allowed = LAYERS[own] | {own}
    upward = sorted(m for m in GRAPH[module] if room(m) not in allowed)
    assert not upward, f"{module} ({own}) imports upward: {upward}"


def test_no_module_imports_itself_back():
    """No cycle in the module graph (imports inside functions included), packages aside: a
    package's ``__init__`` may re-export its own modules."""
    graph = {
        name: {m for m in targets if not name.startswith(m + ".") and not m.startswith(name + ".")}
        for name, targets in GRAPH.items()
    }
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycle = [*path[path.index(nxt) :], nxt]
                pytest.fail(f"import cycle: {' -> '.join(cycle)}")
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
