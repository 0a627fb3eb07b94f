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

import os
import re
import sys
import threading
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from kstlib.ops.engines.adapter import (
    DEFAULT_TIMEOUT,
    ContainerInfo,
    ContainerSpec,
    spec_from_config,
)
from kstlib.ops.engines.endpoints import connect, forget
from kstlib.ops.exceptions import (
    ContainerRuntimeNotFoundError,
    OpsError,
    SessionAttachError,
    SessionConfigError,
    SessionExistsError,
    SessionNotFoundError,
    SessionStartError,
    SessionStopError,
    SessionTimeoutError,
)
from kstlib.ops.logfile import Since
from kstlib.ops.models import (
    BackendType,
    SessionConfig,
    SessionState,
    SessionStatus,
    SessionTable,
)
from kstlib.ops.translate import Op
from kstlib.ops.validators import (
    validate_base_url,
    validate_call_timeout,
    validate_command,
    validate_lines,
    validate_lookup_name,
    validate_optional_timeout,
    validate_runtime,
    validate_since,
)

if TYPE_CHECKING:
    from kstlib.ops.engines.adapter import EngineAdapter
from kstlib.ops.container.logs import _Cursor, _Lines, _render
from kstlib.ops.container.relay import _EXIT_GRACE, _EXIT_SLICE, _ExitWatch, _relay, _TerminalError
from kstlib.ops.container.states import (
    _LIVE,
    _NO_POLICY,
    _restart_pending,
    _RestartWatch,
    _state,
    _to_status,
)

__all__ = ["ContainerRunner"]


_BACKEND = BackendType.CONTAINER


# What Docker and Podman accept as a container name; nothing else can exist
# there, and it is never put into an API path.
_ENGINE_NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")


# Polling step while a restart is due; longest single engine wait for a
# container with a restart policy (Podman's wait may miss a quick restart).
_POLL = 0.1


_WAIT_SLICE = 1.0


def _require_engine_name(engine: EngineAdapter, name: str) -> None:
    if not _ENGINE_NAME_RE.fullmatch(name):
        raise SessionNotFoundError(name, engine.runtime)


class ContainerRunner:
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

    backend = _BACKEND

    def __init__(
        self,
        runtime: str | None = None,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._runtime = validate_runtime(runtime) if runtime is not None else None
        self.base_url = validate_base_url(base_url)
        self.timeout = validate_call_timeout(timeout)
        self._engine: EngineAdapter | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ContainerRunner(runtime={self._runtime!r}, base_url={self.base_url!r})"

    # -- the engine ---------------------------------------------------------------------

    @property
    def engine(self) -> EngineAdapter:
        """The engine adapter (connected on first use).

        Raises:
            ContainerRuntimeNotFoundError: no engine answers; lists the endpoints tried.

        Example:
            >>> ContainerRunner(runtime="docker", base_url="unix:///nonexistent.sock").engine
            Traceback (most recent call last):
            ...
            kstlib.ops.exceptions.ContainerRuntimeNotFoundError: No docker engine API answered (tried: unix:///nonexistent.sock). ...
        """
        with self._lock:
            if self._engine is None:
                self._engine = connect(self._runtime, self.base_url, self.timeout)
            return self._engine

    @property
    def runtime(self) -> str:
        """``"docker"`` or ``"podman"``: the engine in use (connects when asked to choose).

        Example:
            >>> ContainerRunner(runtime="docker").runtime
            'docker'
        """
        if self._runtime is not None:
            return self._runtime
        return self.engine.runtime

    @property
    def endpoint(self) -> str:
        """The API endpoint of the engine in use.

        Example:
            >>> ContainerRunner(runtime="docker").endpoint  # doctest: +SKIP
            'unix:///var/run/docker.sock'
        """
        return self.engine.endpoint

    @contextmanager
    def _using(self) -> Iterator[EngineAdapter]:
        engine = self.engine
        with self._forgetting(engine):
            yield engine

    @contextmanager
    def _forgetting(self, engine: EngineAdapter) -> Iterator[None]:
        try:
            yield
        except ContainerRuntimeNotFoundError:
            # The engine went away: ask again (and re-ping) next time.
            forget(engine)
            with self._lock:
                if self._engine is engine:
                    self._engine = None
            raise

    @staticmethod
    def _inspect(engine: EngineAdapter, name: str, op: Op = Op.READ) -> ContainerInfo:
        _require_engine_name(engine, name)
        info = engine.inspect(name, op)
        if info.name != name:
            # The engine also matches id prefixes; sessions match names exactly.
            raise SessionNotFoundError(name, engine.runtime)
        return info

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
        if not isinstance(config, SessionConfig):
            raise SessionConfigError(
                f"config: expected a SessionConfig, got {type(config).__name__}", "config"
            )
        spec = spec_from_config(config)
        name = config.name
        with self._using() as engine:
            runtime = engine.runtime
            if config.runtime is not None and config.runtime != runtime:
                raise SessionConfigError(
                    f"runtime: the config asks for {config.runtime} but this runner uses {runtime}",
                    "runtime",
                )
            try:
                previous: ContainerInfo | None = self._inspect(engine, name, Op.START)
            except SessionNotFoundError:
                previous = None
            if previous is not None:
                if _state(previous) is not SessionState.EXITED:
                    raise SessionExistsError(name, runtime)
                # By id: a concurrent start may already own the name again.
                self._remove_quietly(engine, previous.id, name, Op.START)
            container_id = self._create(engine, spec, config)
            try:
                engine.start(container_id, name)
            except ContainerRuntimeNotFoundError:
                raise
            except OpsError as err:
                reason = err.reason if isinstance(err, SessionStartError) else str(err)
                try:
                    self._remove_quietly(engine, container_id, name, Op.START)
                except OpsError as cleanup:
                    reason += f" (removing the unstarted container also failed: {cleanup})"
                raise SessionStartError(name, runtime, reason) from err
            return _to_status(self._inspect(engine, name, Op.START), runtime)

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
            if getattr(err, "missing_image", None) is None:
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
        from kstlib.ops.registry import (
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
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0:
            raise SessionConfigError(f"timeout: {timeout!r} must not be negative", "timeout")
        with self._using() as engine:
            info = self._inspect(engine, name, Op.STOP)
            if info.state in _LIVE:
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
            if current.id == info.id and current.state in _LIVE:
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
        watch = _RestartWatch()
        with self._using() as engine:
            info = self._inspect(engine, name)
            code: int | None = None
            while True:
                if watch.settled(info):
                    return info.exit_code if info.exit_code is not None else -1
                if code is not None and _state(info) is not SessionState.RUNNING:
                    return code  # never started, say: what the engine's wait answered
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    raise SessionTimeoutError(
                        name, engine.runtime, f"still running after {timeout:g} s"
                    )
                left = self.timeout if deadline is None else deadline - now
                if _restart_pending(info):
                    time.sleep(min(_POLL, left))
                else:
                    step = min(left, self.timeout)
                    if info.restart_policy not in _NO_POLICY:
                        step = min(step, _WAIT_SLICE)
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
            return _to_status(self._inspect(engine, name), engine.runtime)

    def exists(self, name: str) -> bool:
        """Whether a container named exactly ``name`` exists (running or not).

        Example:
            >>> ContainerRunner(runtime="docker").exists("no-such-container")  # doctest: +SKIP
            False
        """
        validate_lookup_name(name)
        with self._using() as engine:
            try:
                self._inspect(engine, name)
            except SessionNotFoundError:
                return False
            return True

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
                _to_status(info, engine.runtime) for info in engine.list_containers()
            )

    def logs(
        self,
        name: str,
        lines: int | None = 100,
        since: Since | None = None,
        timestamps: bool = False,
        ansi: bool = True,
    ) -> str:
        """The last ``lines`` lines of the container's output (``None``: all of it).

        stdout and stderr come in the order written (the container has a
        terminal), with ``\\r\\n`` turned into ``\\n``. Output stays readable
        after the process exited. ``since`` (an aware datetime, or a Unix
        time) keeps the lines written from then on; ``timestamps`` prefixes
        each line with its UTC time as tmux logs do
        (``2026-11-25T18:46:55.819510Z text``; Podman's times have whole
        seconds); ``ansi=False`` strips colours and other escape sequences.
        One engine call.

        Example:
            >>> ContainerRunner(runtime="docker").logs("bot", lines=1)  # doctest: +SKIP
            'ready'
            >>> ContainerRunner(runtime="docker").logs("bot", lines=1, timestamps=True)  # doctest: +SKIP
            '2026-11-25T18:46:55.819510Z ready'
        """
        validate_lookup_name(name)
        count = validate_lines(lines)
        start = validate_since(since)
        # The engines count entries, and a line may take several (a partial
        # line, a Docker line over 16 KiB): ask for more, so that the first
        # line kept is whole.
        tail = None if count is None else count + min(max(count, 16), 1000) if count else 0
        with self._using() as engine:
            _require_engine_name(engine, name)
            entries = engine.logs(name, tail, since=start, timestamps=bool(timestamps))
        assembler = _Lines(stamped=bool(timestamps))
        out = assembler.feed(entries) + assembler.flush()
        while out and not out[-1][1]:
            out.pop()
        if count is not None:
            out = out[-count:] if count else []
        return "\n".join(_render(stamp, text, bool(timestamps), ansi) for stamp, text in out)

    def follow_logs(
        self,
        name: str,
        since: Since | None = None,
        timestamps: bool = False,
        ansi: bool = True,
        timeout: float | None = None,
    ) -> Iterator[str]:
        """Yield the container's output lines as they are written; end when it ends for good.

        Through the engine's streaming logs API. Without ``since``, only the
        lines written once the iteration has begun; with it, the lines
        written from then on, then the new ones. A restart by the container's
        restart policy does not end it: the next run's lines follow. It ends
        when the container has exited and will not be restarted, or is
        removed. ``timestamps`` and ``ansi`` are as for :meth:`logs`. With
        ``timeout`` (seconds, from the first line asked for), it raises
        :class:`~kstlib.ops.exceptions.SessionTimeoutError` ("the follow timed
        out after T s") at the deadline, even if the container is silent: no
        read waits past it and no line is yielded after it. Leaving the loop early (or
        ``close()``) releases the engine connection at once; no thread is
        used.

        Example:
            >>> for line in ContainerRunner(runtime="docker").follow_logs("job"):  # doctest: +SKIP
            ...     print(line)
            step 1
            step 2
        """
        validate_lookup_name(name)
        start = validate_since(since)
        limit = validate_optional_timeout(timeout)
        with self._using() as engine:
            info = self._inspect(engine, name)
        return self._follow(
            engine, info, start=start, timestamps=bool(timestamps), ansi=bool(ansi), timeout=limit
        )

    def _follow(
        self,
        engine: EngineAdapter,
        info: ContainerInfo,
        *,
        start: datetime | None,
        timestamps: bool,
        ansi: bool,
        timeout: float | None,
    ) -> Iterator[str]:
        name, runtime = info.name, engine.runtime
        deadline = None if timeout is None else time.monotonic() + timeout
        # The follow ran out of time; the session itself is fine and runs on.
        expired = f"the follow timed out after {timeout or 0:g} s (the session is still running)"

        def left() -> float | None:
            # Asked before every read and every line: nothing is yielded, and
            # no read waits, past the deadline.
            if deadline is None:
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SessionTimeoutError(name, runtime, expired)
            return remaining

        # Lines always come with the engine's times (shown only if asked for),
        # so that each new read resumes right after the last line yielded: a
        # restart takes a new stream, and after the container stops, Podman's
        # stream may skip lines; what it sends then is read again, plainly.
        cursor = _Cursor()
        watch = _RestartWatch()
        check = engine.follow_needs_check
        since, tail = (start, None) if start is not None else (None, 0)
        # "Written after the call", for a read that cannot use tail=0.
        anchor = start or datetime.now(timezone.utc)
        with self._forgetting(engine):
            try:
                current: ContainerInfo | None = info
                while current is not None:
                    info = current
                    if info.state == "running":
                        opened = time.monotonic()
                        heard = yield from self._stream(
                            engine,
                            info,
                            cursor,
                            since=since,
                            tail=tail,
                            check=check,
                            left=left,
                            style=(timestamps, ansi),
                        )
                        if not heard and time.monotonic() - opened < _POLL:
                            time.sleep(min(_POLL, left() or _POLL))
                    current = self._after_stream(engine, info, watch, left)
                    since, tail = cursor.resume() or anchor, None
                # The container is done: what the streams did not bring, in one plain read.
                left()
                try:
                    entries = engine.logs(info.id, None, since=since, timestamps=True)
                except SessionNotFoundError:
                    entries = []  # removed meanwhile: nothing more to read
                final = _Lines(stamped=True, cursor=cursor)
                for stamp, text in final.feed(entries) + final.flush():
                    left()
                    yield _render(stamp, text, timestamps, ansi)
            except SessionTimeoutError as err:
                if deadline is not None and time.monotonic() >= deadline and err.reason != expired:
                    raise SessionTimeoutError(name, runtime, expired) from err
                raise

    def _stream(
        self,
        engine: EngineAdapter,
        info: ContainerInfo,
        cursor: _Cursor,
        *,
        since: datetime | None,
        tail: int | None,
        check: bool,
        left: Callable[[], float | None],
        style: tuple[bool, bool],
    ) -> Generator[str, None, bool]:
        """Yield the lines of one followed-log stream of a running container; whether any came.

        With ``check``, each chunk is used only once an inspect shows the same
        run still going; otherwise it is left for the next read.
        """
        heard = False
        stream = engine.follow_logs(
            info.id, info.name, tail=tail, since=since, timestamps=True, timeout=left()
        )
        try:
            lines = _Lines(stamped=True, cursor=cursor)
            while (entries := stream.read(left())) is not None:
                if not entries:
                    continue
                heard = True
                if check and not self._same_run(engine, info):
                    break
                for stamp, text in lines.feed(entries):
                    left()
                    yield _render(stamp, text, *style)
        finally:
            stream.close()
        return heard

    def _same_run(self, engine: EngineAdapter, info: ContainerInfo) -> bool:
        try:
            current = self._inspect(engine, info.name)
        except SessionNotFoundError:
            return False
        return (current.id, current.state, current.started_at) == (
            info.id,
            "running",
            info.started_at,
        )

    def _after_stream(
        self,
        engine: EngineAdapter,
        info: ContainerInfo,
        watch: _RestartWatch,
        left: Callable[[], float | None],
    ) -> ContainerInfo | None:
        """After a followed log ended: the container to follow on, or ``None`` when it is done."""
        while True:
            try:
                current = self._inspect(engine, info.name)
            except SessionNotFoundError:
                return None  # removed: the session is over
            if current.id != info.id or watch.settled(current):
                return None  # exited for good, or replaced by another session of that name
            if current.state == "running":
                return current
            if _state(current) is not SessionState.RUNNING:
                return None  # paused, or never started: nothing more will come
            time.sleep(min(_POLL, left() or _POLL))

    def exec(self, name: str, command: str | list[str] | tuple[str, ...]) -> tuple[int, str]:
        """Run ``command`` in the running container; return ``(exit_code, output)``.

        A list is the argv; a string is split with :mod:`shlex` (no shell).
        Output is stdout then stderr as the engine relays them (no terminal).
        Bounded by the runner's ``timeout``.

        Example:
            >>> ContainerRunner(runtime="docker").exec("bot", ["echo", "hi"])  # doctest: +SKIP
            (0, 'hi\\n')
        """
        import shlex

        validate_lookup_name(name)
        checked = validate_command(command)
        if checked is None:
            raise SessionConfigError("command: must not be empty", "command")
        argv = shlex.split(checked) if isinstance(checked, str) else list(checked)
        with self._using() as engine:
            _require_engine_name(engine, name)
            code, output = engine.exec(name, argv)
        return code, output.decode("utf-8", errors="replace")

    # -- attach -------------------------------------------------------------------------

    def attach(self, name: str) -> None:
        """Connect this terminal to the container until a detach, or until it ends.

        See :meth:`attach_terminal`, which also tells how the attach ended.

        Example:
            >>> ContainerRunner(runtime="docker").attach("bot")  # doctest: +SKIP
        """
        self.attach_terminal(name)

    def attach_terminal(self, name: str) -> int | None:
        """Connect this terminal to the container; tell whether it was a detach or an end.

        A container with a TTY (kstlib's are) gets the terminal in raw mode, and
        its size follows the terminal's (SIGWINCH); detach with Ctrl-P Ctrl-Q.
        A container without a TTY (started elsewhere) leaves the terminal as it
        is (line editing and echo, no raw mode); detach with Ctrl-C or Ctrl-D.
        The terminal is always restored; a detach leaves the container running.
        Works on Podman through its Docker-compatible API on the same socket.

        Returns:
            ``None`` after a detach (the session runs on), or the container's
            exit code when it ended while attached (``-1`` when the engine could
            not tell it: the container was removed at once).

        Example:
            >>> ContainerRunner(runtime="docker").attach_terminal("bot")  # doctest: +SKIP
            5
        """
        validate_lookup_name(name)
        with self._using() as engine:
            runtime = engine.runtime
            info = self._inspect(engine, name, Op.ATTACH)
            if _state(info) is not SessionState.RUNNING:
                raise SessionAttachError(
                    name, runtime, f"the container is {info.state}, not running; start it first"
                )
            try:
                in_fd, out_fd = sys.stdin.fileno(), sys.stdout.fileno()
            except (AttributeError, ValueError, OSError) as err:
                raise SessionAttachError(name, runtime, "standard input is not a terminal") from err
            if not os.isatty(in_fd):
                raise SessionAttachError(name, runtime, "standard input is not a terminal")
            resize: Callable[[], None] | None = None
            if info.tty:

                def resize() -> None:
                    try:
                        size = os.get_terminal_size(in_fd)
                    except OSError as err:
                        raise SessionAttachError(name, runtime, f"no terminal size: {err}") from err
                    engine.resize(name, size.lines, size.columns)

                resize()
            # Watch for the exit before attaching, so its code is known even when
            # the container is removed right after (a stop from elsewhere).
            watch = _ExitWatch(engine, info.id, min(self.timeout, _EXIT_SLICE))
            handle = engine.attach_socket(name)
            try:
                detached = _relay(
                    handle.sock,
                    in_fd,
                    out_fd,
                    framed=not info.tty,
                    raw=bool(info.tty),
                    on_resize=resize,
                )
            except OSError as err:
                watch.cancel()
                raise SessionAttachError(name, runtime, f"the connection broke: {err}") from err
            except _TerminalError as err:
                watch.cancel()
                raise SessionAttachError(name, runtime, f"the terminal failed: {err}") from err
            except BaseException:
                watch.cancel()
                raise
            finally:
                handle.sock.close()
            if detached:
                watch.cancel()
                return None
            code = watch.result(min(self.timeout, _EXIT_GRACE))
            if code is not None:
                return code
            try:
                info = self._inspect(engine, name)
            except SessionNotFoundError:
                return -1  # removed at once: the code went with it
            if _state(info) is SessionState.RUNNING:
                return None  # the engine closed the connection; the session runs on
            return info.exit_code if info.exit_code is not None else -1
