"""The engines harness's private sshd reaches the real engines over ssh.

``engines.sh sshd-up`` (idempotent; ``make engines-down`` stops it) runs a
second sshd of its own on 127.0.0.1 with its own host key, a throw-away client
key allowed for root only, a known_hosts file and a client config. These tests
prove the pieces a remote-engine feature will rely on: a strict login, the
Docker and Podman sockets reached through it (the CLI, podman-py, the docker
SDK), and how the SDKs treat host keys.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .conftest import DOCKER_URL, PODMAN_URL, engine_missing, harness

ENGINES = Path(__file__).resolve().parent / "engines" / "engines.sh"
PODMAN_SOCK = os.environ.get("KSTLIB_TEST_PODMAN_SOCK", "/run/podman/podman.sock")


@pytest.fixture(scope="session")
def sshd() -> dict[str, str]:
    env = harness("sshd-up", "the test sshd")
    need = (
        "KSTLIB_TEST_SSH_PORT",
        "KSTLIB_TEST_SSH_KEY",
        "KSTLIB_TEST_SSH_KNOWN_HOSTS",
        "KSTLIB_TEST_SSH_CONFIG",
        "KSTLIB_TEST_SSH_BIN",
        "KSTLIB_TEST_SSH_HOME",
    )
    missing = [k for k in need if not env.get(k)]
    if missing:
        engine_missing("the test sshd", f"'engines.sh env' lacks {missing}")
    return env


def ssh(
    env: dict[str, str], *args: str, config: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ssh", "-F", config or env["KSTLIB_TEST_SSH_CONFIG"], *args],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )


def own_config(env: dict[str, str], tmp_path: Path, **changes: str) -> Path:
    """A copy of the harness's client config with some keywords replaced."""
    lines = []
    for line in Path(env["KSTLIB_TEST_SSH_CONFIG"]).read_text().splitlines():
        word = line.strip().split(" ", 1)[0]
        if word in changes:
            line = f"    {word} {changes[word]}"
        lines.append(line)
    path = tmp_path / "ssh_config"
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


def ssh_wrapper(tmp_path: Path, config: Path) -> Path:
    """A bin directory whose `ssh` uses CONFIG (for tools that run `ssh` themselves)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    wrapper = bindir / "ssh"
    wrapper.write_text(f'#!/bin/sh\nexec /usr/bin/ssh -F {shlex.quote(str(config))} "$@"\n')
    wrapper.chmod(0o755)
    return bindir


def test_the_private_sshd_runs_a_command_as_root_with_the_throwaway_key(
    sshd: dict[str, str],
) -> None:
    done = ssh(sshd, sshd.get("KSTLIB_TEST_SSH_ALIAS", "kstlib-local"), "echo $((6 * 7)); id -u")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["42", "0"]
    for key in ("KSTLIB_TEST_SSH_KEY", "KSTLIB_TEST_SSH_KNOWN_HOSTS", "KSTLIB_TEST_SSH_CONFIG"):
        assert Path(sshd[key]).stat().st_mode & 0o777 == 0o600, key
    # Its own config: loopback only, keys only (sshd -T prints the effective settings).
    effective = subprocess.run(
        [
            "/usr/sbin/sshd",
            "-T",
            "-f",
            str(Path(sshd["KSTLIB_TEST_SSH_CONFIG"]).parent / "sshd_config"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.splitlines()
    assert [x for x in effective if x.startswith("listenaddress ")] == [
        f"listenaddress 127.0.0.1:{sshd['KSTLIB_TEST_SSH_PORT']}"
    ]
    assert "passwordauthentication no" in effective
    assert "permitrootlogin without-password" in effective


def test_the_harness_refuses_a_wrong_key_and_an_unknown_host_key(
    sshd: dict[str, str], tmp_path: Path
) -> None:
    other = tmp_path / "other_key"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True, timeout=30
    )
    wrong_key = ssh(
        sshd,
        "kstlib-local",
        "true",
        config=str(own_config(sshd, tmp_path, IdentityFile=str(other))),
    )
    assert wrong_key.returncode == 255
    assert "Permission denied (publickey)" in wrong_key.stderr
    empty = tmp_path / "known_hosts"
    empty.touch()
    unknown = ssh(
        sshd,
        "kstlib-local",
        "true",
        config=str(own_config(sshd, tmp_path, UserKnownHostsFile=str(empty))),
    )
    assert unknown.returncode == 255
    assert "Host key verification failed" in unknown.stderr
    assert empty.read_text() == ""


def test_the_docker_cli_reaches_the_shared_engine_over_ssh(
    sshd: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    docker = pytest.importorskip("docker", reason="the docker SDK is not installed")
    if shutil.which("docker") is None:
        engine_missing("docker", "the docker CLI is not on PATH")
    local = docker.DockerClient(base_url=DOCKER_URL, timeout=10)
    try:
        engine_id = local.info()["ID"]
    except docker.errors.DockerException as err:
        engine_missing("docker", str(err))
    finally:
        local.close()
    # The docker CLI runs plain `ssh`: the harness's wrapper adds its config.
    monkeypatch.setenv("PATH", f"{sshd['KSTLIB_TEST_SSH_BIN']}{os.pathsep}{os.environ['PATH']}")
    url = f"ssh://root@127.0.0.1:{sshd['KSTLIB_TEST_SSH_PORT']}"
    done = subprocess.run(
        ["docker", "-H", url, "info", "--format", "{{.ID}}"],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k not in ("DOCKER_HOST", "DOCKER_CONTEXT")},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == engine_id


def podman_client(sshd: dict[str, str]) -> Any:
    podman = pytest.importorskip("podman", reason="podman-py is not installed")
    port = sshd["KSTLIB_TEST_SSH_PORT"]
    return podman.PodmanClient(
        base_url=f"http+ssh://root@127.0.0.1:{port}{PODMAN_SOCK}",
        identity=sshd["KSTLIB_TEST_SSH_KEY"],
        timeout=20,
    )


def podman_graph_root() -> str:
    podman = pytest.importorskip("podman", reason="podman-py is not installed")
    try:
        with podman.PodmanClient(base_url=PODMAN_URL, timeout=10) as local:
            return str(local.info()["store"]["graphRoot"])
    except Exception as err:  # any failure: the engine is not there
        engine_missing("podman", str(err))
        raise


@pytest.mark.podman
def test_podman_py_reaches_the_podman_service_over_ssh(
    sshd: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    graph_root = podman_graph_root()
    # podman-py runs `ssh -L <local socket>:/run/podman/podman.sock`: the wrapper adds the config.
    monkeypatch.setenv("PATH", f"{sshd['KSTLIB_TEST_SSH_BIN']}{os.pathsep}{os.environ['PATH']}")
    with podman_client(sshd) as client:
        assert client.info()["store"]["graphRoot"] == graph_root


@pytest.mark.podman
def test_podman_py_never_checks_the_host_key(
    sshd: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """podman-py passes ``-o StrictHostKeyChecking no`` (the command line beats any config).

    A host key nobody knows is accepted and written into known_hosts: whatever
    uses podman-py over ssh must check the host key itself first.
    """
    podman_graph_root()
    empty = tmp_path / "known_hosts"
    empty.touch()
    config = own_config(sshd, tmp_path, UserKnownHostsFile=str(empty))
    monkeypatch.setenv("PATH", f"{ssh_wrapper(tmp_path, config)}{os.pathsep}{os.environ['PATH']}")
    with podman_client(sshd) as client:
        assert client.version()["Version"]
    host_key = Path(sshd["KSTLIB_TEST_SSH_KNOWN_HOSTS"]).read_text().split()[1:3]
    assert empty.read_text().split()[1:3] == host_key


def docker_engine_id(docker: Any) -> str:
    local = docker.DockerClient(base_url=DOCKER_URL, timeout=10)
    try:
        return str(local.info()["ID"])
    except docker.errors.DockerException as err:
        engine_missing("docker", str(err))
        raise
    finally:
        local.close()


@pytest.mark.docker
@pytest.mark.parametrize("use_ssh_client", [False, True], ids=["paramiko", "ssh-client"])
def test_the_docker_sdk_reaches_the_shared_engine_over_ssh(
    sshd: dict[str, str], monkeypatch: pytest.MonkeyPatch, use_ssh_client: bool
) -> None:
    docker = pytest.importorskip("docker", reason="the docker SDK is not installed")
    engine_id = docker_engine_id(docker)
    # The docker SDK imports paramiko for every ssh:// URL, even with use_ssh_client=True.
    pytest.importorskip(
        "paramiko",
        reason="paramiko is not installed: the docker SDK needs it for any ssh:// URL "
        "(whether kstlib depends on it is for the remote-engines work to decide)",
    )
    if use_ssh_client:
        # The SDK runs `ssh -p PORT -l USER -- HOST docker system dial-stdio`: the wrapper adds the config.
        monkeypatch.setenv("PATH", f"{sshd['KSTLIB_TEST_SSH_BIN']}{os.pathsep}{os.environ['PATH']}")
    else:
        # paramiko reads ~/.ssh/config (key) and ~/.ssh/known_hosts (RejectPolicy) only.
        monkeypatch.setenv("HOME", sshd["KSTLIB_TEST_SSH_HOME"])
    url = f"ssh://root@127.0.0.1:{sshd['KSTLIB_TEST_SSH_PORT']}"
    client = docker.DockerClient(base_url=url, timeout=20, use_ssh_client=use_ssh_client)
    try:
        assert client.info()["ID"] == engine_id
        assert client.ping() is True
    finally:
        client.close()


@pytest.mark.docker
def test_the_docker_sdk_with_paramiko_refuses_an_unknown_host_key(
    sshd: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docker = pytest.importorskip("docker", reason="the docker SDK is not installed")
    paramiko = pytest.importorskip(
        "paramiko",
        reason="paramiko is not installed: the docker SDK needs it for any ssh:// URL",
    )
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    shutil.copy(Path(sshd["KSTLIB_TEST_SSH_HOME"]) / ".ssh" / "config", home / ".ssh" / "config")
    monkeypatch.setenv("HOME", str(home))
    url = f"ssh://root@127.0.0.1:{sshd['KSTLIB_TEST_SSH_PORT']}"
    # Raised by the client's constructor, and not a docker.errors exception.
    with pytest.raises(paramiko.SSHException, match="not found in known_hosts"):
        docker.DockerClient(base_url=url, timeout=20)
