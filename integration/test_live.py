"""Live views on the real Docker and Podman engines: the library's view, ``list --watch``
through a pipe and through a pseudo-terminal (Ctrl-C restores it)."""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import pty
import re
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from kstlib.ops import BackendType, SessionConfig, SessionManager, SessionStatus, TmuxRunner
from kstlib.ops.container import ContainerRunner
from kstlib.ops.live import LiveSessions, LiveUpdate, open_streams
from kstlib.ops.locations import Location

from .conftest import TEST_IMAGE, unique

ROOT = Path(__file__).resolve().parent.parent
#: Runs until the test creates /tmp/go in the container, then exits 3.
WAITER = ("sh", "-c", "while [ ! -e /tmp/go ]; do sleep 0.1; done; exit 3")
#: ``list --watch`` as the ``list`` command calls it: its own listing, the options of ``list``.
CHILD = """
import argparse, sys
from kstlib.cli.context import Context
from kstlib.cli.commands.listing import collect_sessions
from kstlib.cli.watch import watch_sessions
socket = sys.argv[3] if len(sys.argv) > 3 else None
ns = argparse.Namespace(config=sys.argv[1], backend=sys.argv[2], runtime=None, socket=socket,
                        engine=None, managed=True, json=False, quiet=False)
ctx = Context(ns)
sys.exit(watch_sessions(ctx, lambda: collect_sessions(ctx)[0]))
"""


def until(
    check: Callable[[], object], what: str, seen: Callable[[], object] = str, bound: float = 60.0
) -> None:
    """Wait for ``check`` (a hang guard, not a timed assertion); ``seen()`` tells what was seen."""
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"not seen within {bound}s: {what}; seen: {seen()!r}")


def waiter(name: str, runtime: str) -> SessionManager:
    return SessionManager(name, backend="container", image=TEST_IMAGE, runtime=runtime)


class Reader:
    """Collects a view's updates in a thread."""

    def __init__(self, view: LiveSessions) -> None:
        self.view = view
        self.seen: list[LiveUpdate] = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        for update in self.view.updates():
            with self.lock:
                self.seen.append(update)

    def lines(self) -> list[str]:
        with self.lock:
            return [c.line() for u in self.seen[1:] for c in u.changes]


@pytest.mark.parametrize("runtime", ["docker", "podman"])
def test_the_view_follows_a_session_from_start_to_exit_to_removal(runtime: str) -> None:
    name = unique("live")
    listings = []
    runner = ContainerRunner(runtime=runtime)

    def listing() -> list[SessionStatus]:  # counted: an exit is applied in place, not re-listed
        listings.append(1)
        return [row for row in runner.list_sessions() if row.name == name]

    view = LiveSessions(listing, open_streams([Location(BackendType.CONTAINER, runtime)], [name]))
    reader = Reader(view)
    job = waiter(name, runtime)
    try:
        until(lambda: reader.seen, "the first table", reader.lines)
        assert list(reader.seen[0].table) == []
        job.start(WAITER)
        running = f"{name} container/{runtime}: new, running"
        until(lambda: running in reader.lines(), running, reader.lines)
        before = len(listings)
        assert job.exec(["touch", "/tmp/go"])[0] == 0
        exited = f"{name} container/{runtime}: running -> exited (3)"
        until(lambda: exited in reader.lines(), exited, reader.lines)
        assert len(listings) == before  # the exit event said it all
        row = view.table[0]
        assert (row.name, row.state.value, row.exit_code) == (name, "exited", 3)
        job.stop()
        gone = f"{name} container/{runtime}: gone (was exited (3))"
        until(lambda: gone in reader.lines(), gone, reader.lines)
        assert list(view.table) == []
    finally:
        view.close()
        with contextlib.suppress(Exception):
            job.stop(graceful=False)
    reader.thread.join(timeout=5)
    assert not reader.thread.is_alive()  # close() ended the updates
    left = [t.name for t in threading.enumerate() if t.name in ("kstlib-live", "kstlib-events")]
    assert left == []  # and no thread of the view or of its stream is left behind
    assert reader.lines() == [running, exited, gone]  # one line per change, none doubled


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def _config(tmp_path: Path) -> str:
    path = tmp_path / "ops.yml"
    path.write_text("ops:\n  tmux_socket: kstlib-watch-none\n")
    return str(path)


class _Watch:
    """``list --watch`` in a child process on a pipe, its lines read as they come."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.stderr = tmp_path / "stderr"
        self.child = subprocess.Popen(
            [sys.executable, "-c", CHILD, _config(tmp_path), *args],
            stdout=subprocess.PIPE,
            stderr=self.stderr.open("w"),
            text=True,
            env=_child_env(),
        )
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.child.stdout is not None
        for line in self.child.stdout:
            self.lines.append(line.rstrip("\n"))

    def seen(self) -> object:
        return self.lines, self.stderr.read_text()

    def until(self, check: Callable[[list[str]], object], what: str) -> None:
        until(lambda: check(self.lines), what, self.seen)

    def interrupt(self) -> int:
        self.child.send_signal(signal.SIGINT)
        return self.child.wait(timeout=30)

    def end(self) -> None:
        if self.child.poll() is None:
            self.child.kill()
            self.child.wait()
        self.thread.join(timeout=5)


def test_watch_on_a_pipe_prints_the_table_then_one_line_per_change(tmp_path: Path) -> None:
    name = unique("watchp")
    watch = _Watch(tmp_path, "podman")
    job = waiter(name, "podman")
    try:
        watch.until(bool, "the first table")  # the watch is on
        job.start(WAITER)
        # Running: "new, running", or "-> running" when another session's change
        # made the view list while this one was created and not yet started.
        watch.until(lambda ls: any(re.search(rf" {name} .*\brunning$", ln) for ln in ls), "up")
        job.exec(["touch", "/tmp/go"])
        watch.until(lambda ls: any(name in ln and "-> exited (3)" in ln for ln in ls), "exit")
        assert watch.interrupt() == 130
    finally:
        with contextlib.suppress(Exception):
            job.stop(graceful=False)
        watch.end()
    lines = watch.lines
    assert lines[0].startswith("NAME ") or lines[0] == "No sessions."
    mine = [line.split(" ", 1)[1] for line in lines if name in line]
    assert len(mine) == len(set(mine))  # no change told twice
    assert re.fullmatch(rf"{name} container/podman: (new, |\S+ -> )running", mine[-2])
    assert mine[-1] == f"{name} container/podman: running -> exited (3)"
    assert not any("\x1b" in line for line in lines)  # no terminal sequences on a pipe


def test_watch_follows_a_tmux_server_on_its_own_socket(
    tmp_path: Path, tmux: TmuxRunner, tmux_socket: str
) -> None:
    # 'list --watch -L SOCKET' lists that server: it follows that server's events too.
    name = unique("watchs")
    gate = tmp_path / "go"
    watch = _Watch(tmp_path, "tmux", tmux_socket)
    try:
        watch.until(bool, "the first table")  # the watch is on
        command = f"while [ ! -e {gate} ]; do sleep 0.05; done; exit 3"
        tmux.start(SessionConfig(name=name, command=command))
        watch.until(lambda ls: any(re.search(rf" {name} .*\brunning$", ln) for ln in ls), "up")
        gate.touch()
        watch.until(lambda ls: any(name in ln and "-> exited (3)" in ln for ln in ls), "exit")
        assert watch.interrupt() == 130
    finally:
        watch.end()
    mine = [line.split(" ", 1)[1] for line in watch.lines if name in line]
    assert mine[-1] == f"{name} tmux: running -> exited (3)"


def _frames(raw: str) -> list[tuple[int, str]]:
    """Each frame's cursor-up count and its text (the first frame has none)."""
    start = raw.index("\x1b[?25l") + len("\x1b[?25l")
    parts = re.split(r"\r\x1b\[(\d+)A", raw[start:])
    frames = [(0, parts[0])]
    frames += [(int(parts[i]), parts[i + 1]) for i in range(1, len(parts) - 1, 2)]
    return frames


def test_watch_on_a_terminal_redraws_in_place_and_ctrl_c_restores_the_cursor(
    tmp_path: Path,
) -> None:
    name = unique("watcht")
    config = _config(tmp_path)
    pid, master = pty.fork()
    if pid == 0:  # the child: a terminal of 200 columns and 1000 lines, then the watch
        try:
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 1000, 200, 0, 0))
            os.execve(sys.executable, [sys.executable, "-c", CHILD, config, "docker"], _child_env())
        finally:
            os._exit(127)
    chunks: list[bytes] = []
    lock = threading.Lock()

    def read() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                return
            if not data:
                return
            with lock:
                chunks.append(data)

    def text() -> str:
        with lock:
            return b"".join(chunks).decode(errors="replace")

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    job = waiter(name, "docker")
    status = None
    try:
        until(lambda: "kstlib ops list --watch" in text(), "the first frame", text)
        job.start(WAITER)
        until(lambda: re.search(rf"{name}\s.*running", text()), "the session running", text)
        job.exec(["touch", "/tmp/go"])
        until(lambda: re.search(rf"{name}\s.*exited \(3\)", text()), "the session exited", text)
        os.write(master, b"\x03")  # Ctrl-C, through the terminal's line discipline
        _, status = os.waitpid(pid, 0)
    finally:
        with contextlib.suppress(Exception):
            job.stop(graceful=False)
        if status is None:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    thread.join(timeout=5)
    os.close(master)
    raw = text()
    assert os.waitstatus_to_exitcode(status) == 130
    assert "\x1b[2J" not in raw and "\x1b[?1049h" not in raw and "\x1b[H" not in raw
    frames = _frames(raw)
    assert len(frames) >= 3  # the first table, the session running, then exited
    for (_, before), (up, _) in itertools.pairwise(frames):
        # each redraw goes up exactly over the lines the previous frame drew
        assert up == before.count("\n"), (up, before)
    assert raw.rindex("\x1b[?25h") > raw.rindex("\x1b[?25l")  # the cursor is shown again
    assert raw.rstrip().endswith("\x1b[?25h")
