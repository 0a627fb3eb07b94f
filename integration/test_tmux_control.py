"""The control-mode channel on a real tmux server: same answers as the fork path, bounded
calls, fallback on any surprise, and a server that survives it beside external tmux clients.

Each test runs with this machine's tmux 3.3a and with tmux 3.5a (the harness's
``engines.sh tmux35-up``, ``KSTLIB_TEST_TMUX35``); both are below
:data:`control.MIN_VERSION` (each crashed with a control client attached, see
docs/performance.md), so the tests force the channel on, in ways they survive, and
one test shows the gate keeps it off. Server and every client of a test are the same
binary.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kstlib.ops import (
    SessionConfig,
    SessionNotFoundError,
    SessionState,
    TmuxNotFoundError,
    TmuxRunner,
)
from kstlib.ops.tmux import control

from .conftest import engine_missing, unique

pytestmark = pytest.mark.tmux


def tmux35() -> str:
    """The harness's tmux 3.5a (``KSTLIB_TEST_TMUX35``)."""
    path = os.environ.get("KSTLIB_TEST_TMUX35", "")
    if not path or not os.access(path, os.X_OK):
        engine_missing("tmux 3.5a", "KSTLIB_TEST_TMUX35 names no binary (engines.sh tmux35-up)")
    return path


def version_of(binary: str) -> str:
    return subprocess.run([binary, "-V"], capture_output=True, text=True, check=True).stdout


@pytest.fixture(params=["system", "3.5a"])
def tmux_bin(request: pytest.FixtureRequest) -> str:
    """The tmux of the server and of every client of a test."""
    if request.param == "3.5a":
        return tmux35()
    found = shutil.which("tmux")
    if found is None:
        engine_missing("tmux", "tmux is not on PATH")
    return found


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tmux_bin: str) -> Path:
    home = tmp_path / "state"
    monkeypatch.setenv("XDG_STATE_HOME", str(home))
    monkeypatch.setattr(control, "RETRY_AFTER", 0.05)  # reconnect soon after a drop
    if not control.version_ok(version_of(tmux_bin)):
        # 3.3a and 3.5a are below the version the channel is used with (both crash
        # when a channel attaches to a session killed at that moment:
        # docs/performance.md); these tests drive the channel anyway, in ways they
        # survive.
        monkeypatch.setattr(control, "MIN_VERSION", (3, 3))
    return home


@pytest.fixture
def pair(state: Path, tmux_bin: str) -> Iterator[tuple[TmuxRunner, TmuxRunner]]:
    """A runner with the channel and one without, on one private server."""
    socket = unique("ctl")
    fork = TmuxRunner(socket_name=socket, control=False, tmux_bin=tmux_bin)
    chan = TmuxRunner(socket_name=socket, control=True, timeout=2, tmux_bin=tmux_bin)
    yield chan, fork
    chan.close()
    fork.kill_server()


def tmux(runner: TmuxRunner, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    argv = [runner.tmux_bin or "tmux", "-L", str(runner.socket_name), *args]
    return subprocess.run(argv, check=check, capture_output=True, text=True)


def live_channel(runner: TmuxRunner) -> control.Channel:
    runner.exists("x")  # starts one if need be
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        channels = runner._channels
        assert channels is not None
        channel = channels._channel
        if channel is not None and channel.alive:
            runner.exists("x")
            if channel.alive:
                return channel
        time.sleep(0.06)
        runner.exists("x")
    raise AssertionError("no live control channel")


def test_the_channel_answers_as_the_fork_path(pair: tuple[TmuxRunner, TmuxRunner]) -> None:
    chan, fork = pair
    assert chan.list_sessions() == [] and not chan.exists("a")  # no server yet: fork path
    fork.start(SessionConfig(name="a", command=["sleep", "60"]))
    fork.start(SessionConfig(name="b", command="exit 3"))
    tmux(chan, "new-session", "-d", "-s", "c;d e~", "sleep 60")  # a foreign name to quote
    assert fork.wait("b", timeout=10) == 3
    channel = live_channel(chan)
    for name in ("a", "b", "c;d e~"):
        assert chan.status(name) == fork.status(name)
        assert chan.exists(name)
    assert chan.status("b").state is SessionState.EXITED and chan.status("b").exit_code == 3
    assert chan.list_sessions() == fork.list_sessions()
    assert not chan.exists("c") and not chan.exists("zz")  # exact names, through the channel
    with pytest.raises(SessionNotFoundError):
        chan.status("zz")
    assert channel.alive  # every answer above came through it
    # The channel is no session: kstlib's lists do not show it.
    assert sorted(s.name for s in chan.list_sessions()) == ["a", "b", "c;d e~"]
    assert len(tmux(chan, "list-clients").stdout.splitlines()) == 1


def test_a_dropped_channel_falls_back_and_comes_back(pair: tuple[TmuxRunner, TmuxRunner]) -> None:
    chan, fork = pair
    fork.start(SessionConfig(name="a", command=["sleep", "60"]))
    first = live_channel(chan)
    # Its client killed from outside: the next calls take the fork path, then a new one.
    tmux(chan, "detach-client", "-a", check=False)
    os.kill(first._proc.pid, signal.SIGKILL)
    for _ in range(20):
        assert chan.status("a").is_running
    second = live_channel(chan)
    assert second is not first and chan.status("a").is_running
    # Its session stopped (tmux detaches the client) while another one is left.
    fork.start(SessionConfig(name="b", command=["sleep", "60"]))
    fork.stop("a", graceful=False)
    for _ in range(20):
        assert chan.exists("b") and not chan.exists("a")
    # The last session gone: the server exits and every answer says so.
    fork.stop("b", graceful=False)
    assert chan.list_sessions() == [] and not chan.exists("b")


def test_a_stopped_server_keeps_the_bound_and_works_after_sigcont(
    pair: tuple[TmuxRunner, TmuxRunner],
) -> None:
    chan, fork = pair
    fork.start(SessionConfig(name="hung", command=["sleep", "60"]))
    first = live_channel(chan)
    pid = int(tmux(chan, "display-message", "-p", "#{pid}").stdout)
    os.kill(pid, signal.SIGSTOP)
    try:
        for call in (lambda: chan.status("hung"), chan.list_sessions, lambda: chan.exists("x")):
            began = time.monotonic()
            with pytest.raises(TmuxNotFoundError, match="did not answer"):
                call()
            assert time.monotonic() - began < 2 + 1.5  # the runner's timeout, not two of them
            time.sleep(0.1)  # past RETRY_AFTER
        # The given-up client still waits for the stopped server, so the later calls
        # took the fork path: no second control client queued up behind it.
        assert chan._channels is not None and chan._channels._channel is first
        assert not first.alive and first.running
    finally:
        os.kill(pid, signal.SIGCONT)
    # The channel given up on was left to leave by itself: tmux 3.3a's server
    # crashes serving a control client killed before its attach was handled, and
    # 3.5a's died once resumed with given-up clients queued (docs/performance.md).
    assert chan.status("hung").is_running
    live_channel(chan)
    assert tmux(chan, "display-message", "-p", "#{pid}").stdout.strip() == str(pid)
    deadline = time.monotonic() + 10
    while len(tmux(chan, "list-clients").stdout.splitlines()) > 1:
        assert time.monotonic() < deadline, "the given-up channels did not leave"
        time.sleep(0.05)


def test_soak_the_channel_beside_external_tmux_commands(
    pair: tuple[TmuxRunner, TmuxRunner],
) -> None:
    chan, fork = pair
    fork.start(SessionConfig(name="main", command=["sleep", "300"]))
    live_channel(chan)
    pid = tmux(chan, "display-message", "-p", "#{pid}").stdout.strip()
    stop = threading.Event()
    errors: list[BaseException] = []
    counts = {"channel": 0, "external": 0}

    def queries() -> None:
        try:
            while not stop.is_set() and counts["channel"] < 20000:
                assert chan.status("main").is_running
                assert chan.exists("main")
                assert any(s.name == "main" for s in chan.list_sessions())
                counts["channel"] += 3
        except BaseException as err:  # reported below
            errors.append(err)

    def external() -> None:
        try:
            for i in range(150):
                name = f"ext-{i}"
                tmux(chan, "new-session", "-d", "-s", name, "sleep 60")
                tmux(chan, "list-sessions", "-F", "#{session_name}")
                tmux(chan, "set-option", "-t", f"={name}:", "@x", "1")
                tmux(chan, "kill-session", "-t", f"={name}")
                counts["external"] += 4
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=queries) for _ in range(2)]
    threads.append(threading.Thread(target=external))
    for t in threads:
        t.start()
    threads[-1].join(timeout=300)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert counts["channel"] >= 2000 and counts["external"] == 600
    # The server survived all of it, and the channel still answers.
    assert tmux(chan, "display-message", "-p", "#{pid}").stdout.strip() == pid
    assert live_channel(chan).alive and chan.status("main").is_running


def test_the_channel_ends_with_its_runner(state: Path, tmux_bin: str) -> None:
    import gc

    runner = TmuxRunner(socket_name=unique("ctl"), control=True, tmux_bin=tmux_bin)
    runner.start(SessionConfig(name="a", command=["sleep", "60"]))
    channel = live_channel(runner)
    proc = channel._proc
    other = TmuxRunner(socket_name=runner.socket_name, tmux_bin=tmux_bin)
    del runner, channel
    gc.collect()
    assert proc.wait(timeout=10) is not None  # its tmux -C client exited
    other.kill_server()


def test_the_channel_stays_off_on_a_tmux_that_crashes_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tmux_bin: str
) -> None:
    """3.3a and 3.5a both crash with a control client attaching (docs/performance.md)."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert not control.version_ok(version_of(tmux_bin))
    runner = TmuxRunner(socket_name=unique("ctl"), control=True, tmux_bin=tmux_bin)
    try:
        runner.start(SessionConfig(name="a", command=["sleep", "60"]))
        for _ in range(3):
            assert runner.status("a").is_running and runner.exists("a")
            assert [s.name for s in runner.list_sessions()] == ["a"]
            time.sleep(0.05)
        assert runner._channels is not None and runner._channels._channel is None
        assert tmux(runner, "list-clients").stdout == ""  # no control client was started
    finally:
        runner.kill_server()


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The lines the control channels of this test answered (a recording wrapper)."""
    lines: list[str] = []
    request = control.Channel.request

    def recording(
        self: control.Channel, line: str, timeout: float | None
    ) -> tuple[bool, list[str]]:
        answer = request(self, line, timeout)
        lines.append(line)
        return answer

    monkeypatch.setattr(control.Channel, "request", recording)
    return lines


def test_names_and_argv_stay_byte_exact_through_the_channel(
    pair: tuple[TmuxRunner, TmuxRunner], served: list[str], tmp_path: Path
) -> None:
    chan, fork = pair
    marker = tmp_path / "ran"
    out = tmp_path / "argv"
    items = ["a;b", ";", f"#(touch {marker})", "#{pid}", "#{session_name}", "x ;y"]
    fork.start(
        SessionConfig(
            name="argv",
            command=["sh", "-c", 'printf "%s|" "$@" > "$0"; sleep 60', str(out), *items],
        )
    )
    foreign = ["a;b", "#{pid}", f"#(touch {marker})", "c;d e~", "x#{session_name}y"]
    for name in foreign:  # tmux expands a new name's formats: ## is one #
        tmux(chan, "new-session", "-d", "-s", name.replace("#", "##"), "sleep 60")
    live_channel(chan)
    served.clear()
    for name in ["argv", *foreign]:
        assert chan.exists(name), name
        assert chan.status(name) == fork.status(name)
        assert chan.status(name).name == name
    for near in ("a", "b", "#{pid", "pid", "c;d", "xy", "x"):
        assert not chan.exists(near), near
    listed = chan.list_sessions()
    assert listed == fork.list_sessions()
    assert sorted(s.name for s in listed) == sorted(["argv", *foreign])
    # Every query above went through the channel: exists, status, the near misses, the list.
    assert len(served) == 3 * (1 + len(foreign)) + 7 + 1, served
    deadline = time.monotonic() + 10
    while not out.exists() or not out.read_text():
        assert time.monotonic() < deadline, "the program did not write its argv"
        time.sleep(0.05)
    assert out.read_text() == "|".join(items) + "|"
    assert not marker.exists()  # no #() ran, on either path


def test_soak_external_windows_and_sessions_beside_the_channel(
    pair: tuple[TmuxRunner, TmuxRunner],
) -> None:
    """Thousands of channel queries while forked clients create and kill windows and sessions."""
    chan, fork = pair
    fork.start(SessionConfig(name="main", command=["sleep", "600"]))
    live_channel(chan)
    pid = tmux(chan, "display-message", "-p", "#{pid}").stdout.strip()
    stop = threading.Event()
    errors: list[BaseException] = []
    counts = {"channel": 0, "external": 0}
    rounds = 300

    def queries() -> None:
        try:
            while not stop.is_set():
                assert chan.status("main").is_running
                assert chan.exists("main")
                assert any(s.name == "main" for s in chan.list_sessions())
                counts["channel"] += 3
        except BaseException as err:  # reported below
            errors.append(err)

    def external(worker: int) -> None:
        try:
            for i in range(rounds):
                name = f"ext-{worker}-{i}"
                tmux(chan, "new-session", "-d", "-s", name, "sleep 60")
                tmux(chan, "new-window", "-d", "-t", f"={name}:", "sleep 60")
                tmux(chan, "new-window", "-d", "-t", "=main:", "sleep 60")
                tmux(chan, "kill-window", "-t", "=main:{end}")
                tmux(chan, "kill-session", "-t", f"={name}")
                counts["external"] += 5
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=queries) for _ in range(2)]
    outside = [threading.Thread(target=external, args=(w,)) for w in range(2)]
    for t in threads + outside:
        t.start()
    for t in outside:
        t.join(timeout=600)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert counts["external"] == 2 * rounds * 5 and counts["channel"] >= 3000, counts
    # The server survived all of it, and the channel still answers.
    assert tmux(chan, "display-message", "-p", "#{pid}").stdout.strip() == pid
    assert live_channel(chan).alive and chan.status("main").is_running
    assert [s.name for s in chan.list_sessions()] == ["main"]
