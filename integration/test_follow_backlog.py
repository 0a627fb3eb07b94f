"""``follow_logs(lines=N)`` and ``kstlib ops logs -f -n N``: the last N lines, then the new ones.

On tmux, Docker and Podman. The session prints ``1`` to ``5``, then waits for a
gate (a file it polls) before printing ``later`` and ending: the follow has
begun, and yielded its backlog, before ``later`` is written, so every line's
place in the output is known without any timing.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kstlib.ops import SessionConfig, SessionManager, TmuxRunner
from kstlib.ops.container import ContainerRunner
from kstlib.ops.exceptions import SessionConfigError

from . import test_containers as base
from .conftest import DOCKER_URL, PODMAN_URL, unique

runtime, runner, names = base.runtime, base.runner, base.names
cfg, wait_for = base.cfg, base.wait_for

GATED = "seq 1 5; while [ ! -e {gate} ]; do sleep 0.05; done; echo later"


def take(lines: Iterator[str], count: int) -> list[str]:
    return [next(lines) for _ in range(count)]


# -- tmux --------------------------------------------------------------------------------------


def test_tmux_follow_yields_the_last_lines_then_follows(tmux: TmuxRunner, tmp_path: Path) -> None:
    name, gate = unique(), tmp_path / "gate"
    tmux.start(SessionConfig(name=name, command=GATED.format(gate=gate)))
    wait_for(lambda: tmux.logs(name).endswith("5"), what="the first five lines")

    lines = tmux.follow_logs(name, lines=2)
    assert take(lines, 2) == ["4", "5"]
    gate.touch()
    assert list(lines) == ["later"]

    # the session has ended: its last lines, then the follow ends
    assert list(tmux.follow_logs(name, lines=3)) == ["4", "5", "later"]
    assert list(tmux.follow_logs(name, lines=0)) == []
    assert list(tmux.follow_logs(name)) == []  # unchanged: no backlog unless asked
    assert list(tmux.follow_logs(name, since=0, lines=100)) == ["1", "2", "3", "4", "5", "later"]
    with pytest.raises(SessionConfigError, match="lines"):
        tmux.follow_logs(name, lines=-1)


def test_manager_follow_takes_lines(tmux_socket: str, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    bot = SessionManager(unique(), socket_name=tmux_socket)
    bot.start(GATED.format(gate=gate))
    try:
        wait_for(lambda: bot.logs().endswith("5"), what="the first five lines")
        lines = bot.follow_logs(lines=1)
        assert take(lines, 1) == ["5"]
        gate.touch()
        assert list(lines) == ["later"]
    finally:
        bot.stop(graceful=False)


# -- containers --------------------------------------------------------------------------------


def test_container_follow_yields_the_last_lines_then_follows(
    runner: ContainerRunner, names: Callable[..., str]
) -> None:
    name = names()
    runner.start(cfg(name, ["sh", "-c", GATED.format(gate="/tmp/gate")]))
    wait_for(lambda: runner.logs(name).endswith("5"), what="the first five lines")

    lines = runner.follow_logs(name, lines=2)
    assert take(lines, 2) == ["4", "5"]
    assert runner.exec(name, ["touch", "/tmp/gate"])[0] == 0
    assert list(lines) == ["later"]

    assert runner.wait(name, timeout=30) == 0
    assert list(runner.follow_logs(name, lines=3)) == ["4", "5", "later"]
    assert list(runner.follow_logs(name, lines=0)) == []
    assert list(runner.follow_logs(name, since=0, lines=100)) == [
        "1", "2", "3", "4", "5", "later"]
    with pytest.raises(SessionConfigError, match="lines"):
        runner.follow_logs(name, lines=-1)


def test_container_backlog_inside_one_busy_second_is_not_sent_again(
    runner: ContainerRunner, names: Callable[..., str]
) -> None:
    # Podman's log times have whole seconds: the 40 lines share one, and the
    # backlog's tail read holds only the last of them. The stream that follows
    # resumes at that second; it must not send lines 19-40 again.
    name = names()
    busy = GATED.replace("seq 1 5", "seq 1 40").format(gate="/tmp/gate")
    runner.start(cfg(name, ["sh", "-c", busy]))
    wait_for(lambda: runner.logs(name).endswith("40"), what="forty lines")
    lines = runner.follow_logs(name, lines=2)
    assert take(lines, 2) == ["39", "40"]
    assert runner.exec(name, ["touch", "/tmp/gate"])[0] == 0
    assert list(lines) == ["later"]


def test_container_follow_backlog_with_timestamps(
    runner: ContainerRunner, names: Callable[..., str]
) -> None:
    name = names()
    runner.start(cfg(name, ["sh", "-c", GATED.format(gate="/tmp/gate")]))
    wait_for(lambda: runner.logs(name).endswith("5"), what="the first five lines")
    lines = runner.follow_logs(name, lines=1, timestamps=True)
    first = next(lines)
    assert first.endswith("Z 5"), first
    runner.exec(name, ["touch", "/tmp/gate"])
    rest = list(lines)
    assert [line.split(" ", 1)[1] for line in rest] == ["later"]


# -- the CLI -----------------------------------------------------------------------------------


@pytest.fixture
def cli_env(tmp_path: Path, tmux_socket: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KSTLIB_CONFIG", "XDG_"))}
    env.update(XDG_CONFIG_HOME=str(tmp_path / "config"), DOCKER_HOST=DOCKER_URL,
               CONTAINER_HOST=PODMAN_URL)
    return env


def follow_cli(args: list[str], env: dict[str, str], before_gate: int,
               open_gate: Callable[[], Any]) -> list[str]:
    """Run ``kstlib ops logs -f ...``; read ``before_gate`` lines, open the gate, read the rest."""
    proc = subprocess.Popen([sys.executable, "-m", "kstlib", "ops", "logs", *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        got = [proc.stdout.readline().rstrip("\n") for _ in range(before_gate)]
        open_gate()
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        return got + out.splitlines()
    finally:
        with contextlib.suppress(OSError):
            proc.kill()
        proc.wait()


def test_cli_logs_follow_n_on_tmux(tmux: TmuxRunner, cli_env: dict[str, str],
                                   tmp_path: Path) -> None:
    name, gate = unique(), tmp_path / "gate"
    tmux.start(SessionConfig(name=name, command=GATED.format(gate=gate)))
    wait_for(lambda: tmux.logs(name).endswith("5"), what="the first five lines")
    got = follow_cli([name, "-L", str(tmux.socket_name), "-f", "-n", "3"], cli_env, 3,
                     gate.touch)
    assert got == ["3", "4", "5", "later"]
    # the session has ended: -n all -f prints everything kept, then ends; -n 0 -f nothing
    everything = follow_cli([name, "-L", str(tmux.socket_name), "-f", "-n", "all"], cli_env, 0,
                            lambda: None)
    assert everything == ["1", "2", "3", "4", "5", "later"]
    assert follow_cli([name, "-L", str(tmux.socket_name), "-f", "-n", "0"], cli_env, 0,
                      lambda: None) == []


def test_cli_logs_follow_n_on_containers(
    runner: ContainerRunner, names: Callable[..., str], cli_env: dict[str, str]
) -> None:
    name = names()
    runner.start(cfg(name, ["sh", "-c", GATED.format(gate="/tmp/gate")]))
    wait_for(lambda: runner.logs(name).endswith("5"), what="the first five lines")
    got = follow_cli([name, "--runtime", runner.runtime, "-f", "-n", "2"], cli_env, 2,
                     lambda: runner.exec(name, ["touch", "/tmp/gate"]))
    assert got == ["4", "5", "later"]
