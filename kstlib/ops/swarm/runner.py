"""The swarm backend: a session is one Docker Swarm service, through the docker SDK.

:class:`SwarmRunner` gives a service the session semantics of
:mod:`kstlib.ops`: ``start`` creates the service (labelled as kstlib's) and
returns once a task runs or has ended; ``status`` reads its tasks
(:mod:`kstlib.ops.swarm.tasks`); ``logs`` and ``follow_logs`` read the
manager's gathered logs of every task on every node; ``stop`` removes the
service and returns once the swarm has no task of it left; ``restart`` is a
rolling restart and ``scale`` changes the replica count. The SDK calls and
their translation are in :mod:`kstlib.ops.engines.swarm`.

Example:
    >>> runner = SwarmRunner(base_url="unix:///tmp/kstlib-engines/swarm/manager.sock")
    >>> cfg = SessionConfig(name="web", backend="swarm", image="127.0.0.1:5000/kstlib/pulltest:1",
    ...                     command=["sh", "-c", "echo ready; sleep 300"], replicas=2)
    >>> runner.start(cfg).state.value  # doctest: +SKIP
    'running'
    >>> runner.stop("web")  # doctest: +SKIP
    True
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import suppress
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

from kstlib.ops.engines.adapter import DEFAULT_TIMEOUT, MANAGED_LABEL, MANAGED_VALUE
from kstlib.ops.engines.streams import LogQuery
from kstlib.ops.exceptions import (
    ContainerRuntimeNotFoundError,
    OpsError,
    SessionAttachError,
    SessionConfigError,
    SessionError,
    SessionExistsError,
    SessionNotFoundError,
    SessionStartError,
    SessionTimeoutError,
)
from kstlib.ops.follow import Follow
from kstlib.ops.models import BackendType, SessionConfig, SessionState, SessionStatus, SessionTable
from kstlib.ops.runner import LogRequest, Runner
from kstlib.ops.swarm import lifecycle
from kstlib.ops.swarm import logs as service_logs
from kstlib.ops.swarm.tasks import TaskView, read_tasks
from kstlib.ops.translate import Op
from kstlib.ops.validators import (
    validate_base_url,
    validate_call_timeout,
    validate_instance,
    validate_lines,
    validate_lookup_name,
    validate_optional_timeout,
    validate_replicas,
    validate_since,
    validate_timeout,
)

if TYPE_CHECKING:
    from kstlib.ops.engines.adapter import EngineAdapter
    from kstlib.ops.engines.services import ServiceEngine
    from kstlib.ops.execresult import ExecResult

__all__ = ["SwarmRunner", "is_managed"]

_BACKEND = BackendType.SWARM
_RUNTIME = "swarm"
_POLL = lifecycle.POLL
_Service = Mapping[str, Any]


def is_managed(service: _Service) -> bool:
    """Whether kstlib created this swarm service (it carries the managed label).

    Example:
        >>> is_managed({"Spec": {"Labels": {MANAGED_LABEL: MANAGED_VALUE}}}), is_managed({})
        (True, False)
    """
    labels = (service.get("Spec") or {}).get("Labels") or {}
    return bool(labels.get(MANAGED_LABEL) == MANAGED_VALUE)


def _image(service: _Service) -> str | None:
    spec = ((service.get("Spec") or {}).get("TaskTemplate") or {}).get("ContainerSpec") or {}
    image = str(spec.get("Image") or "")
    return image.split("@", 1)[0] or None  # the swarm pins the digest it resolved


def _replicas(service: _Service) -> int | None:
    mode = (service.get("Spec") or {}).get("Mode") or {}
    replicated = mode.get("Replicated")
    return int(replicated.get("Replicas") or 0) if replicated is not None else None


def _to_status(service: _Service, view: TaskView) -> SessionStatus:
    from kstlib.ops.engines.streams import parse_timestamp

    return SessionStatus(
        name=str((service.get("Spec") or {}).get("Name") or ""),
        state=view.state,
        backend=_BACKEND,
        created_at=parse_timestamp(service.get("CreatedAt")),
        image=_image(service),
        exit_code=view.exit_code if view.state is SessionState.EXITED else None,
        managed=is_managed(service),
        restart_count=view.restart_count,
        reason=view.reason,
        nodes=view.nodes,
        last_exit_code=view.last_exit_code,
        last_exited_at=view.last_exited_at,
        window_count=0,  # no windows in a service (as for containers)
    )


class SwarmRunner(Runner):
    """Run sessions as Docker Swarm services on the swarm of one manager node.

    Args:
        base_url: the manager's Docker API (``unix://``, ``tcp://``, ``ssh://``);
            ``None``: ``DOCKER_HOST``, else the default socket.
        timeout: seconds any single manager call may take.
        node_urls: the Docker APIs of the swarm's other nodes, when this
            process can reach them: :meth:`stop` then also waits until none
            of them keeps a container of the service (the manager's own node
            is always asked).

    The manager is contacted on first use (and must be a manager:
    :class:`~kstlib.ops.exceptions.ContainerRuntimeNotFoundError` otherwise).
    Errors carry ``"swarm"`` as their backend.

    Example:
        >>> SwarmRunner(base_url="unix:///tmp/kstlib-engines/swarm/manager.sock")
        SwarmRunner(base_url='unix:///tmp/kstlib-engines/swarm/manager.sock')
    """

    backend = _BACKEND

    def __init__(
        self,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        node_urls: Sequence[str] = (),
    ) -> None:
        self.base_url = validate_base_url(base_url)
        self.timeout = validate_call_timeout(timeout)
        if isinstance(node_urls, str):
            node_urls = (node_urls,)
        self.node_urls = tuple(str(validate_base_url(u)) for u in node_urls)
        self._engine: ServiceEngine | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SwarmRunner(base_url={self.base_url!r})"

    @property
    def engine(self) -> ServiceEngine:
        """The manager's adapter (connected on first use).

        Example:
            >>> SwarmRunner(base_url="unix:///nonexistent.sock").engine
            Traceback (most recent call last):
            ...
            kstlib.ops.exceptions.ContainerRuntimeNotFoundError: No swarm engine API answered (tried: unix:///nonexistent.sock). ...
        """
        from kstlib.ops.engines.endpoints import connect_swarm

        with self._lock:
            if self._engine is None:
                self._engine = connect_swarm(self.base_url, self.timeout)
            return self._engine

    def _nodes(self) -> list[EngineAdapter]:
        """The engines of ``node_urls`` that answer (a node that is down has nothing to wait for)."""
        from kstlib.ops.engines.endpoints import connect

        found = []
        for url in self.node_urls:
            with suppress(ContainerRuntimeNotFoundError):
                found.append(connect("docker", url, self.timeout))
        return found

    def _view(self, service: _Service, op: Op = Op.READ) -> TaskView:
        engine = self.engine
        name = str(service["Spec"]["Name"])
        tasks = engine.tasks(str(service["ID"]), name, op)
        return read_tasks(tasks, engine.nodes(name) if tasks else {})

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self, config: SessionConfig) -> SessionStatus:
        """Create the service for ``config``; return its status once a task runs or has ended.

        The service is labelled ``io.kstlib.managed=true``; its tasks run on the
        host network with the config's image, argv, env, working dir, mounts,
        host-mode ports, limits, init and restart policy (none unless
        ``restart`` says: ``on-failure:N`` -> on-failure with N attempts,
        ``always``/``unless-stopped`` -> any), ``replicas``, ``mode`` and
        ``placement``. ``secrets`` (values) become swarm secrets created with
        the service and removed with it; they and ``secret_refs`` (existing
        secrets) are files under ``/run/secrets``, never in the service's env.
        Registry credentials go with the service when ``registry_auth`` is
        given, or, with ``with_registry_auth=True``, from the Docker config
        files (as ``docker service create --with-registry-auth``); otherwise
        none. A service of that name whose tasks have all ended is replaced;
        a live one raises :class:`~kstlib.ops.exceptions.SessionExistsError`
        (so does a concurrent start: the manager arbitrates). A task the swarm
        rejects (no such image on a node, no node fits the placement) or a
        command that could not be executed is a
        :class:`~kstlib.ops.exceptions.SessionStartError` with the engine's
        words, and the service and its secrets are removed.

        Example:
            >>> SwarmRunner().start(cfg).nodes  # doctest: +SKIP
            ('zk9cgsgktkrw9anj72u4piy30', 'geab9vto3ruaygi4h7ilfaf66')
        """
        from kstlib.ops.engines.swarm import service_spec

        validate_instance("config", config, SessionConfig)
        if config.backend is not BackendType.SWARM:
            raise SessionConfigError(
                f"backend: {config.backend.value!r} config given to the swarm runner", "backend"
            )
        spec = service_spec(config)
        name = config.name
        engine = self.engine
        try:
            previous: _Service | None = engine.find(name, Op.START)
        except SessionNotFoundError:
            previous = None
        if previous is not None:
            if self._view(previous, Op.START).state is not SessionState.EXITED:
                raise SessionExistsError(name, _RUNTIME)
            lifecycle.remove_and_wait(engine, previous, Op.START, spec.grace, self._nodes())
        auth = self._credentials(config, spec.container.image)
        mounts, created = lifecycle.create_secrets(engine, name, config.secrets, config.secret_refs)
        try:
            engine.create(replace(spec, secrets=mounts), auth)
        except BaseException:
            self._drop_secrets(created, name)
            raise
        try:
            return lifecycle.until_started(
                engine, name, spec.replicas, self.timeout, _to_status, init=spec.container.init
            )
        except OpsError as err:
            reason = err.reason if isinstance(err, SessionStartError) else str(err)
            try:
                service = engine.find(name, Op.START)
                lifecycle.remove_and_wait(engine, service, Op.START, spec.grace, self._nodes())
            except OpsError as cleanup:
                reason += f" (removing the service also failed: {cleanup})"
            self._drop_secrets(created, name)  # also when the service went some other way
            raise SessionStartError(name, _RUNTIME, reason) from err

    def _drop_secrets(self, created: list[str], name: str) -> None:
        for secret_id in created:
            with suppress(OpsError):
                self.engine.remove_secret(secret_id, name, Op.START)

    @staticmethod
    def _credentials(config: SessionConfig, image: str) -> dict[str, str] | None:
        """What goes with the service for the nodes' pulls (``None``: no credentials at all)."""
        from kstlib.ops.images import find_credentials
        from kstlib.ops.images._types import registry_of

        registry = registry_of(image)
        explicit = config.registry_auth
        if explicit is not None and explicit.applies_to(registry):
            return explicit.auth_config()
        if not config.with_registry_auth:
            return None  # as docker service create without --with-registry-auth
        return find_credentials(registry, "docker")[0]

    def stop(self, name: str, graceful: bool = True, timeout: float = 10) -> bool:
        """Remove service ``name``; return ``True`` once no node has a task or container of it.

        Every task gets its stop signal (SIGTERM), and the kill after the
        service's grace period (``stop_timeout`` at start, default 10 s: the
        swarm fixes it when the service is created, and ``graceful=False``
        cannot shorten it). This waits until the swarm lists no task of it,
        then until the manager's own node, and each node of ``node_urls``,
        has removed the task containers (a node does so about 2 s after the
        swarm forgot the task), then removes the secrets kstlib created for
        it; up to the longer of ``timeout`` and the grace period plus 30 s
        (the swarm's round trips), then raises
        :class:`~kstlib.ops.exceptions.SessionStopError`. A task on a node that
        is down is not waited for (the node removes it when it comes back).

        Example:
            >>> SwarmRunner().stop("web", timeout=5)  # doctest: +SKIP
            True
        """
        validate_lookup_name(name)
        validate_timeout(timeout)
        service = self.engine.find(name, Op.STOP)
        grace = max(self._grace(service), float(timeout))
        lifecycle.remove_and_wait(self.engine, service, Op.STOP, grace, self._nodes())
        return True

    @staticmethod
    def _grace(service: _Service) -> float:
        spec = ((service.get("Spec") or {}).get("TaskTemplate") or {}).get("ContainerSpec") or {}
        grace = spec.get("StopGracePeriod")
        return grace / 1e9 if isinstance(grace, int) else 10.0

    def restart(self, name: str, timeout: float | None = None) -> SessionStatus:
        """Rolling restart (a new ``ForceUpdate``): every task is replaced, one at a time.

        Returns once the new tasks run; after ``timeout`` seconds (default
        120) :class:`~kstlib.ops.exceptions.SessionTimeoutError`.

        Example:
            >>> SwarmRunner().restart("web").state.value  # doctest: +SKIP
            'running'
        """
        validate_lookup_name(name)
        limit = validate_optional_timeout(timeout)
        engine = self.engine
        service = engine.find(name, Op.START)
        before = {str(t.get("ID")) for t in engine.tasks(str(service["ID"]), name, Op.START)}
        engine.force_update(service, name)
        return lifecycle.until_fresh(
            engine, name, before, _replicas(service), limit=self._limit(limit), status=_to_status
        )

    def scale(self, name: str, replicas: int, timeout: float | None = None) -> SessionStatus:
        """Change only the number of replicas; return once that many tasks run.

        The running tasks keep running (the spec goes back unchanged but for
        the count): scaling up adds tasks, scaling down removes the extra ones.

        Example:
            >>> SwarmRunner().scale("web", 3).state.value  # doctest: +SKIP
            'running'
        """
        validate_lookup_name(name)
        count = validate_replicas(replicas)
        limit = validate_optional_timeout(timeout)
        engine = self.engine
        service = engine.find(name, Op.START)
        if _replicas(service) is None:
            raise SessionConfigError(
                "replicas: a global service runs one task per node; it cannot be scaled",
                "replicas",
            )
        engine.scale(service, name, count)
        return lifecycle.until_fresh(
            engine, name, set(), count, limit=self._limit(limit), status=_to_status, exact=True
        )

    def _limit(self, timeout: float | None) -> float:
        return max(self.timeout, lifecycle.START_WAIT) if timeout is None else timeout

    def wait(self, name: str, timeout: float | None = None) -> int:
        """Wait until every task has ended for good; the exit code (first non-zero one).

        Example:
            >>> SwarmRunner().wait("job", timeout=30)  # doctest: +SKIP
            3
        """
        validate_lookup_name(name)
        validate_optional_timeout(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            service = self.engine.find(name)
            view = self._view(service)
            if view.state is SessionState.EXITED:
                return view.exit_code if view.exit_code is not None else -1
            if deadline is not None and time.monotonic() >= deadline:
                raise SessionTimeoutError(name, _RUNTIME, f"still running after {timeout:g} s")
            time.sleep(_POLL)

    # -- queries ------------------------------------------------------------------------------

    def status(self, name: str) -> SessionStatus:
        """State, exit code, restarts, nodes and ownership of service ``name``, from its tasks.

        Three manager calls (service, tasks, nodes). A task whose node is
        down is named in ``reason``; when no other task runs, the state is
        UNKNOWN.

        Example:
            >>> SwarmRunner().status("web").nodes  # doctest: +SKIP
            ('zk9cgsgktkrw9anj72u4piy30',)
        """
        validate_lookup_name(name)
        service = self.engine.find(name)
        return _to_status(service, self._view(service))

    def exists(self, name: str) -> bool:
        """Whether a service named exactly ``name`` exists.

        Example:
            >>> SwarmRunner().exists("no-such-service")  # doctest: +SKIP
            False
        """
        validate_lookup_name(name)
        try:
            self.engine.find(name)
        except SessionNotFoundError:
            return False
        return True

    def list_sessions(self) -> SessionTable:
        """Every service of the swarm (kstlib's marked ``managed``): three manager calls.

        Example:
            >>> [s.name for s in SwarmRunner().list_sessions()]  # doctest: +SKIP
            ['web']
        """
        engine = self.engine
        services = engine.services()
        if not services:
            return SessionTable()
        by_service: dict[str, list[Mapping[str, Any]]] = {}
        for task in engine.all_tasks():
            by_service.setdefault(str(task.get("ServiceID")), []).append(task)
        nodes = engine.nodes()
        return SessionTable(
            _to_status(s, read_tasks(by_service.get(str(s["ID"]), []), nodes)) for s in services
        )

    # -- output -------------------------------------------------------------------------------

    def _read_logs(self, name: str, request: LogRequest) -> str:
        """:meth:`~kstlib.ops.runner.Runner.logs`: every task's output, gathered by the manager.

        Lines from every node, as the manager gathers them (each node's in
        order). ``prefix`` starts each line with its task (``web.2@NODE | ``).
        A node that is down cannot send its logs: the manager then adds a
        line of its own (``Error grabbing logs: ... node ... is not available``).

        Example:
            >>> SwarmRunner().logs("web", lines=2, prefix=True)  # doctest: +SKIP
            'web.1@zk9cgsgktkrw | ready\\nweb.2@geab9vto3ruay | ready'
        """
        validate_lookup_name(name)
        count = validate_lines(request.lines)
        start = validate_since(request.since)
        service = self.engine.find(name)
        render = self._renderer(service, request)
        query = LogQuery(count, start, bool(request.timestamps))
        entries = self.engine.logs(str(service["ID"]), query)
        out = [render(e) for e in entries]
        if count is not None:
            out = out[-count:] if count else []
        return "\n".join(out)

    def _follow_logs(self, name: str, request: LogRequest) -> Iterator[str]:
        """:meth:`~kstlib.ops.runner.Runner.follow_logs`: every task's lines; ends with the service.

        The swarm's followed log never ends by itself (not even when the
        service is removed): a watcher closes it once every task has ended
        for good or the service is gone. ``lines=N`` first yields the last N
        lines already written (the manager's ``tail``, of those from ``since``
        on). Otherwise, without ``since``, only new lines; with it, from then
        on. ``prefix`` as for :meth:`logs`.

        Example:
            >>> for line in SwarmRunner().follow_logs("job"):  # doctest: +SKIP
            ...     print(line)
            step 1
        """
        validate_lookup_name(name)
        start = validate_since(request.since)
        count = validate_lines(request.lines)
        limit = validate_optional_timeout(request.timeout)
        service = self.engine.find(name)
        render = self._renderer(service, request)
        tail = count if count is not None else (None if start is not None else 0)
        query = LogQuery(tail, start, bool(request.timestamps))
        stream = self.engine.follow_logs(str(service["ID"]), name, query, timeout=limit)

        def ended() -> bool | None:
            try:
                return self._view(self.engine.find(name)).state is SessionState.EXITED
            except SessionNotFoundError:
                return True  # removed
            except OpsError:
                return None  # cannot tell now: ask again

        return Follow(name, _RUNTIME, limit).lines(
            lambda follow: service_logs.follow(stream, ended=ended, follow=follow, line=render)
        )

    def _renderer(self, service: _Service, request: LogRequest) -> Callable[[bytes], str]:
        """How the request wants each entry shown (with ``prefix``: its task's name first)."""
        names = self._task_names(service) if request.prefix else None
        timestamps, ansi = bool(request.timestamps), bool(request.ansi)
        return partial(service_logs.render, timestamps=timestamps, ansi=ansi, names=names)

    def _task_names(self, service: _Service) -> dict[str, str]:
        name = str(service["Spec"]["Name"])
        return service_logs.task_names(name, self.engine.tasks(str(service["ID"]), name))

    # -- what a swarm manager cannot do ---------------------------------------------------------

    def attach(self, name: str) -> None:
        """Not possible: a manager cannot attach a terminal to a task (it may run on another node).

        Example:
            >>> SwarmRunner().attach("web")
            Traceback (most recent call last):
            ...
            kstlib.ops.exceptions.SessionAttachError: Could not attach to session 'web' on the swarm backend: a swarm manager cannot attach a terminal to a task (it may run on another node); read its output with logs/follow_logs, or attach through the node's own engine (backend='docker', base_url of that node)
        """
        validate_lookup_name(name)
        raise SessionAttachError(
            name,
            _RUNTIME,
            "a swarm manager cannot attach a terminal to a task (it may run on another node); "
            "read its output with logs/follow_logs, or attach through the node's own engine "
            "(backend='docker', base_url of that node)",
        )

    def exec(self, name: str, command: str | list[str] | tuple[str, ...]) -> ExecResult:
        """Not possible: a manager cannot run a command in a task (it may run on another node).

        Example:
            >>> SwarmRunner().exec("web", ["true"])
            Traceback (most recent call last):
            ...
            kstlib.ops.exceptions.SessionError: swarm cannot exec in session 'web': a manager cannot run a command in a task (it may run on another node); exec through the node's own engine (backend='docker', base_url of that node)
        """
        validate_lookup_name(name)
        raise SessionError(
            f"swarm cannot exec in session {name!r}: a manager cannot run a command in a task "
            "(it may run on another node); exec through the node's own engine "
            "(backend='docker', base_url of that node)"
        )
