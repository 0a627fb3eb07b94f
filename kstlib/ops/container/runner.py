"""The container backend: sessions as Docker or Podman containers, through their SDKs.

:class:`ContainerRunner` gives containers the session semantics of
:mod:`kstlib.ops` (lifecycle, states, ownership); the engine adapters in
:mod:`kstlib.ops.engines` do the talking and translate every SDK error. The
SDKs are imported when an engine is first used, so ``import kstlib.ops``
stays fast.

States: ``running``, ``restarting`` and ``stopping`` are RUNNING; ``exited``,
``dead`` and Podman's ``stopped`` are EXITED (with the exit code);
``created``, ``configured``, ``initialized`` (never started) and ``paused``
are STOPPED; anything else is UNKNOWN. A Podman container that is
``stopped`` while its restart policy is about to run it again is RUNNING,
as Docker's ``restarting`` is.

Example:
    >>> runner = ContainerRunner(runtime="docker")  # doctest: +SKIP
    >>> cfg = SessionConfig(name="web", backend="container", image="localhost/kstlib-test:latest",
    ...                     command=["sh", "-c", "echo ready; sleep 300"])
    >>> runner.start(cfg).state.value  # doctest: +SKIP
    'running'
    >>> runner.logs("web")  # doctest: +SKIP
    'ready'
    >>> runner.stop("web")  # doctest: +SKIP
"""

from __future__ import annotations

import time
from contextlib import suppress
from typing import TYPE_CHECKING, NoReturn

from kstlib.ops.cancel import pause
from kstlib.ops.engines.adapter import (
    ContainerInfo,
    ContainerSpec,
    spec_from_config,
)
from kstlib.ops.engines.streams import LogQuery
from kstlib.ops.exceptions import (
    ContainerRuntimeNotFoundError,
    OpsError,
    SessionExistsError,
    SessionNotFoundError,
    SessionStartError,
    SessionStopError,
    SessionTimeoutError,
)
from kstlib.ops.models import (
    SessionConfig,
    SessionState,
    SessionStatus,
    SessionTable,
)
from kstlib.ops.runner import LogRequest
from kstlib.ops.translate import Op
from kstlib.ops.validators import (
    validate_instance,
    validate_lines,
    validate_lookup_name,
    validate_optional_timeout,
    validate_same_runtime,
    validate_since,
    validate_timeout,
)

if TYPE_CHECKING:
    from kstlib.ops.engines.adapter import EngineAdapter
from kstlib.ops.container.base import POLL, WAIT_SLICE, require_engine_name
from kstlib.ops.container.exec_attach import ContainerExecAttach
from kstlib.ops.container.execcheck import exec_failure
from kstlib.ops.container.follow import ContainerFollow
from kstlib.ops.container.logs import LineAssembler, render_line
from kstlib.ops.container.states import (
    LIVE_STATES,
    NO_RESTART_POLICY,
    RestartWatch,
    restart_pending,
    session_state,
    to_status,
)

__all__ = ["ContainerRunner"]


class ContainerRunner(ContainerFollow, ContainerExecAttach):
    """Run sessions as containers on one Docker or Podman engine.

    Args:
        runtime: ``"docker"``, ``"podman"``, or ``None`` for the first engine
            that answers (Podman, then Docker).
        base_url: the engine API (``unix://``, ``tcp://``, ``ssh://``);
            ``None``: ``DOCKER_HOST`` / ``CONTAINER_HOST``, else the default
            sockets (see :func:`kstlib.ops.engines.endpoints.default_endpoints`).
        timeout: seconds any single engine call may take (a graceful stop
            adds its own ``timeout``). A call that takes longer raises the
            operation's error saying it timed out.

    The engine is contacted on first use; one SDK client per engine endpoint
    is shared by the whole process. Errors carry the runtime as ``backend``
    (``"docker"`` or ``"podman"``), since that is where a user looks.

    Example:
        >>> runner = ContainerRunner(runtime="podman", base_url="unix:///run/podman/podman.sock")
        >>> runner
        ContainerRunner(runtime='podman', base_url='unix:///run/podman/podman.sock')
        >>> runner.backend.value
        'container'
    """

    # -- lifecycle ----------------------------------------------------------------------

    def start(self, config: SessionConfig) -> SessionStatus:
        """Create and start a container for ``config``; return its status.

        The container gets the ownership label ``io.kstlib.managed=true``, an
        init process (``config.init``) that forwards signals, a terminal (so
        stdout and stderr stay in the order written, and :meth:`attach` works),
        and the config's env, volumes, ports, working directory, labels,
        restart policy and limits. A name whose container has exited is
        replaced; one that runs (or is being created, or paused) raises
        :class:`~kstlib.ops.exceptions.SessionExistsError`. The engine
        arbitrates concurrent starts: exactly one wins. If the container
        cannot start, it is removed before
        :class:`~kstlib.ops.exceptions.SessionStartError` is raised.

        Example:
            >>> cfg = SessionConfig(name="bot", backend="container",
            ...                     image="localhost/kstlib-test:latest", command="sleep 60")
            >>> ContainerRunner(runtime="docker").start(cfg).runtime  # doctest: +SKIP
            'docker'
        """
        validate_instance("config", config, SessionConfig)
        spec = spec_from_config(config)
        name = config.name
        with self._using() as engine:
            runtime = engine.runtime
            validate_same_runtime(config.runtime, runtime)
            try:
                previous: ContainerInfo | None = self._inspect(engine, name, Op.START)
            except SessionNotFoundError:
                previous = None
            if previous is not None:
                if session_state(previous) is not SessionState.EXITED:
                    raise SessionExistsError(name, runtime)
                # By id: a concurrent start may already own the name again.
                self._remove_quietly(engine, previous.id, name, Op.START)
            container_id = self._create(engine, spec, config)
            try:
                engine.start(container_id, name)
            except ContainerRuntimeNotFoundError:
                raise
            except OpsError as err:
                self._discard(engine, container_id, name, err, "unstarted container")
            failure: str | None = None
            try:
                info = self._inspect(engine, name, Op.START)
                if spec.init and info.id == container_id:
                    info, failure = exec_failure(
                        engine,
                        info,
                        time.monotonic() + self.timeout,
                        lambda ref: engine.inspect(ref, Op.START),
                    )
            except ContainerRuntimeNotFoundError:
                raise
            except OpsError as err:
                # Started, but not known to run: a start that raises leaves nothing.
                self._discard(engine, container_id, name, err, "container")
            if failure is not None:
                self._not_run(engine, info, name, failure)
            return to_status(info, runtime)

    def _discard(
        self, engine: EngineAdapter, container_id: str, name: str, err: OpsError, what: str
    ) -> NoReturn:
        """Remove the container a failed start made, and raise ``err`` as a start error."""
        reason = err.reason if isinstance(err, SessionStartError) else str(err)
        try:
            self._remove_quietly(engine, container_id, name, Op.START)
        except OpsError as cleanup:
            reason += f" (removing the {what} also failed: {cleanup})"
        raise SessionStartError(name, engine.runtime, reason) from err

    def _not_run(
        self, engine: EngineAdapter, info: ContainerInfo, name: str, failure: str
    ) -> NoReturn:
        """The init could not run the command (see :mod:`~kstlib.ops.container.execcheck`): remove, raise."""
        try:
            self._remove_quietly(engine, info.id, name, Op.START)
        except OpsError as cleanup:
            failure += f" (removing the container also failed: {cleanup})"
        raise SessionStartError(name, engine.runtime, f"the command could not be run: {failure}")

    def _create(self, engine: EngineAdapter, spec: ContainerSpec, config: SessionConfig) -> str:
        """Create the container, pulling its image first as ``config.pull`` says.

        ``missing``: create; if the engine says it lacks the image, pull it
        and create again (no extra call when the image is there).
        ``always``: pull, then create. ``never``: a missing image is an error
        that says so.
        """
        if config.pull == "always":
            self._pull(engine, config)
            return engine.create(spec)
        try:
            return engine.create(spec)
        except SessionStartError as err:
            if err.missing_image is None:
                raise
            if config.pull == "never":
                raise SessionStartError(
                    config.name,
                    engine.runtime,
                    f"image {spec.image!r} is not in the {engine.runtime} engine and the pull "
                    f"policy is 'never'; pull it first ('kstlib ops pull {spec.image}') or "
                    "use pull='missing'",
                ) from err
        self._pull(engine, config)
        return engine.create(spec)

    def _pull(self, engine: EngineAdapter, config: SessionConfig) -> None:
        from kstlib.ops.images import (
            DEFAULT_PULL_TIMEOUT,
            is_insecure,
            notebook_progress,
            pull_with,
            registry_of,
        )

        image = str(config.image)
        pull_with(
            engine,
            image,
            on_progress=config.on_progress or notebook_progress(),
            registry_auth=config.registry_auth,
            insecure=is_insecure(registry_of(image), config.insecure_registries),
            timeout=max(self.timeout, DEFAULT_PULL_TIMEOUT),
            session=config.name,
        )

    @staticmethod
    def _remove_quietly(engine: EngineAdapter, ref: str, name: str, op: Op) -> None:
        """Remove a container; one already gone is what we wanted."""
        try:
            engine.remove(ref, name, op)
        except SessionNotFoundError:
            return

    def stop(self, name: str, graceful: bool = True, timeout: float = 10) -> bool:
        """Stop container ``name`` and remove it; afterwards the name is free.

        Graceful: the engine sends the container's stop signal (SIGTERM unless
        the image says otherwise), waits up to ``timeout`` seconds, then kills.
        Not graceful: SIGKILL at once. A container that is not running is just
        removed. Works on containers kstlib did not create. Returns ``True``
        once the container is gone (as :meth:`SessionManager.stop
        <kstlib.ops.SessionManager.stop>` does); failures raise.

        Example:
            >>> ContainerRunner(runtime="docker").stop("bot", timeout=5)  # doctest: +SKIP
            True
        """
        validate_lookup_name(name)
        validate_timeout(timeout)
        with self._using() as engine:
            info = self._inspect(engine, name, Op.STOP)
            if info.state in LIVE_STATES:
                try:
                    if graceful:
                        engine.stop(info.id, name, timeout)
                    else:
                        self._kill(engine, info, name)
                except SessionNotFoundError:
                    return True  # removed by someone else meanwhile: what stop() wanted
            self._remove_quietly(engine, info.id, name, Op.STOP)
        return True

    def _kill(self, engine: EngineAdapter, info: ContainerInfo, name: str) -> None:
        try:
            engine.kill(info.id, name)
        except SessionStopError:
            # It may have exited between inspect and kill: only a live one is an error.
            try:
                current = self._inspect(engine, name, Op.STOP)
            except SessionNotFoundError:
                return
            if current.id == info.id and current.state in LIVE_STATES:
                raise

    def wait(self, name: str, timeout: float | None = None) -> int:
        """Wait for the container's process to exit for good and return its exit code.

        A container whose restart policy runs it again is still waited for:
        this returns the exit code of the last run, once the engine will not
        restart it. Raises :class:`~kstlib.ops.exceptions.SessionTimeoutError`
        after ``timeout`` seconds (``None``: wait as long as it takes), and
        :class:`~kstlib.ops.exceptions.SessionNotFoundError` for an unknown
        name. The engine does the waiting, in calls of at most the runner's
        ``timeout`` (a second with a restart policy, then it inspects again).

        Example:
            >>> ContainerRunner(runtime="docker").wait("job", timeout=30)  # doctest: +SKIP
            0
        """
        validate_lookup_name(name)
        validate_optional_timeout(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        watch = RestartWatch()
        with self._using() as engine:
            info = self._inspect(engine, name)
            code: int | None = None
            while True:
                if watch.settled(info):
                    return info.exit_code if info.exit_code is not None else -1
                if code is not None and session_state(info) is not SessionState.RUNNING:
                    return code  # never started, say: what the engine's wait answered
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    raise SessionTimeoutError(
                        name, engine.runtime, f"still running after {timeout:g} s"
                    )
                left = self.timeout if deadline is None else deadline - now
                if restart_pending(info):
                    pause(min(POLL, left))
                else:
                    step = min(left, self.timeout)
                    if info.restart_policy not in NO_RESTART_POLICY:
                        step = min(step, WAIT_SLICE)
                    with suppress(SessionTimeoutError):  # a slice ran out: look again
                        code = engine.wait(info.id, max(step, 0.05))
                info = self._inspect(engine, name)

    # -- queries ------------------------------------------------------------------------

    def status(self, name: str) -> SessionStatus:
        """State, pid, exit code, creation time, image and ownership of container ``name``.

        One engine call.

        Example:
            >>> ContainerRunner(runtime="docker").status("bot").state.value  # doctest: +SKIP
            'running'
        """
        validate_lookup_name(name)
        with self._using() as engine:
            return to_status(self._inspect(engine, name), engine.runtime)

    def exists(self, name: str) -> bool:
        """Whether a container named exactly ``name`` exists (running or not).

        Example:
            >>> ContainerRunner(runtime="docker").exists("no-such-container")  # doctest: +SKIP
            False
        """
        validate_lookup_name(name)
        with self._using() as engine:
            try:
                require_engine_name(engine, name)
            except SessionNotFoundError:
                return False  # no engine can hold a container of that name
            return engine.exists(name)

    def list_sessions(self) -> SessionTable:
        """Every container on the engine, kstlib's own marked ``managed``, as a table.

        One engine call, however many containers exist. Docker's list payload
        has no pid, so ``pid`` is ``None`` there (``status()`` has it; Podman's
        listing has it). ``oom_killed`` and ``reason`` need an inspect: ``None``
        here, ``status()`` tells.

        Example:
            >>> [s.name for s in ContainerRunner(runtime="docker").list_sessions()]  # doctest: +SKIP
            ['bot']
        """
        with self._using() as engine:
            return SessionTable(
                to_status(info, engine.runtime) for info in engine.list_containers()
            )

    def _read_logs(self, name: str, request: LogRequest) -> str:
        """:meth:`~kstlib.ops.runner.Runner.logs` on a container engine (one engine call).

        Example:
            >>> ContainerRunner(runtime="docker").logs("bot", lines=1)  # doctest: +SKIP
            'ready'
            >>> ContainerRunner(runtime="docker").logs("bot", lines=1, timestamps=True)  # doctest: +SKIP
            '2026-11-25T18:46:55.819510Z ready'
        """
        timestamps, ansi = request.timestamps, request.ansi
        validate_lookup_name(name)
        count = validate_lines(request.lines)
        start = validate_since(request.since)
        # The engines count entries, and a line may take several (a partial
        # line, a Docker line over 16 KiB): ask for more, so that the first
        # line kept is whole.
        tail = None if count is None else count + min(max(count, 16), 1000) if count else 0
        with self._using() as engine:
            require_engine_name(engine, name)
            entries = engine.logs(name, LogQuery(tail, start, bool(timestamps)), keep=count)
        assembler = LineAssembler(stamped=bool(timestamps))
        out = assembler.feed(entries) + assembler.flush()
        while out and not out[-1][1]:
            out.pop()
        if count is not None:
            out = out[-count:] if count else []
        return "\n".join(render_line(stamp, text, bool(timestamps), ansi) for stamp, text in out)
