"""pytest plugin: real sessions as test fixtures, cleaned up whatever happens.

Installed with kstlib (a ``pytest11`` entry point), so any test suite can use:

* ``ops_session``: a factory fixture that starts sessions on any backend with
  names unique to the test run, and stops and removes every one of them after
  the test, whether it passed or failed;
* ``--kstlib-ops-keep``: keep the sessions after the tests, for debugging;
* ``@pytest.mark.ops_backend("docker")``: the test needs that backend (tmux,
  docker, podman or container); the test is skipped when it is missing, and
  fails instead under ``KSTLIB_REQUIRE_ENGINES=1``.

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

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kstlib.ops.exceptions import OpsError, SessionConfigError, SessionNotFoundError
from kstlib.ops.manager import SessionManager
from kstlib.ops.models import Command

__all__ = ["OpsSessionFactory", "backend_problem", "ops_session"]

OpsSessionFactory = Callable[..., SessionManager]
_BACKENDS = ("tmux", "container", "docker", "podman")
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
        "'podman' or 'container'; skipped when it is missing, failed under "
        "KSTLIB_REQUIRE_ENGINES=1",
    )


def backend_problem(backend: str) -> str | None:
    """Why ``backend`` cannot be used here, or ``None`` when it can.

    Example:
        >>> backend_problem("kubernetes")
        "unknown backend 'kubernetes' (choose from tmux, container, docker, podman)"
    """
    if backend not in _BACKENDS:
        return f"unknown backend {backend!r} (choose from {', '.join(_BACKENDS)})"
    if backend == "tmux":
        return None if shutil.which("tmux") else "tmux is not on PATH"
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


@pytest.fixture
def ops_session(request: pytest.FixtureRequest) -> Iterator[OpsSessionFactory]:
    """Start sessions for a test; every one is stopped and removed afterwards.

    Call it like :class:`~kstlib.ops.SessionManager`, with the command first:
    ``ops_session(command, backend="tmux", name=None, start=True, **options)``.
    ``backend`` may be ``"docker"`` or ``"podman"`` (a container on that
    engine). The name defaults to a unique ``<test>-<random>``.

    Example:
        .. code-block:: python

            def test_worker(ops_session):
                worker = ops_session("echo ready; sleep 60")
                assert worker.wait_for_log("ready", timeout=5) == "ready"
    """
    made: list[SessionManager] = []
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
        if backend in ("docker", "podman"):
            options.setdefault("runtime", backend)
            backend = "container"
        session_name = name or f"{prefix}-{uuid.uuid4().hex[:8]}"
        manager = SessionManager(session_name, backend=backend, **options)
        made.append(manager)
        if start:
            manager.start(command)
        return manager

    yield factory
    if request.config.getoption("--kstlib-ops-keep"):
        for manager in made:
            print(f"kstlib.ops: kept session {manager.name!r} on {manager.backend.value}")
        return
    errors: list[str] = []
    for manager in reversed(made):
        try:
            manager.stop(graceful=True, timeout=5)
        except SessionNotFoundError:
            pass
        except OpsError as err:
            errors.append(str(err))
    if errors:
        pytest.fail("kstlib.ops could not clean up: " + "; ".join(errors), pytrace=False)
