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
