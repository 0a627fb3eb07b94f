"""tmux faults: the server killed under running sessions, and stale socket files."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kstlib.ops import (
    OpsError,
    SessionConfig,
    SessionConfigError,
    SessionNotFoundError,
    SessionState,
    TmuxRunner,
)

from ..conftest import engine_missing, unique
from ..waiting import eventually
from .conftest import MARGIN_S, Report, log_files, timed

pytestmark = [pytest.mark.faults, pytest.mark.tmux]

STUBBORN = "trap '' TERM; echo armed; sleep 300 & while :; do sleep 1; done"


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie nobody reaps does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def group(pgid: int) -> list[int]:
    """The live processes of process group ``pgid``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                found.append(int(entry))
    return found


def server_pid(runner: TmuxRunner) -> int:
    proc = runner.server.cmd("display-message", "-p", "#{pid}")
    return int(proc.stdout[0])


def wait_gone(pids: list[int], timeout: float = 10) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [p for p in pids if alive(p)]
        if not left:
            return []
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


@pytest.fixture
def own_server() -> Iterator[TmuxRunner]:
    """A runner on a tmux server of its own (this test kills it)."""
    import shutil

    if shutil.which("tmux") is None:
        engine_missing("tmux", "tmux is not on PATH")
    runner = TmuxRunner(socket_name=f"kf-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    yield runner
    runner.kill_server()
    path = Path(os.environ.get("TMUX_TMPDIR", "/tmp"), f"tmux-{os.getuid()}", runner.socket_name or "")
    path.unlink(missing_ok=True)


def _armed(runner: TmuxRunner, name: str) -> None:
    deadline = time.monotonic() + 10
    while "armed" not in runner.logs(name) and time.monotonic() < deadline:
        time.sleep(0.02)


def test_server_killed_under_running_sessions(
    own_server: TmuxRunner, state_home: str, report: Report
) -> None:
    runner = own_server
    name, other = unique("kill"), unique("kill")
    st = runner.start(SessionConfig(name=name, command=STUBBORN))
    runner.start(SessionConfig(name=other, command=["sleep", "300"]))
    _armed(runner, name)
    processes = group(st.pid or 0)
    assert len(processes) >= 3  # the wrapper, the shell, its sleeps
    assert log_files(state_home)

    killed_at = time.monotonic()
    os.kill(server_pid(runner), signal.SIGKILL)
    calls: dict[str, Callable[[], Any]] = {
        "status": lambda: runner.status(name),
        "logs": lambda: runner.logs(name),
        "wait": lambda: runner.wait(name, timeout=30),
        "stop": lambda: runner.stop(name, timeout=30),
        "send_keys": lambda: runner.send_keys(name, "x"),
        "follow_logs": lambda: list(runner.follow_logs(name)),
    }
    for op, fn in calls.items():
        err, seconds, _ = timed(fn)
        assert isinstance(err, SessionNotFoundError), f"{op}: {err!r}"
        assert err.name == name and err.backend == "tmux"
        assert seconds < MARGIN_S, f"{op} took {seconds:.1f} s"
        report.fault("tmux", "server killed", time.monotonic() - killed_at, err)
        report.count(f"tmux: {op} after the server was killed")
    assert runner.exists(name) is False
    assert runner.list_sessions() == []
    report.count("tmux: exists/list_sessions after the server was killed", 2)

    # The terminal hung up: the session's processes die as under plain tmux.
    assert wait_gone(processes) == [], "processes outlived their killed tmux server"
    # The dead server's logs are orphans; kill_server() clears them. Its collector,
    # orphaned and still writing the events journal, removes that when it leaves.
    runner.kill_server()
    assert eventually(lambda: log_files(state_home) == [], timeout=10), log_files(state_home)

    # A new call in the same process starts a new server.
    st2 = runner.start(SessionConfig(name=name, command=["sleep", "300"]))
    assert st2.state is SessionState.RUNNING
    runner.stop(name, graceful=False)
    assert not runner.exists(name)


def test_server_killed_during_long_calls(
    own_server: TmuxRunner, state_home: str, report: Report
) -> None:
    runner = own_server
    stubborn, ticker = unique("stub"), unique("tick")
    st = runner.start(SessionConfig(name=stubborn, command=STUBBORN))
    runner.start(SessionConfig(name=ticker, command="while :; do echo tick; sleep 0.1; done"))
    _armed(runner, stubborn)
    processes = group(st.pid or 0)
    boxes: dict[str, dict[str, Any]] = {}
    long_calls: dict[str, Callable[[], Any]] = {
        "wait (60 s)": lambda: runner.wait(stubborn, timeout=60),
        "follow_logs": lambda: sum(1 for _ in runner.follow_logs(ticker)),
        "stop (60 s grace)": lambda: runner.stop(stubborn, timeout=60),
    }
    threads = []
    for op, fn in long_calls.items():
        box: dict[str, Any] = {}
        boxes[op] = box

        def run(fn: Callable[[], Any] = fn, box: dict[str, Any] = box) -> None:
            try:
                box["result"] = fn()
            except BaseException as err:
                box["error"] = err
            box["at"] = time.monotonic()

        threads.append(threading.Thread(target=run, daemon=True))
        threads[-1].start()
    time.sleep(1.0)
    assert all(t.is_alive() for t in threads), boxes
    killed_at = time.monotonic()
    os.kill(server_pid(runner), signal.SIGKILL)
    for t in threads:
        t.join(MARGIN_S + 5)
    for op, box in boxes.items():
        assert "at" in box, f"{op} still runs after the server died"
        seconds = box["at"] - killed_at
        assert seconds < MARGIN_S, f"{op} took {seconds:.1f} s after the kill"
        err = box.get("error")
        assert err is None or isinstance(err, OpsError), f"{op}: {err!r}"
        if op.startswith("wait"):
            assert isinstance(err, SessionNotFoundError)
        if err is not None:
            report.fault("tmux", "server killed during a long call", seconds, err)
        report.count(f"tmux: {op} with the server killed mid-call")
    # follow_logs ends (the session is gone); stop() finds it gone and makes
    # sure nothing of it runs on.
    assert wait_gone(processes) == []
    runner.kill_server()
    assert log_files(state_home) == []


def test_stale_socket_and_bad_socket_paths(tmp_path: Path, state_home: str, report: Report) -> None:
    import shutil

    if shutil.which("tmux") is None:
        engine_missing("tmux", "tmux is not on PATH")
    # A socket file nobody listens on (a server that died long ago).
    stale = tmp_path / "stale.sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(stale))
    runner = TmuxRunner(socket_path=str(stale))
    try:
        assert runner.list_sessions() == []
        assert runner.exists("kf-stale") is False
        with pytest.raises(SessionNotFoundError):
            runner.status("kf-stale")
        st = runner.start(SessionConfig(name="kf-stale", command=["sleep", "300"]))
        assert st.state is SessionState.RUNNING
        runner.stop("kf-stale", graceful=False)
        report.count("tmux: stale socket file (list, exists, status, start, stop)", 5)
    finally:
        runner.kill_server()

    # Paths tmux cannot serve on are refused before tmux replaces or misreads them.
    regular = tmp_path / "notes.txt"
    regular.write_text("keep me")
    for path in (regular, tmp_path, tmp_path / "missing" / "tmux.sock"):
        bad = TmuxRunner(socket_path=str(path))
        assert bad.list_sessions() == []
        with pytest.raises(SessionConfigError) as info:
            bad.start(SessionConfig(name="kf-bad", command=["sleep", "300"]))
        assert info.value.field == "socket_path"
        report.count("tmux: socket_path that is not a socket refused")
    assert regular.read_text() == "keep me"
    assert not (tmp_path / "missing").exists()
    assert log_files(state_home) == []


def test_session_killed_from_outside_takes_its_processes(
    own_server: TmuxRunner, state_home: str, report: Report
) -> None:
    runner = own_server
    name = unique("ext")
    st = runner.start(SessionConfig(name=name, command=STUBBORN))
    _armed(runner, name)
    processes = group(st.pid or 0)
    subprocess.run(
        ["tmux", "-L", runner.socket_name or "", "kill-session", "-t", f"={name}"], check=True
    )
    assert wait_gone(processes) == [], "the command outlived its session"
    with pytest.raises(SessionNotFoundError):
        runner.status(name)
    report.count("tmux: session killed from outside")
