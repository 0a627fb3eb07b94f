"""The Docker adapter: the ``docker`` SDK's low-level ``APIClient`` and its error table.

Only low-level calls are used, one per operation where the engine allows it:
``inspect_container`` for a status, ``containers(all=True)`` for a listing
(the high-level ``containers.list()`` inspects each container), and one
``GET /containers/{name}/logs`` for logs (``APIClient.logs()`` inspects the
container first to learn whether it has a terminal;
:class:`~kstlib.ops.engines.streams.EntrySplitter` reads that from the payload
instead). A followed log is the same request with ``follow``, read as it
arrives (:class:`~kstlib.ops.engines.streams.LogStream`).

Every SDK, ``requests``, ``urllib3`` and ``OSError`` exception raised inside
:func:`translate` becomes an :class:`~kstlib.ops.exceptions.OpsError`, with
the original as ``__cause__``; :func:`table` says which.

Example:
    >>> import docker.errors
    >>> with translate(Op.READ, "bot", "unix:///var/run/docker.sock", 5):
    ...     raise docker.errors.DockerException(
    ...         "Error while fetching server API version: ('Connection aborted.')")
    Traceback (most recent call last):
    ...
    kstlib.ops.exceptions.ContainerRuntimeNotFoundError: No docker engine API answered (tried: unix:///var/run/docker.sock). ...
"""

from __future__ import annotations

import math
import re
import socket
from collections.abc import Mapping
from contextlib import AbstractContextManager
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from kstlib.ops.engines.adapter import DETACH_KEYS, AttachHandle, ContainerInfo, ContainerSpec
from kstlib.ops.engines.errors import (
    did_not_answer,
    on_api_error,
    on_connection_error,
    on_image_missing,
    on_not_found,
    on_other,
    on_permission,
    on_timeout,
    on_unreachable,
)
from kstlib.ops.engines.streams import (
    LogStream,
    log_params,
    parse_timestamp,
    restart_policy,
    split_entries,
)
from kstlib.ops.exceptions import OpsError, SessionAttachError
from kstlib.ops.translate import CallContext, Op, Table, translating

if TYPE_CHECKING:
    from kstlib.ops.engines.pull import PullTracker

__all__ = ["RUNTIME", "DockerEngine", "table", "translate"]

RUNTIME = "docker"
_EXITED_RE = re.compile(r"Exited \((-?\d+)\)")
_API_VERSION_ERROR = "Error while fetching server API version"


def _on_docker_exception(err: Exception, ctx: CallContext) -> OpsError:
    if _API_VERSION_ERROR in str(err):
        # The SDK's first request (the API version) failed: nothing answers there,
        # or something accepted the connection and never answered (a hung engine).
        return on_timeout(err, ctx) if did_not_answer(err) else on_unreachable(err, ctx)
    return on_other(err, ctx)


@lru_cache(maxsize=1)
def table() -> Table:
    """The Docker translation table: SDK exception types -> handler, first match wins.

    ==========================================================  =====================================
    raised by the SDK                                           raised by kstlib
    ==========================================================  =====================================
    ``docker.errors.ImageNotFound``                             op error naming the image
    ``docker.errors.NotFound`` (404)                            ``SessionNotFoundError``
    ``docker.errors.APIError``: 409 on create, "already in use"  ``SessionExistsError``
    ``docker.errors.APIError`` (other)                          op error with the engine's words
    ``requests`` ``ConnectTimeout``                             ``ContainerRuntimeNotFoundError``
    ``requests`` ``Timeout``, ``urllib3`` ``TimeoutError``      op error "timed out after N s"
    ``DockerException`` "Error while fetching server API ..."   ``ContainerRuntimeNotFoundError``
    ``requests``/builtin ``ConnectionError``, ``urllib3``,
    ``FileNotFoundError``                                       ``ContainerRuntimeNotFoundError``
    (around urllib3's ``ReadTimeoutError``: a streamed read)    op error "timed out after N s"
    ``PermissionError`` (the socket)                            ``ContainerRuntimeNotFoundError``
    other ``DockerException``, ``RequestException``,
    ``OSError``, ``ValueError``                                 op error
    ==========================================================  =====================================

    The op error is ``SessionStartError`` for start, ``SessionStopError`` for
    stop, ``SessionAttachError`` for attach and ``SessionError`` for reads.
    Built on first use, so importing this module does not import the SDK.

    Example:
        >>> [h.__name__ for _, h in table()][:3]
        ['on_image_missing', 'on_not_found', 'on_api_error']
    """
    import docker.errors
    import requests.exceptions
    import urllib3.exceptions

    return (
        ((docker.errors.ImageNotFound,), on_image_missing),
        ((docker.errors.NotFound,), on_not_found),
        ((docker.errors.APIError,), on_api_error),
        # ConnectTimeout is also a Timeout: the engine never answered at all.
        (
            (requests.exceptions.ConnectTimeout, urllib3.exceptions.ConnectTimeoutError),
            on_unreachable,
        ),
        ((requests.exceptions.Timeout, urllib3.exceptions.TimeoutError, TimeoutError), on_timeout),
        ((docker.errors.DockerException,), _on_docker_exception),
        (
            (
                requests.exceptions.ConnectionError,
                urllib3.exceptions.HTTPError,
                ConnectionError,
                FileNotFoundError,
            ),
            on_connection_error,
        ),
        ((PermissionError,), on_permission),
        ((requests.exceptions.RequestException, OSError, ValueError), on_other),
    )


def translate(
    op: Op,
    name: str | None,
    endpoint: str,
    timeout: float,
    *,
    image: str | None = None,
    connecting: bool = False,
) -> AbstractContextManager[None]:
    """Translate every Docker SDK / HTTP / OS error raised inside into the OpsError tree.

    Example:
        >>> import docker.errors, requests
        >>> response = requests.Response(); response.status_code = 404
        >>> with translate(Op.READ, "bot", "unix:///var/run/docker.sock", 5):
        ...     raise docker.errors.NotFound("404", response=response, explanation="No such container")
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionNotFoundError: Session 'bot' was not found on the docker backend; check the name with 'kstlib ops list'.
    """
    ctx = CallContext(op, name, RUNTIME, endpoint, timeout, image=image, connecting=connecting)
    return translating(table, ctx)


# -- payloads -> ContainerInfo ------------------------------------------------------------


def info_from_inspect(payload: Mapping[str, Any]) -> ContainerInfo:
    """Normalise a ``GET /containers/{id}/json`` payload.

    Example:
        >>> info = info_from_inspect({"Id": "abc", "Name": "/bot", "Created": "2024-05-01T12:00:00.5Z",
        ...     "State": {"Status": "exited", "Pid": 0, "ExitCode": 3},
        ...     "Config": {"Image": "app:1", "Labels": None, "Tty": True}})
        >>> info.name, info.state, info.pid, info.exit_code, info.image, info.labels
        ('bot', 'exited', None, 3, 'app:1', {})
    """
    state = payload.get("State") or {}
    config = payload.get("Config") or {}
    pid = state.get("Pid")
    exit_code = state.get("ExitCode")
    policy, retries = restart_policy(payload.get("HostConfig"))
    return ContainerInfo(
        id=str(payload.get("Id", "")),
        name=str(payload.get("Name") or "").lstrip("/"),
        state=str(state.get("Status") or "unknown"),
        pid=int(pid) if isinstance(pid, int) and pid > 0 else None,
        exit_code=int(exit_code) if isinstance(exit_code, int) else None,
        created_at=parse_timestamp(payload.get("Created")),
        image=str(config.get("Image") or payload.get("Image") or "") or None,
        labels=dict(config.get("Labels") or {}),
        tty=bool(config.get("Tty")),
        restart_count=int(payload.get("RestartCount") or 0),
        restart_policy=policy,
        restart_retries=retries,
        started_at=parse_timestamp(state.get("StartedAt")),
        finished_at=parse_timestamp(state.get("FinishedAt")),
        # Docker sets OOMKilled when the kernel's OOM killer hit a process of the container.
        oom_killed=bool(state.get("OOMKilled")),
        error=str(state.get("Error") or "") or None,
    )


def info_from_list(item: Mapping[str, Any]) -> ContainerInfo:
    """Normalise one entry of ``GET /containers/json?all=1``.

    Docker's list has no pid (its payload carries none: only an inspect per
    container would tell, which a one-call listing avoids), nor OOMKilled;
    the exit code comes from its ``Status`` (``"Exited (3) 2 minutes ago"``).

    Example:
        >>> info = info_from_list({"Id": "abc", "Names": ["/bot"], "State": "exited",
        ...     "Status": "Exited (3) 5 seconds ago", "Created": 1714566896, "Image": "app:1",
        ...     "Labels": {"io.kstlib.managed": "true"}})
        >>> info.name, info.exit_code, info.managed, info.created_at.year
        ('bot', 3, True, 2024)
    """
    names = [str(n) for n in item.get("Names") or []]
    # A linked container also lists "/other/alias"; its own name has one slash.
    own = [n.lstrip("/") for n in names if n.count("/") <= 1]
    state = str(item.get("State") or "unknown")
    match = _EXITED_RE.match(str(item.get("Status") or ""))
    return ContainerInfo(
        id=str(item.get("Id", "")),
        name=own[0] if own else (names[0].lstrip("/") if names else str(item.get("Id", ""))[:12]),
        state=state,
        exit_code=int(match.group(1)) if match else None,
        created_at=parse_timestamp(item.get("Created")),
        image=str(item.get("Image") or "") or None,
        labels=dict(item.get("Labels") or {}),
    )


def raw_socket(sock: Any) -> socket.socket:
    """The :class:`socket.socket` under what ``attach_socket`` returned.

    Example:
        >>> a, b = socket.socketpair()
        >>> raw_socket(a) is a
        True
        >>> a.close(); b.close()
    """
    inner = getattr(sock, "_sock", sock)
    if not isinstance(inner, socket.socket):
        raise TypeError(f"attach over this transport is not supported ({type(sock).__name__})")
    return inner


class DockerEngine:
    """One Docker engine endpoint, driven through ``docker.APIClient``.

    Create it with :meth:`open` (or :func:`kstlib.ops.engines.endpoints.connect`,
    which caches it).

    Example:
        >>> engine = DockerEngine.open("unix:///var/run/docker.sock", 10)  # doctest: +SKIP
        >>> engine.inspect("bot").state  # doctest: +SKIP
        'running'
    """

    runtime = RUNTIME
    #: Docker sends every line of a followed log, also when the container stops.
    follow_needs_check = False

    def __init__(self, api: Any, endpoint: str, timeout: float) -> None:
        self.api = api
        self.endpoint = endpoint
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"DockerEngine({self.endpoint!r})"

    @classmethod
    def open(cls, endpoint: str, timeout: float) -> DockerEngine:
        """Connect to the Docker API at ``endpoint``; the API version request doubles as a ping.

        Example:
            >>> DockerEngine.open("unix:///nonexistent.sock", 1)
            Traceback (most recent call last):
            ...
            kstlib.ops.exceptions.ContainerRuntimeNotFoundError: No docker engine API answered (tried: unix:///nonexistent.sock). ...
        """
        import docker

        with translate(Op.READ, None, endpoint, timeout, connecting=True):
            api = docker.APIClient(
                base_url=endpoint,
                version="auto",
                timeout=timeout,
                # ssh:// through the ssh client, not paramiko (not a dependency).
                use_ssh_client=endpoint.startswith("ssh://"),
            )
        if not endpoint.startswith(("tcp://", "http://", "https://")):
            # requests re-reads proxy settings from the environment on every
            # request; a unix or ssh socket never goes through a proxy.
            api.trust_env = False
        return cls(api, endpoint, timeout)

    def _translate(
        self, op: Op, name: str | None, *, image: str | None = None, extra: float = 0
    ) -> AbstractContextManager[None]:
        return translate(op, name, self.endpoint, self.timeout + extra, image=image)

    def create(self, spec: ContainerSpec) -> str:
        """Create the container described by ``spec``; return its id.

        Example:
            >>> engine.create(spec)  # doctest: +SKIP
            '3f2a...'
        """
        port_bindings: dict[str, list[Any]] = {}
        for port in spec.ports:
            target = (port.host_ip, port.host_port) if port.host_ip else port.host_port
            port_bindings.setdefault(port.key, []).append(target)
        restart = None
        if spec.restart is not None:
            restart = {"Name": spec.restart[0], "MaximumRetryCount": spec.restart[1]}
        binds = [
            f"{b.source}:{b.target}" + (f":{','.join(b.options)}" if b.options else "")
            for b in spec.binds
        ]
        with self._translate(Op.START, spec.name, image=spec.image):
            host_config = self.api.create_host_config(
                binds=binds or None,
                port_bindings=port_bindings or None,
                init=spec.init,
                restart_policy=restart,
                mem_limit=spec.memory,
                nano_cpus=round(spec.cpus * 1e9) if spec.cpus is not None else None,
            )
            created = self.api.create_container(
                spec.image,
                command=spec.command,
                name=spec.name,
                environment=[f"{k}={v}" for k, v in spec.env.items()] or None,
                working_dir=spec.working_dir,
                labels=dict(spec.labels),
                tty=spec.tty,
                stdin_open=spec.stdin_open,
                ports=[(p.container_port, p.protocol) for p in spec.ports] or None,
                host_config=host_config,
            )
        return str(created["Id"])

    def start(self, ref: str, name: str) -> None:
        """Start a created container.

        Example:
            >>> engine.start("3f2a...", "bot")  # doctest: +SKIP
        """
        with self._translate(Op.START, name):
            self.api.start(ref)

    def inspect(self, name: str, op: Op = Op.READ) -> ContainerInfo:
        """Inspect one container (one API call).

        Example:
            >>> engine.inspect("bot").state  # doctest: +SKIP
            'running'
        """
        with self._translate(op, name):
            return info_from_inspect(self.api.inspect_container(name))

    def list_containers(self) -> list[ContainerInfo]:
        """Every container, running or not, in one API call.

        Example:
            >>> [c.name for c in engine.list_containers()]  # doctest: +SKIP
            ['bot']
        """
        with self._translate(Op.READ, None):
            return [info_from_list(item) for item in self.api.containers(all=True)]

    def logs(
        self,
        name: str,
        tail: int | None,
        since: datetime | None = None,
        timestamps: bool = False,
    ) -> list[bytes]:
        """The container's last ``tail`` log entries (``None``: all) from ``since`` on, in one call.

        Example:
            >>> engine.logs("bot", 10)  # doctest: +SKIP
            [b'ready\\r\\n']
        """
        params = log_params(tail, since, timestamps)
        with self._translate(Op.READ, name):
            response = self.api._get(self.api._url("/containers/{0}/logs", name), params=params)
            self.api._raise_for_status(response)
            return split_entries(bytes(response.content))

    def follow_logs(
        self,
        ref: str,
        name: str,
        *,
        tail: int | None,
        since: datetime | None,
        timestamps: bool,
        timeout: float | None,
    ) -> LogStream:
        """Open the container's followed log; it ends when the container stops.

        The connection is not reused afterwards (``Connection: close``): a
        stream closed early leaves nothing half-read in the pool.

        Example:
            >>> stream = engine.follow_logs("3f2a...", "bot", tail=0, since=None,
            ...                             timestamps=False, timeout=None)  # doctest: +SKIP
            >>> stream.read(5.0)  # doctest: +SKIP
            [b'tick\\r\\n']
        """
        params = log_params(tail, since, timestamps, follow=True)

        def translate_stream() -> AbstractContextManager[None]:
            return translate(
                Op.WAIT, name, self.endpoint, self.timeout if timeout is None else timeout
            )

        with translate_stream():
            response = self.api._get(
                self.api._url("/containers/{0}/logs", ref),
                params=params,
                stream=True,
                timeout=(self.timeout, timeout),
                headers={"Connection": "close"},
            )
            try:
                self.api._raise_for_status(response)
            except BaseException:
                response.close()
                raise
        return LogStream(response, translate_stream)

    def stop(self, ref: str, name: str, timeout: float) -> None:
        """Stop signal, wait up to ``timeout`` s, then SIGKILL (the engine does it all).

        Example:
            >>> engine.stop("bot", "bot", 10)  # doctest: +SKIP
        """
        with self._translate(Op.STOP, name, extra=timeout):
            self.api.stop(ref, timeout=math.ceil(timeout))

    def kill(self, ref: str, name: str) -> None:
        """SIGKILL the container's process at once.

        Example:
            >>> engine.kill("bot", "bot")  # doctest: +SKIP
        """
        with self._translate(Op.STOP, name):
            self.api.kill(ref, signal="SIGKILL")

    def wait(self, name: str, timeout: float) -> int:
        """Wait up to ``timeout`` s for the container to stop; return its exit code.

        Example:
            >>> engine.wait("bot", 5)  # doctest: +SKIP
            0
        """
        # An exit the restart policy answers makes the state "restarting"
        # (still running) in the same step: this returns at every exit.
        with translate(Op.WAIT, name, self.endpoint, timeout):
            result = self.api.wait(name, timeout=timeout, condition="not-running")
        # docker-py returns the engine's {"StatusCode": n, "Error": ...}.
        code = result.get("StatusCode") if isinstance(result, Mapping) else result
        return int(code) if isinstance(code, int) else -1

    def remove(self, ref: str, name: str, op: Op = Op.STOP) -> None:
        """Remove the container (and its anonymous volumes), killing it if it runs.

        Example:
            >>> engine.remove("bot", "bot")  # doctest: +SKIP
        """
        with self._translate(op, name):
            self.api.remove_container(ref, v=True, force=True)

    def exec(self, name: str, argv: list[str]) -> tuple[int, bytes]:
        """Run ``argv`` in the container; return its exit code and output.

        Example:
            >>> engine.exec("bot", ["echo", "hi"])  # doctest: +SKIP
            (0, b'hi\\n')
        """
        with self._translate(Op.READ, name):
            created = self.api.exec_create(name, argv, stdout=True, stderr=True, tty=False)
            output = self.api.exec_start(created["Id"], tty=False)
            exit_code = self.api.exec_inspect(created["Id"]).get("ExitCode")
        return (int(exit_code) if isinstance(exit_code, int) else -1), bytes(output or b"")

    def attach_socket(self, name: str) -> AttachHandle:
        """A socket attached to the container's terminal; the engine detaches on Ctrl-P Ctrl-Q.

        Example:
            >>> engine.attach_socket("bot").sock  # doctest: +SKIP
            <socket.socket ...>
        """
        params = {"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1, "detachKeys": DETACH_KEYS}
        with self._translate(Op.ATTACH, name):
            sock = self.api.attach_socket(name, params=params)
            try:
                return AttachHandle(raw_socket(sock), keepalive=sock)
            except TypeError as err:
                raise SessionAttachError(name, self.runtime, str(err)) from err

    def resize(self, name: str, height: int, width: int) -> None:
        """Resize the container's terminal to ``height`` x ``width``.

        Example:
            >>> engine.resize("bot", 50, 200)  # doctest: +SKIP
        """
        with self._translate(Op.ATTACH, name):
            self.api.resize(name, height=height, width=width)

    # -- images (see kstlib.ops.registry) ------------------------------------------------

    def image_exists(self, image: str) -> bool:
        """Whether the engine has ``image`` (one inspect).

        Example:
            >>> engine.image_exists("localhost/kstlib-test:latest")  # doctest: +SKIP
            True
        """
        import docker.errors

        with self._translate(Op.READ, None, image=image):
            try:
                self.api.inspect_image(image)
            except docker.errors.NotFound:
                return False
        return True

    def pull(
        self,
        image: str,
        tracker: PullTracker,
        *,
        auth_config: Mapping[str, str] | None,
        credentials: str,
        insecure: bool,
        timeout: float,
        session: str | None = None,
    ) -> str | None:
        """Pull ``image`` (``POST /images/create``), feeding each item to ``tracker``; its id.

        This is ``APIClient.pull(stream=True, decode=True)`` with one change:
        the SDK sends that request with no timeout at all, so a registry that
        never answers would hang the call; here the engine may stay silent at
        most ``timeout`` seconds. Plain HTTP is the daemon's decision
        (loopback, and its ``insecure-registries``): ``insecure`` cannot
        change it. Credentials go in the ``X-Registry-Auth`` header.

        Example:
            >>> engine.pull("127.0.0.1:5000/kstlib/pulltest:1", tracker, auth_config=None,
            ...             credentials="none", insecure=True, timeout=60)  # doctest: +SKIP
            'sha256:eb09f023...'
        """
        import docker.auth
        import docker.errors

        from kstlib.ops.engines.pull import translate_pull_error
        from kstlib.ops.registry import pull_failure, split_reference

        repository, tag = split_reference(image)
        headers = (
            {"X-Registry-Auth": docker.auth.encode_header(dict(auth_config))} if auth_config else {}
        )
        ctx = CallContext(Op.START, session, RUNTIME, self.endpoint, timeout, image=image)
        try:
            response = self.api._post(
                self.api._url("/images/create"),
                params={"fromImage": repository, "tag": tag},
                headers=headers,
                stream=True,
                timeout=timeout,
            )
            try:
                self.api._raise_for_status(response)
                for item in self.api._stream_helper(response, decode=True):
                    tracker.feed(item)
                    if tracker.error is not None:
                        break
            finally:
                response.close()
        except Exception as err:
            if err is tracker.callback_error:
                raise
            raise translate_pull_error(
                err, table(), ctx, credentials=credentials, session=session
            ) from err
        if tracker.error is not None:
            words = tracker.error
            raise pull_failure(
                image, RUNTIME, words, session=session, credentials=credentials, timeout=timeout
            ) from docker.errors.APIError(words, explanation=words)
        with self._translate(Op.START, session, image=image):
            image_id = str(self.api.inspect_image(image).get("Id") or "") or None
        tracker.finish()
        return image_id
