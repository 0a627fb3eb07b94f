"""A pytest run killed with SIGKILL leaves sessions behind; the next run reaps them
(issue 16, point 9), and nothing else: not a live run's sessions, not foreign ones.

Real pytest processes, real tmux, Docker and Podman: the first run is SIGKILLed in
the middle of its test, a second one keeps running, then a third run starts.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from kstlib.ops import TmuxRunner
from kstlib.ops.exceptions import OpsError
from kstlib.ops.models import SessionConfig
from kstlib.ops.pytest_plugin import owner_token

from .conftest import DOCKER_URL, PODMAN_URL, TEST_IMAGE, unique
from .test_cli import container_runner
from .waiting import wait_until

pytestmark = [pytest.mark.tmux, pytest.mark.docker, pytest.mark.podman]

WAIT_S = 60.0

INNER = """
import os, pathlib, time

SOCKET = {socket!r}
IMAGE = {image!r}

def test_holds_sessions(ops_session):
    made = [
        ops_session(["sleep", "600"], socket_name=SOCKET),
        ops_session(["sleep", "600"], backend="docker", image=IMAGE, base_url={docker!r}),
        ops_session(["sleep", "600"], backend="podman", image=IMAGE, base_url={podman!r}),
    ]
    ready = pathlib.Path({ready!r})
    ready.with_suffix(".tmp").write_text(" ".join(m.name for m in made))
    ready.with_suffix(".tmp").rename(ready)
    release = pathlib.Path({release!r})
    while not release.exists():  # until the test is killed, or released
        time.sleep(0.05)
"""


wait_for = partial(wait_until, timeout=WAIT_S, interval=0.05)


class Run:
    """One pytest process over a test that starts a session on each backend and blocks."""

    def __init__(self, where: Path, env: dict[str, str], socket: str) -> None:
        tag = uuid.uuid4().hex[:8]
        self.ready = where / f"ready-{tag}"
        self.release = where / f"release-{tag}"
        test = where / f"test_hold_{tag}.py"
        test.write_text(INNER.format(socket=socket, image=TEST_IMAGE, docker=DOCKER_URL,
                                     podman=PODMAN_URL, ready=str(self.ready),
                                     release=str(self.release)))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test)],
            cwd=where, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def names(self) -> list[str]:
        def ready() -> bool:
            if self.proc.poll() is not None:
                out = self.proc.stdout.read().decode() if self.proc.stdout else ""
                raise AssertionError(f"the inner run ended early: {out}")
            return self.ready.exists()

        wait_for(ready, "the inner test to start its sessions")
        return self.ready.read_text().split()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)  # no cleanup of any kind can run
        self.proc.wait(timeout=30)
        assert self.proc.returncode == -signal.SIGKILL

    def finish(self) -> str:
        self.release.touch()
        out, _ = self.proc.communicate(timeout=120)
        assert self.proc.returncode == 0, out.decode()
        return out.decode()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    state = tmp_path / "state"
    return {**os.environ, "XDG_STATE_HOME": str(state),
            "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parent.parent),
                                           os.environ.get("PYTHONPATH", "")])}


@pytest.fixture
def socket(tmux_socket: str) -> Iterator[str]:
    name = f"kstlib-reap-{uuid.uuid4().hex[:8]}"
    yield name
    TmuxRunner(socket_name=name).kill_server()
    folder = Path(os.environ.get("TMUX_TMPDIR", "/tmp")) / f"tmux-{os.getuid()}"
    with contextlib.suppress(OSError):
        (folder / name).unlink()  # tmux leaves the socket file behind


@pytest.fixture
def runners() -> dict[str, Any]:
    return {"docker": container_runner("docker"), "podman": container_runner("podman")}


def alive(socket: str, runners: dict[str, Any], names: list[str]) -> list[bool]:
    """Whether each of (tmux, docker, podman) session still exists."""
    tmux_name, docker_name, podman_name = names
    return [TmuxRunner(socket_name=socket).exists(tmux_name),
            runners["docker"].exists(docker_name), runners["podman"].exists(podman_name)]


def records(env: dict[str, str]) -> list[dict[str, Any]]:
    folder = Path(env["XDG_STATE_HOME"]) / "kstlib" / "ops" / "pytest-owners"
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def tmux_logs(env: dict[str, str], socket: str) -> list[str]:
    folder = Path(env["XDG_STATE_HOME"]) / "kstlib" / "ops" / "tmux" / f"L-{socket}"
    return sorted(p.name.split(".", 1)[0] for p in folder.glob("*.log*"))


def test_a_killed_run_is_reaped_by_the_next_and_nothing_else(
    tmp_path: Path, env: dict[str, str], socket: str, runners: dict[str, Any]
) -> None:
    # What must survive: a foreign tmux session, a kstlib session no run owns, and a
    # container kstlib did not start, all on the same socket and engines.
    tmux = TmuxRunner(socket_name=socket)
    foreign = unique("foreign")
    tmux.server.cmd("new-session", "-d", "-s", foreign, "sleep 600")
    unowned = unique("unowned")
    tmux.start(SessionConfig(name=unowned, command=["sleep", "600"], socket_name=socket))
    import docker

    client = docker.DockerClient(base_url=DOCKER_URL)
    outsider = client.containers.run(TEST_IMAGE, ["sleep", "600"], detach=True,
                                      name=unique("outsider"))
    killed = live = None
    made: list[str] = []
    try:
        killed = Run(tmp_path, env, socket)
        killed_names = killed.names()
        made += killed_names
        live = Run(tmp_path, env, socket)
        live_names = live.names()
        made += live_names
        killed.kill()
        # SIGKILL: the sessions, containers and the tmux log are all left behind
        assert alive(socket, runners, killed_names) == [True, True, True]
        assert killed_names[0] in tmux_logs(env, socket)
        folder = Path(env["XDG_STATE_HOME"]) / "kstlib" / "ops" / "pytest-owners"
        assert folder.stat().st_mode & 0o777 == 0o700
        assert {p.stat().st_mode & 0o777 for p in folder.glob("*.json")} == {0o600}
        owners = {r["owner"] for r in records(env)}
        assert len(owners) == 2 and all(o.split(":")[0].isdigit() for o in owners)
        assert {r["name"] for r in records(env)} == {*killed_names, *live_names}
        # the marks: a container label, a tmux session option
        token = next(r["owner"] for r in records(env) if r["name"] == killed_names[1])
        labels = client.containers.get(killed_names[1]).labels
        assert labels["io.kstlib.pytest-owner"] == token
        option = tmux.server.cmd("show-options", "-qv", "-t", f"={killed_names[0]}:",
                                 "@kstlib-pytest-owner").stdout
        assert option == [token]
        # A record whose dead owner (this namespace, no lock) names sessions that are not
        # its own: the sessions are left alone, the record dropped.
        dead = ":".join(["999999999", "1", *owner_token().split(":")[2:]])
        for name in (foreign, unowned):
            (folder / f"forged-{name}.json").write_text(json.dumps(
                {"owner": dead, "name": name, "backend": "tmux", "socket_name": socket}))
        (folder / "forged-outsider.json").write_text(json.dumps(
            {"owner": dead, "name": outsider.name, "backend": "container",
             "runtime": "docker", "base_url": DOCKER_URL}))

        # The next run reaps the killed run's sessions, and only those.
        (tmp_path / "test_next.py").write_text("def test_nothing():\n    pass\n")
        nxt = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                              str(tmp_path / "test_next.py")], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=300, check=False)
        assert nxt.returncode == 0, nxt.stdout + nxt.stderr
        assert alive(socket, runners, killed_names) == [False, False, False]
        assert killed_names[0] not in tmux_logs(env, socket)
        assert alive(socket, runners, live_names) == [True, True, True]
        assert tmux.exists(foreign) and tmux.exists(unowned)
        outsider.reload()
        assert outsider.status == "running"
        assert {r["name"] for r in records(env)} == set(live_names)

        # The live run ends normally: it cleans up after itself, records included.
        live.finish()
        live = None
        assert alive(socket, runners, live_names) == [False, False, False]
        assert records(env) == []
    finally:
        for run in (killed, live):
            if run is not None and run.proc.poll() is None:
                run.proc.kill()
                run.proc.wait()
        with contextlib.suppress(Exception):
            outsider.remove(force=True)
        for name in (foreign, unowned):
            with contextlib.suppress(OpsError):
                tmux.stop(name, graceful=False)
        # whatever a failed assertion left: the engines are shared with other tests
        for index, name in enumerate(made):
            runner = (tmux, runners["docker"], runners["podman"])[index % 3]
            with contextlib.suppress(OpsError):
                runner.stop(name, graceful=False)
