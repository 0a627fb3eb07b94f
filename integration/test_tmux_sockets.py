"""Sessions on the user's other tmux servers (``tmux -L orion``) are found without naming them.

Every test runs its tmux servers in a private ``TMUX_TMPDIR``, so the socket
folder holds only what the test made: a live server, a socket file left by a
server that died (SIGKILL), a server that is stopped (SIGSTOP), and sockets
that are not the user's. The stopped server is resumed and every server
killed afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from typing import Any
from pathlib import Path

import pytest

from kstlib.ops import SessionConfig, SessionManager, TmuxRunner
from kstlib.ops.exceptions import OpsError, SessionAmbiguousError, SessionNotFoundError
from kstlib.ops.discovery import EngineUnavailableWarning, list_sessions, search
from kstlib.ops.tmux.sockets import user_sockets

from .conftest import engine_missing, unique


class World:
    """A private tmux socket folder and the servers a test starts in it."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.folder = base / f"tmux-{os.getuid()}"
        self.stopped: list[int] = []

    def tmux(self, socket: str, *args: str, check: bool = True) -> str:
        done = subprocess.run(["tmux", "-L", socket, *args], capture_output=True, text=True,
                              timeout=30, check=check)
        return done.stdout.strip()

    def foreign(self, socket: str, name: str, command: str = "sleep 300") -> None:
        """A session kstlib did not start, on server ``socket``."""
        self.tmux(socket, "new-session", "-d", "-s", name, command)

    def has(self, socket: str, name: str) -> bool:
        done = subprocess.run(["tmux", "-L", socket, "has-session", "-t", f"={name}"],
                              capture_output=True, timeout=30, check=False)
        return done.returncode == 0

    def server_pid(self, socket: str) -> int:
        return int(self.tmux(socket, "display-message", "-p", "#{pid}"))

    def stale(self, socket: str) -> None:
        """A socket file whose server is gone (killed, so it could not remove it)."""
        self.foreign(socket, unique("gone"))
        pid = self.server_pid(socket)
        os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        assert (self.folder / socket).exists()

    def stop(self, socket: str) -> None:
        """A server that accepts connections and never answers."""
        self.foreign(socket, unique("stuck"))
        pid = self.server_pid(socket)
        os.kill(pid, signal.SIGSTOP)
        self.stopped.append(pid)

    def close(self) -> None:
        for pid in self.stopped:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGCONT)
        if self.folder.is_dir():
            for sock in self.folder.iterdir():
                with contextlib.suppress(OpsError):
                    TmuxRunner(socket_path=str(sock)).kill_server()
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    if shutil.which("tmux") is None:
        engine_missing("tmux", "tmux is not on PATH")
    base = Path(tempfile.mkdtemp(prefix="ks-", dir="/tmp"))  # short: socket paths are limited
    monkeypatch.setenv("TMUX_TMPDIR", str(base))
    monkeypatch.delenv("TMUX", raising=False)
    made = World(base)
    yield made
    made.close()


def test_only_live_sockets_of_the_user_are_discovered(world: World) -> None:
    world.foreign("orion", unique())
    world.stale("dead")
    world.stop("stuck")
    world.foreign("theirs", unique())
    os.chown(world.folder / "theirs", 65534, 65534)  # a socket of another user
    (world.folder / "notasocket").write_text("")
    # "stuck" accepts connections (its backlog does), so it is asked, boundedly
    assert user_sockets() == ["orion", "stuck"]


def test_a_folder_open_to_others_is_not_searched(world: World) -> None:
    world.foreign("orion", unique())
    assert user_sockets() == ["orion"]
    world.folder.chmod(0o777)
    try:
        assert user_sockets() == []
    finally:
        world.folder.chmod(0o700)


def test_search_finds_a_session_on_a_custom_socket_past_dead_and_stuck_servers(
    world: World,
) -> None:
    name = unique()
    world.stale("dead")
    world.stop("stuck")
    runner = TmuxRunner(socket_name="orion")
    runner.start(SessionConfig(name=name, command="echo on-orion; sleep 300"))

    found = search(name, containers=False)

    where = found.one(name)
    assert (where.socket_name, where.label) == ("orion", "tmux (socket orion)")
    assert found.unreachable == ["tmux (socket stuck)"]  # asked, and it did not answer
    assert "dead" not in " ".join(found.searched + found.unreachable)
    manager = SessionManager.find(name)
    assert manager.status().socket_name == "orion"
    assert SessionManager(name, backend=None).status().socket_name == "orion"
    assert "on-orion" in manager.logs()
    assert manager.stop(graceful=False)
    assert not runner.exists(name)


def test_a_name_on_two_servers_is_ambiguous(world: World) -> None:
    name = unique()
    world.foreign("orion", name)
    world.foreign("vega", name)
    with pytest.raises(SessionAmbiguousError) as err:
        search(name, containers=False).one(name)
    assert err.value.places == ["tmux (socket orion)", "tmux (socket vega)"]
    assert err.value.backends == ["tmux", "tmux"]
    with pytest.raises(SessionAmbiguousError):
        SessionManager.find(name)


def test_a_named_socket_is_the_only_one_searched(world: World) -> None:
    name = unique()
    world.foreign("orion", name)
    with pytest.raises(SessionNotFoundError):
        search(name, socket_name="vega", containers=False).one(name)
    assert search(name, containers=False, discover=False).found == []


def test_list_sessions_lists_every_server_and_warns_about_a_stuck_one(world: World) -> None:
    on_orion, on_vega = unique(), unique()
    world.foreign("orion", on_orion)
    world.foreign("vega", on_vega)
    world.stop("stuck")
    with pytest.warns(EngineUnavailableWarning, match="socket stuck"):
        table = list_sessions(containers=False)
    rows = {(s.name, s.socket_name) for s in table}
    assert {(on_orion, "orion"), (on_vega, "vega")} <= rows


# -- the CLI ------------------------------------------------------------------------------------


@pytest.fixture
def cli(world: World, tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("KSTLIB_CONFIG", "XDG_"))}
    env.update(XDG_STATE_HOME=str(tmp_path / "state"), XDG_CONFIG_HOME=str(tmp_path / "config"),
               TMUX_TMPDIR=str(world.base), DOCKER_HOST="unix:///nonexistent.sock",
               CONTAINER_HOST="unix:///nonexistent.sock")
    (tmp_path / "cwd").mkdir()

    def run(*args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "kstlib", "ops", *args], env=env,
                              cwd=tmp_path / "cwd", capture_output=True, text=True, timeout=120,
                              check=False)
        assert "Traceback" not in done.stderr, done.stderr
        assert done.returncode == code, (args, done.returncode, done.stdout, done.stderr)
        return done

    return run


def test_cli_finds_sessions_on_custom_sockets(world: World, cli: Callable[..., Any]) -> None:
    name = unique()
    world.stale("dead")
    world.stop("stuck")
    world.foreign("orion", name, "sh -c 'echo from-orion; sleep 300'")

    listed = cli("list", "-b", "tmux", "--json").stdout
    assert f'"name": "{name}"' in listed and '"socket_name": "orion"' in listed
    assert '"state": "running"' in cli("status", name, "--json").stdout
    assert '"socket_name": "orion"' in cli("status", name, "-b", "tmux", "--json").stdout
    cli("status", name, "-L", "vega", code=3)  # a named server is the only one asked
    assert "from-orion" in cli("logs", name).stdout
    cli("stop", name)
    assert not world.has("orion", name)
    cli("status", name, code=3)


def test_cli_reports_a_name_on_two_sockets_as_ambiguous(
    world: World, cli: Callable[..., Any]
) -> None:
    name = unique()
    world.foreign("orion", name)
    world.foreign("vega", name)
    err = cli("stop", name, code=1).stderr
    assert "tmux (socket orion)" in err and "tmux (socket vega)" in err, err
    # both still run: an ambiguous name is never stopped
    assert world.has("orion", name) and world.has("vega", name)
    cli("stop", name, "-L", "vega")
    assert world.has("orion", name) and not world.has("vega", name)
    cli("status", name, "-L", "orion")
