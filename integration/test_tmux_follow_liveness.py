"""A tmux follow checks that its session runs without forking a tmux client at every poll."""

from __future__ import annotations

import os
import signal
import time
from itertools import islice
from typing import Any

import pytest

from kstlib.ops import SessionConfig, TmuxRunner
from kstlib.ops.tmux import logs

from .waiting import wait_until


def test_a_follow_asks_tmux_every_few_seconds_not_at_every_poll(
    tmux: TmuxRunner, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    tmux.start(SessionConfig(name=name, command="while :; do echo tick; sleep 0.1; done"))
    wait_until(lambda: "tick" in tmux.logs(name))
    asked: list[float] = []
    query = tmux._query

    def counting(*args: Any, **kwargs: Any) -> Any:
        asked.append(time.monotonic())
        return query(*args, **kwargs)

    monkeypatch.setattr(tmux, "_query", counting)
    began = time.monotonic()
    follow = tmux.follow_logs(name)
    got = list(islice(follow, 30))  # about 3 s of ticks
    elapsed = time.monotonic() - began
    follow.close()
    assert got == ["tick"] * 30
    # The liveness check runs every 0.2 s; tmux is asked at the start (the pane, then
    # the first check) and then once per _ASK_EVERY s, not at each check.
    assert len(asked) <= 2 + elapsed / logs._ASK_EVERY + 1, (len(asked), elapsed)
    assert len(asked) < elapsed / 0.2  # what asking at every check would take
    tmux.stop(name, graceful=False)


def test_a_follow_ends_soon_after_its_process_is_killed(tmux: TmuxRunner, name: str) -> None:
    tmux.start(SessionConfig(name=name, command="while :; do echo tick; sleep 0.1; done"))
    wait_until(lambda: "tick" in tmux.logs(name))
    pid = tmux.status(name).pid
    assert pid is not None
    follow = tmux.follow_logs(name)
    assert next(follow) == "tick"
    os.kill(pid, signal.SIGKILL)
    rest = list(follow)  # ends: the process is gone, tmux says so
    assert set(rest) <= {"tick"}
    assert not tmux.status(name).is_running
    tmux.stop(name)
