"""The control-mode channel's rules that need no tmux: what it carries, who starts processes."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from kstlib.ops import TmuxRunner
from kstlib.ops.tmux import control
from kstlib.ops.tmux.pane import FORMAT

KSTLIB = Path(__file__).resolve().parent.parent / "kstlib"


def imports_subprocess(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "subprocess"
                                                for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "subprocess":
            return True
    return False


def test_only_the_control_module_imports_subprocess() -> None:
    found = sorted(str(p.relative_to(KSTLIB)) for p in KSTLIB.rglob("*.py") if imports_subprocess(p))
    assert found == ["ops/tmux/control.py"]


def test_only_read_only_queries_that_quote_byte_for_byte_go_through_it() -> None:
    assert control.encode(["list-panes", "-t", "=a b;c:", "-F", FORMAT]) == (
        f"'list-panes' '-t' '=a b;c:' '-F' '{FORMAT}'"
    )
    for args in (
        ["new-session", "-d", "-s", "x"],
        ["kill-session", "-t", "=x"],
        ["list-panes", "-t", "=x:", ";", "kill-server"],
        ["has-session", "-t", "=it's"],
        ["has-session", "-t", "=back\\slash"],
        ["has-session", "-t", "=line\nbreak"],
        [],
    ):
        assert control.encode(args) is None, args


def test_it_is_opt_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KSTLIB_TMUX_CONTROL", raising=False)
    assert TmuxRunner(socket_name="x")._channels is None
    assert TmuxRunner(socket_name="x", control=True)._channels is not None
    monkeypatch.setenv("KSTLIB_TMUX_CONTROL", "1")
    assert TmuxRunner(socket_name="x")._channels is not None
    assert TmuxRunner(socket_name="x", control=False)._channels is None
