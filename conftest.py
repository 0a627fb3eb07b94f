"""Root pytest configuration: the docstring examples' tmux server lives in the run's own folder."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def _doctest_tmux_dir() -> Iterator[str]:
    """A folder of this run's own for the docstring examples' ``kstlib-doc`` server.

    Two runs on one machine (or a user's own ``kstlib-doc``) never share it; the
    server is killed and the folder removed at the end.
    """
    path = tempfile.mkdtemp(prefix="kstlib-doc-")  # short: a socket path has a limit
    yield path
    from kstlib.ops import TmuxRunner

    saved = os.environ.get("TMUX_TMPDIR")
    os.environ["TMUX_TMPDIR"] = path
    try:
        TmuxRunner(socket_name="kstlib-doc").kill_server()
    finally:
        if saved is None:
            del os.environ["TMUX_TMPDIR"]
        else:
            os.environ["TMUX_TMPDIR"] = saved
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(autouse=True)
def _doctest_private_tmux(request: pytest.FixtureRequest) -> Iterator[None]:
    """Docstring examples reach tmux through the run's own folder (``TMUX_TMPDIR``)."""
    from _pytest.doctest import DoctestItem

    if not isinstance(request.node, DoctestItem):
        yield
        return
    path = request.getfixturevalue("_doctest_tmux_dir")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TMUX_TMPDIR", path)
        yield


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
