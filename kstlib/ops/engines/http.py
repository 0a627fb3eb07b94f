"""What the HTTP engine adapters share: Docker and Podman speak the same REST shapes.

:class:`HttpEngine` holds, once, what :class:`~kstlib.ops.engines.docker.DockerEngine`
and :class:`~kstlib.ops.engines.podman.PodmanEngine` do alike: the per-call
translation (:class:`Translator` over the SDK module's table), log reads and
followed logs (``GET /containers/{ref}/logs``), the wait-result and exit-code
parsing, the attach socket and terminal resize (Docker's API, also Podman's
compatible one), the common part of an inspect or list payload and the end of
a pull. Each SDK module keeps its own calls, its quirks and the head rows of
its translation table; a new adapter is a subclass in a module of its own.

Example:
    >>> exit_code({"StatusCode": 3, "Error": None}), exit_code(0), exit_code(None)
    (3, 0, -1)
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any, ClassVar

from kstlib.ops.engines import ssh
from kstlib.ops.engines.adapter import DETACH_KEYS, AttachHandle, ContainerInfo
from kstlib.ops.engines.deadline import bounded
from kstlib.ops.engines.errors import (
    did_not_answer,
    on_connection_error,
    on_image_missing,
    on_not_found,
    on_permission,
    on_timeout,
    on_unreachable,
)
from kstlib.ops.engines.payload import top_rows
from kstlib.ops.engines.streams import (
    LogQuery,
    LogStream,
    split_entries,
)
from kstlib.ops.exceptions import (
    ContainerRuntimeNotFoundError,
    SessionAttachError,
    SessionNotFoundError,
)
from kstlib.ops.translate import CallContext, Handler, Op, Table, translating

if TYPE_CHECKING:
    from kstlib.ops.engines.adapter import PullOptions
    from kstlib.ops.engines.pull import PullTracker

__all__ = [
    "HttpBase",
    "HttpEngine",
    "Translator",
    "docker_api",
    "exit_code",
    "raw_socket",
    "sdk_rows",
    "transport_rows",
    "uses_proxy",
]

#: Query of an attach: every stream, and the detach keys the engine knows.
_ATTACH_PARAMS = {"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1, "detachKeys": DETACH_KEYS}


class Translator:
    """The ``translate(op, name, endpoint, timeout)`` context manager of one SDK module.

    Example:
        >>> from kstlib.ops.engines.errors import on_other
        >>> translate = Translator("docker", lambda: (((ValueError,), on_other),))
        >>> with translate(Op.STOP, "bot", "unix:///x", 5):
        ...     raise ValueError("boom")
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionStopError: Could not stop session 'bot' on the docker backend: ValueError: boom
    """

    def __init__(self, runtime: str, table: Callable[[], Table]) -> None:
        self.runtime = runtime
        self.table = table

    def __call__(
        self,
        op: Op,
        name: str | None,
        endpoint: str,
        timeout: float,
        *,
        image: str | None = None,
        connecting: bool = False,
        call: str | None = None,
    ) -> AbstractContextManager[None]:
        """Translate every error of the SDK raised inside into the OpsError tree.

        ``call`` names the engine call for the DEBUG log (with its duration).
        """
        shown = ssh.shown_endpoint(endpoint)  # an ssh:// one without kstlib's query
        ctx = CallContext(
            op, name, self.runtime, shown, timeout, image=image, connecting=connecting
        )
        return translating(self.table, ctx, call)


def sdk_rows(errors: Any, on_api_error: Handler) -> Table:
    """The head of a docker-py-shaped SDK's table (``docker.errors``, ``podman.errors``).

    ==========================================================  =====================================
    raised by the SDK (``errors`` module)                       raised by kstlib
    ==========================================================  =====================================
    ``ImageNotFound``                                           op error naming the image
    ``NotFound`` (404)                                          ``SessionNotFoundError``
    ``APIError`` (any other HTTP error)                         what ``on_api_error`` says
    transport errors (refused, timed out, no socket, denied)    see :func:`transport_rows`
    ssh errors once connected (paramiko, e.g. sshd gone)        ``ContainerRuntimeNotFoundError``
    ==========================================================  =====================================

    Each SDK module adds its own last rows (its base exception, ``OSError``...).

    Example:
        >>> import docker.errors
        >>> from kstlib.ops.engines.errors import on_api_error
        >>> [h.__name__ for _, h in sdk_rows(docker.errors, on_api_error)][:3]
        ['on_image_missing', 'on_not_found', 'on_api_error']
    """
    return (
        ((errors.ImageNotFound,), on_image_missing),
        ((errors.NotFound,), on_not_found),
        ((errors.APIError,), on_api_error),
        *transport_rows(),
        *ssh.table_rows(),
    )


def transport_rows() -> Table:
    """The rows every HTTP engine's table shares, after its own head rows: transport errors.

    ========================================================  ====================================
    raised under the SDK                                      raised by kstlib
    ========================================================  ====================================
    ``requests`` ``ConnectTimeout``                           ``ContainerRuntimeNotFoundError``
    ``requests`` ``Timeout``, ``urllib3`` ``TimeoutError``    op error "timed out after N s"
    ``requests``/builtin ``ConnectionError``, ``urllib3``,
    ``FileNotFoundError``                                     ``ContainerRuntimeNotFoundError``
    (around urllib3's ``ReadTimeoutError``: a streamed read)  op error "timed out after N s"
    ``PermissionError`` (the socket)                          ``ContainerRuntimeNotFoundError``
    ========================================================  ====================================

    Imports ``requests`` on first use (the tables are built on first use too).

    Example:
        >>> [h.__name__ for _, h in transport_rows()]
        ['on_unreachable', 'on_timeout', 'on_connection_error', 'on_permission']
    """
    import requests.exceptions
    import urllib3.exceptions

    return (
        # ConnectTimeout is also a Timeout: the engine never answered at all.
        (
            (requests.exceptions.ConnectTimeout, urllib3.exceptions.ConnectTimeoutError),
            on_unreachable,
        ),
        ((requests.exceptions.Timeout, urllib3.exceptions.TimeoutError, TimeoutError), on_timeout),
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
    )


def uses_proxy(endpoint: str) -> bool:
    """Whether ``endpoint`` may go through an HTTP proxy (a unix or ssh socket never does).

    ``requests`` re-reads proxy settings from the environment on every
    request unless told not to (``trust_env = False``).

    Example:
        >>> uses_proxy("tcp://10.0.0.5:2375"), uses_proxy("unix:///run/podman/podman.sock")
        (True, False)
    """
    return endpoint.startswith(("tcp://", "http://", "https://"))


def docker_api(endpoint: str, timeout: float, translate: Translator) -> Any:
    """A ``docker.APIClient`` for ``endpoint``; its API version request doubles as a ping.

    The one way every Docker API adapter (Docker, Swarm) connects. ``unix://``
    and ``tcp://`` go straight to the SDK; ``ssh://`` logs in first with the
    host key checked (:func:`kstlib.ops.engines.ssh.login`) and talks to
    ``docker system dial-stdio`` over that login, never through the SDK's own
    ssh set-up (which would take an unknown host key with a warning).
    ``translate`` is the calling adapter's translation context manager; its
    runtime names the engine in errors.

    Example:
        >>> from kstlib.ops.engines.docker import translate
        >>> docker_api("unix:///nonexistent.sock", 1, translate)
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.ContainerRuntimeNotFoundError: No docker engine API answered (tried: unix:///nonexistent.sock). ...
    """
    import docker

    if ssh.is_ssh(endpoint):
        return _docker_api_ssh(endpoint, timeout, translate)
    import docker.constants
    import docker.errors
    import docker.utils

    with translate(Op.READ, None, endpoint, timeout, connecting=True, call="connect"):
        # The SDK's own "auto" asks the version in the constructor, where no
        # deadline can reach it: ask it here, bounded as every call.
        api: Any = docker.APIClient(
            base_url=endpoint,
            version=docker.constants.MINIMUM_DOCKER_API_VERSION,
            timeout=timeout,  # type: ignore[arg-type]  # requests takes floats
        )
        if not uses_proxy(endpoint):
            api.trust_env = False
        with bounded(api, timeout):
            version = api._retrieve_server_version()
        if not isinstance(version, str) or docker.utils.version_lt(
            version, docker.constants.MINIMUM_DOCKER_API_VERSION
        ):
            raise docker.errors.DockerException(
                f"Error while fetching server API version: unusable version {version!r:.40}"
            )
        api._version = version
    return api


def _docker_api_ssh(endpoint: str, timeout: float, translate: Translator) -> Any:
    """Log in over ssh (host key checked), then ask the version over that login."""
    runtime = translate.runtime
    target = ssh.parse_target(endpoint)
    client = ssh.login(target, timeout, runtime)
    try:
        with translate(Op.READ, None, endpoint, timeout, connecting=True, call="connect"):
            return ssh.docker_api(target, timeout, client, runtime)
    except ContainerRuntimeNotFoundError as err:
        client.close()
        if did_not_answer(err):
            raise
        # The login worked: what failed is the engine behind it.
        raise ssh.problem(
            target,
            "no-engine",
            "the ssh login works, but no Docker engine answered there "
            "('docker system dial-stdio' on that host needs the docker CLI and a running "
            "dockerd)",
            runtime,
        ) from err
    except BaseException:
        client.close()
        raise


def exit_code(result: object) -> int:
    """The exit code in a wait or exec result (an int, or ``{"StatusCode": n}``); ``-1`` if none.

    Example:
        >>> exit_code({"StatusCode": 137})
        137
    """
    code = result.get("StatusCode") if isinstance(result, Mapping) else result
    return int(code) if isinstance(code, int) else -1


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


@contextmanager
def _bounded_call(
    translation: AbstractContextManager[None], session: Any, seconds: float
) -> Iterator[None]:
    """The call translated, and bounded in all (:func:`~kstlib.ops.engines.deadline.bounded`)."""
    with translation, bounded(session, seconds):
        yield


class HttpBase:
    """What every adapter over a Docker-shaped HTTP API shares: translation and log reads.

    A subclass sets :attr:`runtime` and :attr:`translate` (its module's
    :class:`Translator`), and provides :meth:`_logs_request` and
    :meth:`_raise_for_status`. The container
    adapters build on :class:`HttpEngine`; the swarm's service adapter on
    this base alone (a service has no inspect, wait or attach of a container).

    Example:
        >>> from kstlib.ops.engines.swarm import SwarmEngine
        >>> issubclass(SwarmEngine, HttpBase), issubclass(SwarmEngine, HttpEngine)
        (True, False)
    """

    runtime: str
    translate: ClassVar[Translator]

    def __init__(self, endpoint: str, timeout: float) -> None:
        self.endpoint = endpoint
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.endpoint!r})"

    def _translate(
        self,
        op: Op,
        name: str | None,
        *,
        image: str | None = None,
        extra: float = 0,
        call: str | None = None,
    ) -> AbstractContextManager[None]:
        # The calling method names the engine call in the DEBUG log.
        call = call or sys._getframe(1).f_code.co_name
        seconds = self.timeout + extra
        translation = self.translate(op, name, self.endpoint, seconds, image=image, call=call)
        return _bounded_call(translation, self._session(), seconds)

    def _session(self) -> Any:
        """The SDK client's ``requests.Session`` (its calls get a total deadline).

        Docker's ``api``, or podman-py's ``client.api``.
        """
        return getattr(self, "api", None) or getattr(getattr(self, "client", None), "api", None)

    # -- the SDK calls a subclass provides ------------------------------------------------

    def _logs_request(self, ref: str, params: dict[str, str], **options: Any) -> Any:
        """``GET /containers/{ref}/logs`` through the SDK's session; the raw response."""
        raise NotImplementedError

    def _raise_for_status(self, response: Any) -> None:
        """Raise the SDK's error for an HTTP error answer."""
        raise NotImplementedError

    # -- shared operations ----------------------------------------------------------------

    def _log_entries(self, ref: str, params: dict[str, str]) -> list[bytes]:
        response = self._logs_request(ref, params)
        self._raise_for_status(response)
        return split_entries(bytes(response.content))

    def logs(self, name: str, query: LogQuery, *, keep: int | None = None) -> list[bytes]:
        """The container's log entries ``query`` asks for, in one call.

        Example:
            >>> engine.logs("bot", LogQuery(10))  # doctest: +SKIP
            [b'ready\\r\\n']
        """
        with self._translate(Op.READ, name):
            return self._read_logs(name, query, keep)

    def _read_logs(self, name: str, query: LogQuery, keep: int | None) -> list[bytes]:
        """The entries ``query`` asks for; the caller uses only the last ``keep`` of them."""
        return self._log_entries(name, query.params())

    def follow_logs(
        self, ref: str, name: str, query: LogQuery, *, timeout: float | None
    ) -> LogStream:
        """Open the container's followed log; it ends when the container stops.

        The connection is not reused afterwards (``Connection: close``): a
        stream closed early leaves nothing half-read in the pool. (Podman
        answers with the first entry, so there this waits up to ``timeout``
        for output; ``None``: as long as it takes.)

        Example:
            >>> stream = engine.follow_logs("3f2a...", "bot", LogQuery(0), timeout=None)  # doctest: +SKIP
            >>> stream.read(5.0)  # doctest: +SKIP
            [b'tick\\r\\n']
        """
        params = query.params(follow=True)

        def translate_stream(call: str | None = None) -> AbstractContextManager[None]:
            return self.translate(
                Op.WAIT,
                name,
                self.endpoint,
                self.timeout if timeout is None else timeout,
                call=call,
            )

        with translate_stream("follow_logs"):
            response = self._logs_request(
                ref,
                params,
                stream=True,
                timeout=(self.timeout, timeout),
                # Over ssh a closed connection closes its channel, and the answer with it.
                headers={} if self.endpoint.startswith("ssh://") else {"Connection": "close"},
            )
            try:
                self._raise_for_status(response)
            except BaseException:
                response.close()
                raise
        return LogStream(response, translate_stream)


class HttpEngine(HttpBase):
    """The base of a container adapter over an HTTP engine API (Docker's, or Podman's).

    Beyond :class:`HttpBase`, a subclass sets :attr:`follow_needs_check` and
    provides the container calls: :meth:`inspect`, :meth:`_wait`, :meth:`_attach_api`.

    Example:
        >>> from kstlib.ops.engines.docker import DockerEngine
        >>> issubclass(DockerEngine, HttpEngine)
        True
    """

    #: Whether a followed log may miss lines once the container stopped (re-read them).
    follow_needs_check: bool = False

    # -- the SDK calls a subclass provides ------------------------------------------------

    def inspect(self, name: str, op: Op = Op.READ) -> ContainerInfo:
        """One inspect call (see :class:`~kstlib.ops.engines.adapter.EngineAdapter`)."""
        raise NotImplementedError

    def _wait(self, name: str, timeout: float) -> object:
        """The SDK's wait for the container to stop; its raw result."""
        raise NotImplementedError

    def _attach_api(self, name: str, call: str) -> tuple[Any, AbstractContextManager[None]]:
        """A docker SDK ``APIClient`` for attach and resize, and the translation around its calls."""
        raise NotImplementedError

    # -- shared operations ----------------------------------------------------------------

    def exists(self, name: str) -> bool:
        """Whether a container named exactly ``name`` exists: one inspect.

        Example:
            >>> engine.exists("bot")  # doctest: +SKIP
            True
        """
        try:
            return self.inspect(name).name == name
        except SessionNotFoundError:
            return False

    def wait(self, name: str, timeout: float) -> int:
        """Wait up to ``timeout`` s for the container to stop; return its exit code.

        Example:
            >>> engine.wait("bot", 5)  # doctest: +SKIP
            0
        """
        with self.translate(Op.WAIT, name, self.endpoint, timeout, call="wait"):
            result = self._wait(name, timeout)
        return exit_code(result)

    def attach_socket(self, name: str) -> AttachHandle:
        """A socket attached to the container's terminal; the engine detaches on Ctrl-P Ctrl-Q.

        Example:
            >>> engine.attach_socket("bot").sock  # doctest: +SKIP
            <socket.socket ...>
        """
        api, translation = self._attach_api(name, "attach_socket")
        with translation:
            sock = api.attach_socket(name, params=dict(_ATTACH_PARAMS))
            try:
                return AttachHandle(raw_socket(sock), keepalive=sock)
            except TypeError as err:
                raise SessionAttachError(name, self.runtime, str(err)) from err

    def resize(self, name: str, height: int, width: int) -> None:
        """Resize the container's terminal to ``height`` x ``width``.

        Example:
            >>> engine.resize("bot", 50, 200)  # doctest: +SKIP
        """
        api, translation = self._attach_api(name, "resize")
        with translation:
            api.resize(name, height=height, width=width)

    # -- the end of a pull ------------------------------------------------------------------

    @contextmanager
    def _pulling(
        self, tracker: PullTracker, ctx: CallContext, *, credentials: str, session: str | None
    ) -> Iterator[None]:
        """Translate a pull's SDK errors (see :mod:`kstlib.ops.engines.pull`); a callback's own pass."""
        from kstlib.ops.engines.pull import translate_pull_error

        try:
            yield
        except Exception as err:
            if err is tracker.callback_error:
                raise
            raise translate_pull_error(
                err, self.translate.table(), ctx, credentials=credentials, session=session
            ) from err

    def _pull_items(
        self,
        image: str,
        tracker: PullTracker,
        options: PullOptions,
        items: Callable[[], AbstractContextManager[Iterable[Any]]],
        api_error: Callable[..., Exception],
    ) -> None:
        """Feed the engine's pull stream (opened by ``items``) to ``tracker``, translated.

        Stops at the first ``error`` item and raises the failure it reports.
        """
        ctx = CallContext(
            Op.START, options.session, self.runtime, self.endpoint, options.timeout, image=image
        )
        pulling = self._pulling(
            tracker, ctx, credentials=options.credentials, session=options.session
        )
        with pulling, items() as stream:
            for item in stream:
                tracker.feed(item)
                if tracker.error is not None:
                    break
        self._check_pull(tracker, ctx, api_error, credentials=options.credentials)

    def _check_pull(
        self,
        tracker: PullTracker,
        ctx: CallContext,
        api_error: Callable[..., Exception],
        *,
        credentials: str,
    ) -> None:
        """Raise the pull failure the engine reported in its stream (an ``error`` item), if any."""
        from kstlib.ops.images._types import pull_failure

        if tracker.error is not None:
            words = tracker.error
            raise pull_failure(
                ctx.image or "",
                self.runtime,
                words,
                session=ctx.name,
                credentials=credentials,
                timeout=ctx.timeout,
            ) from api_error(words, explanation=words)

    def processes(self, ref: str) -> list[tuple[int, int, str]]:
        """The container's processes as ``(pid, ppid, command line)`` (one ``top`` call).

        Example:
            >>> engine.processes("bot")  # doctest: +SKIP
            [(4242, 4220, '/sbin/docker-init -- sleep 30'), (4260, 4242, 'sleep 30')]
        """
        with self._translate(Op.START, ref):
            return top_rows(self._top(ref))

    def _top(self, ref: str) -> Any:
        """The SDK's ``top`` answer with pid, ppid and command line columns."""
        raise NotImplementedError
