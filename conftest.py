"""Root pytest configuration: the docstring examples share one tmux socket."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session", autouse=True)
def _kill_doctest_tmux_server() -> Iterator[None]:
    """Docstring examples use the ``kstlib-doc`` socket; leave no server behind."""
    yield
    from kstlib.ops import TmuxRunner

    TmuxRunner(socket_name="kstlib-doc").kill_server()


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
