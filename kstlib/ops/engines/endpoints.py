"""Engine endpoints and the client cache: the one module that imports the SDK adapters.

:func:`connect` returns one cached adapter per ``(runtime, endpoint, timeout)``
for the whole process, created on first use after the engine answered a ping;
:func:`forget` drops one whose engine stopped answering. The cache is reset in
a forked child.

Example:
    >>> default_endpoints("docker", env={})
    ['unix:///var/run/docker.sock']
    >>> default_endpoints("podman", env={"CONTAINER_HOST": "tcp://10.0.0.5:8888"})
    ['tcp://10.0.0.5:8888']
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

from kstlib.ops.engines.adapter import DEFAULT_TIMEOUT, EngineAdapter
from kstlib.ops.engines.errors import no_engine_answered, unreachable
from kstlib.ops.exceptions import ContainerRuntimeNotFoundError
from kstlib.ops.validators.urls import refuse_password

if TYPE_CHECKING:
    from kstlib.ops.engines.swarm import SwarmEngine

#: The order in which ``runtime=None`` tries the engines.
AUTO_ORDER = ("podman", "docker")


def default_endpoints(runtime: str, env: Mapping[str, str] | None = None) -> list[str]:
    """The endpoints tried for ``runtime`` when no ``base_url`` is given, in order.

    Docker: ``DOCKER_HOST``, else ``unix:///var/run/docker.sock``. Podman:
    ``CONTAINER_HOST``, else the user socket
    ``$XDG_RUNTIME_DIR/podman/podman.sock``, then the root socket
    ``/run/podman/podman.sock``.

    Example:
        >>> default_endpoints("podman", env={"XDG_RUNTIME_DIR": "/run/user/1000"})
        ['unix:///run/user/1000/podman/podman.sock', 'unix:///run/podman/podman.sock']
    """
    env = os.environ if env is None else env
    if runtime in ("docker", "swarm"):  # a swarm manager is a Docker engine
        return [env.get("DOCKER_HOST") or "unix:///var/run/docker.sock"]
    if env.get("CONTAINER_HOST"):
        return [env["CONTAINER_HOST"]]
    found: list[str] = []
    if env.get("XDG_RUNTIME_DIR"):
        found.append(f"unix://{env['XDG_RUNTIME_DIR'].rstrip('/')}/podman/podman.sock")
    root = "unix:///run/podman/podman.sock"
    if root not in found:
        found.append(root)
    return found


#: One adapter per (runtime, endpoint, timeout); a swarm manager's (services) apart.
_CACHE: dict[tuple[str, str, float], EngineAdapter] = {}
_SWARM_CACHE: dict[tuple[str, float], SwarmEngine] = {}


_CACHE_LOCK = threading.Lock()


def _reset_after_fork() -> None:
    # A forked child must not share the parent's pooled connections: their
    # sockets are the same file descriptors. The lock was taken before the
    # fork (so no other thread held it then) and is released here.
    _CACHE.clear()
    _SWARM_CACHE.clear()
    _CACHE_LOCK.release()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_CACHE_LOCK.acquire,
        after_in_parent=_CACHE_LOCK.release,
        after_in_child=_reset_after_fork,
    )


def _check_socket(runtime: str, endpoint: str) -> None:
    """No socket file: nothing to ask, and no SDK error to translate."""
    if endpoint.startswith("unix://") and not os.path.exists(endpoint[len("unix://") :]):
        path = endpoint[len("unix://") :]
        missing = FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
        raise unreachable(endpoint, "no socket file", runtime) from missing


def _open(runtime: str, endpoint: str, timeout: float) -> EngineAdapter:
    """Create a container adapter; ContainerRuntimeNotFoundError if the engine does not answer."""
    _check_socket(runtime, endpoint)
    if runtime == "docker":
        from kstlib.ops.engines.docker import DockerEngine

        return DockerEngine.open(endpoint, timeout)
    from kstlib.ops.engines.podman import PodmanEngine

    return PodmanEngine.open(endpoint, timeout)


def connect(
    runtime: str | None = None, base_url: str | None = None, timeout: float = DEFAULT_TIMEOUT
) -> EngineAdapter:
    """Return the cached adapter of the first engine that answers.

    ``runtime=None`` tries Podman, then Docker. ``base_url`` names one
    endpoint; otherwise :func:`default_endpoints` are tried. An endpoint with
    a password in it is refused (``SessionConfigError``, the password masked)
    before anything is contacted. An endpoint that does not answer is
    skipped; when none does,
    :class:`~kstlib.ops.exceptions.ContainerRuntimeNotFoundError` lists every
    endpoint tried. Only "engine unreachable" is skipped: any other error
    propagates.

    Example:
        >>> connect("docker", "unix:///nonexistent.sock")
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.ContainerRuntimeNotFoundError: No docker engine API answered (tried: unix:///nonexistent.sock). ...
    """
    runtimes = AUTO_ORDER if runtime is None else (runtime,)
    tried: list[str] = []
    last: ContainerRuntimeNotFoundError | None = None
    for rt in runtimes:
        endpoints = [base_url] if base_url is not None else default_endpoints(rt)
        for endpoint in endpoints:
            refuse_password(endpoint)
            key = (rt, endpoint, timeout)
            with _CACHE_LOCK:
                cached = _CACHE.get(key)
            if cached is not None:
                return cached
            tried.append(endpoint if len(runtimes) == 1 else f"{rt} at {endpoint}")
            try:
                adapter = _open(rt, endpoint, timeout)
            except ContainerRuntimeNotFoundError as err:
                last = err
                continue
            with _CACHE_LOCK:
                # Another thread may have won the race; keep one client per key.
                return _CACHE.setdefault(key, adapter)
    if last is not None and len(tried) == 1:
        # One endpoint: its own error names the engine and keeps the SDK's as cause.
        raise last
    # Several: list them all; the last one's error (and the SDK's) stays the cause.
    raise no_engine_answered(tried, runtime) from last


def connect_swarm(base_url: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> SwarmEngine:
    """Return the cached adapter of the swarm manager at ``base_url`` (``None``: ``DOCKER_HOST``).

    Raises :class:`~kstlib.ops.exceptions.ContainerRuntimeNotFoundError` when
    nothing answers there, or when the engine is not a swarm manager.

    Example:
        >>> connect_swarm("unix:///nonexistent.sock")
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.ContainerRuntimeNotFoundError: No swarm engine API answered (tried: unix:///nonexistent.sock). ...
    """
    from kstlib.ops.engines.swarm import SwarmEngine

    endpoint = base_url if base_url is not None else default_endpoints("swarm")[0]
    key = (endpoint, timeout)
    with _CACHE_LOCK:
        cached = _SWARM_CACHE.get(key)
    if cached is not None:
        return cached
    _check_socket("swarm", endpoint)
    engine = SwarmEngine.open(endpoint, timeout)
    with _CACHE_LOCK:
        # Another thread may have won the race; keep one client per key.
        return _SWARM_CACHE.setdefault(key, engine)


def forget(adapter: EngineAdapter | SwarmEngine) -> None:
    """Drop ``adapter`` from the cache (its engine stopped answering), so the next call re-pings.

    Example:
        >>> forget(object())  # type: ignore[arg-type]
    """
    with _CACHE_LOCK:
        for key in [k for k, v in _CACHE.items() if v is adapter]:
            del _CACHE[key]
        for swarm_key in [k for k, v in _SWARM_CACHE.items() if v is adapter]:
            del _SWARM_CACHE[swarm_key]
