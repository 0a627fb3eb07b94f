"""pytest plugin: real sessions as test fixtures, cleaned up whatever happens.

Installed with kstlib (a ``pytest11`` entry point), so any test suite can use:

* ``ops_session``: a factory fixture that starts sessions on any backend with
  names unique to the test run, and stops and removes every one of them after
  the test, whether it passed or failed;
* ``--kstlib-ops-keep``: keep the sessions after the tests, for debugging (their
  names are listed in pytest's terminal summary);
* ``@pytest.mark.ops_backend("docker")``: the test needs that backend (tmux,
  docker, podman, container, or swarm: a swarm manager at ``DOCKER_HOST``); the
  test is skipped when it is missing, and
  fails instead under ``KSTLIB_REQUIRE_ENGINES=1``. A name that is not a
  backend (a typo) is a usage error that stops the run.

A run that is killed (``SIGKILL``, a crash) cannot clean up, so every session
the fixture starts is marked with its owner, the test process (pid and start
time): a container or swarm service label :data:`OWNER_LABEL`, a tmux session option
:data:`OWNER_OPTION`, and a record file (0600) under
``$XDG_STATE_HOME/kstlib/ops/pytest-owners/``. The next pytest run reaps the
sessions whose owner is gone: it stops and removes only a session that
carries the mark of a dead owner, never one of a live run, nor one kstlib did
not start.

Example:
    .. code-block:: python

        import pytest

        @pytest.mark.ops_backend("docker")
        def test_app_talks_to_redis(ops_session):
            redis = ops_session(["redis-server", "--port", "6390"], backend="docker",
                                image="redis:7", ports=["127.0.0.1:6390:6390"])
            redis.wait_for_log("Ready to accept connections", timeout=30)
            assert my_app.ping("127.0.0.1", 6390)
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import shutil
import stat
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kstlib.ops.exceptions import OpsError, SessionConfigError, SessionNotFoundError
from kstlib.ops.manager import SessionManager
from kstlib.ops.models import BackendType, Command, SessionStatus
from kstlib.ops.statedir import state_dir

__all__ = [
    "OWNER_LABEL",
    "OWNER_OPTION",
    "OpsSessionFactory",
    "backend_problem",
    "ops_session",
    "owner_token",
    "reap_orphans",
]

OpsSessionFactory = Callable[..., SessionManager]
_BACKENDS = ("tmux", "container", "docker", "podman", "swarm")
#: Set to 1 (CI) so that a test whose backend is missing fails instead of being skipped.
REQUIRE_ENGINES_ENV = "KSTLIB_REQUIRE_ENGINES"


def require_engines() -> bool:
    """Whether ``$KSTLIB_REQUIRE_ENGINES`` asks for every backend (``1``; unset or ``0``: no).

    Raises:
        SessionConfigError: any other value (a typo must not turn failures into skips).

    Example:
        >>> require_engines() in (True, False)
        True
    """
    raw = os.environ.get(REQUIRE_ENGINES_ENV, "").strip()
    if raw in ("", "0"):
        return False
    if raw == "1":
        return True
    from kstlib.ops.validators import shown

    raise SessionConfigError(
        f"{REQUIRE_ENGINES_ENV}: {shown(raw)} must be 1 (a missing backend fails the test) "
        "or 0 (it skips the test)",
        REQUIRE_ENGINES_ENV,
    )


#: Label naming the test process that started a container or service (``pid:start``).
OWNER_LABEL = "io.kstlib.pytest-owner"
#: The backends whose sessions carry ``OWNER_LABEL`` (containers and swarm services).
_LABELLED = (BackendType.CONTAINER, BackendType.SWARM)
#: tmux session option naming the test process that started the session (``pid:start``).
OWNER_OPTION = "@kstlib-pytest-owner"
_KEPT = pytest.StashKey[list[str]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--kstlib-ops-keep``."""
    parser.addoption(
        "--kstlib-ops-keep",
        action="store_true",
        default=False,
        help="keep the sessions that ops_session started, for debugging (kstlib.ops)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``ops_backend`` marker."""
    config.addinivalue_line(
        "markers",
        "ops_backend(name): the test needs the kstlib.ops backend 'tmux', 'docker', "
        "'podman', 'container' or 'swarm'; skipped when it is missing, failed under "
        "KSTLIB_REQUIRE_ENGINES=1",
    )


def _unknown_backend(backend: object) -> str:
    """The message for a backend name that does not exist, with a guess when one is close."""
    guess = difflib.get_close_matches(str(backend), _BACKENDS, n=1)
    hint = f"; did you mean {guess[0]!r}?" if guess else ""
    return f"unknown backend {backend!r} (choose from {', '.join(_BACKENDS)}){hint}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A misspelt ``ops_backend`` marker is a usage error, not a silent skip."""
    for item in items:
        for marker in item.iter_markers("ops_backend"):
            if not marker.args:
                raise pytest.UsageError(
                    f"{item.nodeid}: @pytest.mark.ops_backend needs a backend name "
                    f"({', '.join(_BACKENDS)})"
                )
            for backend in marker.args:
                if backend not in _BACKENDS:
                    raise pytest.UsageError(
                        f"{item.nodeid}: @pytest.mark.ops_backend: {_unknown_backend(backend)}"
                    )


def backend_problem(backend: str) -> str | None:
    """Why ``backend`` cannot be used here, or ``None`` when it can.

    Example:
        >>> backend_problem("kubernetes")
        "unknown backend 'kubernetes' (choose from tmux, container, docker, podman, swarm)"
        >>> backend_problem("dokcer")
        "unknown backend 'dokcer' (choose from tmux, container, docker, podman, swarm); did you mean 'docker'?"
    """
    if backend not in _BACKENDS:
        return _unknown_backend(backend)
    if backend == "tmux":
        return None if shutil.which("tmux") else "tmux is not on PATH"
    if backend == "swarm":  # a swarm manager at DOCKER_HOST (or the default socket)
        from kstlib.ops.swarm import SwarmRunner

        try:
            SwarmRunner().engine  # noqa: B018
        except OpsError as err:
            return str(err)
        return None
    from kstlib.ops.container import ContainerRunner

    try:
        ContainerRunner(runtime=None if backend == "container" else backend).engine  # noqa: B018
    except OpsError as err:
        return str(err)
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip (or, under ``KSTLIB_REQUIRE_ENGINES=1``, fail) tests whose backend is missing."""
    for marker in item.iter_markers("ops_backend"):
        required = require_engines()
        for backend in marker.args:
            problem = backend_problem(str(backend))
            if problem is None:
                continue
            message = f"kstlib.ops backend {backend!r} is not available: {problem}"
            if required:
                pytest.fail(f"KSTLIB_REQUIRE_ENGINES=1 and {message}", pytrace=False)
            pytest.skip(message)


# -- ownership marks and the reaper ------------------------------------------------------


def _proc_stat(pid: int) -> list[bytes] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (Linux), ``None`` if none."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    return data.rsplit(b")", 1)[-1].split()


def _process_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, Linux), ``None`` if unknown."""
    fields = _proc_stat(pid)
    return fields[19].decode() if fields is not None and len(fields) > 19 else None


def owner_token(pid: int | None = None) -> str:
    """The mark of a test process: ``"<pid>:<start time>"`` (``"<pid>:?"`` without /proc).

    Example:
        >>> owner_token().split(":")[0] == str(os.getpid())
        True
    """
    pid = os.getpid() if pid is None else pid
    return f"{pid}:{_process_start(pid) or '?'}"


def _owner_alive(token: str) -> bool:
    """Whether the test process that ``token`` names still runs.

    The same process, that is: not a later one that reuses its pid.
    """
    pid_text, _, start = token.partition(":")
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: alive
    fields = _proc_stat(pid)
    if fields and fields[0] in (b"Z", b"X"):
        return False  # killed, not yet collected by its parent
    if start in ("", "?"):
        return True
    return _process_start(pid) in (start, None)


def _records_dir(create: bool) -> Path | None:
    """The owner records' folder (0700, ours, no symlink), ``None`` when unusable."""
    folder = state_dir() / "pytest-owners"
    try:
        if create:
            folder.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            with contextlib.suppress(FileExistsError):
                folder.mkdir(mode=0o700)
        info = folder.lstat()
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        return None
    if info.st_mode & 0o077:
        try:
            os.chmod(folder, 0o700)
        except OSError:
            return None
    return folder


def _write_record(path: Path, record: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(tmp, flags, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(record, handle)
    os.replace(tmp, path)


def _tmux_owner(runner: Any, name: str) -> str | None:
    """The owner mark of tmux session ``name`` (``None``: unmarked, or no such session)."""
    from libtmux.exc import LibTmuxException

    try:
        proc = runner.server.cmd("show-options", "-qv", "-t", f"={name}:", OWNER_OPTION)
    except (LibTmuxException, OpsError, OSError):  # no answer means no mark
        return None
    out = [line for line in (proc.stdout or []) if line]
    return out[0] if len(out) == 1 and not proc.stderr else None


def _mark_tmux(runner: Any, name: str, token: str) -> None:
    from libtmux.exc import LibTmuxException

    # best effort: an unmarked session is never reaped
    with contextlib.suppress(LibTmuxException, OpsError, OSError):
        runner.server.cmd("set-option", "-t", f"={name}:", OWNER_OPTION, token)


def _reap_one(record: dict[str, Any]) -> str:
    """Remove the session a dead owner's record names if it carries that owner's mark.

    Returns ``"reaped"``, ``"done"`` (gone already, or not that owner's: left alone)
    or ``"retry"`` (the backend did not answer).
    """
    name, token = str(record.get("name")), str(record.get("owner"))
    try:
        if record.get("backend") == BackendType.TMUX.value:
            from kstlib.ops.tmux import TmuxRunner

            tmux = TmuxRunner(
                socket_name=record.get("socket_name"),
                socket_path=record.get("socket_path"),
                tmux_bin=record.get("tmux_bin"),
            )
            if not tmux.exists(name):
                return "done"
            status: SessionStatus = tmux.status(name)
            if not status.managed or _tmux_owner(tmux, name) != token:
                return "done"  # not kstlib's, or not that run's: never touched
            tmux.stop(name, graceful=False)
            return "reaped"
        if record.get("backend") == BackendType.SWARM.value:
            return _reap_service(name, token, record.get("base_url"))
        from kstlib.ops.container import ContainerRunner

        runtime = record.get("runtime")
        outcome = "done"
        # runtime None: the engine was picked at start; look on both
        for engine_name in [runtime] if runtime else ["podman", "docker"]:
            runner = ContainerRunner(runtime=engine_name, base_url=record.get("base_url"))
            try:
                info = runner.engine.inspect(name)
            except SessionNotFoundError:
                continue
            except OpsError:
                outcome = "retry"  # this engine does not answer now: next run
                continue
            if info.name == name and info.managed and info.labels.get(OWNER_LABEL) == token:
                runner.stop(name, graceful=False)
                return "reaped"
        return outcome
    except SessionNotFoundError:
        return "done"
    except (OpsError, ValueError, TypeError):
        return "retry"  # the backend does not answer now: next run


def _reap_service(name: str, token: str, base_url: Any) -> str:
    """Remove swarm service ``name`` if it is kstlib's and carries ``token`` as its owner."""
    from kstlib.ops.swarm import SwarmRunner
    from kstlib.ops.swarm.runner import _managed

    runner = SwarmRunner(base_url=base_url)
    service = runner.engine.find(name)
    labels = (service.get("Spec") or {}).get("Labels") or {}
    if not _managed(service) or labels.get(OWNER_LABEL) != token:
        return "done"  # not kstlib's, or not that run's: never touched
    runner.stop(name, graceful=False)
    return "reaped"


def reap_orphans() -> list[str]:
    """Stop and remove the sessions of test runs that were killed; return their names.

    Only sessions whose record names an owner process that is gone, and that
    still carry that owner's mark, are removed. Called at the start of every
    pytest session; cheap when there is nothing to reap (one folder listing).

    Example:
        >>> reap_orphans()  # doctest: +SKIP
        ['test_worker-1f2e3d4c']
    """
    folder = _records_dir(create=False)
    if folder is None:
        return []
    reaped: list[str] = []
    for path in sorted(folder.glob("*.json")):
        try:
            if path.is_symlink():
                continue
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(record, dict) or _owner_alive(str(record.get("owner"))):
            continue
        outcome = _reap_one(record)
        if outcome == "retry":
            continue
        with contextlib.suppress(OSError):
            path.unlink()
        if outcome == "reaped":
            reaped.append(str(record.get("name")))
    return reaped


def pytest_sessionstart(session: pytest.Session) -> None:
    """Reap what killed runs left behind (see :func:`reap_orphans`)."""
    if hasattr(session.config, "workerinput"):
        return  # pytest-xdist workers: the controller reaps
    reap_orphans()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """List the sessions ``--kstlib-ops-keep`` kept (visible without ``-s``)."""
    kept = config.stash.get(_KEPT, [])
    if kept:
        terminalreporter.section("kstlib.ops kept sessions")
        for line in kept:
            terminalreporter.write_line(line)


class _OwnedSession(SessionManager):
    """A SessionManager whose sessions carry the test process's owner mark."""

    _owner: str = ""
    _record: Path | None = None

    def _save_record(self) -> None:
        if self._record is None:
            return
        config = self.config
        record = {
            "owner": self._owner,
            "name": self.name,
            "backend": config.backend.value,
            "runtime": config.runtime,
            "base_url": config.base_url,
            "socket_name": config.socket_name,
            "socket_path": config.socket_path,
            "tmux_bin": self._tmux_bin,
        }
        with contextlib.suppress(OSError):
            _write_record(self._record, record)

    def start(self, command: Command | None = None, **overrides: Any) -> SessionStatus:
        if self.backend in _LABELLED and "labels" in overrides:
            overrides["labels"] = {**(overrides["labels"] or {}), OWNER_LABEL: self._owner}
        self._save_record()  # before: a run killed during start leaves a record to reap by
        status = super().start(command, **overrides)
        self._save_record()  # the overrides may have moved it
        if self.backend is BackendType.TMUX:
            _mark_tmux(self.runner, self.name, self._owner)
        return status

    def _forget(self) -> None:
        if self._record is not None:
            with contextlib.suppress(OSError):
                self._record.unlink()


@pytest.fixture
def ops_session(request: pytest.FixtureRequest) -> Iterator[OpsSessionFactory]:
    """Start sessions for a test; every one is stopped and removed afterwards.

    Call it like :class:`~kstlib.ops.SessionManager`, with the command first:
    ``ops_session(command, backend="tmux", name=None, start=True, **options)``.
    ``backend`` is ``"tmux"``, ``"container"``, ``"docker"`` or ``"podman"``
    (the last two: a container on that engine). The name defaults to a unique
    ``<test>-<random>``. Each session is marked with this test process as its
    owner, so that a run killed before its cleanup is reaped by the next one.

    Example:
        .. code-block:: python

            def test_worker(ops_session):
                worker = ops_session("echo ready; sleep 60")
                assert worker.wait_for_log("ready", timeout=5) == "ready"
    """
    made: list[_OwnedSession] = []
    owner = owner_token()
    prefix = "".join(
        c if c.isascii() and (c.isalnum() or c in "_-") else "-" for c in request.node.name
    )[:40].strip("-_")
    prefix = prefix if prefix[:1].isalpha() else f"t{prefix}"

    def factory(
        command: Command | None = None,
        *,
        backend: str = "tmux",
        name: str | None = None,
        start: bool = True,
        **options: Any,
    ) -> SessionManager:
        if backend not in _BACKENDS:
            raise SessionConfigError(f"backend: {_unknown_backend(backend)}", field="backend")
        if backend in ("docker", "podman"):
            options.setdefault("runtime", backend)
            backend = "container"
        if backend in (b.value for b in _LABELLED):
            options["labels"] = {**(options.get("labels") or {}), OWNER_LABEL: owner}
        session_name = name or f"{prefix}-{uuid.uuid4().hex[:8]}"
        manager = _OwnedSession(session_name, backend=backend, **options)
        manager._owner = owner
        folder = _records_dir(create=True)
        if folder is not None:
            manager._record = folder / f"{uuid.uuid4().hex}.json"
        made.append(manager)
        if start:
            manager.start(command)
        return manager

    yield factory
    if request.config.getoption("--kstlib-ops-keep"):
        kept = request.config.stash.setdefault(_KEPT, [])
        for manager in made:
            manager._forget()  # kept on purpose: not for the reaper
            kept.append(f"kept session {manager.name!r} on {manager.backend.value}")
        return
    errors: list[str] = []
    for manager in reversed(made):
        try:
            manager.stop(graceful=True, timeout=5)
        except SessionNotFoundError:
            pass
        except OpsError as err:
            errors.append(str(err))
            continue  # the record stays: a later run tries again
        manager._forget()
    if errors:
        pytest.fail("kstlib.ops could not clean up: " + "; ".join(errors), pytrace=False)
