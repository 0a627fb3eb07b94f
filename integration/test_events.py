"""Live session events on the real Docker and Podman engines (list, watch, resync, lost)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import kstlib.ops
from kstlib.ops import BackendType, EventStream, SessionConfig, SessionEvent, SessionManager, events
from kstlib.ops.container import ContainerRunner

from .conftest import TEST_IMAGE, unique

RUNTIMES = ["docker", "podman"]


class Collector:
    """Reads a stream in a thread; the test waits for what it expects (hang guard only)."""

    def __init__(self, stream: EventStream) -> None:
        self.stream = stream
        self.seen: list[SessionEvent] = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        for event in self.stream:
            with self.lock:
                self.seen.append(event)

    def live(self, kind: str) -> list[SessionEvent]:
        with self.lock:
            return [e for e in self.seen if e.kind == kind and not e.snapshot]

    def until(self, check: object, bound: float = 60.0) -> None:
        deadline = time.monotonic() + bound
        while time.monotonic() < deadline:
            if check():  # type: ignore[operator]
                return
            time.sleep(0.05)
        raise AssertionError(f"not seen in {bound}s: {self.seen[-20:]}")


@contextlib.contextmanager
def collecting(stream: EventStream) -> Iterator[Collector]:
    col = Collector(stream)
    try:
        yield col
    finally:
        stream.close()
        col.thread.join(5)
        assert not col.thread.is_alive()


def _cfg(name: str, runtime: str, command: str, restart: str | None = None) -> SessionConfig:
    return SessionConfig(
        name=name,
        backend=BackendType.CONTAINER,
        image=TEST_IMAGE,
        command=("sh", "-c", command),
        runtime=runtime,
        restart=restart,
    )


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_each_kind(runtime: str) -> None:
    runner = ContainerRunner(runtime=runtime)
    name = unique("ev")
    with collecting(events([name], engine=runtime)) as col:
        runner.start(_cfg(name, runtime, "exit 3"))
        col.until(lambda: col.live("exited"))
        runner.stop(name, timeout=1)
        col.until(lambda: col.live("removed"))
        runner.start(_cfg(name, runtime, "sleep 300"))
        col.until(lambda: len(col.live("started")) >= 2)
        runner.stop(name, timeout=10)
        col.until(lambda: len(col.live("removed")) >= 2)
        time.sleep(0.5)  # a doubled event would arrive now
    exited = col.live("exited")
    said = [(e.kind, e.exit_code) for e in col.seen]
    # SIGTERM ends the sleep (143); a generous stop timeout keeps SIGKILL (137) out.
    assert [e.exit_code for e in exited] == [3, 143], said
    assert len(col.live("removed")) == 2, said
    # Docker reports the stop request itself; Podman only sometimes (its own race), so kstlib
    # drops it there: the same answer every run.
    assert len(col.live("stopped")) == (1 if runtime == "docker" else 0), said
    assert exited[0].name == name and exited[0].engine == runtime and exited[0].managed
    assert exited[0].time.tzinfo is not None
    assert exited[0].to_dict()["backend"] == "container"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_snapshot_first(runtime: str) -> None:
    runner = ContainerRunner(runtime=runtime)
    name = unique("evs")
    runner.start(_cfg(name, runtime, "sleep 300"))
    try:
        with collecting(events([name], engine=runtime)) as col:
            col.until(lambda: any(e.snapshot and e.name == name for e in col.seen))
            assert [e.kind for e in col.seen if e.snapshot] == ["started"]
    finally:
        runner.stop(name, timeout=1)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_twenty_exits_each_once(runtime: str) -> None:
    runner = ContainerRunner(runtime=runtime)
    names = [unique("evn") for _ in range(20)]
    with collecting(events(names, engine=runtime)) as col:
        try:
            for i, name in enumerate(names):
                runner.start(_cfg(name, runtime, f"sleep 2; exit {i}"))
            col.until(lambda: len(col.live("exited")) >= len(names), 120)
            time.sleep(1)  # a doubled event would arrive now
        finally:
            for name in names:
                with contextlib.suppress(Exception):
                    runner.stop(name, timeout=1)
    exited = col.live("exited")
    assert sorted((e.name, e.exit_code) for e in exited) == sorted(
        (n, i) for i, n in enumerate(names)
    )


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_three_restarts_counted(runtime: str) -> None:
    runner = ContainerRunner(runtime=runtime)
    name = unique("evr")
    with collecting(events([name], engine=runtime)) as col:
        try:
            runner.start(_cfg(name, runtime, "sleep 0.3; exit 1", restart="on-failure:3"))
            col.until(lambda: len(col.live("exited")) >= 4, 120)
            time.sleep(1)
        finally:
            runner.stop(name, timeout=1)
    assert [e.restart_count for e in col.live("restarted")] == [1, 2, 3]


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_close_from_another_thread(runtime: str) -> None:
    stream = events(["nothing-" + unique()], engine=runtime)
    stream.close()  # warm the adapter's connection pool once
    threads, fds = threading.active_count(), _fds()
    stream = events(["nothing-" + unique()], engine=runtime)
    done = threading.Event()

    def read() -> None:
        for _ in stream:
            pass
        done.set()

    reader = threading.Thread(target=read)
    reader.start()
    time.sleep(0.5)
    threading.Thread(target=stream.close).start()
    assert done.wait(10), "iteration did not end after close()"
    reader.join(5)
    deadline = time.monotonic() + 5
    while threading.active_count() > threads and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() == threads
    assert _fds() <= fds


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_consumer_that_stops_reading_gets_lost(runtime: str) -> None:
    runner = ContainerRunner(runtime=runtime)
    names = [unique("evl") for _ in range(6)]
    stream = events(names, engine=runtime, queue_size=2)
    try:
        for name in names:
            runner.start(_cfg(name, runtime, "exit 0"))
        for name in names:
            runner.wait(name, timeout=60)
        time.sleep(1.5)
        first = next(stream)
        assert first.kind == "lost" and first.dropped is not None and first.dropped >= 1
        rest = [next(stream), next(stream)]
        assert len(rest) == 2
    finally:
        stream.close()
        for name in names:
            with contextlib.suppress(Exception):
                runner.stop(name, timeout=1)


def test_cli_json_lines_and_ctrl_c_exits_0() -> None:
    runner = ContainerRunner(runtime="docker")
    name = unique("evc")
    runner.start(_cfg(name, "docker", "sleep 300"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "kstlib", "ops", "events", name, "--engine", "docker", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())
        assert (first["name"], first["kind"], first["snapshot"]) == (name, "started", True)
        runner.stop(name, timeout=1)
        kinds = []
        while "removed" not in kinds:
            kinds.append(json.loads(proc.stdout.readline())["kind"])
        assert kinds.count("exited") == 1
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_manager_events_and_module_call() -> None:
    name = unique("evm")
    manager = SessionManager(name, backend="container", image=TEST_IMAGE, runtime="podman")
    with collecting(manager.events()) as col, collecting(kstlib.ops.events([name])) as both:
        manager.start(("sh", "-c", "exit 5"))
        col.until(lambda: col.live("exited"))
        both.until(lambda: both.live("exited"))
        manager.stop()
    assert [e.exit_code for e in col.live("exited")] == [5]
    assert [e.exit_code for e in both.live("exited")] == [5]


def test_swarm_started_exited_removed(swarm: Any) -> None:
    name = unique("evw")
    url = swarm.env["KSTLIB_TEST_SWARM_MANAGER"]
    with collecting(events([name], backend="swarm", base_url=url)) as col:
        swarm.runner.start(
            swarm.config(name, ["sh", "-c", "sleep 1; exit 4"], placement=("node.role==manager",))
        )
        col.until(lambda: col.live("started") and col.live("exited"), 90)
        swarm.runner.stop(name)
        col.until(lambda: col.live("removed"), 60)
    assert col.live("exited")[0].exit_code == 4
    assert len(col.live("started")) == 1 and len(col.live("removed")) == 1
    assert all(e.backend is BackendType.SWARM for e in col.seen)
