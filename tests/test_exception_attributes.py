"""Exceptions get their attributes through their constructors, and keep them when pickled.

Nothing outside ``kstlib/ops/exceptions.py`` assigns an attribute of an
exception after building it, and nothing reads one back with
``getattr(err, "name", None)``: every attribute exists on its class.
"""

from __future__ import annotations

import ast
import pickle
from pathlib import Path

from kstlib.ops.exceptions import (
    ContainerRuntimeNotFoundError,
    SessionNotFoundError,
    SessionStartError,
)

ROOT = Path(__file__).resolve().parent.parent / "kstlib"
#: Attributes only kstlib's exceptions have (``problem``, ``context``... are also YAML's and SDKs').
OURS = {"searched", "missing_image", "ssh_problem", "endpoints", "backends"}


def _exception_attributes() -> set[str]:
    """Every ``self.NAME = ...`` in the exception classes."""
    tree = ast.parse((ROOT / "ops" / "exceptions.py").read_text())
    return {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
        and isinstance(node.value, ast.Name) and node.value.id == "self"
    }


def _offences() -> list[str]:
    names = _exception_attributes()
    found: list[str] = []
    for path in sorted(ROOT.rglob("*.py")):
        if path == ROOT / "ops" / "exceptions.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
            if (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
                    and node.attr in names and isinstance(node.value, ast.Name)
                    and node.value.id in ("err", "exc", "error", "e")):
                found.append(f"{where}: {node.value.id}.{node.attr} = ...")
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id == "getattr" and len(node.args) == 3
                    and isinstance(node.args[1], ast.Constant) and node.args[1].value in OURS
                    and isinstance(node.args[0], ast.Name)
                    and node.args[0].id in ("err", "exc", "error", "e")):
                found.append(f"{where}: getattr(..., {node.args[1].value!r}, ...)")
    return found


def test_no_attribute_is_set_on_an_exception_after_it_is_built() -> None:
    assert {"searched", "missing_image", "ssh_problem", "endpoints"} <= _exception_attributes()
    assert _offences() == []


def test_constructor_attributes_survive_a_pickle_round_trip() -> None:
    missing = SessionNotFoundError("bot", "any", searched=["tmux (default server)", "docker"])
    ssh = ContainerRuntimeNotFoundError("no way in", ["ssh://h"], ssh_problem="refused")
    image = SessionStartError("bot", "podman", "no image", missing_image="app:1")
    again = [pickle.loads(pickle.dumps(err)) for err in (missing, ssh, image)]
    assert again[0].searched == ("tmux (default server)", "docker")
    assert str(again[0]) == str(missing) and "searched: tmux (default server), docker" in str(missing)
    assert (again[1].ssh_problem, again[1].endpoints, str(again[1])) == (
        "refused", ("ssh://h",), "no way in")
    assert (again[2].missing_image, again[2].reason) == ("app:1", "no image")
    assert SessionNotFoundError("bot", "tmux").searched is None
    assert ContainerRuntimeNotFoundError().ssh_problem is None
    assert SessionStartError("bot", "tmux", "x").missing_image is None
