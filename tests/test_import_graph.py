"""No import cycle among kstlib modules (module-level, function-level and TYPE_CHECKING imports).

The graph: ``import a.b`` / ``from a import b`` is an edge to the module it
names (``from pkg import sub`` to ``pkg.sub``); an edge to one of the importing
module's own ancestor packages is dropped, since Python initialised those first.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import kstlib


def _modules(root: Path) -> dict[str, tuple[Path, bool]]:
    found: dict[str, tuple[Path, bool]] = {}
    for path in (root / "kstlib").rglob("*.py"):
        parts = list(path.relative_to(root).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)
    return found


def _imported(node: ast.AST, package: str, mods: dict[str, tuple[Path, bool]]) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        parts = package.split(".")
        base = ".".join(
            parts[: len(parts) - node.level + 1] + ([node.module] if node.module else [])
        )
    else:
        base = node.module or ""
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]


def import_graph() -> dict[str, set[str]]:
    root = Path(kstlib.__file__).parent.parent
    mods = _modules(root)
    graph: dict[str, set[str]] = {name: set() for name in mods}
    for name, (path, is_pkg) in mods.items():
        package = name if is_pkg else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            for target in _imported(node, package, mods):
                while target and target not in mods:
                    target = target.rpartition(".")[0]
                if target and target != name and not name.startswith(target + "."):
                    graph[name].add(target)
    return graph


def test_the_graph_sees_function_level_imports() -> None:
    graph = import_graph()
    # engines.endpoints imports the SDK adapters inside _open(), and only it does.
    assert "kstlib.ops.engines.docker" in graph["kstlib.ops.engines.endpoints"]
    importers = {m for m, targets in graph.items() if "kstlib.ops.engines.podman" in targets}
    assert importers == {"kstlib.ops.engines.endpoints"}


def test_no_import_cycle_among_kstlib_modules() -> None:
    graphlib.TopologicalSorter(import_graph()).prepare()  # raises CycleError on a cycle
