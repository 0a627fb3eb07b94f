"""Container logs (since, timestamps, ansi), followed logs, waits and restarts on real engines.

Every test runs on Docker and on Podman, with names unique to the run; what a
test creates is removed in a finalizer (the ``names`` fixture), even when it fails.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone

import pytest

from kstlib.ops import SessionNotFoundError, SessionState, SessionTimeoutError
from kstlib.ops.container import ContainerRunner

from . import test_containers as base
from .conftest import unique

# The container tests' fixtures: both engines, unique names, cleanup.
runtime, runner, names = base.runtime, base.runner, base.names
cfg, wait_for = base.cfg, base.wait_for

STAMPED = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6})Z (.*)$")
# Runs of the command below are counted in the container's own file system,
# which a restart keeps: run n prints run-n and exits with 10 + n.
COUNTED_RUN = (
    "n=$(cat /tmp/runs 2>/dev/null || echo 0); n=$((n+1)); echo $n > /tmp/runs; "
    "echo run-$n; exit $((10+n))"
)


def stamp_of(line: str) -> datetime:
    match = STAMPED.match(line)
    assert match is not None, f"not a timestamped line: {line!r}"
    return datetime.fromisoformat(match.group(1)).replace(tzinfo=timezone.utc)


def open_sockets() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:
            continue
    return count


def test_logs_since_timestamps_and_ansi(runner: ContainerRunner, names: Callable[..., str]) -> None:
    name = names()
    script = "printf '\\033[31mred\\033[0m\\n'; echo first; sleep 2; echo later"
    runner.start(cfg(name, ["sh", "-c", script]))
    wait_for(lambda: "first" in runner.logs(name), what="the first lines")
    mark = time.time()  # the engines run on this machine: one clock
    assert runner.wait(name, timeout=20) == 0

    assert runner.logs(name) == "\x1b[31mred\x1b[0m\nfirst\nlater"
    assert runner.logs(name, ansi=False) == "red\nfirst\nlater"
    stamped = runner.logs(name, timestamps=True, ansi=False).split("\n")
    assert [STAMPED.match(line).group(2) for line in stamped] == ["red", "first", "later"]  # type: ignore[union-attr]
    first, later = stamp_of(stamped[1]), stamp_of(stamped[2])
    assert abs((datetime.now(timezone.utc) - later).total_seconds()) < 60  # UTC, not local time
    assert 0.5 < (later - first).total_seconds() < 5  # Podman's times are whole seconds
    assert runner.logs(name, timestamps=True).split("\n")[0].endswith(" \x1b[31mred\x1b[0m")

    assert runner.logs(name, since=mark) == "later"
    assert runner.logs(name, since=datetime.fromtimestamp(mark, timezone.utc)) == "later"
    assert runner.logs(name, since=0, lines=2) == "first\nlater"
    assert runner.logs(name, since=time.time() + 3600) == ""


def test_partial_lines_come_back_whole_also_in_a_tail(
    runner: ContainerRunner, names: Callable[..., str]
) -> None:
    # Podman 4.3 garbles partial lines in a tail read; Docker stores a line
    # longer than 16 KiB as several timestamped entries.
    name = names()
    script = "echo a; printf x; sleep 0.3; echo y; seq 1 9000 | tr '\\n' ' '; echo; printf end"
    runner.start(cfg(name, ["sh", "-c", script]))
    assert runner.wait(name, timeout=20) == 0
    long_line = " ".join(str(i) for i in range(1, 9001)) + " "
    assert runner.logs(name, lines=None).split("\n") == ["a", "xy", long_line, "end"]
    assert runner.logs(name, lines=3).split("\n") == ["xy", long_line, "end"]
    stamped = runner.logs(name, lines=None, timestamps=True).split("\n")
    assert [STAMPED.match(line).group(2) for line in stamped] == ["a", "xy", long_line, "end"]  # type: ignore[union-attr]
    assert list(runner.follow_logs(name, since=0)) == ["a", "xy", long_line, "end"]


def test_a_first_line_written_in_pieces_comes_back_whole(
    runner: ContainerRunner, names: Callable[..., str]
) -> None:
    # Podman 4.3's backward tail read drops the partial entries the answer's
    # first line began with: here the whole log, so "ab" came back as "b".
    name = names()
    runner.start(cfg(name, ["sh", "-c", "printf a; sleep 0.3; echo b; echo c"]))
    assert runner.wait(name, timeout=20) == 0
    for lines in (100, 3, 2):
        assert runner.logs(name, lines=lines).split("\n") == ["ab", "c"], lines
    assert runner.logs(name, lines=1) == "c"
    stamped = runner.logs(name, lines=10, timestamps=True).split("\n")
    assert [STAMPED.match(line).group(2) for line in stamped] == ["ab", "c"]  # type: ignore[union-attr]


def test_follow_logs_gets_new_lines_and_ends_with_the_container(
    runner: ContainerRunner, names: Callable[..., str]
) -> None:
    name = names()
    script = "echo before; sleep 1.5; for i in 1 2 3; do echo after-$i; sleep 0.2; done"
    runner.start(cfg(name, ["sh", "-c", script]))
    wait_for(lambda: runner.logs(name) == "before", what="the first line")
    began = time.monotonic()
    received = list(runner.follow_logs(name, timeout=30))
    assert received == ["after-1", "after-2", "after-3"]  # not 'before': written earlier
    assert time.monotonic() - began < 10
    assert runner.status(name).state is SessionState.EXITED
    # From a time on, and on a container that has exited: what is kept, then the end.
    assert list(runner.follow_logs(name, since=0)) == ["before", "after-1", "after-2", "after-3"]
    stamped = list(runner.follow_logs(name, since=0, timestamps=True))
    assert [line.split(" ", 1)[1] for line in stamped] == [
        "before",
        "after-1",
        "after-2",
        "after-3",
    ]
    assert all(STAMPED.match(line) for line in stamped)


def test_follow_logs_timeout_raises_in_about_the_timeout(
    runner: ContainerRunner, names: Callable[..., str]
) -> None:
    silent, chatty = names(), names()
    runner.start(cfg(silent, ["sleep", "60"]))
    runner.start(cfg(chatty, ["sh", "-c", "while true; do echo tick; sleep 0.1; done"]))
    threads = threading.active_count()
    for name in (silent, chatty):
        began = time.monotonic()
        with pytest.raises(SessionTimeoutError) as info:
            for _ in runner.follow_logs(name, timeout=1):
                pass
        elapsed = time.monotonic() - began
        assert 0.9 < elapsed < 3, f"{name}: {elapsed:.2f} s"
        assert info.value.name == name and info.value.backend == runner.runtime
    assert threading.active_count() == threads
    assert runner.status(silent).state is SessionState.RUNNING  # the engine still answers


def test_leaving_follow_logs_early_releases_the_connection_and_no_thread_is_left(
    runner: ContainerRunner, names: Callable[..., str]
) -> None:
    name = names()
    runner.start(
        cfg(name, ["sh", "-c", "i=0; while true; do i=$((i+1)); echo tick-$i; sleep 0.05; done"])
    )
    wait_for(lambda: "tick-" in runner.logs(name), what="output")
    threads, sockets = threading.active_count(), open_sockets()
    got = []
    for line in runner.follow_logs(name, timeout=20):
        got.append(line)
        if len(got) == 3:
            break
    assert [int(line.split("-")[1]) for line in got] == sorted(
        {int(line.split("-")[1]) for line in got}
    )
    assert threading.active_count() == threads
    assert open_sockets() <= sockets
    stream = runner.follow_logs(name)
    assert next(stream).startswith("tick-")
    stream.close()  # type: ignore[attr-defined]
    assert open_sockets() <= sockets
    never_started = runner.follow_logs(name)
    del never_started  # nothing was opened for it
    assert threading.active_count() == threads
    assert runner.status(name).state is SessionState.RUNNING


def test_wait_returns_the_exit_code_or_raises(
    runner: ContainerRunner, names: Callable[..., str]
) -> None:
    name, busy = names(), names()
    runner.start(cfg(name, ["sh", "-c", "exit 7"]))
    runner.start(cfg(busy, ["sleep", "60"]))
    assert runner.wait(name, timeout=20) == 7
    began = time.monotonic()
    with pytest.raises(SessionTimeoutError):
        runner.wait(busy, timeout=0.3)
    assert time.monotonic() - began < 3
    with pytest.raises(SessionNotFoundError):
        runner.wait(unique("missing"), timeout=5)
    with pytest.raises(SessionNotFoundError):
        list(runner.follow_logs(unique("missing")))


def test_on_failure_2_restarts_exactly_twice_and_wait_returns_the_last_exit(
    runner: ContainerRunner, names: Callable[..., str]
) -> None:
    name = names()
    runner.start(cfg(name, ["sh", "-c", COUNTED_RUN], restart="on-failure:2"))
    followed: list[str] = []
    follower = threading.Thread(
        target=lambda: followed.extend(runner.follow_logs(name, since=0, timeout=60))
    )
    follower.start()
    assert runner.wait(name, timeout=60) == 13  # the third run's code, not the first's
    follower.join(timeout=30)
    st = runner.status(name)
    assert (st.state, st.exit_code, st.restart_count) == (SessionState.EXITED, 13, 2)
    assert followed == ["run-1", "run-2", "run-3"]  # one follow across the restarts
    time.sleep(1.5)  # no third restart comes
    assert runner.status(name).restart_count == 2
    assert runner.logs(name, lines=None) == "run-1\nrun-2\nrun-3"


def test_20000_lines_read_back_completely(
    runner: ContainerRunner, names: Callable[..., str]
) -> None:
    name = names()
    runner.start(cfg(name, ["seq", "1", "20000"]))
    assert runner.wait(name, timeout=60) == 0
    expected = [str(i) for i in range(1, 20001)]
    assert runner.logs(name, lines=None).split("\n") == expected
    assert runner.logs(name, lines=3) == "19998\n19999\n20000"
    # Podman's follow may stop early on a container that has exited: the rest is read.
    assert list(runner.follow_logs(name, since=0)) == expected
