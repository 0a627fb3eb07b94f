"""What each runtime's ``/events`` actions mean (the :data:`kstlib.ops.watch.ACTIONS` table).

The container source is fed recorded actions (no engine): the same handler
serves both runtimes, the table alone tells them apart.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from kstlib.ops.eventstream import Sink, Source
from kstlib.ops.watch import ACTIONS, KINDS, _ContainerSource


class _NoRestarts:
    runtime = "docker"

    def inspect(self, ref: str) -> Any:
        return type("Info", (), {"restart_count": 0})()


def _source(runtime: str) -> tuple[_ContainerSource, Sink]:
    sink = Sink(64)
    source = _ContainerSource.__new__(_ContainerSource)
    Source.__init__(source, sink, threading.Event(), None)  # no engine to connect to
    source.engine, source.runtime = _NoRestarts(), runtime
    source.counts, source.dead, source.gone = {}, set(), set()
    return source, sink


def _kinds(runtime: str, *actions: str) -> list[str]:
    source, sink = _source(runtime)
    for action in actions:
        attrs = {"name": "bot", "exitCode": "3"}
        source.on_raw({"Action": action, "Actor": {"ID": "c1", "Attributes": attrs}})
    return [sink.queue.get_nowait().kind for _ in range(sink.queue.qsize())]


def test_every_kind_in_the_table_is_a_kind_of_event() -> None:
    assert {kind for actions in ACTIONS.values() for kind in actions.values()} <= set(KINDS)


@pytest.mark.parametrize("runtime", ["docker", "podman"])
def test_a_run_told_once_per_runtime(runtime: str) -> None:
    gone = "destroy" if runtime == "docker" else "remove"
    kinds = _kinds(runtime, "create", "start", "die", "die", "stop", gone, gone)
    stopped = ["stopped"] if runtime == "docker" else []  # Podman's stop: left out
    assert kinds == ["started", "exited", *stopped, "removed"]


def test_an_action_of_the_other_runtime_means_nothing() -> None:
    assert _kinds("docker", "remove") == []
    assert _kinds("podman", "destroy", "stop") == []
