"""Docker Swarm services through the ``docker`` SDK: the calls, their quirks, their error table.

A swarm session is one service, created on a manager node
(``APIClient.create_service``); its tasks, nodes and gathered logs come from
the same manager. :class:`SwarmEngine` shares the HTTP engine base
(:class:`~kstlib.ops.engines.http.HttpEngine`): translation, log reads and
followed logs (``GET /services/{id}/logs``, always with ``details`` so that
each line names its task and node). Session semantics live in
:class:`~kstlib.ops.swarm.SwarmRunner`.

Quirks handled here: the swarm matches service names and ids by prefix
(:meth:`SwarmEngine.find` keeps the exact name only); a task list filtered by
``service`` fails once the service is gone, so tasks are listed by name and
kept by service id; a worker node answers every cluster call with HTTP 503.

Example:
    >>> [h.__name__ for _, h in table()][:3]
    ['on_not_found', 'on_swarm_api_error', 'on_image_missing']
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from kstlib.ops.engines import http
from kstlib.ops.engines.adapter import MANAGED_LABEL, ContainerSpec, spec_from_config
from kstlib.ops.engines.errors import on_api_error, on_not_found
from kstlib.ops.exceptions import (
    ContainerRuntimeNotFoundError,
    OpsError,
    SessionNotFoundError,
    SessionStartError,
)
from kstlib.ops.models import SessionConfig
from kstlib.ops.translate import CallContext, Op, Table, explanation, op_error
from kstlib.ops.validators import config_error

if TYPE_CHECKING:
    from docker.types import RestartPolicy

__all__ = ["RUNTIME", "ServiceSpec", "SwarmEngine", "service_spec", "table", "translate"]

RUNTIME = "swarm"
#: The restart delay kstlib gives a service (the swarm's own default is 5 s).
RESTART_DELAY = 0.5
#: The stop grace period when the config gives none (the swarm's and Docker's default).
DEFAULT_GRACE = 10.0
_NOT_MANAGER = "not a swarm manager"
_NO_INGRESS = "needs ingress network"


def not_a_manager(endpoint: str, detail: str) -> ContainerRuntimeNotFoundError:
    """The error for an engine that answers but cannot drive a swarm (not a manager).

    Example:
        >>> print(not_a_manager("unix:///var/run/docker.sock", "swarm inactive"))
        No swarm manager answered at unix:///var/run/docker.sock (swarm inactive): give the base_url of a manager node (docker info shows 'Is Manager: true'), or run 'docker swarm init' there.
    """
    return ContainerRuntimeNotFoundError(
        f"No swarm manager answered at {endpoint} ({detail}): give the base_url of a "
        "manager node (docker info shows 'Is Manager: true'), or run 'docker swarm init' there.",
        [endpoint],
    )


def on_swarm_api_error(err: Exception, ctx: CallContext) -> OpsError:
    """Handler: the swarm's own HTTP errors, then the engines' shared reading.

    A worker node (HTTP 503 "not a swarm manager") -> ``ContainerRuntimeNotFoundError``
    saying to use a manager; an ingress-mode port -> the op's error saying
    ports must be host-mode; anything else (a taken service name, 409 "name
    conflicts", included) as :func:`~kstlib.ops.engines.errors.on_api_error`.

    Example:
        >>> ctx = CallContext(Op.START, "bot", "swarm", "u", 5)
        >>> type(on_swarm_api_error(ValueError("This node is not a swarm manager."), ctx)).__name__
        'ContainerRuntimeNotFoundError'
        >>> type(on_swarm_api_error(ValueError("rpc error: name conflicts with an existing object"), ctx)).__name__
        'SessionExistsError'
    """
    text = explanation(err)
    lowered = text.lower()
    if _NOT_MANAGER in lowered:
        return not_a_manager(ctx.endpoint, text)
    if _NO_INGRESS in lowered:
        reason = f"{text}; publish ports in host mode (kstlib does) on the host network"
        return op_error(ctx.op, ctx.name, ctx.runtime, ctx.endpoint, reason)
    return on_api_error(err, ctx)


@lru_cache(maxsize=1)
def table() -> Table:
    """The swarm translation table: its head rows, then the Docker table's.

    ==========================================================  =====================================
    raised by the SDK                                           raised by kstlib
    ==========================================================  =====================================
    ``docker.errors.NotFound`` (404 "service x not found")     ``SessionNotFoundError``
    ``docker.errors.APIError`` 503 "not a swarm manager"        ``ContainerRuntimeNotFoundError``
    ``docker.errors.APIError`` 409 "name conflicts ..."         ``SessionExistsError``
    ``docker.errors.APIError`` (other)                          as in the Docker table
    everything else                                             as in the Docker table
    ==========================================================  =====================================

    Example:
        >>> len(table()) > 3
        True
    """
    import docker.errors

    from kstlib.ops.engines import docker as docker_engine

    return (
        ((docker.errors.NotFound,), on_not_found),
        ((docker.errors.APIError,), on_swarm_api_error),
        *docker_engine.table(),
    )


#: ``translate(op, name, endpoint, timeout)``: every SDK error raised inside becomes an OpsError.
translate = http.Translator(RUNTIME, table)


@dataclass(frozen=True)
class ServiceSpec:
    """Everything a swarm service needs, already checked: the container and its scheduling.

    Example:
        >>> spec = service_spec(SessionConfig(name="w", backend="swarm", image="app:1",
        ...                                   command="sleep 5", replicas=2,
        ...                                   placement=["node.role==worker", "spread=node.id"]))
        >>> spec.replicas, spec.constraints, spec.spread, spec.grace
        (2, ('node.role==worker',), ('node.id',), 10.0)
    """

    container: ContainerSpec
    replicas: int | None = 1
    constraints: tuple[str, ...] = ()
    spread: tuple[str, ...] = ()
    grace: float = DEFAULT_GRACE
    #: The swarm secrets the tasks mount: file name under ``/run/secrets`` -> ``(id, name)``
    #: of an existing secret (the runner creates or finds them first).
    secrets: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The service's name (the session's)."""
        return self.container.name


def service_spec(config: SessionConfig) -> ServiceSpec:
    """Turn a validated swarm :class:`~kstlib.ops.models.SessionConfig` into a :class:`ServiceSpec`.

    ``replicas`` is ``None`` for a global service. A port that binds an
    address is refused: a swarm publishes on every address of the node.

    Example:
        >>> service_spec(SessionConfig(name="w", backend="swarm", image="app:1",
        ...                            mode="global")).replicas is None
        True
    """
    container = spec_from_config(config)
    for port in container.ports:
        if port.host_ip is not None:
            raise config_error(
                "ports",
                f"{port.host_ip}:{port.host_port}:{port.container_port}: a swarm publishes on "
                "every address of the node; leave the address out",
            )
    constraints = tuple(p for p in config.placement if not p.startswith("spread="))
    spread = tuple(p[len("spread=") :] for p in config.placement if p.startswith("spread="))
    return ServiceSpec(
        container=container,
        replicas=None if config.mode == "global" else (config.replicas or 1),
        constraints=constraints,
        spread=spread,
        grace=DEFAULT_GRACE if config.stop_timeout is None else config.stop_timeout,
    )


def _restart_policy(spec: ContainerSpec) -> RestartPolicy:
    """The swarm's restart policy for the session's (none, the default: the process ends once)."""
    from docker.types import RestartPolicy

    delay = _ns(RESTART_DELAY)
    if spec.restart is None or spec.restart[0] == "no":
        return RestartPolicy(condition="none")
    policy, retries = spec.restart
    if policy == "on-failure":
        return RestartPolicy(condition="on-failure", delay=delay, max_attempts=retries)
    return RestartPolicy(condition="any", delay=delay)  # always, unless-stopped


def _ns(seconds: float) -> int:
    return round(seconds * 1e9)


class SwarmEngine(http.HttpBase):
    """A swarm manager node, driven through ``docker.APIClient``: a :class:`~kstlib.ops.engines.services.ServiceEngine`.

    It offers services, tasks, nodes, secrets and the gathered logs; no
    container call (a manager cannot inspect, wait for or attach to a task
    that may run on another node).

    Create it with :meth:`open` (or :func:`kstlib.ops.engines.endpoints.connect_swarm`,
    which caches it).

    Example:
        >>> engine = SwarmEngine.open("unix:///tmp/kstlib-engines/swarm/manager.sock", 10)  # doctest: +SKIP
        >>> engine.find("bot")["Spec"]["Name"]  # doctest: +SKIP
        'bot'
    """

    runtime = RUNTIME
    translate = translate

    def __init__(self, api: Any, endpoint: str, timeout: float) -> None:
        super().__init__(endpoint, timeout)
        self.api = api
        #: The manager's own node id (its engine also runs that node's tasks).
        self.node_id = ""

    @classmethod
    def open(cls, endpoint: str, timeout: float) -> SwarmEngine:
        """Connect to the Docker API at ``endpoint`` and check that it is a swarm manager.

        Example:
            >>> SwarmEngine.open("unix:///nonexistent.sock", 1)
            Traceback (most recent call last):
            ...
            kstlib.ops.exceptions.ContainerRuntimeNotFoundError: No swarm engine API answered (tried: unix:///nonexistent.sock). ...
        """
        api = http.docker_api(endpoint, timeout, translate)
        with translate(Op.READ, None, endpoint, timeout, connecting=True, call="connect"):
            swarm = api.info().get("Swarm") or {}
        state = str(swarm.get("LocalNodeState") or "inactive")
        if state != "active":
            raise not_a_manager(endpoint, f"its swarm state is {state!r}")
        if not swarm.get("ControlAvailable"):
            raise not_a_manager(endpoint, "it is a worker node")
        engine = cls(api, endpoint, timeout)
        engine.node_id = str(swarm.get("NodeID") or "")
        return engine

    # -- services ---------------------------------------------------------------------------

    def create(self, spec: ServiceSpec, auth_config: Mapping[str, str] | None = None) -> str:
        """Create the service (``POST /services/create``); return its id.

        The tasks run on the host network (no overlay or ingress is needed)
        with the session's init, env, working dir, mounts, limits, restart
        policy and grace period; published ports are host-mode.
        ``auth_config`` goes to the manager as ``X-Registry-Auth``, and with
        the service to every node that pulls its image; ``None`` sends no
        header (the SDK's ``create_service`` would send what its own Docker
        config holds). ``spec.secrets`` are mounted under ``/run/secrets``
        (mode 0400, owner root).

        Example:
            >>> engine.create(service_spec(config))  # doctest: +SKIP
            'wtcdkna0rexzjqinm4sbgw5c6'
        """
        from docker import types

        c = spec.container
        mounts = [
            types.Mount(
                b.target,
                b.source,
                type="volume" if b.is_named_volume else "bind",
                read_only=b.read_only,
            )
            for b in c.binds
        ]
        container = types.ContainerSpec(
            c.image,
            command=c.command,
            env=[f"{k}={v}" for k, v in c.env.items()] or None,
            workdir=c.working_dir,
            # The service carries kstlib's mark: a task's container is not a session of its own.
            labels={k: v for k, v in c.labels.items() if k != MANAGED_LABEL} or None,
            mounts=mounts or None,
            init=c.init,
            tty=False,  # a tty service's logs come one byte per chunk; no attach anyway
            stop_grace_period=_ns(spec.grace),
            secrets=[
                types.SecretReference(secret_id, secret_name, filename=file_name)
                for file_name, (secret_id, secret_name) in spec.secrets.items()
            ]
            or None,
        )
        resources = None
        if c.memory is not None or c.cpus is not None:
            resources = types.Resources(
                cpu_limit=_ns(c.cpus) if c.cpus is not None else None,
                mem_limit=c.memory,
            )
        placement = types.Placement(
            constraints=list(spec.constraints) or None,
            preferences=[types.PlacementPreference("spread", s) for s in spec.spread] or None,
        )
        template = types.TaskTemplate(
            container,
            resources=resources,
            restart_policy=_restart_policy(c),
            placement=placement,
            networks=["host"],
        )
        mode = (
            types.ServiceMode("global")
            if spec.replicas is None
            else types.ServiceMode("replicated", replicas=spec.replicas)
        )
        # Host mode: the routing mesh (ingress) needs overlay networking and iptables.
        ports = [
            {
                "Protocol": p.protocol,
                "PublishedPort": p.host_port or p.container_port,
                "TargetPort": p.container_port,
                "PublishMode": "host",
            }
            for p in c.ports
        ]
        endpoint_spec = types.EndpointSpec(ports=ports) if ports else None  # type: ignore[arg-type]
        import docker.auth

        body = {
            "Name": spec.name,
            "Labels": dict(c.labels),
            "TaskTemplate": template,
            "Mode": mode,
            "EndpointSpec": endpoint_spec,
        }
        headers = (
            {"X-Registry-Auth": docker.auth.encode_header(dict(auth_config))} if auth_config else {}
        )
        with self._translate(Op.START, spec.name, image=c.image):
            response = self.api._post_json(
                self.api._url("/services/create"), data=body, headers=headers
            )
            created = self.api._result(response, True)
        return str(created["ID"])

    def find(self, name: str, op: Op = Op.READ) -> Mapping[str, Any]:
        """The service named exactly ``name`` (``inspect_service``, which also matches prefixes).

        Example:
            >>> engine.find("bot")["Spec"]["Name"]  # doctest: +SKIP
            'bot'
        """
        with self._translate(op, name):
            service = self.api.inspect_service(name)
        if (service.get("Spec") or {}).get("Name") != name:
            raise SessionNotFoundError(name, RUNTIME)
        return dict(service)

    def services(self) -> list[Mapping[str, Any]]:
        """Every service of the swarm: one call.

        Example:
            >>> [s["Spec"]["Name"] for s in engine.services()]  # doctest: +SKIP
            ['bot']
        """
        with self._translate(Op.READ, None):
            return list(self.api.services())

    def tasks(self, service_id: str, name: str, op: Op = Op.READ) -> list[Mapping[str, Any]]:
        """The service's tasks (history included); still listed after the service is removed.

        Listed by task name (``NAME.SLOT``, a prefix filter) and kept by service id.

        Example:
            >>> [t["Status"]["State"] for t in engine.tasks(service_id, "bot")]  # doctest: +SKIP
            ['running']
        """
        with self._translate(op, name):
            found = self.api.tasks(filters={"name": name})
        return [t for t in found if t.get("ServiceID") == service_id]

    def all_tasks(self) -> list[Mapping[str, Any]]:
        """Every task of the swarm: one call (for a listing).

        Example:
            >>> len(engine.all_tasks()) >= 0  # doctest: +SKIP
            True
        """
        with self._translate(Op.READ, None):
            return list(self.api.tasks())

    def nodes(self, name: str | None = None) -> dict[str, Mapping[str, Any]]:
        """The swarm's nodes by id (``Status.State`` is ``ready`` or ``down``).

        Example:
            >>> sorted(n["Status"]["State"] for n in engine.nodes().values())  # doctest: +SKIP
            ['ready', 'ready']
        """
        with self._translate(Op.READ, name):
            return {str(n.get("ID")): n for n in self.api.nodes()}

    def remove(self, ref: str, name: str, op: Op = Op.STOP) -> None:
        """Remove the service; its tasks get the stop signal, then the kill after the grace period.

        Example:
            >>> engine.remove("wtcdkna0rexzjqinm4sbgw5c6", "bot")  # doctest: +SKIP
        """
        with self._translate(op, name):
            self.api.remove_service(ref)

    def scale(self, service: Mapping[str, Any], name: str, replicas: int) -> None:
        """Change only the replica count of the service (one update, see :meth:`_update`).

        Example:
            >>> engine.scale(engine.find("bot"), "bot", 3)  # doctest: +SKIP
        """
        spec = copy.deepcopy(dict(service.get("Spec") or {}))
        spec["Mode"] = {"Replicated": {"Replicas": replicas}}
        self._update(service, name, spec)

    def force_update(self, service: Mapping[str, Any], name: str) -> None:
        """Replace every task, one at a time, with nothing else changed (a rolling restart).

        A new ``ForceUpdate`` counter in the task template is what makes the
        swarm replace the tasks (see :meth:`_update`).

        Example:
            >>> engine.force_update(engine.find("bot"), "bot")  # doctest: +SKIP
        """
        spec = copy.deepcopy(dict(service.get("Spec") or {}))
        template = spec.setdefault("TaskTemplate", {})
        template["ForceUpdate"] = int(template.get("ForceUpdate") or 0) + 1
        self._update(service, name, spec)

    def _update(self, service: Mapping[str, Any], name: str, spec: Mapping[str, Any]) -> None:
        """Send ``spec``, the service's spec with one change, at the version it was read at.

        The spec goes back as the manager gave it but for that change (the
        manager refuses an update of a spec that changed meanwhile). The
        SDK's ``update_service`` would add empty ``DNSConfig``, ``Placement``
        and ``Resources``: a different task template, so the swarm would
        replace every running task. The registry credentials the service was
        created with stay with it.
        """
        version = (service.get("Version") or {}).get("Index")
        with self._translate(Op.START, name, call="update"):
            response = self.api._post_json(
                self.api._url("/services/{0}/update", str(service["ID"])),
                data=spec,
                params={"version": version},
            )
            self.api._raise_for_status(response)

    # -- logs (the shared base reads them) ---------------------------------------------------

    def _logs_request(self, ref: str, params: dict[str, str], **options: Any) -> Any:
        # details: each line starts with the node, service and task ids that wrote it.
        query = {**params, "details": "true"}
        return self.api._get(self.api._url("/services/{0}/logs", ref), params=query, **options)

    def _raise_for_status(self, response: Any) -> None:
        self.api._raise_for_status(response)

    # -- what the manager's own node has ------------------------------------------------------

    def local_task_containers(self, service_id: str, name: str, op: Op = Op.READ) -> int:
        """How many containers of the service the manager's own node still has (one call).

        A node removes a task's container a moment after the swarm forgot the
        task (the agent's own delay): the manager's task list cannot tell.

        Example:
            >>> engine.local_task_containers("wtcdkna0rexzjqinm4sbgw5c6", "bot")  # doctest: +SKIP
            0
        """
        label = f"com.docker.swarm.service.id={service_id}"
        with self._translate(op, name):
            return len(self.api.containers(all=True, filters={"label": label}))

    def local_handed_over(self, container_id: str, name: str) -> bool | None:
        """Whether the init of a task container on the manager's own node has run the command.

        One ``top`` call: a child of the init with a command line of its own
        (the init forks, then the child executes the command). ``False`` also
        when the container no longer runs (the task's end will tell why);
        ``None`` when the engine cannot tell (no ``top`` on that host).

        Example:
            >>> engine.local_handed_over("3f2a...", "bot")  # doctest: +SKIP
            True
        """
        try:
            with self._translate(Op.START, name):
                answer = self.api.top(container_id, ps_args="-o pid,ppid,args")
        except OpsError:
            try:
                with self._translate(Op.START, name):
                    state = self.api.inspect_container(container_id).get("State") or {}
            except OpsError:
                return False  # removed meanwhile: the task's end tells why
            return None if state.get("Running") else False
        titles = [str(t).upper() for t in answer.get("Titles") or ()]
        if not {"PID", "PPID"} <= set(titles):
            return None
        at_pid, at_ppid = titles.index("PID"), titles.index("PPID")
        rows = [
            (str(r[at_pid]), str(r[at_ppid]), " ".join(map(str, r[at_ppid + 1 :])))
            for r in answer.get("Processes") or ()
            if len(r) > max(at_pid, at_ppid)
        ]
        pids = {pid for pid, _, _ in rows}
        roots = {pid: args for pid, ppid, args in rows if ppid not in pids}
        return any(ppid in roots and args != roots[ppid] for _, ppid, args in rows)

    # -- secrets -----------------------------------------------------------------------------

    def create_secret(
        self, secret_name: str, data: bytes, labels: Mapping[str, str], name: str
    ) -> str:
        """Create a swarm secret holding ``data``; return its id.

        The value goes to the manager in the request body only (never in a
        log record, a repr or an error).

        Example:
            >>> engine.create_secret("bot-token-1a2b", b"s3cr3t", {}, "bot")  # doctest: +SKIP
            'ktnbjxoalbkvbvedmg1urrz8h'
        """
        with self._translate(Op.START, name):
            created = self.api.create_secret(secret_name, data, labels=dict(labels))
        return str(created["ID"])

    def find_secret(self, secret_name: str, name: str) -> tuple[str, str]:
        """The ``(id, name)`` of the existing secret named exactly ``secret_name``.

        Raises :class:`~kstlib.ops.exceptions.SessionStartError` when there is none.

        Example:
            >>> engine.find_secret("db-password", "bot")  # doctest: +SKIP
            ('ktnbjxoalbkvbvedmg1urrz8h', 'db-password')
        """
        with self._translate(Op.START, name):
            found = self.api.secrets(filters={"name": secret_name})
        for secret in found:
            if (secret.get("Spec") or {}).get("Name") == secret_name:
                return str(secret["ID"]), secret_name
        raise SessionStartError(
            name,
            RUNTIME,
            f"the swarm has no secret named {secret_name!r} (docker secret create it first, "
            "or give its value in secrets=)",
        )

    def secret_labels(self, secret_id: str, name: str) -> Mapping[str, str] | None:
        """The labels of secret ``secret_id``; ``None`` when there is no such secret.

        Example:
            >>> engine.secret_labels("ktnbjxoalbkvbvedmg1urrz8h", "bot")  # doctest: +SKIP
            {'io.kstlib.managed': 'true', 'io.kstlib.secret-of': 'bot'}
        """
        try:
            with self._translate(Op.READ, name):
                secret = self.api.inspect_secret(secret_id)
        except SessionNotFoundError:
            return None
        return dict((secret.get("Spec") or {}).get("Labels") or {})

    def remove_secret(self, secret_id: str, name: str, op: Op = Op.STOP) -> None:
        """Remove secret ``secret_id``; one that is already gone is fine.

        Example:
            >>> engine.remove_secret("ktnbjxoalbkvbvedmg1urrz8h", "bot")  # doctest: +SKIP
        """
        with suppress(SessionNotFoundError), self._translate(op, name):
            self.api.remove_secret(secret_id)
