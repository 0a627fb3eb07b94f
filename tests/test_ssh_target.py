"""ssh endpoints before any connection: proxies refused, bad known_hosts lines, URL passwords.

No engine is needed: every refusal here comes before anything is contacted.
The user's own ``~/.ssh`` is never read: ``HOME`` points at the test's folder.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from kstlib.cli import main
from kstlib.ops.config import parse_config
from kstlib.ops.engines import ssh
from kstlib.ops.engines.endpoints import connect
from kstlib.ops.exceptions import ContainerRuntimeNotFoundError, SessionConfigError
from kstlib.ops.validators import validate_base_url
from kstlib.ops.validators.urls import masked_url

SECRET = "s3cr3t-pw"


@pytest.fixture(autouse=True)
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A home of the test's own (its ``.ssh/config`` is what parse_target reads)."""
    (tmp_path / ".ssh").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KSTLIB_OPS_ENGINE_TIMEOUT", "2")
    monkeypatch.setenv("TMUX_TMPDIR", str(tmp_path))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("KSTLIB_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


# -- ProxyCommand / ProxyJump (issue 21 point 16) ----------------------------------------


@pytest.mark.parametrize(
    ("line", "word"),
    [("ProxyJump bastion.invalid", "ProxyJump"), ("ProxyCommand nc %h %p", "ProxyCommand")],
)
@pytest.mark.parametrize("runtime", ["docker", "podman", "swarm"])
def test_a_proxy_in_ssh_config_is_refused_for_every_engine(
    home: Path, line: str, word: str, runtime: str
) -> None:
    (home / ".ssh" / "config").write_text(f"Host edge\n    HostName 127.0.0.1\n    {line}\n")
    path = "/run/podman/podman.sock" if runtime == "podman" else ""
    with pytest.raises(SessionConfigError) as info:
        connect(runtime, f"ssh://root@edge{path}", 2)
    message = str(info.value)
    assert f"gives host 'edge' a {word}" in message and str(home / ".ssh" / "config") in message
    assert "starts no programs" in message and info.value.field == "base_url"


def test_proxycommand_none_is_no_proxy(home: Path) -> None:
    (home / ".ssh" / "config").write_text(
        "Host edge\n    ProxyCommand none\n    ProxyJump none\n    Port 2200\n"
    )
    assert ssh.parse_target("ssh://edge").port == 2200


# -- known_hosts (issue 22 points 11 and 12) -----------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_malformed_known_hosts_line_is_named_by_file_and_line(tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(
        "# a comment\n"
        "[127.0.0.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"
        "[127.0.0.1]:2222 ssh-ed25519 AAAAnot-base64!!\n"
    )
    target = ssh.parse_target(f"ssh://root@127.0.0.1:{_closed_port()}?known_hosts={known}")
    with pytest.raises(ContainerRuntimeNotFoundError) as info:
        ssh.login(target, 2, "podman")
    message = str(info.value)
    assert info.value.ssh_problem == "bad-known-hosts"  # type: ignore[attr-defined]
    assert f"the known_hosts file {known}, line 3, is not a host key entry" in message
    assert "bug" not in message and "?" not in message.split(" cannot be reached")[0]


def test_messages_name_the_engine_and_host_once(tmp_path: Path) -> None:
    key = tmp_path / "id"
    key.write_text("")
    port = _closed_port()
    endpoint = f"ssh://root@127.0.0.1:{port}/run/podman/podman.sock?identity={key}"
    target = ssh.parse_target(endpoint + f"&known_hosts={tmp_path / 'none'}")
    with pytest.raises(ContainerRuntimeNotFoundError) as info:
        ssh.login(target, 2, "podman")
    message = str(info.value)
    assert message.startswith(
        f"The podman engine at ssh://root@127.0.0.1:{port}/run/podman/podman.sock cannot be "
        "reached: ssh was refused"
    )
    assert message.count("127.0.0.1") == 1 and "identity=" not in message
    # The host key sentence, without a known_hosts file.
    unknown = ssh.problem(target, "unknown-host-key", "x", "podman")
    assert unknown.endpoints == (target.endpoint,)  # the full endpoint stays on the error
    assert target.host_key_files == f"any known_hosts file ({tmp_path / 'none'} does not exist)"
    assert "no known_hosts file" not in target.host_key_files


# -- a password in an engine URL (issue 21 point 11) -----------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        f"tcp://ops:{SECRET}@127.0.0.1:2375",
        f"ssh://root:{SECRET}@edge:22/run/podman/podman.sock",
        f"ssh://root:p@{SECRET}@edge",  # an '@' in the password
    ],
)
def test_a_password_in_an_engine_url_is_refused_and_never_shown(url: str) -> None:
    for check in (validate_base_url, lambda u: connect("docker", u, 2)):
        with pytest.raises(SessionConfigError) as info:
            check(url)
        message = str(info.value)
        assert SECRET not in message and ":***@" in message and "holds a password" in message
    assert SECRET not in masked_url(url)


def test_a_password_in_docker_host_is_refused_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"tcp://ops:{SECRET}@127.0.0.1:1")
    with pytest.raises(SessionConfigError) as info:
        connect("docker", None, 2)
    assert SECRET not in str(info.value)


def test_the_cli_never_prints_a_url_password(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = home / "kstlib.conf.yml"
    config.write_text(
        "ops:\n  engines:\n    edge: {backend: docker, base_url: "
        f'"tcp://ops:{SECRET}@127.0.0.1:1"}}\n'
    )
    with pytest.raises(SessionConfigError) as info:
        parse_config(config.read_text(), source=str(config))
    assert SECRET not in str(info.value)
    outputs = []
    for argv in (
        ["ops", "-v", "list", "--config", str(config)],
        ["ops", "-v", "status", "x", "--engine", "edge", "--config", str(config)],
        ["ops", "doctor", "--json", "--config", str(config)],
    ):
        code = main(argv)
        out, err = capsys.readouterr()
        outputs.append((code, out + err))
    monkeypatch.setenv("DOCKER_HOST", f"tcp://ops:{SECRET}@127.0.0.1:1")
    monkeypatch.setenv("CONTAINER_HOST", f"tcp://ops:{SECRET}@127.0.0.1:1")
    config.unlink()
    for argv in (
        ["ops", "-v", "list", "-b", "docker"],
        ["ops", "-v", "status", "x", "-b", "podman"],
    ):
        code = main(argv)
        out, err = capsys.readouterr()
        outputs.append((code, out + err))
    for _, text in outputs:
        assert SECRET not in text, text
        assert "holds a password" in text and ":***@" in text, text
    assert [code for code, _ in outputs][:2] == [2, 2]  # a bad config file: usage error
