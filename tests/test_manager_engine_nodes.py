"""A named swarm engine's ``nodes`` reach the runner of ``SessionManager(engine=...)``.

Its stop waits for those nodes' containers and its events read their exits,
as the CLI's runner for that engine does.
"""

from __future__ import annotations

from kstlib.ops import EngineConfig, SessionManager
from kstlib.ops.models import BackendType

MANAGER = "tcp://127.0.0.1:1"
WORKER = "tcp://127.0.0.1:2"


def test_a_swarm_engines_nodes_reach_the_managers_runner() -> None:
    lab = EngineConfig("lab", MANAGER, backend="swarm", nodes=(WORKER,))
    bot = SessionManager("web", engine=lab, image="app:1")
    assert bot.backend is BackendType.SWARM
    assert tuple(bot.runner.node_urls) == (WORKER,)  # type: ignore[attr-defined]


def test_an_engine_without_nodes_gives_none() -> None:
    lab = EngineConfig("lab", MANAGER, backend="swarm")
    assert tuple(SessionManager("web", engine=lab, image="app:1").runner.node_urls) == ()  # type: ignore[attr-defined]
    docker = EngineConfig("box", MANAGER, backend="docker")
    assert SessionManager("web", engine=docker, image="app:1").backend is BackendType.CONTAINER
