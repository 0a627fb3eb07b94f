"""Where a session is: :class:`Location`, the result of a :class:`Search`, the tmux servers.

Internal module: the public API is :mod:`kstlib.ops` (``kstlib.ops.__all__``).

The types and small rules :mod:`kstlib.ops.discovery` searches with (and
re-exports): a place's label, the tmux servers a look-up asks, the timeout of
a server nobody named, whether an engine error means "did not answer".

Example:
    >>> Location(BackendType.TMUX, socket_name="w", discovered=True).label
    'tmux (socket w)'
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kstlib.ops.enginetimeout import DEFAULT_TIMEOUT as ENGINE_TIMEOUT
from kstlib.ops.exceptions import (
    BackendNotFoundError,
    SessionAmbiguousError,
    SessionNotFoundError,
)
from kstlib.ops.models import BackendType

__all__ = [
    "ENGINE_TIMEOUT",
    "EngineUnavailableWarning",
    "Location",
    "Search",
    "did_not_answer",
    "not_found",
    "other_tmux_servers",
    "tmux_label",
    "tmux_servers",
    "tmux_timeout",
]


class EngineUnavailableWarning(UserWarning):
    """A backend (tmux, an engine) could not be searched or listed, so it was skipped.

    Example:
        >>> issubclass(EngineUnavailableWarning, UserWarning)
        True
    """


@dataclass(frozen=True)
class Location:
    """Where a session was found: a backend; the runtime and endpoint, or the tmux server.

    ``socket_name``/``socket_path`` name the tmux server (both ``None``: the
    default server).

    Example:
        >>> Location(BackendType.CONTAINER, "docker", "unix:///var/run/docker.sock").label
        'docker'
    """

    backend: BackendType
    runtime: str | None = None
    endpoint: str | None = None
    socket_name: str | None = None
    socket_path: str | None = None
    #: found on a tmux server the search was not told of (one of the user's others)
    discovered: bool = False
    #: the named engine (``ops.engines`` of the config file) this place is, if any
    engine: str | None = field(default=None, compare=False, repr=False)

    @property
    def label(self) -> str:
        """What an error lists: ``"tmux"``, ``"tmux (socket orion)"``, ``"docker"``, ``"podman"``.

        A tmux server the caller did not name is named in the label.

        Example:
            >>> Location(BackendType.TMUX, socket_name="w").label
            'tmux'
            >>> Location(BackendType.TMUX, socket_name="w", discovered=True).label
            'tmux (socket w)'
        """
        if self.backend is BackendType.TMUX and self.discovered:
            return tmux_label(self.socket_name, self.socket_path)
        return self.runtime or self.backend.value


@dataclass
class Search:
    """The result of a search: where the name was found, and what was searched.

    ``searched`` names each place that answered (``"tmux (default server)"``,
    ``"podman at unix:///run/podman/podman.sock"``); ``unreachable`` each one
    that did not, with why.

    Example:
        >>> Search().one("bot")
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionNotFoundError: Session 'bot' was not found (searched: nothing reachable); check the name with 'kstlib ops list'.
    """

    found: list[Location] = field(default_factory=list)
    searched: list[str] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)
    #: each place that did not answer, with its error (the places ``unreachable`` names)
    failed: list[tuple[Location, BackendNotFoundError]] = field(default_factory=list)

    def one(self, name: str, backend: str = "any") -> Location:
        """The one place ``name`` was found.

        Raises:
            SessionNotFoundError: found nowhere; the message names what was searched.
            SessionAmbiguousError: found in several places.

        Example:
            >>> Search([Location(BackendType.TMUX)], ["tmux (default server)"]).one("bot").label
            'tmux'
        """
        if len(self.found) > 1:
            raise SessionAmbiguousError(
                name,
                [loc.backend for loc in self.found],
                places=[loc.label for loc in self.found],
            )
        if not self.found:
            searched = self.searched or ["nothing reachable"]
            searched = [*searched, *(f"{u} (not reachable)" for u in self.unreachable)]
            raise not_found(name, backend, searched)
        return self.found[0]


def not_found(name: str, backend: str, searched: list[str]) -> SessionNotFoundError:
    """:class:`~kstlib.ops.exceptions.SessionNotFoundError` naming the places searched.

    Its ``searched`` attribute lists them; ``backend`` is ``"any"`` for a
    search over every backend, ``"container"`` for one over every engine.

    Example:
        >>> err = not_found("bot", "container", ["podman at unix:///p.sock"])
        >>> err.searched, err.backend
        (('podman at unix:///p.sock',), 'container')
        >>> print(err)
        Session 'bot' was not found (searched: podman at unix:///p.sock); check the name with 'kstlib ops list'.
    """
    return SessionNotFoundError(name, backend, searched=searched)


def tmux_label(socket_name: str | None, socket_path: str | None) -> str:
    """How a tmux server is named in messages.

    Example:
        >>> tmux_label("work", None), tmux_label(None, None)
        ('tmux (socket work)', 'tmux (default server)')
    """
    if socket_path:
        return f"tmux (socket {socket_path})"
    return f"tmux (socket {socket_name})" if socket_name else "tmux (default server)"


def tmux_servers(
    socket_name: str | None = None, socket_path: str | None = None, *, discover: bool = True
) -> list[tuple[str | None, str | None]]:
    """The tmux servers a look-up asks, as ``(socket_name, socket_path)`` pairs, in order.

    A named server (``socket_name`` or ``socket_path``) is the only one.
    Otherwise the default server, then, with ``discover``, every other live
    server of the user in tmux's socket folder
    (:func:`~kstlib.ops.tmux.sockets.user_sockets`): a session started with
    ``tmux -L orion`` is found without naming ``orion``.

    Example:
        >>> tmux_servers("work")
        [('work', None)]
        >>> tmux_servers(discover=False)
        [(None, None)]
    """
    if socket_name is not None or socket_path is not None:
        return [(socket_name, socket_path)]
    servers: list[tuple[str | None, str | None]] = [(None, None)]
    if discover:
        from kstlib.ops.tmux.sockets import user_sockets

        servers.extend((name, None) for name in user_sockets())
    return servers


def other_tmux_servers() -> list[str]:
    """The names (``-L``) of the user's other live tmux servers, found in tmux's socket folder.

    Example:
        >>> isinstance(other_tmux_servers(), list)
        True
    """
    from kstlib.ops.tmux.sockets import user_sockets

    return user_sockets()


def tmux_timeout(discovered: bool) -> float | None:
    """Seconds one call to a tmux server may take: short for one nobody named (``None``: default).

    Example:
        >>> tmux_timeout(True), tmux_timeout(False)
        (2.0, None)
    """
    from kstlib.ops.tmux.sockets import DISCOVERY_TIMEOUT

    return DISCOVERY_TIMEOUT if discovered else None


def did_not_answer(err: BaseException) -> bool:
    """Whether an engine error means "accepts connections but did not answer" (not "absent").

    Nobody can tell whether a session runs on such an engine, so a search must
    not skip it as it skips an engine that is not there.

    Example:
        >>> from kstlib.ops.exceptions import ContainerRuntimeNotFoundError
        >>> did_not_answer(ContainerRuntimeNotFoundError(endpoints=["unix:///x.sock"]))
        False
    """
    from kstlib.ops.engines.errors import did_not_answer as unanswered

    return unanswered(err)
