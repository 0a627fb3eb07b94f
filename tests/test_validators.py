"""Input validation: every bad value is a SessionConfigError naming its field."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kstlib.ops import (
    BackendType,
    SessionConfig,
    SessionConfigError,
    SessionState,
    SessionStatus,
)
from kstlib.ops import validators as v


@pytest.mark.parametrize("name", ["a", "bot", "bot-2", "Worker_1", "x" * 64])
def test_valid_names(name: str) -> None:
    assert v.validate_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "9lives", "-bot", "_bot", "bot.2", "bot:1", "bot 2", "x" * 65, "bot\n", "é"]
)
def test_invalid_names(name: str) -> None:
    with pytest.raises(SessionConfigError) as info:
        SessionConfig(name=name)
    assert info.value.field == "name"
    assert str(info.value).startswith("name: ")


def test_name_must_be_a_string() -> None:
    with pytest.raises(SessionConfigError, match="expected a string, got int"):
        v.validate_name(3)


@given(st.text(max_size=80))
def test_name_property_valid_or_config_error(text: str) -> None:
    try:
        assert v.validate_name(text) == text
    except SessionConfigError as err:
        assert err.field == "name"
    else:
        assert v.NAME_RE.fullmatch(text) and len(text) <= 64


@pytest.mark.parametrize(
    ("command", "expected"),
    [("echo hi", "echo hi"), (["echo", "a;b"], ("echo", "a;b")), (("ls",), ("ls",)), (None, None)],
)
def test_valid_commands(command: object, expected: object) -> None:
    assert v.validate_command(command) == expected


@pytest.mark.parametrize(
    ("command", "fragment"),
    [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ([], "must not be empty"),
        (["", "x"], r"argv\[0\]"),
        (["echo", 3], r"command\[1\]: expected a string"),
        ("echo \x00", "NUL"),
        (b"echo", "expected a string or a list"),
        (42, "expected a string or a list"),
        ("x" * (v.MAX_COMMAND_BYTES + 1), "longer than"),
    ],
)
def test_invalid_commands(command: object, fragment: str) -> None:
    with pytest.raises(SessionConfigError, match=fragment):
        SessionConfig(name="a", command=command)  # type: ignore[arg-type]


def test_env_checks() -> None:
    assert v.validate_env({"A": "1", "_B": "x y 'z' \"q\""}) == {"A": "1", "_B": "x y 'z' \"q\""}
    assert v.validate_env({"PORT": 8080}) == {"PORT": "8080"}
    for bad in ({"1A": "x"}, {"A-B": "x"}, {"": "x"}, {"A": None}, {"A": "x\x00"}, ["A=1"]):
        with pytest.raises(SessionConfigError) as info:
            v.validate_env(bad)
        assert info.value.field is not None and info.value.field.startswith("env")


def test_oversized_env_is_refused() -> None:
    with pytest.raises(SessionConfigError, match="longer than"):
        v.validate_env({"BIG": "x" * (10 * 1024 * 1024)})
    with pytest.raises(SessionConfigError, match="10000 keys"):
        v.validate_env({f"K{i}": "v" for i in range(10_000)})


@pytest.mark.parametrize(
    "image",
    ["alpine", "alpine:3.20", "localhost/kstlib-test:latest", "registry:5000/team/app:v1.2",
     "ghcr.io/org/app@sha256:" + "a" * 64, "library/redis_cache-x"],
)
def test_valid_images(image: str) -> None:
    assert v.validate_image(image) == image


@pytest.mark.parametrize(
    "image", ["", "Alpine", "app:", ":tag", "a b", "app;rm -rf /", "-app", "x" * 300, "app@sha1"]
)
def test_invalid_images(image: str) -> None:
    with pytest.raises(SessionConfigError) as info:
        v.validate_image(image)
    assert info.value.field == "image"


@pytest.mark.parametrize(
    "volume", ["/srv:/data", "/srv:/data:ro", "cache:/cache", "/a:/b:rw", "/a:/b:z", "/a:/b:ro,Z"]
)
def test_valid_volumes(volume: str) -> None:
    assert v.validate_volumes([volume]) == (volume,)


@pytest.mark.parametrize(
    "volume", ["/srv", "/srv:data", "/srv:/data:rx", "a:b:c:d", "x/y:/data", ":/data", "/a:/b:"]
)
def test_invalid_volumes(volume: str) -> None:
    with pytest.raises(SessionConfigError) as info:
        v.validate_volumes([volume])
    assert info.value.field == "volumes"


def test_volumes_must_be_a_list() -> None:
    with pytest.raises(SessionConfigError, match="expected a list"):
        v.validate_volumes("/a:/b")


@pytest.mark.parametrize(
    ("port", "parsed"),
    [
        ("8080:80", (None, 8080, 80, "tcp")),
        ("127.0.0.1:8080:80", ("127.0.0.1", 8080, 80, "tcp")),
        ("5353:53/udp", (None, 5353, 53, "udp")),
        ("[::1]:8080:80/tcp", ("::1", 8080, 80, "tcp")),
    ],
)
def test_valid_ports(port: str, parsed: tuple[object, ...]) -> None:
    assert v.validate_ports([port]) == (port,)
    assert v.parse_port(port) == parsed


@pytest.mark.parametrize(
    "port",
    [":80", "0:80", "8080:70000", "a:80", "8080:80/sctp", "1.2.3:8080:80", "[::1:8080:80",
     "1:2:3:4", "::1:8080:80", "8080:80/"],
)
def test_invalid_ports(port: str) -> None:
    with pytest.raises(SessionConfigError) as info:
        v.validate_ports([port])
    assert info.value.field == "ports"


@pytest.mark.parametrize("policy", ["no", "always", "unless-stopped", "on-failure", "on-failure:2"])
def test_valid_restart(policy: str) -> None:
    assert v.validate_restart(policy) == policy


@pytest.mark.parametrize("policy", ["", "sometimes", "on-failure:", "on-failure:x", "always:2"])
def test_invalid_restart(policy: str) -> None:
    with pytest.raises(SessionConfigError, match="restart"):
        SessionConfig(name="a", restart=policy)


def test_other_fields() -> None:
    assert SessionConfig(name="a", backend="container", runtime="Docker").runtime == "docker"  # type: ignore[arg-type]
    with pytest.raises(SessionConfigError, match="runtime"):
        SessionConfig(name="a", runtime="lxc")
    with pytest.raises(SessionConfigError, match="backend"):
        SessionConfig(name="a", backend="kubernetes")  # type: ignore[arg-type]
    assert SessionConfig(name="a", backend="container").backend is BackendType.CONTAINER  # type: ignore[arg-type]
    with pytest.raises(SessionConfigError, match="memory"):
        SessionConfig(name="a", memory="lots")
    with pytest.raises(SessionConfigError, match="cpus"):
        SessionConfig(name="a", cpus=0)
    with pytest.raises(SessionConfigError, match="socket_name"):
        SessionConfig(name="a", socket_name="a/b")
    with pytest.raises(SessionConfigError, match="working_dir"):
        SessionConfig(name="a", working_dir="")


def test_overrides_are_validated_and_unknown_keys_refused() -> None:
    cfg = SessionConfig(name="a", command="top")
    assert cfg.with_overrides(command=["ls", "-l"]).command == ("ls", "-l")
    with pytest.raises(SessionConfigError, match="colour: is not a session option"):
        cfg.with_overrides(colour="blue")
    with pytest.raises(SessionConfigError, match="env"):
        cfg.with_overrides(env={"9": "x"})


def test_command_forms() -> None:
    argv = SessionConfig(name="a", command=["echo", "$(touch x)", "a b"])
    assert argv.shell_command() == "echo '$(touch x)' 'a b'"
    assert argv.argv() == ["echo", "$(touch x)", "a b"]
    text = SessionConfig(name="a", command="echo 'a b' c")
    assert text.argv() == ["echo", "a b", "c"]
    assert text.shell_command() == "echo 'a b' c"


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=200)
@given(
    name=st.one_of(st.text(max_size=70), st.integers()),
    command=_json_values,
    env=_json_values,
    volumes=_json_values,
    ports=_json_values,
    image=_json_values,
)
def test_any_input_is_a_config_or_a_config_error(
    name: object, command: object, env: object, volumes: object, ports: object, image: object
) -> None:
    try:
        cfg = SessionConfig(
            name=name,  # type: ignore[arg-type]
            command=command,  # type: ignore[arg-type]
            env=env,  # type: ignore[arg-type]
            volumes=volumes,  # type: ignore[arg-type]
            ports=ports,  # type: ignore[arg-type]
            image=image,  # type: ignore[arg-type]
        )
    except SessionConfigError as err:
        assert err.field
    else:
        assert isinstance(cfg.name, str)


def test_status_to_dict_is_json_ready_and_stable() -> None:
    created = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
    status = SessionStatus(
        name="bot", state=SessionState.EXITED, backend=BackendType.CONTAINER, pid=None,
        created_at=created, image="localhost/app:1", exit_code=3, runtime="podman", managed=True,
    )
    data = json.loads(json.dumps(status.to_dict()))
    assert data == {
        "name": "bot", "state": "exited", "backend": "container", "pid": None,
        "created_at": "2026-11-25T12:00:00+00:00", "window_count": None, "socket_name": None,
        "image": "localhost/app:1", "exit_code": 3, "runtime": "podman", "managed": True,
        "restart_count": 0, "oom_killed": None, "reason": None, "log_degraded": False,
        "engine": None, "last_exit_code": None, "last_exited_at": None,
    }
    assert not status.is_running
