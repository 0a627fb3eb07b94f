"""tmux logs that last and follow, and waits, on a real tmux server."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone

import pytest

from kstlib.ops import SessionConfig, SessionNotFoundError, SessionTimeoutError, TmuxRunner

from .waiting import wait_until


def test_200k_lines_read_back_completely_also_after_exit(tmux: TmuxRunner, name: str) -> None:
    tmux.start(SessionConfig(name=name, command=["seq", "1", "200000"]))
    assert tmux.wait(name, timeout=60) == 0
    lines = tmux.logs(name, lines=None).split("\n")
    assert len(lines) == 200_000
    assert lines == [str(i) for i in range(1, 200_001)]
    assert tmux.logs(name, lines=3) == "199998\n199999\n200000"
    tmux.stop(name)


def test_logs_of_a_running_session_go_beyond_the_scrollback(tmux: TmuxRunner, name: str) -> None:
    tmux.start(SessionConfig(name=name, command="seq 1 5000; echo done; sleep 30"))
    wait_until(lambda: tmux.logs(name, lines=1) == "done", timeout=20)
    assert tmux.logs(name, lines=None).split("\n")[:3] == ["1", "2", "3"]
    assert len(tmux.logs(name, lines=None).split("\n")) == 5001
    tmux.stop(name, graceful=False)


def test_timestamps_since_and_ansi(tmux: TmuxRunner, name: str) -> None:
    # A line's time is when the server's collector read it; on a new server, lines
    # written before the collector started share its first read's time (see the
    # automation guide). A first session, kept to the end so that the server and its
    # collector stay, makes sure the collector runs before "red" is written.
    tmux.start(SessionConfig(name=f"{name}-first", command=["sh", "-c", "echo up; sleep 30"]))
    wait_until(lambda: tmux.logs(f"{name}-first") == "up")
    tmux.start(SessionConfig(
        name=name, command=["sh", "-c", "printf '\\033[31mred\\033[0m\\n'; sleep 0.5; echo later"],
    ))
    assert tmux.wait(name, timeout=10) == 0
    assert tmux.logs(name) == "\x1b[31mred\x1b[0m\nlater"
    assert tmux.logs(name, ansi=False) == "red\nlater"
    stamped = tmux.logs(name, timestamps=True, ansi=False).split("\n")
    first = datetime.fromisoformat(stamped[0].split(" ")[0].replace("Z", "+00:00"))
    second = datetime.fromisoformat(stamped[1].split(" ")[0].replace("Z", "+00:00"))
    assert stamped[0].endswith(" red") and stamped[1].endswith(" later")
    assert 0.3 < (second - first).total_seconds() < 5
    assert tmux.logs(name, since=first.timestamp() + 0.2, ansi=False) == "later"
    assert tmux.logs(name, since=second.replace(year=second.year + 1)) == ""
    tmux.stop(name)
    tmux.stop(f"{name}-first", graceful=False)


def test_follow_logs_gets_new_lines_and_ends_with_the_session(tmux: TmuxRunner, name: str) -> None:
    tmux.start(SessionConfig(name=name, command="echo before; sleep 1; for i in 1 2 3; do echo after-$i; sleep 0.1; done"))
    wait_until(lambda: tmux.logs(name) == "before")
    received: list[str] = []
    began = time.monotonic()
    for line in tmux.follow_logs(name):
        received.append(line)
    assert received == ["after-1", "after-2", "after-3"]  # not 'before': written earlier
    assert time.monotonic() - began < 10
    since_start = list(tmux.follow_logs(name, since=0))
    assert since_start == ["before", "after-1", "after-2", "after-3"]
    tmux.stop(name)


def test_follow_logs_ends_when_the_session_is_stopped(tmux: TmuxRunner, name: str) -> None:
    tmux.start(SessionConfig(name=name, command="while true; do echo tick; sleep 0.1; done"))
    wait_until(lambda: "tick" in tmux.logs(name))
    stopper = threading.Timer(0.5, lambda: tmux.stop(name, timeout=2))
    stopper.start()
    got = list(tmux.follow_logs(name))
    stopper.join()
    assert got[:2] == ["tick", "tick"]  # then maybe the shell's "Terminated"
    assert set(got) <= {"tick", "Terminated"}
    with pytest.raises(SessionNotFoundError):
        tmux.status(name)


def test_wait_returns_the_exit_code_and_times_out(tmux: TmuxRunner, name: str) -> None:
    tmux.start(SessionConfig(name=name, command="sleep 0.3; exit 7"))
    assert tmux.wait(name, timeout=10) == 7
    tmux.stop(name)
    tmux.start(SessionConfig(name=name, command="sleep 30"))
    with pytest.raises(SessionTimeoutError) as info:
        tmux.wait(name, timeout=0.3)
    assert info.value.name == name
    tmux.stop(name, graceful=False)


def test_log_files_are_removed_with_the_session(tmux: TmuxRunner, name: str) -> None:
    tmux.start(SessionConfig(name=name, command="echo x; exit 0"))
    tmux.wait(name, timeout=10)
    pane = tmux._query(name)
    assert pane is not None and pane.log is not None and pane.log.exists()
    tmux.stop(name)
    assert not pane.log.exists()


def test_log_rotation_caps_the_size(tmux: TmuxRunner, name: str, monkeypatch: pytest.MonkeyPatch) -> None:

    monkeypatch.setenv("KSTLIB_OPS_MAX_LOG_BYTES", "20000")
    tmux.start(SessionConfig(name=name, command=["seq", "1", "20000"]))
    tmux.wait(name, timeout=30)
    pane = tmux._query(name)
    assert pane is not None and pane.log is not None
    rotated = pane.log.with_name(pane.log.name + ".1")
    assert rotated.exists()
    assert pane.log.stat().st_size <= 20_000 + 100
    assert rotated.stat().st_size <= 20_000 + 100
    tail = tmux.logs(name, lines=None).split("\n")
    assert tail[-1] == "20000" and len(tail) < 20000  # the oldest lines were dropped
    assert tail == [str(i) for i in range(int(tail[0]), 20001)]  # no gap
    tmux.stop(name)
    assert not pane.log.exists() and not rotated.exists()


def test_timestamps_need_a_kstlib_session(tmux: TmuxRunner, name: str) -> None:
    from kstlib.ops import SessionError

    assert tmux.server.cmd("new-session", "-d", "-s", name, "echo foreign; sleep 30").returncode == 0
    wait_until(lambda: tmux.logs(name) == "foreign")
    with pytest.raises(SessionError, match="not started by kstlib"):
        tmux.logs(name, timestamps=True)
    tmux.stop(name, graceful=False)
    assert datetime.now(timezone.utc)


def test_on_failure_2_restarts_exactly_twice(tmux: TmuxRunner, name: str) -> None:
    tmux.start(SessionConfig(name=name, command="echo run; exit 3", restart="on-failure:2"))
    assert tmux.wait(name, timeout=20) == 3
    st = tmux.status(name)
    assert st.restart_count == 2
    assert tmux.logs(name, lines=None) == "run\nrun\nrun"
    tmux.stop(name)


def test_on_failure_does_not_restart_a_success(tmux: TmuxRunner, name: str) -> None:
    tmux.start(SessionConfig(name=name, command="echo once", restart="on-failure"))
    assert tmux.wait(name, timeout=10) == 0
    assert tmux.status(name).restart_count == 0
    assert tmux.logs(name) == "once"
    tmux.stop(name)


def test_always_restarts_until_stopped_and_stop_wins(tmux: TmuxRunner, name: str) -> None:
    tmux.start(SessionConfig(name=name, command="echo run; sleep 0.1", restart="always"))
    wait_until(lambda: tmux.status(name).restart_count >= 3, timeout=10)
    assert tmux.status(name).is_running
    tmux.stop(name, timeout=5)
    assert not tmux.exists(name)
