"""The ``network`` option of container sessions, on Docker and Podman.

``host``: the container shares the host's network (it reaches a server the
test runs on the host's loopback). ``none``: only a loopback interface. A
named network: one the test creates (internal, in the 198.18.0.0/15 range
kept for tests, so no address of it can be a traffic target), which the
container joins; a name the engine does not have is a clear start error
that leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kstlib.ops import SessionConfig, SessionManager
from kstlib.ops.container import ContainerRunner
from kstlib.ops.exceptions import SessionConfigError, SessionNotFoundError, SessionStartError

from . import test_containers as base
from .conftest import DOCKER_URL, PODMAN_URL, TEST_IMAGE

runtime, runner, names = base.runtime, base.runner, base.names
cfg, wait_for = base.cfg, base.wait_for


def interfaces(text: str) -> list[str]:
    """The interface names of a ``/proc/net/dev`` listing."""
    return sorted(m.group(1) for m in re.finditer(r"^\s*([\w.@-]+):\s+\d", text, re.M))


def network_mode(runner: ContainerRunner, name: str) -> tuple[str, list[str]]:
    """The container's network mode and the networks it joined, as the engine reports them."""
    engine: Any = runner.engine
    if runner.runtime == "docker":
        attrs = engine.api.inspect_container(name)
    else:
        attrs = engine.client.containers.get(name).attrs
    return (attrs["HostConfig"]["NetworkMode"],
            sorted((attrs.get("NetworkSettings") or {}).get("Networks") or {}))


@pytest.fixture
def host_server() -> Iterator[tuple[int, list[bytes]]]:
    """A TCP server on the host's 127.0.0.1; what clients send is collected."""
    received: list[bytes] = []
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(60)

    def serve() -> None:
        with contextlib.suppress(OSError):
            conn, _ = server.accept()
            with conn:
                conn.settimeout(30)
                received.append(conn.recv(100))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], received
    server.close()
    thread.join(5)


@pytest.fixture
def own_network(runner: ContainerRunner) -> Iterator[str]:
    """A network the test creates on the engine (removed afterwards)."""
    name = f"kstlib-net-{uuid.uuid4().hex[:8]}"
    octet = int(uuid.uuid4().hex[:2], 16)
    subnet, gateway = f"198.18.{octet}.0/24", f"198.18.{octet}.1"
    engine: Any = runner.engine
    if runner.runtime == "docker":
        import docker

        pool = docker.types.IPAMPool(subnet=subnet, gateway=gateway)
        engine.api.create_network(name, driver="bridge", internal=True,
                                  ipam=docker.types.IPAMConfig(pool_configs=[pool]))
    else:
        engine.client.networks.create(name, internal=True,
                                      subnets=[{"subnet": subnet, "gateway": gateway}])
    yield name
    if runner.runtime == "docker":
        engine.api.remove_network(name)
    else:
        engine.client.networks.remove(name, force=True)


def test_host_network_reaches_the_hosts_loopback(
    runner: ContainerRunner, names: Callable[..., str], host_server: tuple[int, list[bytes]]
) -> None:
    port, received = host_server
    name = names()
    runner.start(cfg(name, ["sh", "-c", f"echo hello-host | nc 127.0.0.1 {port}"],
                     network="host"))
    assert runner.wait(name, timeout=30) == 0
    wait_for(lambda: bool(received), what="the container's message")
    assert received == [b"hello-host\n"]
    assert network_mode(runner, name)[0] == "host"


def test_none_network_has_only_a_loopback(
    runner: ContainerRunner, names: Callable[..., str], host_server: tuple[int, list[bytes]]
) -> None:
    port, received = host_server
    name = names()
    script = f"cat /proc/net/dev; echo hello | nc 127.0.0.1 {port}; echo nc=$?"
    runner.start(cfg(name, ["sh", "-c", script], network="none"))
    runner.wait(name, timeout=30)
    out = runner.logs(name)
    assert interfaces(out) == ["lo"], out
    assert "nc=0" not in out  # its own loopback: nothing listens there
    assert received == []
    assert network_mode(runner, name)[0] == "none"


def test_named_network_is_joined(
    runner: ContainerRunner, names: Callable[..., str], own_network: str
) -> None:
    name = names()
    runner.start(cfg(name, ["sh", "-c", "cat /proc/net/dev"], network=own_network))
    runner.wait(name, timeout=30)
    assert interfaces(runner.logs(name)) == ["eth0", "lo"]
    assert own_network in network_mode(runner, name)[1]
    runner.stop(name, graceful=False)  # before the fixture removes the network


def test_a_network_the_engine_lacks_is_a_start_error_that_leaves_nothing(
    runner: ContainerRunner, names: Callable[..., str]
) -> None:
    name, missing = names(), f"kstlib-nonet-{uuid.uuid4().hex[:8]}"
    with pytest.raises(SessionStartError) as err:
        runner.start(cfg(name, ["sleep", "30"], network=missing))
    assert missing in str(err.value) and "does not exist" in str(err.value)
    assert f"{runner.runtime} network create {missing}" in str(err.value)
    assert not runner.exists(name)
    with pytest.raises(SessionNotFoundError):
        runner.status(name)


def test_manager_start_takes_network(runner: ContainerRunner, names: Callable[..., str]) -> None:
    name = names()
    bot = SessionManager(name, backend=runner.runtime, image=TEST_IMAGE,
                         base_url=runner.base_url, network="none")
    bot.start(["sh", "-c", "cat /proc/net/dev"])
    bot.wait(timeout=30)
    assert interfaces(bot.logs()) == ["lo"]
    bot.start(["sleep", "30"], network="host")
    assert network_mode(runner, name)[0] == "host"


# -- checked before anything is created --------------------------------------------------------


@pytest.mark.parametrize("bad", ["", "bad name", "-x", "a/b", "x" * 200, 7])
def test_an_invalid_network_is_a_config_error(bad: object) -> None:
    with pytest.raises(SessionConfigError) as err:
        SessionConfig(name="web", backend="container", image=TEST_IMAGE, network=bad)  # type: ignore[arg-type]
    assert err.value.field == "network"


@pytest.mark.parametrize("mode", ["host", "none"])
def test_ports_with_host_or_none_are_a_config_error(mode: str) -> None:
    with pytest.raises(SessionConfigError, match=f"network {mode!r}") as err:
        SessionConfig(name="web", backend="container", image=TEST_IMAGE, network=mode,
                      ports=["8080:80"])
    assert err.value.field == "ports"


def test_network_on_tmux_is_a_config_error() -> None:
    with pytest.raises(SessionConfigError, match="needs a container"):
        SessionConfig(name="web", network="host")


# -- the config file and the CLI ---------------------------------------------------------------


def kstlib(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kstlib", "ops", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KSTLIB_CONFIG", "XDG_"))}
    env.update(XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_STATE_HOME=str(tmp_path / "state"),
               DOCKER_HOST=DOCKER_URL, CONTAINER_HOST=PODMAN_URL)
    return env


def test_config_file_network(runner: ContainerRunner, names: Callable[..., str], tmp_path: Path,
                             cli_env: dict[str, str]) -> None:
    name = names()
    (tmp_path / "kstlib.conf.yml").write_text(
        f"ops:\n  sessions:\n    {name}:\n      backend: {runner.runtime}\n"
        f"      image: {TEST_IMAGE}\n      command: [sleep, '60']\n      network: none\n"
    )
    done = kstlib("start", name, cwd=tmp_path, env=cli_env)
    assert done.returncode == 0, done.stderr
    assert network_mode(runner, name)[0] == "none"


def test_config_file_bad_network_names_the_line(tmp_path: Path, cli_env: dict[str, str]) -> None:
    (tmp_path / "kstlib.conf.yml").write_text(
        "ops:\n  sessions:\n    web:\n      backend: docker\n"
        f"      image: {TEST_IMAGE}\n      network: host\n      ports: ['8080:80']\n"
    )
    done = kstlib("start", "web", cwd=tmp_path, env=cli_env)
    assert done.returncode == 2, done.stderr
    assert "kstlib.conf.yml" in done.stderr and "network 'host'" in done.stderr


def test_cli_start_network(runner: ContainerRunner, names: Callable[..., str], tmp_path: Path,
                           cli_env: dict[str, str]) -> None:
    name = names()
    done = kstlib("start", name, "--runtime", runner.runtime, "--image", TEST_IMAGE,
                  "--network", "host", "--", "sleep", "60", cwd=tmp_path, env=cli_env)
    assert done.returncode == 0, done.stderr
    assert network_mode(runner, name)[0] == "host"
    bad = kstlib("start", names(), "--runtime", runner.runtime, "--image", TEST_IMAGE,
                 "--network", "none", "-p", "8080:80", "--", "sleep", "60", cwd=tmp_path,
                 env=cli_env)
    assert bad.returncode == 2 and "network 'none'" in bad.stderr, bad.stderr
    missing = kstlib("start", names(), "--runtime", runner.runtime, "--image", TEST_IMAGE,
                     "--network", "kstlib-nonet-x", "--", "sleep", "60", cwd=tmp_path,
                     env=cli_env)
    assert missing.returncode == 1 and "kstlib-nonet-x" in missing.stderr, missing.stderr


def test_cli_network_on_tmux_is_a_usage_error(tmp_path: Path, cli_env: dict[str, str]) -> None:
    done = kstlib("start", "web", "-b", "tmux", "--network", "host", "--", "sleep", "5",
                  cwd=tmp_path, env=cli_env)
    assert done.returncode == 2, done.stderr
    assert "--network" in done.stderr or "network" in done.stderr
