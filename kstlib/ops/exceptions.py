"""The exception hierarchy of :mod:`kstlib.ops`.

Every error a public call of :mod:`kstlib.ops` raises is an :class:`OpsError`;
errors of the underlying SDKs (libtmux, docker, podman, requests) are translated
at the adapter boundary and kept as ``__cause__``.

.. code-block:: text

    KstlibError
    └── OpsError
        ├── SessionConfigError                (also a ValueError)
        ├── StateDirError(path, reason)       (also a PermissionError)
        ├── BackendNotFoundError              (also a FileNotFoundError)
        │   ├── TmuxNotFoundError
        │   └── ContainerRuntimeNotFoundError
        └── SessionError
            ├── SessionExistsError(name, backend)
            ├── SessionNotFoundError(name, backend)
            ├── SessionStartError(name, backend, reason)
            │   └── ImagePullError(image, backend, detail, kind=..., registry=..., session=...)
            ├── SessionAttachError(name, backend, reason)
            ├── SessionStopError(name, backend, reason)
            ├── SessionAmbiguousError(name, backends)
            └── SessionTimeoutError(name, backend, reason)

Every exception survives a :mod:`pickle` round trip with its attributes, so
it can cross process boundaries (multiprocessing, pytest-xdist).

Example:
    >>> from kstlib.ops.exceptions import SessionNotFoundError, OpsError
    >>> try:
    ...     raise SessionNotFoundError("bot", "tmux")
    ... except OpsError as exc:
    ...     print(exc.name, exc.backend)
    bot tmux
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum
from typing import Any

from kstlib.exceptions import KstlibError

__all__ = [
    "BackendNotFoundError",
    "ContainerRuntimeNotFoundError",
    "ImagePullError",
    "OpsError",
    "SessionAmbiguousError",
    "SessionAttachError",
    "SessionConfigError",
    "SessionError",
    "SessionExistsError",
    "SessionNotFoundError",
    "SessionStartError",
    "SessionStopError",
    "SessionTimeoutError",
    "StateDirError",
    "TmuxNotFoundError",
]

TMUX_INSTALL_HINT = (
    "Install tmux to use the tmux backend: macOS: brew install tmux; "
    "Ubuntu/Debian: apt install tmux; Windows: use WSL2 with tmux installed."
)
CONTAINER_INSTALL_HINT = (
    "Install podman or docker to use the container backend: "
    "Podman: https://podman.io/getting-started/installation; "
    "Docker: https://docs.docker.com/get-docker/."
)
CONTAINER_START_HINT = (
    "Start an engine (Docker: 'sudo systemctl start docker' or 'dockerd'; "
    "Podman: 'podman system service --time=0 unix:///run/podman/podman.sock'), "
    "or point kstlib at one with base_url= / DOCKER_HOST / CONTAINER_HOST."
)


def _backend_name(backend: object) -> str:
    return str(backend.value) if isinstance(backend, Enum) else str(backend)


class OpsError(KstlibError):
    """Base class of every error of the ops (session management) subsystem.

    Example:
        >>> issubclass(SessionNotFoundError, OpsError)
        True
    """

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message

    def _pickle_args(self) -> tuple[Any, ...]:
        return (self.message,)

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuild through the real constructor, then restore every attribute.
        return (type(self), self._pickle_args(), self.__dict__.copy())

    def __setstate__(self, state: dict[str, Any] | None) -> None:
        self.__dict__.update(state or {})

    def __str__(self) -> str:
        return self.message


class SessionConfigError(OpsError, ValueError):
    """Invalid input or configuration, detected before anything is created.

    Attributes:
        field: the option or config key that is wrong (``None`` if not one).
        problem: what is wrong, without the ``field: `` (or ``file:line: key: ``)
            prefix of the message, so callers re-word it without parsing the
            message. Defaults to the message minus a leading ``"{field}: "``.

    Example:
        >>> err = SessionConfigError("name: must start with a letter", field="name")
        >>> err.field, err.problem, isinstance(err, ValueError)
        ('name', 'must start with a letter', True)
    """

    def __init__(self, message: str, field: str | None = None, problem: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        if problem is None:
            prefix = f"{field}: " if field else None
            problem = message[len(prefix) :] if prefix and message.startswith(prefix) else message
        self.problem = problem

    def _pickle_args(self) -> tuple[Any, ...]:
        return (self.message, self.field, self.problem)


class StateDirError(OpsError, PermissionError):
    """kstlib's private state folder (logs, records) is unsafe to use.

    Raised when a folder of the state tree is not owned by the current user,
    is writable by others, or is not a real folder (a symlink, a file): using
    it would let another user read or redirect session output.

    Attributes:
        path: the offending path.
        reason: what is wrong with it.

    Example:
        >>> err = StateDirError("/tmp/s/kstlib", "is owned by uid 0, not by you")
        >>> print(err)
        kstlib's state folder /tmp/s/kstlib is owned by uid 0, not by you; refusing to use it. Remove it or set XDG_STATE_HOME to a folder of your own.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(
            f"kstlib's state folder {path} {reason}; refusing to use it. "
            "Remove it or set XDG_STATE_HOME to a folder of your own."
        )
        self.path = path
        self.reason = reason

    def _pickle_args(self) -> tuple[Any, ...]:
        return (self.path, self.reason)


class BackendNotFoundError(OpsError, FileNotFoundError):
    """Backend (tmux, podman, docker) not found or not reachable.

    Raised when the required backend is not installed or not accessible.
    It is also a :class:`FileNotFoundError`.

    Example:
        >>> isinstance(TmuxNotFoundError(), FileNotFoundError)
        True
    """

    default_message = "The session backend was not found."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)

    def __str__(self) -> str:
        return self.message


class TmuxNotFoundError(BackendNotFoundError):
    """tmux binary not found in PATH (or too old to be used).

    Install tmux to use the tmux backend: macOS: ``brew install tmux``;
    Ubuntu/Debian: ``apt install tmux``; Windows: use WSL2 with tmux installed.

    Example:
        >>> "apt install tmux" in str(TmuxNotFoundError())
        True
    """

    default_message = f"tmux was not found on PATH. {TMUX_INSTALL_HINT}"


class ContainerRuntimeNotFoundError(BackendNotFoundError):
    """No container engine (podman or docker) is installed or reachable.

    Install podman or docker to use the container backend, or start its API
    service. The message lists the endpoints that were tried.

    Attributes:
        endpoints: the engine API endpoints that were tried.

    Example:
        >>> err = ContainerRuntimeNotFoundError(endpoints=["unix:///var/run/docker.sock"])
        >>> err.endpoints
        ('unix:///var/run/docker.sock',)
    """

    default_message = f"No container engine was found. {CONTAINER_INSTALL_HINT}"

    def __init__(
        self,
        message: str | None = None,
        endpoints: Iterable[str] = (),
        *,
        ssh_problem: str | None = None,
    ) -> None:
        self.endpoints = tuple(endpoints)
        #: What failed on the way to an ssh:// engine (``kstlib.ops.engines.ssh.PROBLEMS``).
        self.ssh_problem = ssh_problem
        if message is None and self.endpoints:
            message = (
                "No container engine API answered (tried: "
                f"{', '.join(self.endpoints)}). {CONTAINER_START_HINT} {CONTAINER_INSTALL_HINT}"
            )
        super().__init__(message)

    def _pickle_args(self) -> tuple[Any, ...]:
        return (self.message, self.endpoints)


class SessionError(OpsError):
    """Base exception for session-related errors.

    All session operation exceptions inherit from this class.

    Example:
        >>> issubclass(SessionExistsError, SessionError)
        True
    """


class _NamedSessionError(SessionError):
    """A session error about one named session on one backend."""

    def __init__(self, name: str, backend: object, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.backend = _backend_name(backend)

    def _pickle_args(self) -> tuple[Any, ...]:
        return (self.name, self.backend)


class SessionExistsError(_NamedSessionError):
    """Session or container with this name already exists (and is running).

    Example:
        >>> print(SessionExistsError("bot", "tmux"))
        Session 'bot' already exists on the tmux backend; stop it first or choose another name.
    """

    def __init__(self, name: str, backend: object) -> None:
        super().__init__(
            name,
            backend,
            f"Session {name!r} already exists on the {_backend_name(backend)} backend; "
            "stop it first or choose another name.",
        )


class SessionNotFoundError(_NamedSessionError):
    """Session or container not found.

    Example:
        >>> err = SessionNotFoundError("bot", "docker")
        >>> err.name, err.backend, err.searched
        ('bot', 'docker', None)
        >>> print(SessionNotFoundError("bot", "any", searched=["tmux (default server)"]))
        Session 'bot' was not found (searched: tmux (default server)); check the name with 'kstlib ops list'.
        >>> print(SessionNotFoundError("bto", "tmux", suggestions=["bot"]))
        Session 'bto' was not found on the tmux backend; check the name with 'kstlib ops list'. Did you mean 'bot'?
    """

    def __init__(
        self,
        name: str,
        backend: object,
        *,
        searched: Iterable[str] | None = None,
        suggestions: Iterable[str] = (),
    ) -> None:
        #: The places a search asked (``None``: one backend was asked).
        self.searched = None if searched is None else tuple(searched)
        #: Names of existing sessions close to ``name`` (the message asks "Did you mean ...?").
        self.suggestions = tuple(suggestions)
        where = (
            f"on the {_backend_name(backend)} backend"
            if self.searched is None
            else f"(searched: {', '.join(self.searched)})"
        )
        message = f"Session {name!r} was not found {where}; check the name with 'kstlib ops list'."
        if self.suggestions:
            message += f" Did you mean {' or '.join(repr(s) for s in self.suggestions)}?"
        super().__init__(name, backend, message)


class _ReasonSessionError(_NamedSessionError):
    verb = "handle"

    def __init__(self, name: str, backend: object, reason: str) -> None:
        self.reason = reason
        super().__init__(
            name,
            backend,
            f"Could not {self.verb} session {name!r} on the {_backend_name(backend)} "
            f"backend: {reason}",
        )

    def _pickle_args(self) -> tuple[Any, ...]:
        return (self.name, self.backend, self.reason)


class SessionStartError(_ReasonSessionError):
    """Failed to start session or container.

    Example:
        >>> SessionStartError("bot", "podman", "image not known").reason
        'image not known'
        >>> SessionStartError("bot", "podman", "no image", missing_image="app:1").missing_image
        'app:1'
    """

    verb = "start"

    def __init__(
        self, name: str, backend: object, reason: str, *, missing_image: str | None = None
    ) -> None:
        #: The image the engine lacks, when that is why (``""``: unnamed); else ``None``.
        self.missing_image = missing_image
        super().__init__(name, backend, reason)


class SessionAttachError(_ReasonSessionError):
    """Failed to attach to session or container.

    This can happen if the session is not running or if the terminal is not
    interactive.

    Example:
        >>> print(SessionAttachError("bot", "tmux", "stdin is not a terminal"))
        Could not attach to session 'bot' on the tmux backend: stdin is not a terminal
    """

    verb = "attach to"


class SessionStopError(_ReasonSessionError):
    """Failed to stop session or container.

    Example:
        >>> SessionStopError("bot", "docker", "timed out").backend
        'docker'
    """

    verb = "stop"


class SessionTimeoutError(_ReasonSessionError):
    """A wait on a session (or an engine call) did not finish in time.

    Example:
        >>> isinstance(SessionTimeoutError("bot", "tmux", "timed out after 5s"), SessionError)
        True
    """

    verb = "wait for"


class SessionAmbiguousError(SessionError):
    """Session exists in multiple backends.

    Raised when auto-detection finds a session in more than one backend,
    requiring an explicit backend. Use --backend to disambiguate.

    ``backends`` holds the backend types, as upstream kstlib has it
    (``'tmux'``, ``'container'``, ``'swarm'``); ``places`` says where each one
    is (``'tmux'``, ``'docker'``, ``'engine edge'``...), one per entry of
    ``backends``. Without ``places=``, the places are the backends.

    Example:
        >>> err = SessionAmbiguousError("bot", ["tmux", "container"], places=["tmux", "podman"])
        >>> err.backends, err.places
        (['tmux', 'container'], ['tmux', 'podman'])
    """

    def __init__(
        self, name: str, backends: Iterable[object], *, places: Iterable[object] | None = None
    ) -> None:
        self.name = name
        self.backends = [_backend_name(b) for b in backends]
        self.places = list(self.backends) if places is None else [_backend_name(p) for p in places]
        super().__init__(
            f"Session {name!r} exists on several backends ({', '.join(self.places)}); "
            "use --backend to disambiguate (backend= in Python)."
        )

    def _pickle_args(self) -> tuple[Any, ...]:
        return (self.name, self.backends)


class ImagePullError(SessionStartError):
    """An image could not be pulled from its registry (before a start, or by itself).

    ``kind`` tells the cause apart: ``not_found`` (no such repository or tag),
    ``unauthorized`` (no or wrong credentials), ``unreachable`` (nothing
    answers at the registry's address), ``tls`` (the TLS connection was
    refused, e.g. a plain HTTP registry not listed as insecure), ``timeout``,
    or ``other``. ``name`` is the session being started, else the image.
    The SDK's exception, when there is one, is the ``__cause__``.

    Attributes:
        image: the image reference.
        detail: what went wrong, one sentence (``reason`` adds the image).
        registry: the registry host (``host[:port]``).
        kind: the cause, as above.
        session: the session whose start needed the image (``None``: a plain pull).

    Example:
        >>> err = ImagePullError("127.0.0.1:5000/app:1", "docker", "the registry ... is unreachable",
        ...                      kind="unreachable", registry="127.0.0.1:5000", session="web")
        >>> err.kind, err.name, isinstance(err, SessionStartError)
        ('unreachable', 'web', True)
        >>> print(ImagePullError("app:1", "podman", "no such tag", kind="not_found"))
        Could not pull image 'app:1' on podman: no such tag.
    """

    def __init__(
        self,
        image: str,
        backend: object,
        detail: str,
        *,
        kind: str = "other",
        registry: str | None = None,
        session: str | None = None,
    ) -> None:
        detail = detail.rstrip(".")
        super().__init__(session or image, backend, f"could not pull image {image!r}: {detail}")
        self.image = image
        self.detail = detail
        self.kind = kind
        self.registry = registry
        self.session = session
        if session is None:
            self.message = f"Could not pull image {image!r} on {self.backend}: {detail}."
        else:
            self.message = (
                f"Could not start session {session!r} on the {self.backend} backend: {self.reason}."
            )
        self.args = (self.message,)

    def _pickle_args(self) -> tuple[Any, ...]:
        # kind, registry, session and the message come back with the state.
        return (self.image, self.backend, self.detail)

    def __setstate__(self, state: dict[str, Any] | None) -> None:
        super().__setstate__(state)
        self.args = (self.message,)
