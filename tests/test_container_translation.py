"""The Docker and Podman translation tables, fed genuine SDK exception instances.

No engine is needed: the SDK errors are produced by the SDKs' own code paths
(``create_api_error_from_http_exception``, ``APIResponse.raise_for_status``,
a client pointed at a socket that does not exist) or built exactly as the
SDK builds them, from real ``requests.Response`` objects.
"""

from __future__ import annotations

import contextlib
import json
import pickle
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import docker.errors
import podman.errors
import pytest
import requests
import urllib3.exceptions
from podman.api.client import APIResponse

from kstlib.ops.container import STATE_MAP, ContainerRunner
from kstlib.ops.container import logs as container_logs
from kstlib.ops.container import runner as container_mod
from kstlib.ops.container import states as container_states
from kstlib.ops.engines import docker as docker_engine
from kstlib.ops.engines import endpoints
from kstlib.ops.engines import podman as podman_engine
from kstlib.ops.engines.adapter import MANAGED_LABEL, ContainerInfo, spec_from_config
from kstlib.ops.engines.streams import (
    EntrySplitter,
    LogStream,
    demux,
    log_params,
    parse_timestamp,
    since_param,
    split_entries,
)
from kstlib.ops.exceptions import (
    ContainerRuntimeNotFoundError,
    OpsError,
    SessionAttachError,
    SessionConfigError,
    SessionError,
    SessionExistsError,
    SessionNotFoundError,
    SessionStartError,
    SessionStopError,
    SessionTimeoutError,
)
from kstlib.ops.models import SessionConfig, SessionState
from kstlib.ops.translate import Op
from kstlib.ops.validators import validate_since

DOCKER_URL = "unix:///var/run/docker.sock"
PODMAN_URL = "unix:///run/podman/podman.sock"
FOREIGN = (
    docker.errors.DockerException,
    podman.errors.APIError,
    requests.RequestException,
    urllib3.exceptions.HTTPError,
)

Translate = Callable[..., AbstractContextManager[None]]


def response(status: int, body: object = None, reason: str = "") -> requests.Response:
    """A real requests.Response as an engine would send it."""
    resp = requests.Response()
    resp.status_code = status
    resp.reason = reason
    resp.url = "http+docker://localhost/v1.41/containers/create"
    resp._content = json.dumps(body).encode() if body is not None else b""
    resp.headers["Content-Type"] = "application/json"
    return resp


def docker_api_error(status: int, message: str) -> docker.errors.APIError:
    """What docker-py raises for an HTTP error: its own factory, from a real HTTPError."""
    resp = response(status, {"message": message})
    try:
        resp.raise_for_status()
    except requests.HTTPError as http_error:
        try:
            docker.errors.create_api_error_from_http_exception(http_error)
        except docker.errors.APIError as err:
            return err
    raise AssertionError("no error was raised")


def podman_api_error(
    status: int, cause: str, message: str, image: bool = False
) -> podman.errors.APIError:
    """What podman-py raises for an HTTP error: APIResponse.raise_for_status on a real response."""
    body = {"cause": cause, "message": message, "response": status}
    not_found = podman.errors.ImageNotFound if image else podman.errors.NotFound
    try:
        APIResponse(response(status, body)).raise_for_status(not_found=not_found)
    except podman.errors.APIError as err:
        return err
    raise AssertionError("no error was raised")


def podman_transport_error(cause: Exception) -> podman.errors.APIError:
    """podman-py wraps a transport error (an OSError) in an APIError without a response."""
    try:
        try:
            raise cause
        except OSError as err:
            raise podman.errors.APIError(
                "http://%2Frun%2Fpodman%2Fpodman.sock/v5.8.0/libpod/_ping",
                explanation="GET operation failed",
            ) from err
    except podman.errors.APIError as wrapped:
        return wrapped


def translated(
    translate: Translate,
    err: BaseException,
    op: Op = Op.READ,
    name: str | None = "bot",
    **kw: Any,
) -> OpsError:
    url = DOCKER_URL if translate is docker_engine.translate else PODMAN_URL
    with pytest.raises(OpsError) as info, translate(op, name, url, 7.0, **kw):
        raise err
    out = info.value
    assert out.__cause__ is err, "the SDK error must be kept as __cause__"
    assert not isinstance(out, FOREIGN), "an SDK type escaped"
    pickle.loads(pickle.dumps(out))
    return out


@pytest.fixture(params=["docker", "podman"])
def runtime(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def translate(runtime: str) -> Translate:
    return docker_engine.translate if runtime == "docker" else podman_engine.translate


# -- Docker ----------------------------------------------------------------------------


def test_docker_404_is_session_not_found() -> None:
    err = docker_api_error(404, "No such container: bot")
    assert type(err) is docker.errors.NotFound
    out = translated(docker_engine.translate, err)
    assert isinstance(out, SessionNotFoundError)
    assert (out.name, out.backend) == ("bot", "docker")


def test_docker_409_name_conflict_on_create_is_session_exists() -> None:
    err = docker_api_error(
        409,
        'Conflict. The container name "/bot" is already in use by container "3f2a". '
        "You have to remove (or rename) that container to be able to reuse that name.",
    )
    out = translated(docker_engine.translate, err, Op.START)
    assert isinstance(out, SessionExistsError)
    assert (out.name, out.backend) == ("bot", "docker")


def test_docker_409_that_is_not_a_name_conflict_stays_the_operation_error() -> None:
    err = docker_api_error(409, "Container 3f2a is not running")
    out = translated(docker_engine.translate, err, Op.READ)
    assert type(out) is SessionError
    assert "not running" in str(out) and "bot" in str(out) and "docker" in str(out)


def test_docker_missing_image_names_the_image() -> None:
    err = docker_api_error(404, "No such image: localhost/nope:1")
    assert type(err) is docker.errors.ImageNotFound
    out = translated(docker_engine.translate, err, Op.START, image="localhost/nope:1")
    assert isinstance(out, SessionStartError)
    assert "'localhost/nope:1'" in out.reason


def test_docker_other_api_error_is_the_operations_error() -> None:
    err = docker_api_error(500, "OCI runtime create failed: exec: no such file")
    for op, cls in (
        (Op.START, SessionStartError),
        (Op.STOP, SessionStopError),
        (Op.ATTACH, SessionAttachError),
    ):
        out = translated(docker_engine.translate, err, op)
        assert type(out) is cls
        assert "HTTP 500" in out.reason and "OCI runtime create failed" in out.reason  # type: ignore[attr-defined]


def test_docker_client_on_a_missing_socket_is_runtime_not_found(tmp_path: Path) -> None:
    url = f"unix://{tmp_path}/no.sock"
    with pytest.raises(docker.errors.DockerException) as info:
        docker.APIClient(base_url=url, version="auto", timeout=1)
    assert "Error while fetching server API version" in str(info.value)
    with (
        pytest.raises(ContainerRuntimeNotFoundError) as out,
        docker_engine.translate(Op.READ, None, url, 1, connecting=True),
    ):
        raise info.value
    assert out.value.endpoints == (url,)
    assert out.value.__cause__ is info.value
    assert "Start an engine" in str(out.value)


def test_docker_open_translates_at_the_adapter_boundary(tmp_path: Path) -> None:
    sock = tmp_path / "not-a-socket"
    sock.write_text("")  # exists, so the SDK really tries it
    with pytest.raises(ContainerRuntimeNotFoundError) as out:
        docker_engine.DockerEngine.open(f"unix://{sock}", 1)
    assert isinstance(out.value.__cause__, docker.errors.DockerException)


# -- Podman ----------------------------------------------------------------------------


def test_podman_404_is_session_not_found() -> None:
    err = podman_api_error(404, "no such container", 'no container with name or ID "bot" found')
    assert type(err) is podman.errors.NotFound
    out = translated(podman_engine.translate, err)
    assert isinstance(out, SessionNotFoundError)
    assert (out.name, out.backend) == ("bot", "podman")


def test_podman_500_already_in_use_is_session_exists() -> None:
    err = podman_api_error(
        500,
        "that name is already in use",
        'creating container storage: the container name "bot" is already in use by 3f2a. '
        "You have to remove that container to be able to reuse that name.: "
        "that name is already in use",
    )
    assert err.status_code == 500
    out = translated(podman_engine.translate, err, Op.START)
    assert isinstance(out, SessionExistsError)
    assert out.backend == "podman"


@pytest.mark.parametrize(("status", "image_error"), [(500, False), (404, True)])
def test_podman_missing_image_names_the_image(status: int, image_error: bool) -> None:
    err = podman_api_error(
        status, "image not known", "localhost/nope:1: image not known", image=image_error
    )
    out = translated(podman_engine.translate, err, Op.START, image="localhost/nope:1")
    assert isinstance(out, SessionStartError)
    assert "'localhost/nope:1'" in out.reason and "image not known" in out.reason


def test_podman_other_api_error_is_the_operations_error() -> None:
    err = podman_api_error(500, "something broke", "container state improper")
    out = translated(podman_engine.translate, err, Op.STOP)
    assert isinstance(out, SessionStopError)
    assert "HTTP 500" in out.reason and "container state improper" in out.reason


def test_podman_client_on_a_missing_socket_is_runtime_not_found(tmp_path: Path) -> None:
    url = f"unix://{tmp_path}/no.sock"
    client = podman.PodmanClient(base_url=url, timeout=1)
    with pytest.raises(podman.errors.APIError) as info:
        client.api.get("/_ping")
    assert info.value.status_code is None
    out = translated(podman_engine.translate, info.value)
    assert isinstance(out, ContainerRuntimeNotFoundError)
    assert out.endpoints == (PODMAN_URL,)


def test_podman_transport_timeout_mid_operation_says_timed_out() -> None:
    err = podman_transport_error(requests.ReadTimeout("Read timed out. (read timeout=7.0)"))
    out = translated(podman_engine.translate, err, Op.STOP)
    assert isinstance(out, SessionStopError)
    assert out.reason == f"timed out after 7 s waiting for podman at {PODMAN_URL}"


def test_podman_transport_timeout_while_connecting_is_runtime_not_found() -> None:
    err = podman_transport_error(requests.ReadTimeout("Read timed out."))
    out = translated(podman_engine.translate, err, Op.READ, None, connecting=True)
    assert isinstance(out, ContainerRuntimeNotFoundError)
    assert "did not answer within 7 s" in str(out)
    assert "Start an engine" not in str(out) and "Install" not in str(out)


def test_podman_transport_errors_without_a_known_cause_are_unreachable() -> None:
    err = podman_transport_error(requests.ConnectionError("Connection refused"))
    assert isinstance(translated(podman_engine.translate, err), ContainerRuntimeNotFoundError)
    bare = podman.errors.APIError("http://x/_ping", explanation="GET operation failed")
    assert isinstance(translated(podman_engine.translate, bare), ContainerRuntimeNotFoundError)


def test_podman_open_translates_at_the_adapter_boundary(tmp_path: Path) -> None:
    sock = tmp_path / "not-a-socket"
    sock.write_text("")
    with pytest.raises(ContainerRuntimeNotFoundError) as out:
        podman_engine.PodmanEngine.open(f"unix://{sock}", 1)
    assert isinstance(out.value.__cause__, podman.errors.APIError)


def test_podman_empty_304_body_is_not_swallowed_outside_stop() -> None:
    # The 304 of a stop on a stopped container is handled by the adapter
    # (ignore=True); a JSON decode error anywhere else is an error.
    with pytest.raises(requests.exceptions.JSONDecodeError) as info:
        response(304).json()
    out = translated(podman_engine.translate, info.value, Op.STOP)
    assert isinstance(out, SessionStopError)


# -- rows both tables share -------------------------------------------------------------


@pytest.mark.parametrize(
    "err",
    [
        requests.ConnectionError("('Connection aborted.', FileNotFoundError(2, 'No such file'))"),
        requests.ConnectTimeout("connect timed out"),
        urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError(104, "reset")),
        urllib3.exceptions.NewConnectionError(None, "Failed to establish a new connection"),
        ConnectionRefusedError(111, "Connection refused"),
        FileNotFoundError(2, "No such file or directory"),
        PermissionError(13, "Permission denied"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_engine_unreachable_is_runtime_not_found(translate: Translate, err: Exception) -> None:
    out = translated(translate, err, Op.START)
    assert isinstance(out, ContainerRuntimeNotFoundError)
    assert isinstance(out, FileNotFoundError)
    assert len(out.endpoints) == 1 and out.endpoints[0] in str(out)
    assert "docker" in str(out).lower() and "podman" in str(out).lower()


@pytest.mark.parametrize(
    "err",
    [
        requests.ReadTimeout("Read timed out. (read timeout=7.0)"),
        urllib3.exceptions.ReadTimeoutError(None, "/containers/bot/json", "Read timed out."),
        TimeoutError("timed out"),
    ],
    ids=lambda e: type(e).__name__,
)
@pytest.mark.parametrize(
    ("op", "cls"),
    [
        (Op.START, SessionStartError),
        (Op.STOP, SessionStopError),
        (Op.ATTACH, SessionAttachError),
        (Op.READ, SessionError),
    ],
)
def test_timeouts_are_the_operations_error_saying_so(
    runtime: str, translate: Translate, err: Exception, op: Op, cls: type[SessionError]
) -> None:
    out = translated(translate, err, op)
    assert type(out) is cls
    assert "timed out after 7 s" in str(out) and runtime in str(out) and "bot" in str(out)


def test_a_read_timeout_inside_a_connection_error_is_a_timeout(translate: Translate) -> None:
    # requests reports a timed-out read of a streamed body (headers already
    # received, as in a wait) as a ConnectionError around urllib3's error.
    try:
        try:
            raise urllib3.exceptions.ReadTimeoutError(None, None, "Read timed out.")  # type: ignore[arg-type]
        except urllib3.exceptions.ReadTimeoutError as inner:
            raise requests.ConnectionError(inner) from inner
    except requests.ConnectionError as err:
        outer = err
    out = translated(translate, outer, Op.STOP)
    assert isinstance(out, SessionStopError) and "timed out after 7 s" in out.reason
    waited = translated(translate, outer, Op.WAIT)
    assert isinstance(waited, SessionTimeoutError)
    assert waited.reason == "still running after 7 s"


@pytest.mark.parametrize(
    "err",
    [
        requests.exceptions.ChunkedEncodingError("incomplete read"),
        requests.exceptions.InvalidURL("bad url"),
        OSError(5, "Input/output error"),
        ValueError("The scheme 'ftp' must be one of ..."),
    ],
    ids=lambda e: type(e).__name__,
)
def test_anything_else_from_the_layer_below_is_the_operations_error(
    translate: Translate, err: Exception
) -> None:
    out = translated(translate, err, Op.STOP)
    assert isinstance(out, SessionStopError)
    assert type(err).__name__ in out.reason


def test_sdk_specific_base_errors_are_the_operations_error(runtime: str) -> None:
    if runtime == "docker":
        err: Exception = docker.errors.InvalidArgument("bad argument")
        translate: Translate = docker_engine.translate
    else:
        err = podman.errors.InvalidArgument("bad argument")
        translate = podman_engine.translate
    out = translated(translate, err, Op.START)
    assert isinstance(out, SessionStartError) and "bad argument" in out.reason


def test_read_errors_without_a_session_name_the_engine(translate: Translate, runtime: str) -> None:
    out = translated(translate, OSError(5, "Input/output error"), Op.READ, None)
    assert type(out) is SessionError
    assert str(out).startswith(f"{runtime} (unix://")


def test_kstlib_errors_pass_through_and_foreign_bugs_are_not_hidden(translate: Translate) -> None:
    mine = SessionConfigError("volumes: bad", "volumes")
    with pytest.raises(SessionConfigError) as info, translate(Op.START, "bot", "unix:///x", 1):
        raise mine
    assert info.value is mine
    with pytest.raises(KeyError), translate(Op.START, "bot", "unix:///x", 1):
        raise KeyError("a bug of ours must not become an engine error")


def test_every_table_row_is_reachable(runtime: str) -> None:
    table = docker_engine.table() if runtime == "docker" else podman_engine.table()
    # A row shadowed by an earlier one would never run.
    for index, (types, _) in enumerate(table):
        for earlier, _ in table[:index]:
            assert not all(issubclass(t, earlier) for t in types), (types, earlier)


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


# -- logs, followed logs, waits across restarts (no engine) ---------------------------

STAMP = b"2026-11-25T19:19:37.466652022Z "


def frame(data: bytes, kind: int = 1) -> bytes:
    return bytes([kind, 0, 0, 0]) + len(data).to_bytes(4, "big") + data


def test_entry_splitter_cuts_frames_and_lines_however_the_bytes_arrive() -> None:
    payload = frame(b"a\r\n") + frame(b"x") + frame(b"y\r\n", 2) + frame(b"") + frame(b"end")
    splitter = EntrySplitter()
    got = [entry for byte in payload for entry in splitter.feed(bytes([byte]))]
    assert got + splitter.flush() == [b"a\r\n", b"x", b"y\r\n", b"end"]
    cut = EntrySplitter()
    assert cut.feed(frame(b"whole") + frame(b"cut")[:-1]) == [b"whole"]
    assert cut.flush() == []  # a frame cut by the end of the stream is dropped
    raw = EntrySplitter()
    assert raw.feed(b"\x01") == []  # could still be a frame header
    assert raw.feed(b"23\r\nprom") == [b"\x0123\r\n"]
    assert raw.feed(b"pt> ") == [] and raw.flush() == [b"prompt> "]
    assert split_entries(b"") == []


def test_a_docker_line_over_16_kib_is_cut_back_into_its_entries() -> None:
    body = b"x" * 40000
    later = b"2026-11-25T19:19:38Z "
    raw = (
        STAMP
        + body[:16384]
        + STAMP
        + body[16384:32768]
        + STAMP
        + body[32768:]
        + b"\r\n"
        + later
        + b"short\r\n"
    )
    entries = split_entries(raw)
    assert [len(e) for e in entries] == [len(STAMP) + 16384] * 2 + [len(STAMP) + 7232 + 2, 28]
    lines = container_logs._Lines(stamped=True)
    out = lines.feed(entries)
    assert [text for _, text in out] == [body.decode(), "short"]
    assert out[0][0] == (1795634377, 466652022)
    plain = "y" * 20000  # without timestamps nothing is cut
    assert split_entries(plain.encode() + b"\r\n") == [plain.encode() + b"\r\n"]


def test_lines_join_partial_entries_and_keep_the_first_time() -> None:
    lines = container_logs._Lines(stamped=True)
    out = lines.feed(
        [
            b"2026-11-25T19:46:55+01:00 a\r\n",
            b"2026-11-25T18:46:56Z par",
            b"2026-11-25T18:46:57Z tial\r\nnext",
            b"2026-11-25T18:46:58Z \r\n",
            b"not a stamp\r\n",
        ]
    )
    assert out == [
        ((1795632415, 0), "a"),
        ((1795632416, 0), "partial"),
        ((1795632417, 0), "next"),
        (None, "not a stamp"),
    ]
    assert lines.flush() == []
    plain = container_logs._Lines(stamped=False)
    assert plain.feed([b"one\r", b"\ntw", b"o\xc3"]) == [(None, "one")]
    assert plain.feed([b"\xa9\r\n"]) == [(None, "two\u00e9")]
    assert plain.feed([b"tail"]) == [] and plain.flush() == [(None, "tail")]


def test_a_resumed_read_skips_exactly_the_entries_already_used() -> None:
    # Podman's times are whole seconds and its `since` keeps entries, not
    # lines: a line begun in second 5 and ended in second 6 must not come twice.
    def e(second: int, text: bytes) -> bytes:
        return b"2026-11-25T18:46:%02dZ " % second + text

    log = [
        e(5, b"a\r\n"),
        e(5, b"x"),
        e(6, b"y\r\n"),
        e(6, b"long-1 "),
        e(6, b"long-2\r\n"),
        e(7, b"end"),
    ]
    cursor = container_logs._Cursor()
    first = container_logs._Lines(stamped=True, cursor=cursor)
    assert [t for _, t in first.feed(log[:4])] == ["a", "xy"]  # long-1 is still pending
    since = cursor.resume()
    assert since == datetime(2026, 11, 25, 18, 46, 6, tzinfo=timezone.utc)
    again = [entry for entry in log if entry[17:19] >= b"06"]  # what `since` sends back
    second = container_logs._Lines(stamped=True, cursor=cursor)
    assert [t for _, t in second.feed(again) + second.flush()] == ["long-1 long-2", "end"]


def test_stamps_convert_to_the_tmux_format() -> None:
    stamp = container_logs._parse_stamp(b"2026-11-25T18:46:55.8195101Z")
    assert stamp == (1795632415, 819510100)
    assert container_logs._stamp_text(stamp) == "2026-11-25T18:46:55.819510Z"
    assert container_logs._parse_stamp(b"2026-11-25T18:46:55-00:30") == (1795634215, 0)
    assert container_logs._parse_stamp(b"2026-11-25 18:46:55Z") is None
    assert container_logs._render(stamp, "\x1b[1mhi\x1b[0m", True, False) == (
        "2026-11-25T18:46:55.819510Z hi"
    )


def test_since_is_checked_and_sent_with_nanoseconds() -> None:
    check = validate_since
    aware = datetime(2026, 1, 1, 1, 0, 0, 250000, tzinfo=timezone(timedelta(hours=1)))
    assert since_param(check(aware)) == "1767225600.250000000"  # type: ignore[arg-type]
    assert check(datetime(2026, 1, 1)) == datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert since_param(check(1767225600.5)) == "1767225600.500000000"  # type: ignore[arg-type]
    assert since_param(check(-5)) == "0"  # type: ignore[arg-type]
    for bad in (True, "yesterday", float("nan"), 1e300):
        with pytest.raises(SessionConfigError, match="since"):
            check(bad)
    assert log_params(5, None, False) == {"stdout": "true", "stderr": "true", "tail": "5"}


def info(state: str, **kw: Any) -> ContainerInfo:
    return ContainerInfo(id="c1", name="bot", state=state, **kw)


@pytest.mark.parametrize(
    ("state", "policy", "retries", "count", "code", "pending"),
    [
        ("stopped", "on-failure", 2, 1, 3, True),  # Podman: the cleanup will restart it
        ("stopped", "on-failure", 2, 2, 3, False),  # retries used up
        ("stopped", "on-failure", 0, 9, 3, True),  # no maximum
        ("stopped", "on-failure", 2, 0, 0, False),  # success is not a failure
        ("stopped", "always", 0, 5, 0, True),
        ("stopped", "", 0, 0, 1, False),
        ("exited", "always", 0, 1, 1, False),  # Podman's cleanup decided: no restart
        ("exited", "on-failure", 2, 0, 1, False),  # Docker says "restarting" when it will
    ],
)
def test_a_restart_is_pending_only_while_podman_has_not_cleaned_up(
    state: str, policy: str, retries: int, count: int, code: int, pending: bool
) -> None:
    record = info(
        state, restart_policy=policy, restart_retries=retries, restart_count=count, exit_code=code
    )
    assert container_states._restart_pending(record) is pending
    expected = SessionState.RUNNING if pending else SessionState.EXITED
    assert container_states._state(record) is expected
    assert container_states._state(info("restarting")) is SessionState.RUNNING


def test_a_due_restart_that_does_not_come_is_given_up_after_the_grace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [100.0]
    monkeypatch.setattr(container_mod.time, "monotonic", lambda: clock[0])
    watch = container_states._RestartWatch()
    due = info("stopped", restart_policy="always", exit_code=0)
    assert watch.settled(due) is False
    clock[0] += container_states._RESTART_GRACE - 1
    assert watch.settled(due) is False
    clock[0] += 2
    assert watch.settled(due) is True
    assert watch.settled(info("running")) is False
    assert watch.settled(info("exited", exit_code=1)) is True


def test_inspect_payloads_carry_the_restart_policy_and_run_times() -> None:
    payload = {
        "Id": "abc",
        "Name": "/bot",
        "RestartCount": 2,
        "State": {
            "Status": "exited",
            "ExitCode": 13,
            "StartedAt": "2026-01-01T00:00:01.5Z",
            "FinishedAt": "2026-01-01T00:00:02Z",
        },
        "HostConfig": {"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2}},
        "Config": {},
    }
    for module in (docker_engine, podman_engine):
        got = module.info_from_inspect(payload)
        assert (got.restart_policy, got.restart_retries, got.restart_count) == ("on-failure", 2, 2)
        assert got.started_at == datetime(2026, 1, 1, 0, 0, 1, 500000, tzinfo=timezone.utc)
        assert got.finished_at == datetime(2026, 1, 1, 0, 0, 2, tzinfo=timezone.utc)
    bare = docker_engine.info_from_inspect({"Id": "x", "State": {}, "HostConfig": {}})
    assert (bare.restart_policy, bare.restart_retries) == ("", 0)


def test_podman_garbled_tails_are_spotted() -> None:
    garbled = podman_engine._garbled_tail
    assert garbled([b"2026-11-25T19:21:55Z b\rp2p1\n"], stamped=True)
    assert not garbled([b"2026-11-25T19:21:55Z b\r\n", b"2026-11-25T19:21:55Z p1"], stamped=True)
    assert not garbled([b"no terminal\n", b"x"], stamped=False)


class _Raw:
    """A streamed HTTP body: scripted reads, and the connection urllib3 would hold."""

    def __init__(self, reads: list[object], sock: Any = None) -> None:
        self.reads = reads
        self.connection = type("Conn", (), {"sock": sock})()
        self.closed = False

    def read1(self, amount: int) -> bytes:
        item = self.reads.pop(0)
        if isinstance(item, BaseException):
            raise item
        assert isinstance(item, bytes)
        return item


class _Answer:
    def __init__(self, raw: _Raw) -> None:
        self.raw = raw
        self.closes = 0

    def close(self) -> None:
        self.closes += 1


def test_log_stream_sets_the_socket_timeout_per_read_and_releases_on_close() -> None:
    import socket as socket_mod

    mine, peer = socket_mod.socketpair()
    try:
        answer = _Answer(_Raw([frame(b"a\r\n") + frame(b"b"), frame(b"c\r\n")], sock=mine))
        stream = LogStream(answer, lambda: docker_engine.translate(Op.WAIT, "bot", DOCKER_URL, 5))
        assert stream.read(2.5) == [b"a\r\n", b"b"]
        assert mine.gettimeout() == 2.5
        assert stream.read(None) == [b"c\r\n"] and mine.gettimeout() is None
        stream.close()
        stream.close()
        assert answer.closes == 2 and stream.read(1.0) is None
        assert peer.recv(10) == b""  # shut down: a reader blocked elsewhere wakes up
    finally:
        mine.close()
        peer.close()


@pytest.mark.parametrize("runtime_module", [docker_engine, podman_engine])
def test_log_stream_read_errors_are_translated(runtime_module: Any) -> None:
    url = DOCKER_URL if runtime_module is docker_engine else PODMAN_URL

    def translate() -> AbstractContextManager[None]:
        return runtime_module.translate(Op.WAIT, "bot", url, 5)  # type: ignore[no-any-return]

    silent = LogStream(
        _Answer(_Raw([urllib3.exceptions.ReadTimeoutError(None, "/logs", "timed out")])), translate
    )
    with pytest.raises(SessionTimeoutError) as info_:
        silent.read(0.5)
    assert info_.value.name == "bot"
    assert silent.read(0.5) is None  # a failed stream is over
    broken = urllib3.exceptions.ProtocolError(
        "Connection broken", ConnectionResetError(104, "reset")
    )
    dead = LogStream(_Answer(_Raw([broken])), translate)
    with pytest.raises(ContainerRuntimeNotFoundError):
        dead.read(None)


class _FakeEngine:
    """Scripted inspect answers; waits and followed logs as a Podman 4.3 would give them."""

    runtime = "podman"
    endpoint = "unix:///fake.sock"
    timeout = 5.0
    follow_needs_check = True

    def __init__(self, states: list[ContainerInfo], log: list[bytes] | None = None) -> None:
        self.states = states
        self.log = log or []
        self.waits = 0

    def inspect(self, name: str, op: Op = Op.READ) -> ContainerInfo:
        current = self.states[0]
        if len(self.states) > 1:
            self.states.pop(0)
        return current

    def wait(self, name: str, timeout: float) -> int:
        self.waits += 1
        return 3

    def follow_logs(self, ref: str, name: str, **kw: Any) -> LogStream:
        garbled = [frame(e) for e in self.log[:1] + self.log[3:]]  # a gap, as after an exit
        return LogStream(_Answer(_Raw([b"".join(garbled), b""])), contextlib.nullcontext)

    def logs(
        self, name: str, tail: int | None, since: Any = None, timestamps: bool = False
    ) -> list[bytes]:
        return list(self.log)


def fake_runner(engine: _FakeEngine) -> ContainerRunner:
    runner = ContainerRunner(runtime="podman")
    runner._engine = engine  # type: ignore[assignment]
    return runner


def test_wait_sees_through_podman_restarts_to_the_last_exit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(container_mod, "_POLL", 0.001)
    policy = {"restart_policy": "on-failure", "restart_retries": 2}
    engine = _FakeEngine(
        [
            info("running", **policy),
            info("stopped", exit_code=11, restart_count=0, **policy),  # cleanup pending
            info("running", restart_count=1, **policy),
            info("stopped", exit_code=12, restart_count=1, **policy),
            info("running", restart_count=2, **policy),
            info("stopped", exit_code=13, restart_count=2, **policy),  # no retry left: final
        ]
    )
    assert fake_runner(engine).wait("bot", timeout=10) == 13
    assert engine.waits == 3  # one per run


def test_follow_logs_does_not_trust_a_podman_stream_once_the_container_stopped() -> None:
    log = [b"2026-11-25T18:46:55Z %d\r\n" % i for i in range(1, 7)]
    states = [info("running", started_at=None), info("exited", exit_code=0)]
    engine = _FakeEngine(states, log)
    got = list(fake_runner(engine).follow_logs("bot", since=0))
    assert got == ["1", "2", "3", "4", "5", "6"]  # the plain read, not the gap


def test_podman_ssh_tunnel_failure_is_engine_unreachable() -> None:
    import subprocess

    from kstlib.ops.engines import podman as podman_engine
    from kstlib.ops.exceptions import ContainerRuntimeNotFoundError
    from kstlib.ops.translate import Op

    cause = subprocess.TimeoutExpired(["ssh", "nohost"], 5)
    with pytest.raises(ContainerRuntimeNotFoundError) as info:
        with podman_engine.translate(Op.READ, "bot", "ssh://root@nohost/run/podman/podman.sock", 5):
            raise cause
    assert info.value.__cause__ is cause
    assert "ssh://root@nohost" in str(info.value)
