"""Logging etiquette: each module logs to ``logging.getLogger(__name__)``, nothing else.

A library's records then carry the module that wrote them, an application
tunes ``kstlib`` (or any module below it) with the standard hierarchy, and no
two modules share a logger under an invented name. The only other names are
loggers kstlib configures but never writes to: paramiko's (a ``NullHandler``,
so its handshake tracebacks do not reach stderr) and the CLI's ``-v``, which
gives the library's ``kstlib.ops`` loggers a stderr handler.
"""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import kstlib

ROOT = Path(kstlib.__file__).parent

#: (module, the argument of its getLogger call): loggers configured, never written to.
CONFIGURED_ONLY = {("ops/engines/ssh.py", "'paramiko'"), ("cli/__init__.py", "'kstlib.ops'")}


def _get_logger_calls() -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for path in sorted(ROOT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name == "getLogger":
                argument = ", ".join(ast.unparse(a) for a in node.args) or "<root>"
                found.append((str(path.relative_to(ROOT)), argument))
    return found


def test_every_logger_is_named_after_its_module() -> None:
    """The bug this guards: ``kstlib.ops.pull`` was created by two modules."""
    calls = _get_logger_calls()
    assert calls, "the walk found no getLogger call at all"
    other = [c for c in calls if c[1] != "__name__" and c not in CONFIGURED_ONLY]
    assert other == []


def test_the_library_root_has_a_null_handler_and_no_other() -> None:
    handlers = logging.getLogger("kstlib").handlers
    assert [type(h) for h in handlers] == [logging.NullHandler]
