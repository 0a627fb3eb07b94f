"""Live session events on a private tmux server: the collector's journal as the source."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator

import pytest

import kstlib.ops
from kstlib.ops import SessionConfig, SessionManager, TmuxRunner, aio, events
from kstlib.ops.tmux import files
from kstlib.ops.tmux.events import TmuxSource
from kstlib.ops.tmux.logs import collector_alive

from .conftest import unique
from .test_events import collecting


def _stream(socket: str, names: list[str] | None = None, **kw: object) -> kstlib.ops.EventStream:
    return events(names, backend="tmux", socket_name=socket, **kw)  # type: ignore[arg-type]


@pytest.fixture
def listed(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Set once a stream has listed its server (the real listing, only observed).

    The source lists the server in its own thread: a session started before
    that listing is told by the snapshot, not live. A test that counts live
    begins waits for it before it starts any session.
    """
    done = threading.Event()
    real = TmuxSource._listing

    def listing(self: TmuxSource) -> list[str]:
        lines = real(self)
        done.set()
        return lines

    monkeypatch.setattr(TmuxSource, "_listing", listing)
    return done


@pytest.fixture
def own() -> Iterator[TmuxRunner]:
    """A tmux server of this test alone (the test kills it)."""
    runner = TmuxRunner(socket_name=f"kstlib-ev-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    yield runner
    runner.kill_server()


def test_public_name_is_the_function() -> None:
    import kstlib.ops.tmux.events  # a submodule import must not shadow the function

    assert callable(kstlib.ops.events) and not isinstance(kstlib.ops.events, type(kstlib))
    assert kstlib.ops.events.__module__ == "kstlib.ops.watch"


def test_each_kind_once_with_its_code(
    tmux: TmuxRunner, tmux_socket: str, listed: threading.Event
) -> None:
    a, b, c = unique("eva"), unique("evb"), unique("evc")
    with collecting(_stream(tmux_socket, [a, b, c])) as col:
        assert listed.wait(30)  # a hang guard only
        tmux.start(SessionConfig(name=a, command="echo hi; exit 3"))
        tmux.start(SessionConfig(name=b, command="sleep 300"))
        tmux.start(SessionConfig(name=c, command="exit 9", restart="on-failure:1"))
        col.until(lambda: len(col.live("started")) == 3 and len(col.live("exited")) == 3)
        tmux.stop(b)  # graceful: TERM, so the wrapper reports the stop
        tmux.stop(a)
        tmux.stop(c)
        col.until(lambda: len(col.live("removed")) == 3)
    live = [e for e in col.seen if not e.snapshot]
    by = {
        n: [(e.kind, e.exit_code, e.restart_count) for e in live if e.name == n] for n in (a, b, c)
    }
    assert by[a] == [("started", None, None), ("exited", 3, None), ("removed", None, None)]
    assert by[b] == [
        ("started", None, None),
        ("exited", 143, None),
        ("stopped", None, None),
        ("removed", None, None),
    ]
    assert by[c] == [
        ("started", None, None),
        ("exited", 9, None),
        ("restarted", None, 1),
        ("exited", 9, None),
        ("removed", None, None),
    ]
    assert all(e.backend == "tmux" and e.engine == tmux_socket and e.managed for e in live)


def test_snapshot_first_then_watch(own: TmuxRunner) -> None:
    tmux, tmux_socket = own, str(own.socket_name)
    up, done = unique("evs"), unique("evs")
    tmux.start(SessionConfig(name=up, command="sleep 300"))
    tmux.start(SessionConfig(name=done, command="exit 4"))
    deadline = time.monotonic() + 30
    while tmux.status(done).exit_code is None and time.monotonic() < deadline:
        time.sleep(0.05)
    with collecting(_stream(tmux_socket, [up, done])) as col:
        col.until(lambda: len([e for e in col.seen if e.snapshot]) == 2)
        snap = {e.name: (e.kind, e.exit_code) for e in col.seen if e.snapshot}
        tmux.stop(up)
        col.until(lambda: col.live("removed"))
    assert snap == {up: ("started", None), done: ("exited", 4)}
    assert col.seen[0].snapshot and col.seen[1].snapshot
    assert [(e.kind, e.name) for e in col.live("started")] == []  # told by the snapshot once


def test_fifty_exits_at_once_each_once_with_its_code(
    own: TmuxRunner, listed: threading.Event
) -> None:
    tmux, tmux_socket = own, str(own.socket_name)
    gate = os.path.join(tempfile.mkdtemp(), "go")
    names = [unique("ev50") for _ in range(50)]
    codes = {n: (i * 5) % 256 for i, n in enumerate(names)}
    wait = f"while [ ! -e {gate} ]; do sleep 0.05; done"
    with collecting(_stream(tmux_socket, names)) as col:
        assert listed.wait(30)  # a hang guard only
        for n in names:
            tmux.start(SessionConfig(name=n, command=f"{wait}; exit {codes[n]}"))
        col.until(lambda: len(col.live("started")) == 50)
        open(gate, "w").close()
        col.until(lambda: len(col.live("exited")) == 50)
        for n in names:
            tmux.stop(n, graceful=False)
        col.until(lambda: len(col.live("removed")) == 50)
    exits = [(e.name, e.exit_code) for e in col.live("exited")]
    assert sorted(exits) == sorted(codes.items())  # exactly one each, the right code
    assert sorted(e.name for e in col.live("started")) == sorted(names)
    assert not col.live("lost")


def test_three_restarts_counted(own: TmuxRunner, listed: threading.Event) -> None:
    tmux, tmux_socket = own, str(own.socket_name)
    name = unique("evr")
    with collecting(_stream(tmux_socket, [name])) as col:
        assert listed.wait(30)  # a hang guard only
        tmux.start(SessionConfig(name=name, command="exit 7", restart="on-failure:3"))
        col.until(lambda: len(col.live("exited")) == 4)
        tmux.stop(name)
        col.until(lambda: col.live("removed"))
    assert [e.restart_count for e in col.live("restarted")] == [1, 2, 3]
    assert [e.exit_code for e in col.live("exited")] == [7, 7, 7, 7]
    assert len(col.live("started")) == 1


def test_close_from_another_thread_ends_the_iterator(tmux: TmuxRunner, tmux_socket: str) -> None:
    stream = _stream(tmux_socket, [unique("evx")])
    ended = threading.Event()

    def read() -> None:
        for _ in stream:
            pass
        ended.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    threading.Thread(target=stream.close).start()
    assert ended.wait(30), "the iterator did not end after close()"  # a hang guard only
    reader.join(30)
    watch = files.server_folder(tmux_socket, None, create=False) / "watch"
    assert not os.path.exists(watch) or not [
        p for p in os.listdir(watch) if p.startswith(f"{os.getpid()}-")
    ]


def test_a_consumer_that_stops_reading_gets_lost(tmux: TmuxRunner, tmux_socket: str) -> None:
    names = [unique("evl") for _ in range(10)]
    stream = _stream(tmux_socket, names, queue_size=4)
    try:
        for n in names:
            tmux.start(SessionConfig(name=n, command="exit 1"))
        seen = []
        for event in stream:
            seen.append(event)
            if event.kind == "lost":
                break
        assert seen[-1].dropped and seen[-1].dropped > 0
    finally:
        stream.close()


def _collector(runner: TmuxRunner) -> int:
    folder = files.server_folder(runner.socket_name, None, create=False)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError, IndexError):
            if collector_alive(folder):
                return int((folder / "collector.lock").read_bytes().split()[0])
        time.sleep(0.05)
    raise AssertionError("no collector")


def test_a_lost_collector_is_a_resync(own: TmuxRunner) -> None:
    socket = own.socket_name
    assert socket is not None
    first, second = unique("evk"), unique("evk")
    own.start(SessionConfig(name=first, command="sleep 300"))
    lost = _collector(own)
    with collecting(_stream(socket)) as col:
        col.until(lambda: [e for e in col.seen if e.snapshot])
        os.kill(lost, signal.SIGKILL)  # gone without a word: what it had not told is lost
        while collector_alive(files.server_folder(socket, None, create=False)):
            time.sleep(0.01)
        own.start(SessionConfig(name=second, command="sleep 300"))  # a new collector
        col.until(
            lambda: col.live("resync") and any(e.snapshot and e.name == second for e in col.seen)
        )
    kinds = [(e.kind, e.name, e.snapshot) for e in col.seen]
    at = kinds.index(("resync", "", False))
    assert {("started", first, True), ("started", second, True)} <= set(kinds[at:])


def test_a_killed_server_removes_its_sessions(own: TmuxRunner) -> None:
    socket = own.socket_name
    assert socket is not None
    names = [unique("evk") for _ in range(3)]
    for n in names:
        own.start(SessionConfig(name=n, command="sleep 300"))
    with collecting(_stream(socket)) as col:
        col.until(lambda: len([e for e in col.seen if e.snapshot]) == 3)
        own.kill_server()
        col.until(lambda: len(col.live("removed")) == 3)
    assert sorted(e.name for e in col.live("removed")) == sorted(names)
    assert not col.live("resync")


def test_forged_marks_are_output_not_events(
    tmux: TmuxRunner, tmux_socket: str, listed: threading.Event
) -> None:
    name = unique("evf")
    forged = r"printf 'a\033]7707;kstlib-ev;0000;exit;99;0\007b\n'; exit 2"
    with collecting(_stream(tmux_socket, [name])) as col:
        assert listed.wait(30)  # a hang guard only
        tmux.start(SessionConfig(name=name, command=forged))
        col.until(lambda: col.live("exited"))
        text = str(tmux.logs(name, None))
        tmux.stop(name)
        col.until(lambda: col.live("removed"))
    assert [e.exit_code for e in col.live("exited")] == [2]
    assert "kstlib-ev;0000" in text and "kstlib-ev;" not in text.replace("kstlib-ev;0000", "")


def test_manager_and_async_see_tmux_events(own: TmuxRunner, listed: threading.Event) -> None:
    # A session stopped before its server's collector came up loses its ``exited``
    # (see docs/events.md): the stop waits for the run to have begun.
    socket = own.socket_name
    assert socket is not None
    name = unique("eva")
    manager = SessionManager(name, backend="tmux", socket_name=socket)

    async def first_exit() -> int | None:
        async for event in aio.events([name], backend="tmux", socket_name=socket):
            if event.kind == "started":  # in the snapshot or seen happening
                threading.Thread(target=own.stop, args=(name,), daemon=True).start()
            if event.kind == "exited" and not event.snapshot:
                return event.exit_code
        return None

    with collecting(manager.events()) as col:
        assert listed.wait(30)  # a hang guard only
        own.start(SessionConfig(name=name, command="sleep 300"))
        col.until(lambda: col.live("started"))
        code = asyncio.run(asyncio.wait_for(first_exit(), 60))
        col.until(lambda: col.live("removed"))
    assert code == 143
    assert [e.exit_code for e in col.live("exited")] == [143]


def test_cli_json_lines_for_tmux(tmux: TmuxRunner, tmux_socket: str) -> None:
    name = unique("evcli")
    tmux.start(SessionConfig(name=name, command="sleep 300"))
    argv = [sys.executable, "-m", "kstlib", "ops", "events", name, "-b", "tmux"]
    proc = subprocess.Popen(
        [*argv, "-L", tmux_socket, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())
        assert (first["name"], first["kind"], first["snapshot"], first["backend"]) == (
            name,
            "started",
            True,
            "tmux",
        )
        tmux.stop(name)
        lines = []
        while not lines or lines[-1]["kind"] != "removed":
            lines.append(json.loads(proc.stdout.readline()))
        assert [(x["kind"], x["exit_code"]) for x in lines] == [
            ("exited", 143),
            ("stopped", None),
            ("removed", None),
        ]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
