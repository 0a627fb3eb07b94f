"""The CLI is a layer over the library's public modules: it imports no SDK and no backend.

``kstlib/cli`` talks to :mod:`kstlib.ops` (the manager, discovery, runners,
config, doctor, models, exceptions); the backends (``tmux``, ``container``,
``swarm``, ``engines``) and their SDKs are reached only through them.
"""

from __future__ import annotations

import ast
from pathlib import Path

CLI = Path(__file__).resolve().parent.parent / "kstlib" / "cli"
SDKS = ("libtmux", "docker", "podman", "paramiko")
BACKENDS = ("kstlib.ops.engines", "kstlib.ops.tmux", "kstlib.ops.container", "kstlib.ops.swarm")


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
            if node.module == "kstlib.ops":  # from kstlib.ops import tmux
                names.extend(f"kstlib.ops.{alias.name}" for alias in node.names)
    return names


def _forbidden(name: str) -> bool:
    top = name.split(".")[0]
    return top in SDKS or any(name == b or name.startswith(b + ".") for b in BACKENDS)


def test_the_cli_imports_no_sdk_and_no_backend_module() -> None:
    found = {
        f"{path.name}: {name}"
        for path in sorted(CLI.glob("**/*.py"))
        for name in _imports(path)
        if _forbidden(name)
    }
    assert found == set()


def test_the_check_sees_a_forbidden_import() -> None:
    assert _forbidden("libtmux.common") and _forbidden("kstlib.ops.tmux.sockets")
    assert not _forbidden("kstlib.ops.discovery") and not _forbidden("dockerfile_parse")
