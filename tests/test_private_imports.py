"""How many ``_private`` names modules import from other kstlib modules (an ``ast`` count).

The target is at most 10 import statements. A helper that several modules
share is a public name of an internal module (``container/states.py``'s
``session_state``, ``container/logs.py``'s ``render_line``, ``engines/libpod.py``'s
``garbled_tail``, ``swarm/runner.py``'s ``is_managed``), not a ``_name``
read across the boundary. Those left: ``config/_file.py`` reads the backend
spellings of ``config/_schema.py`` (one parser, one package) and
``cli/starting.py``'s older spellings of ``cli/places.py``'s helpers.
The ceiling only goes down.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "kstlib"
CEILING = 2


def private_imports() -> list[str]:
    found: list[str] = []
    for path in sorted(ROOT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("kstlib"):
                names = [a.name for a in node.names
                         if a.name.startswith("_") and not a.name.startswith("__")]
                if names:
                    found.append(f"{path.relative_to(ROOT)}: {node.module} {names}")
    return found


def test_few_private_names_cross_a_module_boundary() -> None:
    found = private_imports()
    assert len(found) <= CEILING, "\n".join(found)


def test_the_cli_and_discovery_import_no_private_name() -> None:
    mine = [f for f in private_imports()
            if f.startswith(("ops/discovery.py", "ops/manager.py", "ops/runners.py",
                             "ops/locations.py", "ops/doctor.py", "cli/"))]
    assert mine == []
