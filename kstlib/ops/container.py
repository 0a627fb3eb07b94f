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

import calendar
import math
import os
import re
import select
import signal
import sys
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import TYPE_CHECKING

from kstlib.ops.engines.adapter import (
    DEFAULT_TIMEOUT,
    MANAGED_LABEL,
    ContainerInfo,
    ContainerSpec,
    spec_from_config,
)
from kstlib.ops.engines.endpoints import connect, forget, validate_base_url, validate_timeout
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
from kstlib.ops.logfile import Since, strip_ansi
from kstlib.ops.models import (
    BackendType,
    SessionConfig,
    SessionState,
    SessionStatus,
    SessionTable,
)
from kstlib.ops.translate import Op
from kstlib.ops.validators import validate_command, validate_lookup_name, validate_runtime

if TYPE_CHECKING:
    import socket

    from kstlib.ops.engines.adapter import EngineAdapter

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


# Restart policies that never restart.
_NO_POLICY = frozenset({"", "no"})
# How long a Podman container may stay "stopped" with a restart due before we
# conclude that the engine will not restart it (its cleanup process failed).
_RESTART_GRACE = 10.0
# Polling step while a restart is due; longest single engine wait for a
# container with a restart policy (Podman's wait may miss a quick restart).
_POLL = 0.1
_WAIT_SLICE = 1.0
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _require_engine_name(engine: EngineAdapter, name: str) -> None:
    if not _ENGINE_NAME_RE.fullmatch(name):
        raise SessionNotFoundError(name, engine.runtime)


def _restart_pending(info: ContainerInfo) -> bool:
    """Whether the engine is about to restart this exited container.

    Docker says so itself (``restarting``, a RUNNING state). Podman says
    ``stopped`` from the exit until its cleanup, which applies the restart
    policy, has run (then ``running`` again, or ``exited`` for good); the
    policy, exit code and restart count tell whether a restart is due.
    """
    if info.state != "stopped":
        return False
    policy = info.restart_policy
    if policy in ("always", "unless-stopped"):
        return True
    if policy != "on-failure" or not info.exit_code:
        return False
    return info.restart_retries <= 0 or info.restart_count < info.restart_retries


def _state(info: ContainerInfo) -> SessionState:
    if _restart_pending(info):
        return SessionState.RUNNING
    return STATE_MAP.get(info.state, SessionState.UNKNOWN)


class _RestartWatch:
    """Tells a container that has exited for good from one about to be restarted.

    A restart that is due but does not come within :data:`_RESTART_GRACE`
    seconds is taken as not coming.
    """

    def __init__(self) -> None:
        self._key: tuple[object, ...] | None = None
        self._since = 0.0

    def settled(self, info: ContainerInfo) -> bool:
        if not _restart_pending(info):
            self._key = None
            return STATE_MAP.get(info.state) is SessionState.EXITED
        key = (info.id, info.restart_count, info.finished_at)
        now = time.monotonic()
        if key != self._key:
            self._key, self._since = key, now
        return now - self._since >= _RESTART_GRACE


def _reason(info: ContainerInfo, state: SessionState) -> str | None:
    """Why the container's process ended, as far as the engine tells (see SessionStatus)."""
    if info.oom_killed:
        return "oom-killed"
    if info.error:
        return info.error
    code = info.exit_code
    if state is SessionState.EXITED and code is not None and 128 < code < 128 + 65:
        try:
            return f"killed by {signal.Signals(code - 128).name}"
        except ValueError:
            return f"killed by signal {code - 128}"
    return None


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
        oom_killed=info.oom_killed,
        reason=_reason(info, state),
    )


def _check_lines(lines: object) -> int | None:
    if lines is None:
        return None
    if isinstance(lines, bool) or not isinstance(lines, int) or lines < 0:
        raise SessionConfigError(f"lines: {lines!r} must be a non-negative integer", "lines")
    return lines


def _check_since(since: object) -> datetime | None:
    """``since`` as an aware datetime (a naive one is UTC, as for tmux logs)."""
    if since is None:
        return None
    if isinstance(since, datetime):
        return since if since.tzinfo is not None else since.replace(tzinfo=timezone.utc)
    if isinstance(since, (int, float)) and not isinstance(since, bool) and math.isfinite(since):
        try:
            return _EPOCH + timedelta(seconds=since)
        except OverflowError:
            pass
    raise SessionConfigError(
        f"since: {since!r} must be a datetime or a Unix time in seconds", "since"
    )


def _check_timeout(timeout: object) -> float | None:
    if timeout is None:
        return None
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or not math.isfinite(timeout)
        or timeout < 0
    ):
        raise SessionConfigError(f"timeout: {timeout!r} must not be negative", "timeout")
    return float(timeout)


# -- log lines ------------------------------------------------------------------------

_CLOCK_RE = re.compile(rb"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)")
_FRACTION_ZONE_RE = re.compile(rb"(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)")
#: An engine time as ``(Unix seconds, nanoseconds)``: comparable, and exact.
_Stamp = tuple[int, int]


@lru_cache(maxsize=4096)
def _clock_seconds(clock: bytes) -> int | None:
    match = _CLOCK_RE.fullmatch(clock)
    if match is None:
        return None
    return calendar.timegm((*(int(g) for g in match.groups()), 0, 0, 0))


def _parse_stamp(raw: bytes) -> _Stamp | None:
    """An engine's RFC 3339 log time (Docker: nanoseconds; Podman: seconds).

    >>> _parse_stamp(b"2026-11-25T18:46:55.8195101Z")
    (1795632415, 819510100)
    >>> _parse_stamp(b"2026-11-25T19:46:55+01:00")
    (1795632415, 0)
    """
    seconds = _clock_seconds(raw[:19])
    rest = _FRACTION_ZONE_RE.fullmatch(raw, 19) if seconds is not None else None
    if seconds is None or rest is None:
        return None
    fraction, zone = rest.groups()
    if zone != b"Z":
        offset = int(zone[1:3]) * 3600 + int(zone[4:6]) * 60
        seconds -= offset if zone[:1] == b"+" else -offset
    return seconds, int(fraction.ljust(9, b"0")) if fraction else 0


@lru_cache(maxsize=4096)
def _clock_text(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


def _stamp_text(stamp: _Stamp) -> str:
    """The tmux log format: UTC, microseconds, ``Z``.

    >>> _stamp_text((1795632415, 819510100))
    '2026-11-25T18:46:55.819510Z'
    """
    return f"{_clock_text(stamp[0])}.{stamp[1] // 1000:06d}Z"


def _stamp_moment(stamp: _Stamp) -> datetime:
    return _EPOCH + timedelta(seconds=stamp[0], microseconds=stamp[1] // 1000)


def _decode(line: bytes | bytearray) -> str:
    text = bytes(line).decode("utf-8", errors="replace")
    return text[:-1] if text.endswith("\r") else text  # the terminal's \r\n


class _Cursor:
    """Where a followed log stands, so that a new read resumes right after it.

    It counts log entries, as the engines' ``since`` does: ``last`` is the
    engine time of the last entry that went into a yielded line, ``count``
    how many such entries had that time (Podman's times are whole seconds).
    After :meth:`resume`, :meth:`fresh` skips those entries when the new
    read sends them again.

    >>> cursor = _Cursor()
    >>> for stamp in [(5, 0), (6, 0), (6, 0)]:
    ...     cursor.consumed(stamp)
    >>> cursor.resume()
    datetime.datetime(1970, 1, 1, 0, 0, 6, tzinfo=datetime.timezone.utc)
    >>> [cursor.fresh(s) for s in [(6, 0), (6, 0), (6, 0), (7, 0)]]
    [False, False, True, True]
    """

    def __init__(self) -> None:
        self.last: _Stamp | None = None
        self.count = 0
        self._skip_until: _Stamp | None = None
        self._skip = 0

    def consumed(self, stamp: _Stamp | None) -> None:
        if stamp is not None and stamp == self.last:
            self.count += 1
        else:
            self.last, self.count = stamp, 1

    def resume(self) -> datetime | None:
        """Skip, from now on, what was consumed; the ``since`` of the new read."""
        self._skip_until, self._skip = self.last, self.count
        return None if self.last is None else _stamp_moment(self.last)

    def fresh(self, stamp: _Stamp | None) -> bool:
        """Whether an entry at ``stamp`` is new, rather than one consumed before."""
        if self._skip_until is None or stamp is None:
            return True
        if stamp < self._skip_until:
            return False
        if stamp == self._skip_until and self._skip > 0:
            self._skip -= 1
            return False
        self._skip_until = None
        return True


class _Lines:
    """Joins log entries into lines, each with the engine time of its first entry.

    An entry may be a part of a line (Podman writes a partial line as an
    entry of its own); a line is complete at its newline. With a
    :class:`_Cursor`, entries read before are skipped and the entries of
    each line returned are counted as consumed.

    >>> lines = _Lines(stamped=True)
    >>> lines.feed([b"2026-11-25T18:46:55Z part", b"2026-11-25T18:46:56Z ial\\r\\n"])
    [((1795632415, 0), 'partial')]
    >>> lines.feed([b"2026-11-25T18:46:57Z no newline"]), lines.flush()
    ([], [((1795632417, 0), 'no newline')])
    """

    def __init__(self, stamped: bool, cursor: _Cursor | None = None) -> None:
        self._stamped = stamped
        self._cursor = cursor
        self._pending = bytearray()
        self._started = False
        self._stamp: _Stamp | None = None
        self._open: list[_Stamp | None] = []  # entries not wholly in a returned line yet

    def feed(self, entries: Iterable[bytes]) -> list[tuple[_Stamp | None, str]]:
        if not self._stamped:
            return self._feed_plain(entries)
        out: list[tuple[_Stamp | None, str]] = []
        cursor = self._cursor
        for raw in entries:
            entry, stamp = raw, None
            head, sep, rest = raw.partition(b" ")
            if sep:
                stamp = _parse_stamp(head)
                if stamp is not None:
                    entry = rest
            if cursor is not None and not cursor.fresh(stamp):
                continue
            if not self._pending and entry.find(b"\n") == len(entry) - 1:
                out.append((stamp, _decode(entry[:-1])))  # the usual entry: one whole line
                if cursor is not None:
                    cursor.consumed(stamp)
                continue
            self._add(entry, stamp, out)
        return out

    def _add(
        self, entry: bytes, stamp: _Stamp | None, out: list[tuple[_Stamp | None, str]]
    ) -> None:
        self._open.append(stamp)
        start = 0
        while True:
            if not self._started:
                self._started, self._stamp = True, stamp
            end = entry.find(b"\n", start)
            if end < 0:
                self._pending += entry[start:]
                if not self._pending:
                    self._started = False  # an empty entry starts no line
                return
            self._pending += entry[start:end]
            out.append((self._stamp, _decode(self._pending)))
            self._pending.clear()
            self._started = False
            start = end + 1
            whole = start == len(entry)
            done = self._open if whole else self._open[:-1]
            if self._cursor is not None:
                for consumed in done:
                    self._cursor.consumed(consumed)
            self._open = [] if whole else self._open[-1:]
            if whole:
                return

    def _feed_plain(self, entries: Iterable[bytes]) -> list[tuple[_Stamp | None, str]]:
        # Without times, entry boundaries do not matter: cut the bytes at newlines.
        self._pending += b"".join(entries)
        end = self._pending.rfind(b"\n")
        if end < 0:
            return []
        text = self._pending[: end + 1].decode("utf-8", errors="replace")
        del self._pending[: end + 1]
        return [(None, line) for line in text.replace("\r\n", "\n").split("\n")[:-1]]

    def flush(self) -> list[tuple[_Stamp | None, str]]:
        """The end of the output: a last line without a newline, if any."""
        out = [(self._stamp, _decode(self._pending))] if self._pending else []
        if self._cursor is not None:
            for consumed in self._open:
                self._cursor.consumed(consumed)
        self._pending.clear()
        self._open = []
        self._started = False
        return out


def _render(stamp: _Stamp | None, text: str, timestamps: bool, ansi: bool) -> str:
    if not ansi:
        text = strip_ansi(text)
    if timestamps and stamp is not None:
        return f"{_stamp_text(stamp)} {text}"
    return text


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
        _check_timeout(timeout)
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
        count = _check_lines(lines)
        start = _check_since(since)
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
        start = _check_since(since)
        limit = _check_timeout(timeout)
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


# How long one engine wait of the attach exit watch may last, and how long, once the
# attached stream has ended, to wait for the engine to report the exit code.
_EXIT_SLICE = 10.0
_EXIT_GRACE = 5.0


class _ExitWatch:
    """Waits in a thread for a container's process to exit, to learn its exit code."""

    def __init__(self, engine: EngineAdapter, ref: str, step: float) -> None:
        self._stop = threading.Event()
        self._done = threading.Event()
        self._code: int | None = None
        self._thread = threading.Thread(
            target=self._run, args=(engine, ref, step), name="kstlib-attach-exit", daemon=True
        )
        self._thread.start()

    def _run(self, engine: EngineAdapter, ref: str, step: float) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self._code = engine.wait(ref, step)
                    return
                except SessionTimeoutError:
                    continue
                except OpsError:
                    return  # removed, or the engine went away: no code to give
        finally:
            self._done.set()

    def cancel(self) -> None:
        """Stop after the current engine wait (the thread is a daemon: nothing blocks on it)."""
        self._stop.set()

    def result(self, timeout: float) -> int | None:
        self._done.wait(timeout)
        self._stop.set()
        return self._code


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


def _relay(
    sock: socket.socket,
    in_fd: int,
    out_fd: int,
    *,
    framed: bool,
    raw: bool,
    on_resize: Callable[[], None] | None = None,
) -> bool:
    """Copy terminal input to the socket and socket output to the terminal.

    ``raw``: put the terminal in raw mode (a container with a TTY: keys go to it
    as typed, and it does the echo and line endings); else the terminal keeps its
    line discipline, and Ctrl-C detaches. ``on_resize`` is called on SIGWINCH
    (only from the main thread, where signals arrive). The terminal's settings are
    restored however this ends, and left at the start of a line. Returns ``True``
    when the user detached, ``False`` when the connection ended (the container
    exited, or the engine closed it).
    """
    import signal
    import termios
    import tty

    frames = _Frames() if framed else None
    keys = _DetachKeys()
    try:
        saved = termios.tcgetattr(in_fd)
    except termios.error as err:
        raise _TerminalError(str(err)) from err
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    watch_size = (
        on_resize is not None
        and hasattr(signal, "SIGWINCH")
        and threading.current_thread() is threading.main_thread()
    )
    if watch_size:

        def on_winch(signum: int, frame: object) -> None:
            with suppress(OSError):  # a full pipe already holds a wake-up
                os.write(wake_w, b"w")

        previous = signal.getsignal(signal.SIGWINCH)
        signal.signal(signal.SIGWINCH, on_winch)
    last = b"\n"  # the last byte written: what follows starts on a line of its own
    try:
        if raw:
            tty.setraw(in_fd)
        sock.settimeout(None)
        sock_fd = sock.fileno()
        while True:
            try:
                readable, _, _ = select.select([sock_fd, in_fd, wake_r], [], [])
            except InterruptedError:  # pragma: no cover - PEP 475 retries select
                continue
            if wake_r in readable:
                os.read(wake_r, 512)
                if on_resize is not None:
                    with suppress(OpsError):  # it may just have ended: the socket says so
                        on_resize()
            if sock_fd in readable:
                data = sock.recv(65536)
                if not data:
                    return False  # the container ended, or the engine closed the connection
                data = frames.feed(data) if frames else data
                _write_all(out_fd, data)
                last = data[-1:] or last
            if in_fd in readable:
                data = os.read(in_fd, 4096)
                if not data:
                    return True  # end of input (Ctrl-D without a TTY): detach
                data, detach = keys.feed(data)
                if data:
                    sock.sendall(data)
                if detach:
                    return True  # closing the connection detaches; the container runs on
    except KeyboardInterrupt:
        if raw:
            raise  # pragma: no cover - in raw mode Ctrl-C is a key for the container
        last = b""  # the terminal echoed ^C: end that line
        return True  # Ctrl-C without a TTY: detach, as docker attach --sig-proxy=false
    except termios.error as err:
        raise _TerminalError(str(err)) from err
    finally:
        if watch_size:
            # None: a handler not set from Python; the default is the closest
            signal.signal(signal.SIGWINCH, previous or signal.SIG_DFL)
        os.close(wake_r)
        os.close(wake_w)
        try:
            termios.tcsetattr(in_fd, termios.TCSADRAIN, saved)
        except termios.error as err:
            raise _TerminalError(f"could not restore the terminal: {err}") from err
        if last != b"\n":
            with suppress(OSError):
                _write_all(out_fd, b"\r\n")


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
    is searched once. :func:`kstlib.ops.locate.search_containers` also says
    what was searched.

    Example:
        >>> locate_container("bot", runtime="docker", base_url="unix:///nonexistent.sock")
        []
    """
    from kstlib.ops.locate import search_containers

    found = search_containers(name, runtime, base_url, timeout).found
    return [loc.runtime for loc in found if loc.runtime is not None]
