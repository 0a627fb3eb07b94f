"""Root pytest configuration: the run's own tmux folder; examples that run nothing are dropped."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

_SAVED_TMUX_TMPDIR: list[str | None] = []


def pytest_configure(config: pytest.Config) -> None:
    """The run's own tmux folder (``TMUX_TMPDIR``): no test reaches the user's tmux servers.

    Every tmux server the run starts (a test's private socket, the docstring
    examples' ``kstlib-doc``, a CLI call by mistake on ``default``) lives there,
    so two runs on one machine never meet; it is killed and removed at the end.
    """
    _SAVED_TMUX_TMPDIR.append(os.environ.get("TMUX_TMPDIR"))
    os.environ["TMUX_TMPDIR"] = tempfile.mkdtemp(prefix="kstlib-run-")  # short: socket paths


def pytest_unconfigure(config: pytest.Config) -> None:
    """Kill every tmux server left in the run's folder, remove it, restore the variable."""
    if not _SAVED_TMUX_TMPDIR:
        return
    path = os.environ["TMUX_TMPDIR"]
    folder = os.path.join(path, f"tmux-{os.getuid()}")
    if os.path.isdir(folder):
        from kstlib.ops import TmuxRunner

        for socket in os.listdir(folder):
            TmuxRunner(socket_path=os.path.join(folder, socket)).kill_server()
    shutil.rmtree(path, ignore_errors=True)
    saved = _SAVED_TMUX_TMPDIR.pop()
    if saved is None:
        del os.environ["TMUX_TMPDIR"]
    else:
        os.environ["TMUX_TMPDIR"] = saved


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Drop docstring examples whose every line is ``+SKIP``: they are not tests.

    Those examples show calls that need a terminal or a user's own engine
    (``attach()``, a bare ``ContainerRunner()``); reporting them as skipped
    tests would read like missing engines.
    """
    import doctest

    from _pytest.doctest import DoctestItem

    def runs_something(item: pytest.Item) -> bool:
        if not isinstance(item, DoctestItem) or item.dtest is None:
            return True
        return any(not ex.options.get(doctest.SKIP, False) for ex in item.dtest.examples)

    kept = [item for item in items if runs_something(item)]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = kept
