"""SessionManager.find(name, engines=...) searches named engines at once (issue 15)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kstlib.ops import SessionConfig, SessionManager, TmuxRunner
from kstlib.ops.config import EngineConfig
from kstlib.ops.exceptions import SessionAmbiguousError, SessionNotFoundError

from .conftest import unique

pytestmark = pytest.mark.tmux


@pytest.fixture
def two() -> Iterator[tuple[EngineConfig, EngineConfig]]:
    a = EngineConfig("alpha", backend="tmux", socket_name=unique("fa"))
    b = EngineConfig("beta", backend="tmux", socket_name=unique("fb"))
    yield a, b
    for engine in (a, b):
        TmuxRunner(socket_name=engine.socket_name).kill_server()


def test_find_returns_the_manager_on_the_engine_that_holds_it(
    two: tuple[EngineConfig, EngineConfig],
) -> None:
    alpha, beta = two
    name = unique("s")
    TmuxRunner(socket_name=beta.socket_name).start(SessionConfig(name=name, command="sleep 30"))
    found = SessionManager.find(name, engines=[alpha, beta])
    assert found.config.socket_name == beta.socket_name and found.is_running()
    TmuxRunner(socket_name=alpha.socket_name).start(SessionConfig(name=name, command="sleep 30"))
    with pytest.raises(SessionAmbiguousError) as ambiguous:
        SessionManager.find(name, engines=[alpha, beta])
    assert "engine alpha" in str(ambiguous.value) and "engine beta" in str(ambiguous.value)


def test_not_found_names_every_engine_and_the_unreachable_one(
    two: tuple[EngineConfig, EngineConfig],
) -> None:
    alpha, _ = two
    down = EngineConfig("gone", "unix:///nonexistent-kstlib.sock", "docker", timeout=2)
    TmuxRunner(socket_name=alpha.socket_name).start(SessionConfig(name="other", command="sleep 30"))
    with pytest.raises(SessionNotFoundError) as missing:
        SessionManager.find("nobody", engines=[alpha, down])
    assert missing.value.searched == ("engine alpha", "engine gone (not reachable)")  # type: ignore[attr-defined]
