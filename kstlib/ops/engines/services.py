"""The services protocol: what an engine that schedules services (a swarm manager) offers.

The engine protocols are split by capability. A container engine (Docker,
Podman) offers :class:`~kstlib.ops.engines.adapter.EngineAdapter`: create,
inspect, wait, attach, exec of one container. A swarm manager schedules
services over nodes and offers none of that; it offers
:class:`ServiceEngine`, the calls :class:`~kstlib.ops.swarm.SwarmRunner`
needs, and nothing it cannot do. Both share the HTTP base
(:class:`~kstlib.ops.engines.http.HttpBase`: translation and log reads).

Example:
    >>> from kstlib.ops.engines.swarm import SwarmEngine
    >>> from kstlib.ops.engines.adapter import EngineAdapter
    >>> sorted(m for m in dir(ServiceEngine) if not m.startswith("_"))[:4]
    ['all_tasks', 'create', 'create_secret', 'find']
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from kstlib.ops.engines.adapter import LogReader
from kstlib.ops.translate import Op

if TYPE_CHECKING:
    from kstlib.ops.engines.swarm import ServiceSpec

__all__ = ["ServiceEngine"]


class ServiceEngine(LogReader, Protocol):
    """A swarm manager behind one SDK client. Every method translates its SDK's errors.

    ``name`` arguments are the session (service) name used in error messages;
    a service that does not exist raises
    :class:`~kstlib.ops.exceptions.SessionNotFoundError`.
    """

    runtime: str
    endpoint: str
    timeout: float
    #: The manager's own node id (its engine also runs that node's tasks).
    node_id: str

    def create(self, spec: ServiceSpec, auth_config: Mapping[str, str] | None = None) -> str:
        """Create the service, with the secrets ``spec.secrets`` names; return its id.

        ``auth_config`` goes to the manager as ``X-Registry-Auth`` (``None``:
        no header at all).
        """
        ...

    def find(self, name: str, op: Op = Op.READ) -> Mapping[str, Any]:
        """The service named exactly ``name`` (never a prefix or an id)."""
        ...

    def services(self) -> list[Mapping[str, Any]]:
        """Every service of the swarm, in one call."""
        ...

    def tasks(self, service_id: str, name: str, op: Op = Op.READ) -> list[Mapping[str, Any]]:
        """The service's tasks, history included; still listed after the service is removed."""
        ...

    def all_tasks(self) -> list[Mapping[str, Any]]:
        """Every task of the swarm, in one call."""
        ...

    def nodes(self, name: str | None = None) -> dict[str, Mapping[str, Any]]:
        """The swarm's nodes by id."""
        ...

    def remove(self, ref: str, name: str, op: Op = Op.STOP) -> None:
        """Remove the service; its tasks get the stop signal, then the kill after the grace period."""
        ...

    def scale(self, service: Mapping[str, Any], name: str, replicas: int) -> None:
        """Change only the replica count (the running tasks keep running)."""
        ...

    def force_update(self, service: Mapping[str, Any], name: str) -> None:
        """Force a rolling restart: every task is replaced, nothing else changes."""
        ...

    def local_task_containers(self, service_id: str, name: str, op: Op = Op.READ) -> int:
        """How many containers of the service the manager's own node still has (one call)."""
        ...

    def local_handed_over(self, container_id: str, name: str) -> bool | None:
        """Whether a task container on the manager's node has run its command (``None``: it ended)."""
        ...

    def create_secret(
        self, secret_name: str, data: bytes, labels: Mapping[str, str], name: str
    ) -> str:
        """Create a swarm secret holding ``data``; return its id (``data`` is never logged)."""
        ...

    def find_secret(self, secret_name: str, name: str) -> tuple[str, str]:
        """The ``(id, name)`` of the existing secret named exactly ``secret_name``."""
        ...

    def secret_labels(self, secret_id: str, name: str) -> Mapping[str, str] | None:
        """The labels of a secret (``None``: there is no such secret)."""
        ...

    def remove_secret(self, secret_id: str, name: str, op: Op = Op.STOP) -> None:
        """Remove a secret; one that is already gone is fine."""
        ...
