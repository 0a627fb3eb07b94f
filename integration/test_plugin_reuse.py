"""Sessions reused across pytest runs (issue 22, point 10), in real consecutive runs.

``reuse=True`` keeps a session after the run; the next run finds it again when its
configuration is the same (same tmux pid, same container id), restarts it when the
configuration changed, and the reaper never touches it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kstlib.ops import TmuxRunner
from kstlib.ops.exceptions import OpsError
from kstlib.ops.pytest_plugin import REUSE_LABEL, owner_token

from .conftest import DOCKER_URL, PODMAN_URL, TEST_IMAGE, unique
from .test_cli import container_runner

pytestmark = [pytest.mark.tmux, pytest.mark.docker, pytest.mark.podman]

INNER = """
import os, pathlib, time

def test_reuses(ops_session):
    mode = os.environ["REUSE_MODE"]
    command = ["sh", "-c", "echo up; sleep 600"]
    kept = [
        ops_session(command, name={names[0]!r}, socket_name={socket!r}, reuse=True,
                    env={{"MODE": mode}}),
        ops_session(command, backend="docker", name={names[1]!r}, image={image!r},
                    base_url={docker!r}, env={{"MODE": mode}}, reuse=True),
        ops_session(command, backend="podman", name={names[2]!r}, image={image!r},
                    base_url={podman!r}, env={{"MODE": mode}}, reuse=True),
    ]
    for session in kept:
        assert session.wait_for_log("up", timeout=30) == "up"
    throwaway = ops_session(["sleep", "600"], socket_name={socket!r})
    pathlib.Path({ready!r}).write_text(throwaway.name)
    if os.environ.get("REUSE_HOLD"):
        while True:  # until the run is killed
            time.sleep(0.05)
"""


@pytest.fixture
def socket(tmux_socket: str) -> Iterator[str]:
    name = f"kstlib-reuse-{uuid.uuid4().hex[:8]}"
    yield name
    TmuxRunner(socket_name=name).kill_server()
    folder = Path(os.environ.get("TMUX_TMPDIR", "/tmp")) / f"tmux-{os.getuid()}"
    with contextlib.suppress(OSError):
        (folder / name).unlink()  # tmux leaves the socket file behind


class Runs:
    """Consecutive pytest runs over one test that asks for three reused sessions."""

    def __init__(self, where: Path, socket: str) -> None:
        self.where, self.socket = where, socket
        self.names = [unique("reuse-tmux"), unique("reuse-docker"), unique("reuse-podman")]
        self.ready = where / "ready"
        (where / "test_reuse.py").write_text(INNER.format(
            names=self.names, socket=socket, image=TEST_IMAGE, docker=DOCKER_URL,
            podman=PODMAN_URL, ready=str(self.ready)))
        self.env = {**os.environ, "XDG_STATE_HOME": str(where / "state"),
                    "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parent.parent),
                                                   os.environ.get("PYTHONPATH", "")])}
        self.runners: list[Any] = [TmuxRunner(socket_name=socket), container_runner("docker"),
                                   container_runner("podman")]

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                str(self.where / "test_reuse.py")]

    def run(self, mode: str) -> list[str]:
        done = subprocess.run(self.argv(), cwd=self.where, env={**self.env, "REUSE_MODE": mode},
                              capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        return self.identities()

    def identities(self) -> list[str]:
        """tmux: the session's pid; containers: the container id (a restart changes both)."""
        tmux, docker, podman = self.runners
        return [str(tmux.status(self.names[0]).pid),
                docker.engine.inspect(self.names[1]).id, podman.engine.inspect(self.names[2]).id]


def test_same_config_is_found_again_changed_config_restarts(tmp_path: Path, socket: str) -> None:
    runs = Runs(tmp_path, socket)
    try:
        first = runs.run("a")
        # kept after the run: running, with the hash, and no owner mark
        for runner, name in zip(runs.runners, runs.names, strict=True):
            assert runner.status(name).is_running
        labels = runs.runners[1].engine.inspect(runs.names[1]).labels
        assert REUSE_LABEL in labels and "io.kstlib.pytest-owner" not in labels
        assert len(labels[REUSE_LABEL]) == 32  # a keyed hash: no env value in it
        assert runs.run("a") == first  # same configuration: the same sessions
        changed = runs.run("b")  # the env changed: every one restarted
        assert [c != f for c, f in zip(changed, first, strict=True)] == [True, True, True]
        assert runs.run("b") == changed
    finally:
        for runner, name in zip(runs.runners, runs.names, strict=True):
            with contextlib.suppress(OpsError):
                runner.stop(name, graceful=False)


def test_the_reaper_never_touches_a_reused_session(tmp_path: Path, socket: str) -> None:
    runs = Runs(tmp_path, socket)
    proc = None
    try:
        first = runs.run("a")
        proc = subprocess.Popen(runs.argv(), cwd=tmp_path,
                                env={**runs.env, "REUSE_MODE": "a", "REUSE_HOLD": "1"},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        runs.ready.unlink()
        deadline = time.monotonic() + 60
        while not runs.ready.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the run did not start"
            time.sleep(0.05)
        throwaway = runs.ready.read_text()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        # a forged record claiming the reused container for a dead owner of this namespace
        folder = tmp_path / "state" / "kstlib" / "ops" / "pytest-owners"
        dead = ":".join(["999999999", "1", *owner_token().split(":")[2:]])
        forged = folder / "forged.json"
        forged.write_text(json.dumps({"owner": dead, "name": runs.names[1],
                                      "backend": "container", "runtime": "docker",
                                      "base_url": DOCKER_URL}))
        forged.chmod(0o600)

        (tmp_path / "test_next.py").write_text("def test_nothing():\n    pass\n")
        nxt = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                              str(tmp_path / "test_next.py")], cwd=tmp_path, env=runs.env,
                             capture_output=True, text=True, timeout=300, check=False)
        assert nxt.returncode == 0, nxt.stdout + nxt.stderr
        assert not runs.runners[0].exists(throwaway)  # the killed run's own: reaped
        assert runs.identities() == first  # the reused ones: untouched
        assert list(folder.glob("*.json")) == []
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        for runner, name in zip(runs.runners, runs.names, strict=True):
            with contextlib.suppress(OpsError):
                runner.stop(name, graceful=False)
