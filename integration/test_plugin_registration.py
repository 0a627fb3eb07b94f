"""Every way of naming the plugin works (issue 22, point 8), in real pytest processes.

``-p kstlib.ops.pytest_plugin`` crashed with "Plugin already registered under a
different name" when the entry point was loaded too.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kstlib.ops import TmuxRunner

pytest_plugins = ["pytester"]

pytestmark = pytest.mark.tmux


@pytest.fixture
def socket(tmux_socket: str) -> Iterator[str]:
    name = f"kstlib-reg-{uuid.uuid4().hex[:8]}"
    yield name
    TmuxRunner(socket_name=name).kill_server()
    folder = Path(os.environ.get("TMUX_TMPDIR", "/tmp")) / f"tmux-{os.getuid()}"
    with contextlib.suppress(OSError):
        (folder / name).unlink()  # tmux leaves the socket file behind


@pytest.mark.parametrize(
    ("args", "conftest", "autoload"),
    [
        ((), None, True),  # the entry point alone
        (("-p", "kstlib.ops.pytest_plugin"), None, True),  # the module's name, and the entry
        (("-p", "kstlib_ops"), None, True),  # the entry point's name
        ((), 'pytest_plugins = ["kstlib.ops.pytest_plugin"]\n', True),  # a conftest
        (("-p", "kstlib.ops.pytest_plugin"), None, False),  # without autoload
        ((), 'pytest_plugins = ["kstlib.ops.pytest_plugin"]\n', False),
    ],
    ids=["entry-point", "p-module", "p-entry-name", "conftest", "p-module-noauto",
         "conftest-noauto"],
)
def test_every_spelling_registers_the_plugin_once(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    socket: str,
    args: tuple[str, ...],
    conftest: str | None,
    autoload: bool,
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(pytester.path / "state"))
    if autoload:
        monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    else:
        monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    if conftest:
        pytester.makeconftest(conftest)
    pytester.makepyfile(f"""
        import sys

        def test_uses_the_fixture(ops_session, request):
            manager = request.config.pluginmanager
            plugin = sys.modules["kstlib.ops.pytest_plugin"]
            assert manager.is_registered(plugin)
            hooks = [impl.plugin for impl in manager.hook.pytest_addoption.get_hookimpls()]
            assert hooks.count(plugin) == 1  # registered once, under one name
            worker = ops_session("echo ready; sleep 60", socket_name={socket!r})
            assert worker.wait_for_log("ready", timeout=10) == "ready"
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args,
                                           "--kstlib-ops-keep")
    assert "already registered" not in result.stdout.str() + result.stderr.str()
    result.assert_outcomes(passed=1)
    # --kstlib-ops-keep exists and works: the plugin's options were added once
    kept = [s.name for s in TmuxRunner(socket_name=socket).list_sessions()]
    assert len(kept) == 1 and kept[0].startswith("test_uses_the_fixture-")
