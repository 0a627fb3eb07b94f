"""What the adapters and the runner rely on: specs, payloads, endpoints, demux, attach keys."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from kstlib.ops.container import STATE_MAP
from kstlib.ops.engines import endpoints
from kstlib.ops.engines.adapter import MANAGED_LABEL, spec_from_config
from kstlib.ops.engines.streams import (
    EntrySplitter,
    demux,
    parse_timestamp,
)
from kstlib.ops.exceptions import (
    ContainerRuntimeNotFoundError,
)
from kstlib.ops.models import SessionConfig, SessionState

# -- what the adapters and the runner rely on -----------------------------------------


def test_parse_timestamp_handles_nanoseconds_offsets_and_zero() -> None:
    assert parse_timestamp("2026-01-02T03:04:05.123456789Z") == datetime(
        2026, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc
    )
    plus_two = parse_timestamp("2026-01-02T05:04:05.5+02:00")
    assert plus_two is not None and plus_two.utcoffset() == timedelta(hours=2)
    assert plus_two == datetime(2026, 1, 2, 3, 4, 5, 500000, tzinfo=timezone.utc)
    assert parse_timestamp("0001-01-01T00:00:00Z") is None
    assert parse_timestamp(0) is None and parse_timestamp(None) is None
    assert parse_timestamp("garbage") is None
    epoch = parse_timestamp(1767323045)
    assert epoch is not None and epoch.tzinfo is timezone.utc


def test_demux_joins_frames_in_order_and_leaves_raw_output_alone() -> None:
    def frame(kind: int, data: bytes) -> bytes:
        return bytes([kind, 0, 0, 0]) + len(data).to_bytes(4, "big") + data

    framed = frame(1, b"out1\n") + frame(2, b"err1\n") + frame(1, b"out2\n")
    assert demux(framed) == b"out1\nerr1\nout2\n"
    assert demux(b"") == b""
    raw = b"out1\r\nerr1\r\n"
    assert demux(raw) == raw
    truncated = frame(1, b"abc")[:-1]
    assert demux(truncated) == truncated


def test_spec_from_config_maps_every_field() -> None:
    spec = spec_from_config(
        SessionConfig(
            name="w",
            backend="container",
            image="localhost/app:1",
            command="sh -c 'echo a; sleep 1'",
            env={"A": "x y"},
            volumes=["/srv:/data:ro,z", "cache:/cache"],
            ports=["127.0.0.1:8080:80", "5353:53/udp"],
            working_dir="/app",
            labels={"team": "ops", MANAGED_LABEL: "false"},
            restart="always",
            memory="1g",
            cpus=1.5,
            init=False,
        )
    )
    assert spec.command == ["sh", "-c", "echo a; sleep 1"]
    assert [b.read_only for b in spec.binds] == [True, False]
    assert spec.binds[0].options == ("ro", "z") and spec.binds[1].is_named_volume
    assert [(p.host_ip, p.host_port, p.key) for p in spec.ports] == [
        ("127.0.0.1", 8080, "80/tcp"),
        (None, 5353, "53/udp"),
    ]
    assert spec.labels == {"team": "ops", MANAGED_LABEL: "true"}
    assert (spec.restart, spec.memory, spec.cpus, spec.init) == (("always", 0), 1024**3, 1.5, False)
    assert spec.tty and spec.stdin_open


def test_default_endpoints_follow_the_environment() -> None:
    assert endpoints.default_endpoints("docker", {"DOCKER_HOST": "tcp://h:2375"}) == [
        "tcp://h:2375"
    ]
    assert endpoints.default_endpoints("docker", {}) == ["unix:///var/run/docker.sock"]
    assert endpoints.default_endpoints("podman", {}) == ["unix:///run/podman/podman.sock"]
    assert endpoints.default_endpoints("podman", {"XDG_RUNTIME_DIR": "/run/user/7"}) == [
        "unix:///run/user/7/podman/podman.sock",
        "unix:///run/podman/podman.sock",
    ]
    assert endpoints.default_endpoints(
        "podman", {"CONTAINER_HOST": "ssh://me@h/run/podman/podman.sock", "XDG_RUNTIME_DIR": "/r"}
    ) == ["ssh://me@h/run/podman/podman.sock"]


def test_connect_lists_every_endpoint_tried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONTAINER_HOST", f"unix://{tmp_path}/p.sock")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/d.sock")
    with pytest.raises(ContainerRuntimeNotFoundError) as info:
        endpoints.connect(None, None, 1)
    assert info.value.endpoints == (
        f"podman at unix://{tmp_path}/p.sock",
        f"docker at unix://{tmp_path}/d.sock",
    )


def test_state_map_covers_the_engines_states() -> None:
    assert STATE_MAP["running"] is SessionState.RUNNING
    assert STATE_MAP["exited"] is SessionState.EXITED
    assert STATE_MAP["created"] is SessionState.STOPPED
    assert "removing" not in STATE_MAP  # UNKNOWN


def test_importing_the_backend_does_not_import_the_sdks() -> None:
    import subprocess  # the test may run a child interpreter; kstlib never does

    code = (
        "import sys, kstlib.ops, kstlib.ops.container; "
        "print(sorted(m for m in ('docker', 'podman', 'requests', 'urllib3') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_attach_detach_keys_are_spotted_however_the_bytes_arrive() -> None:
    from kstlib.ops.container.relay import _DetachKeys

    keys = _DetachKeys()
    assert keys.feed(b"ls\r\x10\x11ignored") == (b"ls\r", True)
    split = _DetachKeys()
    assert split.feed(b"a\x10") == (b"a", False)  # held back: may be the start
    assert split.feed(b"\x11") == (b"", True)
    other = _DetachKeys()
    assert other.feed(b"\x10") == (b"", False)
    assert other.feed(b"p") == (b"\x10p", False)  # Ctrl-P then a key: both go on
    assert other.feed(b"\x10\x10\x11") == (b"\x10", True)

    # The relay reads a framed attach stream with the one frame parser, EntrySplitter.
    frames = EntrySplitter(framed=True)
    framed = bytes([1, 0, 0, 0, 0, 0, 0, 3]) + b"abc" + bytes([2, 0, 0, 0, 0, 0, 0, 2]) + b"de"
    assert b"".join(frames.feed(framed[:5])) == b""
    assert b"".join(frames.feed(framed[5:12])) == b"abc"
    assert b"".join(frames.feed(framed[12:])) == b"de"
