"""Fixtures for tests against real engines: tmux, Docker, Podman.

Under ``KSTLIB_REQUIRE_ENGINES=1`` (CI) an engine that does not answer fails
the test; otherwise the test is skipped with the reason.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from kstlib.ops import TmuxRunner

REQUIRE = os.environ.get("KSTLIB_REQUIRE_ENGINES") == "1"
_ENGINES_SH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "engines", "engines.sh")
TEST_IMAGE = "localhost/kstlib-test:latest"
DOCKER_URL = os.environ.get("KSTLIB_TEST_DOCKER_URL", "unix:///var/run/docker.sock")
PODMAN_URL = os.environ.get("KSTLIB_TEST_PODMAN_URL", "unix:///run/podman/podman.sock")
ENGINE_URLS = {"docker": DOCKER_URL, "podman": PODMAN_URL}


def engine_missing(what: str, why: str) -> None:
    """Fail (CI) or skip (laptop) a test whose engine is not there."""
    message = f"{what} is not available: {why} (run 'make engines-up')"
    if REQUIRE:
        pytest.fail(f"KSTLIB_REQUIRE_ENGINES=1 but {message}", pytrace=False)
    pytest.skip(message)


def harness(command: str, what: str) -> dict[str, str]:
    """Run ``engines.sh COMMAND`` (idempotent) and return its ``env`` exports."""
    try:
        done = subprocess.run(
            ["bash", str(_ENGINES_SH), command], capture_output=True, text=True, timeout=300
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        engine_missing(what, f"'engines.sh {command}' did not finish: {err}")
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-8:])
        engine_missing(what, f"'engines.sh {command}' failed:\n{tail}")
    out = subprocess.run(
        ["bash", str(_ENGINES_SH), "env"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    exports: dict[str, str] = {}
    for line in out.splitlines():
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            key, _, value = words[1].partition("=")
            exports[key] = value
    return exports


def unique(prefix: str = "t") -> str:
    """A session name unique to this run."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def name() -> str:
    return unique()


@pytest.fixture(scope="session")
def tmux_socket() -> Iterator[str]:
    """A private tmux socket name for the whole run; its server is killed at the end."""
    import shutil

    if shutil.which("tmux") is None:
        engine_missing("tmux", "tmux is not on PATH")
    socket = f"kstlib-test-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    yield socket
    TmuxRunner(socket_name=socket).kill_server()
    path = os.path.join(os.environ.get("TMUX_TMPDIR", "/tmp"), f"tmux-{os.getuid()}", socket)
    if os.path.exists(path):
        os.unlink(path)


@pytest.fixture
def tmux(tmux_socket: str) -> Iterator[TmuxRunner]:
    """A TmuxRunner on the run's private socket; sessions a test leaves are removed."""
    runner = TmuxRunner(socket_name=tmux_socket)
    before = {s.name for s in runner.list_sessions()}
    yield runner
    for st in runner.list_sessions():
        if st.name not in before:
            runner.stop(st.name, graceful=False)


@pytest.fixture(scope="module")
def swarm() -> Iterator[Any]:
    """The two-node harness swarm (:class:`swarm_support.Swarm`); the module's services go after."""
    from .swarm_support import open_swarm

    yield from open_swarm()
