"""Swarm events on the two-node harness swarm: a task's exit is told whichever node it ran on.

An engine's ``/events`` speaks of its own containers only, so a swarm stream
reads the manager's engine and each engine of ``node_urls``. Each service here
is pinned to one node (a placement constraint), so its exit can only be seen
on that node's engine.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from kstlib.ops import BackendType, EventStream, SessionManager, events
from kstlib.ops.exceptions import SessionConfigError
from kstlib.ops.live import open_streams
from kstlib.ops.locations import Location
from kstlib.ops.runners import make_runner

from .swarm_support import Swarm, lab_config, swarm_name, until
from .test_events import collecting

pytestmark = pytest.mark.docker

ON_WORKER = ("node.labels.role==worker",)
ON_MANAGER = ("node.role==manager",)


def _exits(swarm: Swarm, name: str, code: int, placement: tuple[str, ...]) -> None:
    """Start a one-shot service pinned by ``placement`` that exits with ``code``."""
    swarm.runner.start(
        swarm.config(name, ["sh", "-c", f"sleep 1; exit {code}"], placement=placement)
    )


def test_an_exit_on_the_worker_is_told_once_with_the_manager_listed_as_a_node(
    swarm: Swarm,
) -> None:
    # node_urls names the manager's own engine too: its tasks' exits are not doubled.
    manager, worker = swarm.env["KSTLIB_TEST_SWARM_MANAGER"], swarm.env["KSTLIB_TEST_SWARM_WORKER"]
    far, near = swarm_name("evwk"), swarm_name("evmg")
    stream = events([far, near], backend="swarm", base_url=manager, node_urls=[manager, worker])
    with collecting(stream) as col:
        _exits(swarm, far, 4, ON_WORKER)
        _exits(swarm, near, 5, ON_MANAGER)
        col.until(lambda: {e.name for e in col.live("exited")} == {far, near}, 90)
        assert swarm.containers(far)["manager"] == [] and swarm.containers(far)["worker"]
        swarm.runner.stop(far)
        swarm.runner.stop(near)
        col.until(lambda: len(col.live("removed")) == 2, 60)
    exits = {e.name: e.exit_code for e in col.live("exited")}
    assert exits == {far: 4, near: 5}
    assert len(col.live("exited")) == 2
    assert {e.engine for e in col.seen if e.name} == {manager}


def test_the_manager_events_follow_the_nodes_of_its_runner(swarm: Swarm) -> None:
    manager, worker = swarm.env["KSTLIB_TEST_SWARM_MANAGER"], swarm.env["KSTLIB_TEST_SWARM_WORKER"]
    name = swarm_name("evsm")

    def factory(backend: BackendType, **options: Any) -> Any:
        return make_runner(backend, **{**options, "node_urls": [worker]})

    session = SessionManager(name, backend="swarm", base_url=manager, runner_factory=factory)
    with collecting(session.events()) as col:
        _exits(swarm, name, 3, ON_WORKER)
        col.until(lambda: col.live("exited"), 90)
        swarm.runner.stop(name)
        col.until(lambda: col.live("removed"), 60)
    assert [e.exit_code for e in col.live("exited")] == [3]


def test_aio_events_take_the_nodes_too(swarm: Swarm) -> None:
    from kstlib.ops import aio

    manager, worker = swarm.env["KSTLIB_TEST_SWARM_MANAGER"], swarm.env["KSTLIB_TEST_SWARM_WORKER"]
    name = _on_the_worker_until_usr1(swarm, "evai")
    task = until("its task running on the worker", lambda: _running(swarm, name))

    async def first_exit() -> int | None:
        async for event in aio.events(
            [name], backend="swarm", base_url=manager, node_urls=[worker]
        ):
            if event.snapshot:  # listed: the stream is open, the task may go now
                await asyncio.to_thread(task.kill, signal="SIGUSR1")
            elif event.kind == "exited":
                return event.exit_code
        return None

    try:
        assert asyncio.run(asyncio.wait_for(first_exit(), 120)) == 6
    finally:
        swarm.runner.stop(name)


def _on_the_worker_until_usr1(swarm: Swarm, prefix: str) -> str:
    """A service whose one task, on the worker, runs until SIGUSR1 ends it with code 6."""
    name = swarm_name(prefix)
    loop = "trap 'exit 6' USR1; echo up; while :; do sleep 1; done"
    swarm.runner.start(swarm.config(name, ["sh", "-c", loop], placement=ON_WORKER))
    return name


def test_live_streams_follow_a_swarm_with_the_nodes_its_engine_lists(swarm: Swarm) -> None:
    # What list --watch opens: the swarm place, its nodes from the config's swarm_nodes.
    manager, worker = swarm.env["KSTLIB_TEST_SWARM_MANAGER"], swarm.env["KSTLIB_TEST_SWARM_WORKER"]
    name = _on_the_worker_until_usr1(swarm, "evlv")
    task = until("its task running on the worker", lambda: _running(swarm, name))
    place = Location(BackendType.SWARM, endpoint=manager)
    (stream,) = open_streams([place, place], [name], swarm_nodes={manager: (worker,)}.__getitem__)
    assert isinstance(stream, EventStream)
    try:
        with collecting(stream) as col:
            col.until(lambda: any(e.snapshot for e in col.seen), 60)
            task.kill(signal="SIGUSR1")
            col.until(lambda: col.live("exited"), 90)
        assert [e.exit_code for e in col.live("exited")] == [6]
    finally:
        swarm.runner.stop(name)


def test_node_urls_are_checked_before_anything_starts() -> None:
    with pytest.raises(SessionConfigError, match="node_urls"):
        events(backend="container", engine="docker", node_urls=["tcp://worker:2375"])
    with pytest.raises(SessionConfigError):
        events(backend="swarm", node_urls=["not a url"])


def _running(swarm: Swarm, name: str) -> Any:
    running = [c for c in swarm.containers(name)["worker"] if c.status == "running"]
    return running[0] if running else None


def test_cli_follows_the_nodes_a_swarm_engine_lists(swarm: Swarm, tmp_path: Path) -> None:
    # 'kstlib ops events -b swarm' reaches the manager by DOCKER_HOST; the config's
    # swarm engine lists the worker in nodes:, whose engine tells the exit.
    manager, worker = swarm.env["KSTLIB_TEST_SWARM_MANAGER"], swarm.env["KSTLIB_TEST_SWARM_WORKER"]
    lab_config(tmp_path, manager, worker)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KSTLIB_CONFIG", "XDG_"))}
    env.update(HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "config"), DOCKER_HOST=manager)
    name = _on_the_worker_until_usr1(swarm, "evcl")
    task = until("its task running on the worker", lambda: _running(swarm, name))
    proc = subprocess.Popen(
        [sys.executable, "-m", "kstlib", "ops", "events", name, "-b", "swarm", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    reader = threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        # The listing shows the service (the stream is open): then its task exits on the worker.
        first = json.loads(lines.get(timeout=60))
        assert (first["name"], first["kind"], first["snapshot"]) == (name, "started", True)
        task.kill(signal="SIGUSR1")
        seen: list[dict[str, Any]] = []
        while not any(e["kind"] == "exited" for e in seen):
            seen.append(json.loads(lines.get(timeout=90)))
        swarm.runner.stop(name)
        while not any(e["kind"] == "removed" for e in seen):
            seen.append(json.loads(lines.get(timeout=60)))
        assert [e["exit_code"] for e in seen if e["kind"] == "exited"] == [6]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
