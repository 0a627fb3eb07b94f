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
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from kstlib.ops.engines import http
from kstlib.ops.engines.adapter import ContainerInfo, ContainerSpec, PullOptions, missing_network
from kstlib.ops.engines.containerinfo import inspect_info, list_info
from kstlib.ops.engines.errors import (
    did_not_answer,
    on_api_error,
    on_not_found,
    on_other,
    on_timeout,
    on_unreachable,
)
from kstlib.ops.engines.payload import integer, obj, seq, text
from kstlib.ops.exceptions import OpsError, SessionNotFoundError
from kstlib.ops.translate import CallContext, Op, Table, explanation

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


def removal_under_way(err: BaseException) -> bool:
    """Whether an engine error says the container is being removed (HTTP 409).

    Docker answers 409 "removal of container X is already in progress" to a
    second remove, and "... is dead or marked for removal" to a logs request
    or a stop while a remove runs: for a read, the container is gone.

    Example:
        >>> class Conflict(Exception):
        ...     status_code, explanation = 409, "removal of container ab is already in progress"
        >>> removal_under_way(Conflict()), removal_under_way(ValueError("removal in progress"))
        (True, False)
    """
    if (
        getattr(err, "status_code", None) != 409
        and getattr(getattr(err, "response", None), "status_code", None) != 409
    ):
        return False
    words = explanation(err).lower()
    return "marked for removal" in words or ("removal" in words and "in progress" in words)


def _on_docker_api_error(err: Exception, ctx: CallContext) -> OpsError:
    if ctx.op is not Op.START and ctx.name is not None and removal_under_way(err):
        return on_not_found(err, ctx)  # being removed: gone, for what this call wanted
    return on_api_error(err, ctx)


@lru_cache(maxsize=1)
def table() -> Table:
    """The Docker translation table: SDK exception types -> handler, first match wins.

    The rows every docker-py-shaped SDK shares (:func:`http.sdk_rows
    <kstlib.ops.engines.http.sdk_rows>`: a missing image, not found, transport
    and ssh errors), where an ``APIError`` 409 "marked for removal" (not a
    start) is ``SessionNotFoundError`` too, then Docker's own:
    ``DockerException`` "Error while fetching server API version" (nothing
    answered) is ``ContainerRuntimeNotFoundError``; any other
    ``DockerException``, ``RequestException``, ``OSError`` or ``ValueError``
    is the op error: ``SessionStartError`` for start, ``SessionStopError``
    for stop, ``SessionAttachError`` for attach and ``SessionError`` for reads.
    Built on first use, so importing this module does not import the SDK.

    Example:
        >>> [h.__name__ for _, h in table()][2]
        '_on_docker_api_error'
    """
    import docker.errors
    import requests.exceptions

    return (
        *http.sdk_rows(docker.errors, _on_docker_api_error),
        ((docker.errors.DockerException,), _on_docker_exception),
        ((requests.exceptions.RequestException, OSError, ValueError), on_other),
    )


#: ``translate(op, name, endpoint, timeout, *, image=None, connecting=False)``: every
#: Docker SDK / HTTP / OS error raised inside becomes an OpsError (see :func:`table`).
translate = http.Translator(RUNTIME, table)


# -- Docker payloads -> ContainerInfo -----------------------------------------------------


def info_from_inspect(payload: Mapping[str, Any]) -> ContainerInfo:
    """Normalise a ``GET /containers/{id}/json`` payload.

    Example:
        >>> info = info_from_inspect({"Id": "abc", "Name": "/bot", "Created": "2024-05-01T12:00:00.5Z",
        ...     "State": {"Status": "exited", "Pid": 0, "ExitCode": 3},
        ...     "Config": {"Image": "app:1", "Labels": None, "Tty": True}})
        >>> info.name, info.state, info.pid, info.exit_code, info.image, info.labels
        ('bot', 'exited', None, 3, 'app:1', {})
    """
    # Docker sets OOMKilled when the kernel's OOM killer hit a process of the container.
    return inspect_info(payload, image_fields=("Config.Image", "Image"), oom_false_told=True)


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
    item = obj(item, "a listed container")
    names = [text(n, "Names[]") for n in seq(item.get("Names"), "Names")]
    # A linked container also lists "/other/alias"; its own name has one slash.
    own = [n.lstrip("/") for n in names if n.count("/") <= 1]
    match = _EXITED_RE.match(text(item.get("Status"), "Status")[:200])
    code = integer(int(match.group(1)), "Status (exit code)") if match else None
    return list_info(
        item,
        name=own[0]
        if own
        else (names[0].lstrip("/") if names else text(item.get("Id"), "Id")[:12]),
        exit_code=code,
    )


class DockerEngine(http.HttpEngine):
    """One Docker engine endpoint, driven through ``docker.APIClient``.

    Create it with :meth:`open` (or :func:`kstlib.ops.engines.endpoints.connect`,
    which caches it).

    Example:
        >>> engine = DockerEngine.open("unix:///var/run/docker.sock", 10)  # doctest: +SKIP
        >>> engine.inspect("bot").state  # doctest: +SKIP
        'running'
    """

    runtime = RUNTIME
    translate = translate
    #: Docker sends every line of a followed log, also when the container stops.
    follow_needs_check = False

    def __init__(self, api: Any, endpoint: str, timeout: float) -> None:
        super().__init__(endpoint, timeout)
        self.api = api

    @classmethod
    def open(cls, endpoint: str, timeout: float) -> DockerEngine:
        """Connect to the Docker API at ``endpoint``; the API version request doubles as a ping.

        Example:
            >>> DockerEngine.open("unix:///nonexistent.sock", 1)
            Traceback (most recent call last):
            ...
            kstlib.ops.exceptions.ContainerRuntimeNotFoundError: No docker engine API answered (tried: unix:///nonexistent.sock). ...
        """
        return cls(http.docker_api(endpoint, timeout, translate), endpoint, timeout)

    def version(self) -> str:
        """The engine and API version (one ``/version`` call).

        Podman serves the Docker API too; its components say which engine answered.

        Example:
            >>> engine.version()  # doctest: +SKIP
            'Docker 20.10.24+dfsg1 (API 1.41)'
        """
        with self._translate(Op.READ, None):
            info = obj(self.api.version(), "the version answer")
            components = " ".join(
                text(obj(c, "Components[]").get("Name"), "Components[].Name")
                for c in seq(info.get("Components"), "Components")
            )
            version = text(info.get("Version"), "Version")[:100] or "?"
            api = text(info.get("ApiVersion"), "ApiVersion")[:20] or "?"
        engine = "Podman" if "podman" in components.lower() else "Docker"
        return f"{engine} {version} (API {api})"

    def create(self, spec: ContainerSpec) -> str:
        """Create the container described by ``spec`` (``create_container``); return its id.

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
        missing = missing_network(self, spec)
        if missing is not None:
            raise missing
        with self._translate(Op.START, spec.name, image=spec.image):
            host_config = self.api.create_host_config(
                network_mode=spec.network,
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
            return text(obj(created, "the create answer").get("Id"), "Id")

    def has_network(self, network: str) -> bool:
        """Whether a network of that exact name exists (``networks``, filtered by name).

        Example:
            >>> engine.has_network("host")  # doctest: +SKIP
            True
        """
        with self._translate(Op.START, None):
            found = self.api.networks(names=[network])
            # The engine's name filter matches parts of names too.
            return any(
                obj(item, "a network").get("Name") == network
                for item in seq(found, "the network list")
            )

    def start(self, ref: str, name: str) -> None:
        """Start a created container (``POST /containers/{id}/start``).

        Example:
            >>> engine.start("3f2a...", "bot")  # doctest: +SKIP
        """
        with self._translate(Op.START, name):
            self.api.start(ref)

    def inspect(self, name: str, op: Op = Op.READ) -> ContainerInfo:
        """Inspect one container: one ``inspect_container`` call.

        Example:
            >>> engine.inspect("bot").state  # doctest: +SKIP
            'running'
        """
        with self._translate(op, name):
            return info_from_inspect(self.api.inspect_container(name))

    def list_containers(self) -> list[ContainerInfo]:
        """Every container, running or not: one ``containers(all=True)`` call (no inspects).

        Example:
            >>> [c.name for c in engine.list_containers()]  # doctest: +SKIP
            ['bot']
        """
        with self._translate(Op.READ, None):
            found = seq(self.api.containers(all=True), "the container list")
            return [info_from_list(item) for item in found]

    def _top(self, ref: str) -> Any:
        return self.api.top(ref, ps_args="-o pid,ppid,args")

    def _logs_request(self, ref: str, params: dict[str, str], **options: Any) -> Any:
        return self.api._get(self.api._url("/containers/{0}/logs", ref), params=params, **options)

    def _raise_for_status(self, response: Any) -> None:
        self.api._raise_for_status(response)

    def stop(self, ref: str, name: str, timeout: float) -> None:
        """Stop signal, wait up to ``timeout`` s, then SIGKILL (the engine does it all).

        Example:
            >>> engine.stop("bot", "bot", 10)  # doctest: +SKIP
        """
        with self._removed_meanwhile(ref, name), self._translate(Op.STOP, name, extra=timeout):
            self.api.stop(ref, timeout=math.ceil(timeout))

    def kill(self, ref: str, name: str) -> None:
        """SIGKILL the container's process at once (``POST /containers/{id}/kill``).

        Example:
            >>> engine.kill("bot", "bot")  # doctest: +SKIP
        """
        with self._removed_meanwhile(ref, name), self._translate(Op.STOP, name):
            self.api.kill(ref, signal="SIGKILL")

    def _wait(self, name: str, timeout: float) -> object:
        # An exit the restart policy answers makes the state "restarting"
        # (still running) in the same step: this returns at every exit.
        # docker-py returns the engine's {"StatusCode": n, "Error": ...}.
        return self.api.wait(name, timeout=timeout, condition="not-running")

    def remove(self, ref: str, name: str, op: Op = Op.STOP) -> None:
        """Remove the container (and its anonymous volumes), killing it if it runs.

        Example:
            >>> engine.remove("bot", "bot")  # doctest: +SKIP
        """
        with self._removed_meanwhile(ref, name), self._translate(op, name):
            self.api.remove_container(ref, v=True, force=True)

    @contextmanager
    def _removed_meanwhile(self, ref: str, name: str) -> Iterator[None]:
        """A remove by someone else under way (HTTP 409): wait until it is done, then not found.

        What stop() wanted happened; waiting (at most the engine timeout)
        means the name is free once the caller returns.
        """
        import docker.errors

        try:
            yield
        except OpsError as err:
            if not removal_under_way(err.__cause__ or err):
                raise
            deadline = time.monotonic() + self.timeout
            with self._translate(Op.STOP, name, call="inspect_container"):
                while time.monotonic() < deadline:
                    try:
                        self.api.inspect_container(ref)
                    except docker.errors.NotFound:
                        break
                    time.sleep(0.05)
            raise SessionNotFoundError(name, RUNTIME) from err

    def exec(self, name: str, argv: list[str]) -> tuple[int, bytes, bytes, bytes]:
        """Run ``argv`` in the container (exec create, start, inspect); its code, output, stdout, stderr.

        Example:
            >>> engine.exec("bot", ["echo", "hi"])  # doctest: +SKIP
            (0, b'hi\\n', b'hi\\n', b'')
        """
        both, out, err = bytearray(), bytearray(), bytearray()
        with self._translate(Op.READ, name):
            created = self.api.exec_create(name, argv, stdout=True, stderr=True, tty=False)
            exec_id = text(obj(created, "the exec answer").get("Id"), "Id")
            # One (stdout, stderr) pair per frame, in the order the engine sent them.
            for chunk_out, chunk_err in self.api.exec_start(
                exec_id, tty=False, stream=True, demux=True
            ):
                both += (chunk_out or b"") + (chunk_err or b"")
                out += chunk_out or b""
                err += chunk_err or b""
            code = obj(self.api.exec_inspect(exec_id), "the exec inspect").get("ExitCode")
        return http.exit_code(code), bytes(both), bytes(out), bytes(err)

    def _attach_api(self, name: str, call: str) -> tuple[Any, AbstractContextManager[None]]:
        return self.api, self._translate(Op.ATTACH, name, call=call)

    # -- images (see kstlib.ops.images) ------------------------------------------------

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

    def pull(self, image: str, tracker: PullTracker, options: PullOptions) -> str | None:
        """Pull ``image`` (``POST /images/create``), feeding each item to ``tracker``; its id.

        This is ``APIClient.pull(stream=True, decode=True)`` with one change:
        the SDK sends that request with no timeout at all, so a registry that
        never answers would hang the call; here the engine may stay silent at
        most ``timeout`` seconds. Plain HTTP is the daemon's decision
        (loopback, and its ``insecure-registries``): ``insecure`` cannot
        change it. Credentials go in the ``X-Registry-Auth`` header.

        Example:
            >>> options = PullOptions(None, "none", insecure=True, timeout=60)
            >>> engine.pull("127.0.0.1:5000/kstlib/pulltest:1", tracker, options)  # doctest: +SKIP
            'sha256:eb09f023...'
        """
        import docker.auth
        import docker.errors

        from kstlib.ops.images._types import split_reference

        repository, tag = split_reference(image)
        login = options.auth_config
        headers = {"X-Registry-Auth": docker.auth.encode_header(dict(login))} if login else {}

        @contextmanager
        def items() -> Iterator[Iterable[Any]]:
            response = self.api._post(
                self.api._url("/images/create"),
                params={"fromImage": repository, "tag": tag},
                headers=headers,
                stream=True,
                timeout=options.timeout,
            )
            try:
                self.api._raise_for_status(response)
                yield self.api._stream_helper(response, decode=True)
            finally:
                response.close()

        self._pull_items(image, tracker, options, items, docker.errors.APIError)
        with self._translate(Op.START, options.session, image=image):
            found = obj(self.api.inspect_image(image), "the image inspect")
            image_id = text(found.get("Id"), "Id") or None
        tracker.finish()
        return image_id
