"""pytest plugin: real sessions as test fixtures, cleaned up whatever happens.

Installed with kstlib (a ``pytest11`` entry point, ``kstlib_ops``; where
autoloading is off, ``-p kstlib.ops.pytest_plugin`` or ``pytest_plugins``: every
spelling registers it once), so any test suite can use:

* ``ops_session``: a factory fixture that starts sessions on any backend with
  names unique to the test run, and stops and removes every one of them after
  the test, whether it passed or failed; the same factory at wider scopes:
  ``ops_session_class``, ``ops_session_module``, ``ops_session_session``, each
  cleaned up at the end of its scope, and :func:`session_factory` for a fixture
  of any scope (a package's);
* ``reuse=True`` (any of them): the session outlives the run and the next run
  finds it again when its configuration hash (:data:`REUSE_LABEL`,
  :data:`REUSE_OPTION`) is the same, restarts it when not;
* ``ops_container``: a container started by someone else (testcontainers), by
  name, as a :class:`~kstlib.ops.SessionManager`;
* ``--kstlib-ops-keep``: keep the sessions after the tests, for debugging (their
  names are listed in pytest's terminal summary);
* ``@pytest.mark.ops_backend("docker")``: the test needs that backend (tmux,
  docker, podman, container, or swarm: a swarm manager at ``DOCKER_HOST``); the
  test is skipped when it is missing, and
  fails instead under ``KSTLIB_REQUIRE_ENGINES=1``. A name that is not a
  backend (a typo) is a usage error that stops the run.

A run that is killed (``SIGKILL``, a crash) cannot clean up, so every session
the fixtures start is marked with its owner, the test process (pid, start time,
boot id, pid namespace, host): a container or swarm service label
:data:`OWNER_LABEL`, a tmux session option :data:`OWNER_OPTION`, and a record
file (0600) under ``$XDG_STATE_HOME/kstlib/ops/pytest-owners/``; the process
holds a lock there while it runs. The next pytest run reaps the sessions whose
owner is dead (its lock is free; see :mod:`kstlib.ops.pytest_plugin.owner`): it
stops and removes only a session that carries the mark of a dead owner, never
one of a live run (in any pid namespace), nor one kstlib did not start, nor a
reused one. The containers testcontainers starts during a run are reaped the
same way, without Ryuk (:mod:`kstlib.ops.pytest_plugin.tc_owner`).

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
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from typing import Any, Literal

import pytest

from kstlib.ops.exceptions import OpsError, SessionConfigError
from kstlib.ops.manager import SessionManager
from kstlib.ops.pytest_plugin.owner import owner_token, read_records, records_dir, release_lock
from kstlib.ops.pytest_plugin.reaper import OWNER_LABEL, OWNER_OPTION, reap_orphans
from kstlib.ops.pytest_plugin.sessions import (
    BACKENDS,
    REUSE_LABEL,
    REUSE_OPTION,
    SessionFactory,
    unknown_backend,
)
from kstlib.ops.pytest_plugin.tc_owner import (
    finish_testcontainers,
    refresh_testcontainers,
    watch_testcontainers,
)

__all__ = [
    "OWNER_LABEL",
    "OWNER_OPTION",
    "REUSE_LABEL",
    "REUSE_OPTION",
    "OpsSessionFactory",
    "backend_problem",
    "ops_container",
    "ops_session",
    "ops_session_class",
    "ops_session_module",
    "ops_session_session",
    "owner_token",
    "reap_orphans",
    "require_engines",
    "session_factory",
]

OpsSessionFactory = Callable[..., SessionManager]
_BACKENDS = BACKENDS
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


_KEPT = pytest.StashKey[list[str]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--kstlib-ops-keep``."""
    parser.addoption(
        "--kstlib-ops-keep",
        action="store_true",
        default=False,
        help="keep the sessions that ops_session started, for debugging (kstlib.ops)",
    )


#: The names pytest may give this plugin: its entry point's, and the module's (``-p``).
_NAMES = ("kstlib_ops", "kstlib.ops.pytest_plugin")
#: nested pytest runs in this process (pytester's in-process runs): only the outer one
#: ends this process's ownership
_DEPTH: list[int] = []


def pytest_plugin_registered(plugin: object, manager: pytest.PytestPluginManager) -> None:
    """Register once whatever the spelling: block this plugin's other name.

    ``-p kstlib.ops.pytest_plugin`` registers the module under its own name before the
    entry point (``kstlib_ops``) is loaded, and ``pytest_plugins = [...]`` in a conftest
    after it; pytest refuses one module under two names, so the other one is blocked.
    """
    if plugin is not sys.modules[__name__]:
        return
    mine = manager.get_name(plugin)
    for name in _NAMES:
        if name != mine and manager.get_plugin(name) is None and not manager.is_blocked(name):
            manager.set_blocked(name)


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``ops_backend`` marker; watch for testcontainers' session id."""
    config.addinivalue_line(
        "markers",
        "ops_backend(name): the test needs the kstlib.ops backend 'tmux', 'docker', "
        "'podman', 'container' or 'swarm'; skipped when it is missing, failed under "
        "KSTLIB_REQUIRE_ENGINES=1",
    )
    _DEPTH.append(1)
    watch_testcontainers()


def pytest_unconfigure(config: pytest.Config) -> None:
    """End this process's ownership: testcontainers' leftovers, then the lock if unused."""
    if _DEPTH:
        _DEPTH.pop()
    if _DEPTH:
        return
    finish_testcontainers(keep=bool(config.getoption("--kstlib-ops-keep", False)))
    folder = records_dir(create=False)
    if folder is None:
        return
    token = owner_token()
    if not any(record.get("owner") == token for _, record in read_records(folder)):
        release_lock(folder, token)


_unknown_backend = unknown_backend


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
    from kstlib.ops.models import BackendType
    from kstlib.ops.runners import make_runner

    # container: the first engine that answers; swarm: a manager at DOCKER_HOST (or the
    # default socket). One look-up of a name no test uses shows the backend answers.
    kind, runtime = BackendType.parse(backend)
    try:
        make_runner(kind, runtime=runtime).exists("kstlib-backend-probe")
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


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    """Before a test's body: the engines testcontainers may use now (fixtures set them)."""
    refresh_testcontainers()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    """Before a test's teardown: the engines its body pointed testcontainers at."""
    refresh_testcontainers()


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


def _prefix(node: Any) -> str:
    """A session-name prefix from a test node's name (``test_x.py`` -> ``test_x-py``)."""
    prefix = "".join(
        c if c.isascii() and (c.isalnum() or c in "_-") else "-" for c in str(node.name)
    )[:40].strip("-_")
    if not prefix:
        return "session"
    return prefix if prefix[:1].isalpha() else f"t{prefix}"


@contextlib.contextmanager
def session_factory(request: pytest.FixtureRequest) -> Iterator[OpsSessionFactory]:
    """The ``ops_session`` factory for a fixture of any scope, cleaned up when it exits.

    For scopes the ready-made fixtures do not cover, a package's above all: pytest
    gives a package-scoped fixture the package of the ``conftest.py`` that defines
    it (one defined in a plugin lives for the whole run), so it must be defined
    there.

    Example:
        .. code-block:: python

            # pkg/conftest.py
            @pytest.fixture(scope="package")
            def broker(request):
                with session_factory(request) as start:
                    yield start("echo up; sleep 600")
    """
    keep = bool(request.config.getoption("--kstlib-ops-keep"))
    factory = SessionFactory(_prefix(request.node), keep=keep)
    failed = False
    try:
        yield factory
    except BaseException:
        failed = True
        raise
    finally:
        kept, errors = factory.close()
        request.config.stash.setdefault(_KEPT, []).extend(kept)
        if errors and not failed:
            pytest.fail("kstlib.ops could not clean up: " + "; ".join(errors), pytrace=False)


def _factory(request: pytest.FixtureRequest) -> Iterator[OpsSessionFactory]:
    """A factory for the requesting scope; its sessions are stopped when the scope ends."""
    with session_factory(request) as factory:
        yield factory


@pytest.fixture
def ops_session(request: pytest.FixtureRequest) -> Iterator[OpsSessionFactory]:
    """Start sessions for a test; every one is stopped and removed afterwards.

    Call it like :class:`~kstlib.ops.SessionManager`, with the command first:
    ``ops_session(command, backend="tmux", name=None, start=True, reuse=False,
    **options)``. ``backend`` is ``"tmux"``, ``"container"``, ``"docker"``,
    ``"podman"`` (the last two: a container on that engine) or ``"swarm"``. The
    name defaults to a unique ``<test>-<random>``. Each session is marked with this
    test process as its owner, so that a run killed before its cleanup is reaped by
    the next one. ``reuse=True`` keeps the session after the run and finds it again
    in the next run when its configuration is the same (restarted when not); it is
    never stopped nor reaped (``kstlib ops stop NAME`` removes it).

    The same factory at wider scopes: :func:`ops_session_class`,
    :func:`ops_session_module`, :func:`ops_session_session`; for any other scope
    (a package's), :func:`session_factory` in your own fixture.

    Example:
        .. code-block:: python

            def test_worker(ops_session):
                worker = ops_session("echo ready; sleep 60")
                assert worker.wait_for_log("ready", timeout=5) == "ready"
    """
    yield from _factory(request)


#: When the sessions of a wider-scoped factory are stopped.
_STOPPED = {
    "class": "after the class's tests",
    "module": "after the module's tests",
    "session": "at the end of the run",
}


def _scoped(scope: Literal["class", "module", "session"]) -> Any:
    """:func:`ops_session` as a fixture of ``scope``, named ``ops_session_<scope>``."""

    def fixture(request: pytest.FixtureRequest) -> Iterator[OpsSessionFactory]:
        yield from _factory(request)

    fixture.__name__ = fixture.__qualname__ = f"ops_session_{scope}"
    fixture.__doc__ = f""":func:`ops_session` for a {scope}-scoped fixture: stopped {_STOPPED[scope]}.

    Example:
        .. code-block:: python

            @pytest.fixture(scope="{scope}")
            def queue(ops_session_{scope}):
                return ops_session_{scope}("echo up; sleep 600")
    """
    return pytest.fixture(scope=scope)(fixture)


ops_session_class = _scoped("class")
ops_session_module = _scoped("module")
ops_session_session = _scoped("session")


def _tc_name(container: Any) -> str:
    """The engine's name of a testcontainers container (started)."""
    wrapped = getattr(container, "get_wrapped_container", None)
    inner = wrapped() if callable(wrapped) else None
    name = getattr(inner, "name", None)
    if not isinstance(name, str) or not name:
        raise SessionConfigError(
            f"container: {type(container).__name__} is neither a name nor a started "
            "testcontainers container",
            "container",
        )
    return name


@pytest.fixture
def ops_container() -> Callable[..., SessionManager]:
    """Hand a container started by someone else (testcontainers) to kstlib, by name.

    ``ops_container(container, runtime=None, base_url=None)``: ``container`` is a
    name or a started testcontainers container; the result is a
    :class:`~kstlib.ops.SessionManager` for it (``status()``, ``logs()``,
    ``wait_for_log()``, kstlib's typed errors). kstlib does not stop it: its owner
    does (and, without Ryuk, the plugin removes what a killed run left, see the
    guide). Without ``runtime``, kstlib finds the container on the engines it knows.

    Example:
        .. code-block:: python

            def test_cache(ops_container):
                with DockerContainer("localhost/kstlib-test:latest").with_command(
                    "sh -c 'echo up; sleep 60'"
                ) as tc:
                    assert ops_container(tc).wait_for_log("up", timeout=10) == "up"
    """

    def adopt(
        container: Any, *, runtime: str | None = None, base_url: str | None = None
    ) -> SessionManager:
        name = container if isinstance(container, str) else _tc_name(container)
        options: dict[str, Any] = {"base_url": base_url}
        if runtime is not None:
            options["runtime"] = runtime
        return SessionManager(name, backend="container", **options)

    return adopt
