"""Named engines (``ops.engines`` of ``kstlib.conf.yml``): the model and the check of one entry.

Internal: the public names are re-exported by :mod:`kstlib.ops.config`.

:class:`EngineConfig` is what an entry turns into; :func:`engine_from` checks
one entry and says which key is at fault (:class:`EngineProblem`), which
:mod:`kstlib.ops.config` turns into a message with the file and line.
See the "Remote engines and fleets" page of the docs.

Example:
    >>> sorted(ENGINE_KEYS)[:4]
    ['backend', 'base_url', 'identity', 'known_hosts']
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from kstlib.ops import validators
from kstlib.ops.exceptions import SessionConfigError
from kstlib.ops.models import BackendType

__all__ = [
    "ENGINE_BACKENDS",
    "ENGINE_KEYS",
    "EngineConfig",
    "EngineProblem",
    "engine_from",
    "swarm_nodes",
]

ENGINE_KEYS = (
    "backend",
    "base_url",
    "runtime",
    "socket_name",
    "identity",
    "known_hosts",
    "verify_host_key",
    "timeout",
    "nodes",
)
#: What a named engine runs on: a tmux server, a container engine, a Docker Swarm.
ENGINE_BACKENDS = tuple(b.value for b in BackendType)
#: Engine keys that only an ssh:// base_url uses.
SSH_ENGINE_KEYS = ("identity", "known_hosts", "verify_host_key")


class EngineProblem(ValueError):
    """One key of an engine entry is wrong: ``key`` and ``problem`` (for the file's message).

    Example:
        >>> str(EngineProblem("timeout", "is not a number"))
        'timeout: is not a number'
    """

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _runtime(value: object) -> str | None:
    if value is None or (isinstance(value, str) and value.lower() == "auto"):
        return None
    return validators.validate_runtime(value)


@dataclass(frozen=True)
class EngineConfig:
    """A named engine from ``ops.engines``: a tmux server, a container engine or a swarm.

    ``backend`` is ``"tmux"``, ``"container"`` (``runtime`` docker or podman,
    ``None``: whichever answers at ``base_url``) or ``"swarm"`` (its manager at
    ``base_url``). An ``ssh://`` engine may name the key (``identity``) and the
    ``known_hosts`` file to check the host against, or turn that check off
    (``verify_host_key=False``, not recommended); :attr:`endpoint` carries them
    to the engine layer (:mod:`kstlib.ops.engines.ssh`). ``timeout``: seconds
    each call to this engine may take (``None``: the caller's). ``nodes`` (swarm
    only): the Docker APIs of the swarm's other nodes, so that a stop returns
    once none of them keeps a container of the service (:func:`swarm_nodes`).

    Example:
        >>> e = EngineConfig(name="edge", base_url="ssh://ci@edge", runtime="docker",
        ...                  identity="/keys/edge")
        >>> e.endpoint, e.label
        ('ssh://ci@edge?identity=%2Fkeys%2Fedge', 'edge (docker at ssh://ci@edge)')
        >>> EngineConfig(name="local", backend="tmux").label
        'local (tmux)'
    """

    name: str
    base_url: str | None = None
    runtime: str | None = None
    backend: str = "container"
    socket_name: str | None = None
    identity: str | None = None
    known_hosts: str | None = None
    verify_host_key: bool = True
    timeout: float | None = None
    nodes: tuple[str, ...] = ()

    @property
    def endpoint(self) -> str | None:
        """``base_url`` with the ssh settings as its query (what :func:`~kstlib.ops.engines.connect` takes).

        Example:
            >>> EngineConfig(name="lab", base_url="ssh://h/run/podman/podman.sock",
            ...              verify_host_key=False).endpoint
            'ssh://h/run/podman/podman.sock?verify_host_key=no'
        """
        if self.base_url is None:
            return None
        from urllib.parse import urlencode

        query: dict[str, str] = {}
        if self.identity is not None:
            query["identity"] = self.identity
        if self.known_hosts is not None:
            query["known_hosts"] = self.known_hosts
        if not self.verify_host_key:
            query["verify_host_key"] = "no"
        if not query:
            return self.base_url
        joiner = "&" if "?" in self.base_url else "?"
        return f"{self.base_url}{joiner}{urlencode(query)}"

    @property
    def label(self) -> str:
        """The engine's name and what it is, for messages.

        Example:
            >>> EngineConfig(name="lab", base_url="unix:///p.sock", runtime="podman").label
            'lab (podman at unix:///p.sock)'
        """
        if self.backend == "tmux":
            return f"{self.name} (tmux{f' socket {self.socket_name}' if self.socket_name else ''})"
        what = self.runtime or self.backend
        return f"{self.name} ({what} at {self.base_url})"


def engine_from(key: str, body: Mapping[Any, Any]) -> EngineConfig:
    """Check one ``ops.engines`` entry (its keys already known) and build its :class:`EngineConfig`.

    Raises:
        EngineProblem: the key at fault and what is wrong with it.

    Example:
        >>> engine_from("edge", {"backend": "docker", "base_url": "ssh://h", "timeout": 5}).timeout
        5.0
        >>> engine_from("t", {"backend": "tmux", "base_url": "unix:///x"})
        Traceback (most recent call last):
        ...
        kstlib.ops.config._engines.EngineProblem: base_url: does not apply to a tmux engine (give socket_name, or nothing)
    """

    def bad(field_: str, problem: str) -> EngineProblem:
        return EngineProblem(field_, problem)

    backend = "container"
    implied: str | None = None
    if body.get("backend") is not None:
        try:  # the one parser of backend spellings (docker/podman: a container there)
            kind, implied = BackendType.parse(body["backend"])
        except SessionConfigError as err:
            raise bad("backend", err.problem) from None
        backend = kind.value
    try:
        base_url = validators.validate_base_url(body.get("base_url"))
        runtime = _runtime(body.get("runtime"))
        socket_name = (
            validators.validate_socket_name(body["socket_name"])
            if body.get("socket_name") is not None
            else None
        )
    except SessionConfigError as err:
        field_ = err.field if err.field in body else "base_url"
        raise bad(field_ or "base_url", err.problem) from None
    if implied and runtime and implied != runtime:
        raise bad("runtime", f"{runtime!r} contradicts backend {implied!r}")
    runtime = implied or runtime
    if backend == "tmux":
        for other in ("base_url", "runtime", *SSH_ENGINE_KEYS):
            if body.get(other) is not None:
                raise bad(other, "does not apply to a tmux engine (give socket_name, or nothing)")
    else:
        if socket_name is not None:
            raise bad("socket_name", f"names a tmux server; this engine's backend is {backend}")
        if base_url is None:
            raise bad(
                "base_url",
                "is required (e.g. unix:///run/podman/podman.sock, tcp://host:2375, "
                "ssh://user@host)",
            )
    ssh = base_url is not None and base_url.startswith("ssh://")
    paths: dict[str, str | None] = {}
    for name in ("identity", "known_hosts"):
        value = body.get(name)
        if value is None:
            paths[name] = None
            continue
        if not ssh:
            raise bad(name, "applies to an ssh:// base_url only")
        if not isinstance(value, str) or not value:
            raise bad(name, f"expected a file path, got {_type_name(value)}")
        path = os.path.expanduser(value)
        if not os.path.isabs(path):
            raise bad(name, f"{validators.shown(value)} must be an absolute path (or start with ~)")
        paths[name] = path
    verify = body.get("verify_host_key", True)
    if not isinstance(verify, bool):
        raise bad("verify_host_key", f"expected true or false, got {_type_name(verify)}")
    if not verify and not ssh:
        raise bad("verify_host_key", "applies to an ssh:// base_url only")
    timeout: float | None = None
    if body.get("timeout") is not None:
        value = body["timeout"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 3600:
            raise bad("timeout", f"{validators.shown(value)} is not a number of seconds (0-3600]")
        timeout = float(value)
    nodes = _nodes(body.get("nodes"), backend)
    return EngineConfig(
        name=key,
        base_url=base_url,
        runtime=runtime,
        backend=backend,
        socket_name=socket_name,
        identity=paths["identity"],
        known_hosts=paths["known_hosts"],
        verify_host_key=verify,
        timeout=timeout,
        nodes=nodes,
    )


def _nodes(value: object, backend: str) -> tuple[str, ...]:
    """The ``nodes`` of a swarm engine: a list of engine URLs (``None``: none)."""
    if value is None:
        return ()
    if backend != "swarm":
        raise EngineProblem("nodes", f"lists a swarm's nodes; this engine's backend is {backend}")
    if not isinstance(value, list):
        raise EngineProblem("nodes", f"expected a list of engine URLs, got {_type_name(value)}")
    urls: list[str] = []
    for url in value:
        try:
            checked = validators.validate_base_url(url)
        except SessionConfigError as err:
            raise EngineProblem("nodes", err.problem) from None
        if checked is None:
            raise EngineProblem("nodes", "expected engine URLs, got null")
        urls.append(checked)
    return tuple(urls)


def swarm_nodes(
    engines: Mapping[str, EngineConfig],
    manager: str | None,
    untrusted: Collection[str] = (),
) -> tuple[str, ...]:
    """The ``nodes`` the swarm engines of ``engines`` whose manager is ``manager`` list.

    ``manager`` ``None`` is the manager a swarm command reaches by default
    (``DOCKER_HOST``, else Docker's socket). A URL in ``untrusted`` (named only
    by a project-local file the user does not trust) is left out.

    Example:
        >>> lab = EngineConfig("lab", "tcp://m:2375", backend="swarm", nodes=("tcp://w:2375",))
        >>> swarm_nodes({"lab": lab}, "tcp://m:2375"), swarm_nodes({"lab": lab}, "tcp://x:2375")
        (('tcp://w:2375',), ())
    """
    if manager is None:
        manager = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    found: list[str] = []
    for engine in engines.values():
        if engine.backend == "swarm" and manager in (engine.base_url, engine.endpoint):
            found += [url for url in engine.nodes if url not in found and url not in untrusted]
    return tuple(found)
