"""The container backend: sessions as Docker or Podman containers, through their SDKs.

:class:`ContainerRunner` gives containers the session semantics of
:mod:`kstlib.ops` (lifecycle, states, ownership); the engine adapters in
:mod:`kstlib.ops.engines` do the talking and translate every SDK error. The
SDKs are imported when an engine is first used, so ``import kstlib.ops``
stays fast.

States: ``running``, ``restarting`` and ``stopping`` are RUNNING; ``exited``,
``dead`` and Podman's ``stopped`` are EXITED (with the exit code);
``created``, ``configured``, ``initialized`` (never started) and ``paused``
are STOPPED; anything else is UNKNOWN.

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
import select
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from kstlib.ops.engines.base import (
    AUTO_ORDER,
    DEFAULT_TIMEOUT,
    MANAGED_LABEL,
    ContainerInfo,
    Op,
    connect,
    forget,
    spec_from_config,
    validate_base_url,
    validate_timeout,
)
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
from kstlib.ops.models import BackendType, SessionConfig, SessionState, SessionStatus
from kstlib.ops.validators import validate_command, validate_lookup_name, validate_runtime

if TYPE_CHECKING:
    import socket

    from kstlib.ops.engines.base import EngineAdapter

__all__ = ["MANAGED_LABEL", "STATE_MAP", "ContainerRunner", "locate_container"]

_BACKEND = BackendType.CONTAINER

#: Engine container states -> session states (anything else: UNKNOWN).
STATE_MAP: dict[str, SessionState] = {
    "running": SessionState.RUNNING,
    "restarting": SessionState.RUNNING,
    "stopping": SessionState.RUNNING,
    "exited": SessionState.EXITED,
    "dead": SessionState.EXITED,
    "stopped": SessionState.EXITED,
    "created": SessionState.STOPPED,
    "configured": SessionState.STOPPED,
    "initialized": SessionState.STOPPED,
    "paused": SessionState.STOPPED,
}
# States whose process may still be alive: a graceful stop() signals them.
_LIVE = frozenset({"running", "restarting", "stopping", "paused"})
# What Docker and Podman accept as a container name; nothing else can exist
# there, and it is never put into an API path.
_ENGINE_NAME_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")


def _require_engine_name(engine: EngineAdapter, name: str) -> None:
    if not _ENGINE_NAME_RE.fullmatch(name):
        raise SessionNotFoundError(name, engine.runtime)


def _state(info: ContainerInfo) -> SessionState:
    return STATE_MAP.get(info.state, SessionState.UNKNOWN)


def _to_status(info: ContainerInfo, runtime: str) -> SessionStatus:
    state = _state(info)
    return SessionStatus(
        name=info.name,
        state=state,
        backend=_BACKEND,
        pid=info.pid if state is SessionState.RUNNING else None,
        created_at=info.created_at,
        image=info.image,
        exit_code=info.exit_code if state is SessionState.EXITED else None,
        runtime=runtime,
        managed=info.managed,
        restart_count=info.restart_count,
    )


def _check_lines(lines: object) -> int | None:
    if lines is None:
        return None
    if isinstance(lines, bool) or not isinstance(lines, int) or lines < 0:
        raise SessionConfigError(f"lines: {lines!r} must be a non-negative integer", "lines")
    return lines


class ContainerRunner:
    """Run sessions as containers on one Docker or Podman engine.

    Args:
        runtime: ``"docker"``, ``"podman"``, or ``None`` for the first engine
            that answers (Podman, then Docker).
        base_url: the engine API (``unix://``, ``tcp://``, ``ssh://``);
            ``None``: ``DOCKER_HOST`` / ``CONTAINER_HOST``, else the default
            sockets (see :func:`kstlib.ops.engines.base.default_endpoints`).
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
        self.timeout = validate_timeout(timeout)
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
            kstlib.ops.exceptions.ContainerRuntimeNotFoundError: No container engine API answered (tried: unix:///nonexistent.sock). ...
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
        try:
            yield engine
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
            container_id = engine.create(spec)
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

    @staticmethod
    def _remove_quietly(engine: EngineAdapter, ref: str, name: str, op: Op) -> None:
        """Remove a container; one already gone is what we wanted."""
        try:
            engine.remove(ref, name, op)
        except SessionNotFoundError:
            return

    def stop(self, name: str, graceful: bool = True, timeout: float = 10) -> None:
        """Stop container ``name`` and remove it; afterwards the name is free.

        Graceful: the engine sends the container's stop signal (SIGTERM unless
        the image says otherwise), waits up to ``timeout`` seconds, then kills.
        Not graceful: SIGKILL at once. A container that is not running is just
        removed. Works on containers kstlib did not create.

        Example:
            >>> ContainerRunner(runtime="docker").stop("bot", timeout=5)  # doctest: +SKIP
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
                    return  # removed by someone else meanwhile: what stop() wanted
            self._remove_quietly(engine, info.id, name, Op.STOP)

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
        """Wait for the container's process to exit and return its exit code.

        Raises :class:`~kstlib.ops.exceptions.SessionTimeoutError` after
        ``timeout`` seconds (``None``: wait as long as it takes). A container
        with a restart policy counts as exited at its first exit. The wait is
        done by the engine, in calls of at most the runner's ``timeout``.

        Example:
            >>> ContainerRunner(runtime="docker").wait("job", timeout=30)  # doctest: +SKIP
            0
        """
        validate_lookup_name(name)
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0
        ):
            raise SessionConfigError(f"timeout: {timeout!r} must not be negative", "timeout")
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._using() as engine:
            self._inspect(engine, name)
            while True:
                left = self.timeout if deadline is None else deadline - time.monotonic()
                step = max(min(left, self.timeout), 0.05)
                try:
                    return engine.wait(name, step)
                except SessionTimeoutError as err:
                    if deadline is not None and time.monotonic() >= deadline:
                        raise SessionTimeoutError(
                            name, engine.runtime, f"still running after {timeout:g} s"
                        ) from err

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

    def list_sessions(self) -> list[SessionStatus]:
        """Every container on the engine, kstlib's own marked ``managed``.

        One engine call, however many containers exist. Docker's listing has
        no pid, so ``pid`` is ``None`` there (``status()`` has it).

        Example:
            >>> [s.name for s in ContainerRunner(runtime="docker").list_sessions()]  # doctest: +SKIP
            ['bot']
        """
        with self._using() as engine:
            return [_to_status(info, engine.runtime) for info in engine.list_containers()]

    def logs(self, name: str, lines: int | None = 100) -> str:
        """The last ``lines`` lines of the container's output (``None``: all of it).

        stdout and stderr come in the order written (the container has a
        terminal), with ``\\r\\n`` turned into ``\\n``. Output stays readable
        after the process exited. One engine call.

        Example:
            >>> ContainerRunner(runtime="docker").logs("bot", lines=1)  # doctest: +SKIP
            'ready'
        """
        validate_lookup_name(name)
        count = _check_lines(lines)
        with self._using() as engine:
            _require_engine_name(engine, name)
            raw = engine.logs(name, count)
        text = raw.decode("utf-8", errors="replace").replace("\r\n", "\n")
        out = text.split("\n")
        while out and not out[-1]:
            out.pop()
        if count is not None:
            # The engine counts log entries, which may hold several lines.
            out = out[-count:] if count else []
        return "\n".join(out)

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
        """Connect this terminal to the container until Ctrl-P Ctrl-Q (or it exits).

        The local terminal is put in raw mode and always restored; detaching
        leaves the container running. Works on Podman through its
        Docker-compatible API on the same socket.

        Example:
            >>> ContainerRunner(runtime="docker").attach("bot")  # doctest: +SKIP
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
            if info.tty:
                try:
                    size = os.get_terminal_size(in_fd)
                except OSError as err:
                    raise SessionAttachError(name, runtime, f"no terminal size: {err}") from err
                engine.resize(name, size.lines, size.columns)
            handle = engine.attach_socket(name)
            try:
                _relay(handle.sock, in_fd, out_fd, framed=not info.tty)
            except OSError as err:
                raise SessionAttachError(name, runtime, f"the connection broke: {err}") from err
            except _TerminalError as err:
                raise SessionAttachError(name, runtime, f"the terminal failed: {err}") from err
            finally:
                handle.sock.close()


class _Frames:
    """Incremental reader of the engines' multiplexed stream (a container without a tty)."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> bytes:
        self._buffer += data
        out: list[bytes] = []
        while len(self._buffer) >= 8:
            end = 8 + int.from_bytes(self._buffer[4:8], "big")
            if len(self._buffer) < end:
                break
            out.append(self._buffer[8:end])
            self._buffer = self._buffer[end:]
        return b"".join(out)


class _DetachKeys:
    """Spots Ctrl-P Ctrl-Q in terminal input, holding back a partial match.

    Detaching is done here, not by the engine: Podman only recognises the
    keys when each arrives in a read of its own, and a fast typist (or a
    paste) sends both at once.
    """

    KEYS = b"\x10\x11"

    def __init__(self) -> None:
        self._pending = bytearray()

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """Return the bytes to send on, and whether the detach sequence was typed."""
        out = bytearray()
        for byte in data:
            if byte == self.KEYS[len(self._pending)]:
                self._pending.append(byte)
                if len(self._pending) == len(self.KEYS):
                    self._pending.clear()
                    return bytes(out), True
                continue
            out += self._pending
            self._pending.clear()
            if byte == self.KEYS[0]:
                self._pending.append(byte)
            else:
                out.append(byte)
        return bytes(out), False


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class _TerminalError(Exception):
    """termios failed (its own error type is not an OSError)."""


def _relay(sock: socket.socket, in_fd: int, out_fd: int, *, framed: bool) -> None:
    """Copy terminal input to the socket and socket output to the terminal, in raw mode.

    The terminal's settings are restored however this ends.
    """
    import termios
    import tty

    frames = _Frames() if framed else None
    keys = _DetachKeys()
    try:
        saved = termios.tcgetattr(in_fd)
    except termios.error as err:
        raise _TerminalError(str(err)) from err
    try:
        tty.setraw(in_fd)
        sock.settimeout(None)
        sock_fd = sock.fileno()
        while True:
            readable, _, _ = select.select([sock_fd, in_fd], [], [])
            if sock_fd in readable:
                data = sock.recv(65536)
                if not data:
                    return  # the engine detached us, or the container ended
                _write_all(out_fd, frames.feed(data) if frames else data)
            if in_fd in readable:
                data = os.read(in_fd, 4096)
                if not data:
                    return
                data, detach = keys.feed(data)
                if data:
                    sock.sendall(data)
                if detach:
                    return  # closing the connection detaches; the container runs on
    except termios.error as err:
        raise _TerminalError(str(err)) from err
    finally:
        try:
            termios.tcsetattr(in_fd, termios.TCSADRAIN, saved)
        except termios.error as err:
            raise _TerminalError(f"could not restore the terminal: {err}") from err


def locate_container(
    name: str,
    runtime: str | None = None,
    base_url: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[str]:
    """The runtimes (``"podman"``, ``"docker"``) where a container named ``name`` exists.

    ``runtime=None`` searches every engine (Podman, then Docker); an engine
    that does not answer is skipped, but any other error propagates. One
    endpoint reached through both SDKs (``DOCKER_HOST`` on Podman's socket)
    is searched once.

    Example:
        >>> locate_container("bot", runtime="docker", base_url="unix:///nonexistent.sock")
        []
    """
    validate_lookup_name(name)
    runtimes = (validate_runtime(runtime),) if runtime is not None else AUTO_ORDER
    base_url = validate_base_url(base_url)
    found: list[str] = []
    searched: set[str] = set()
    for rt in runtimes:
        try:
            engine = connect(rt, base_url, validate_timeout(timeout))
            if engine.endpoint in searched:
                continue
            searched.add(engine.endpoint)
        except ContainerRuntimeNotFoundError:
            continue
        try:
            ContainerRunner._inspect(engine, name)
        except SessionNotFoundError:
            continue
        except ContainerRuntimeNotFoundError:
            forget(engine)
            continue
        found.append(rt)
    return found
