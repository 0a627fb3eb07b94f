"""The Docker and Podman translation tables, fed genuine SDK exception instances.

No engine is needed: the SDK errors are produced by the SDKs' own code paths
(``create_api_error_from_http_exception``, ``APIResponse.raise_for_status``,
a client pointed at a socket that does not exist) or built exactly as the
SDK builds them, from real ``requests.Response`` objects.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import docker.errors
import podman.errors
import pytest
import requests
import urllib3.exceptions
from podman.api.client import APIResponse

from kstlib.ops.engines import docker as docker_engine
from kstlib.ops.engines import podman as podman_engine
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
from kstlib.ops.translate import Op

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


@pytest.mark.parametrize("runtime", ["docker", "podman"])
def test_a_lost_ssh_channel_is_engine_unreachable(runtime: str) -> None:
    import paramiko

    from kstlib.ops.exceptions import ContainerRuntimeNotFoundError
    from kstlib.ops.translate import Op

    module = docker_engine if runtime == "docker" else podman_engine
    cause = paramiko.ChannelException(2, "Connect failed")
    where = "ssh://root@nohost/run/podman/podman.sock?identity=%2Fk%2Fid"
    with (
        pytest.raises(ContainerRuntimeNotFoundError) as info,
        module.translate(Op.READ, "bot", where, 5),
    ):
        raise cause
    assert info.value.__cause__ is cause
    # The engine named by its URL, without kstlib's query (issue 22 point 12).
    assert "ssh://root@nohost/run/podman/podman.sock" in str(info.value)
    assert "identity=" not in str(info.value)
