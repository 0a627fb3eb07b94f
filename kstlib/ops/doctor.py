"""The doctor's probes: which backends answer, their versions and endpoints, their networks.

Internal module: the public API is :mod:`kstlib.ops` (``kstlib.ops.__all__``).

Each probe asks the engine through the same adapters the sessions use (the
engine registry, :func:`kstlib.ops.engines.endpoints.connect`; libtmux for
tmux), imported only when the probe runs, and turns every failure into a
:class:`Check` with a reason and a hint; nothing raises. :func:`doctor` runs
them all (usable from a notebook); ``kstlib ops doctor`` prints what it gives.
:func:`probe_bridge` says when an engine's default network cannot publish
ports (``dockerd --bridge=none``; Podman with ``netns = "none"``): the engine
still accepts ``ports`` and the published port silently leads nowhere.

Example:
    >>> check = probe_tmux(tmux_bin="/no/such/tmux")
    >>> check.available, check.backend
    (False, 'tmux')
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from kstlib.ops.exceptions import CONTAINER_INSTALL_HINT, TMUX_INSTALL_HINT

if TYPE_CHECKING:
    from kstlib.ops.config import EngineConfig
    from kstlib.ops.engines.adapter import EngineAdapter

__all__ = [
    "Check",
    "doctor",
    "endpoints",
    "network_notes",
    "probe_bridge",
    "probe_docker",
    "probe_engine",
    "probe_engines",
    "probe_podman",
    "probe_tmux",
    "reason",
    "tmux_socket_path",
]

#: Seconds an engine gets to answer; doctor must never hang on a dead daemon.
TIMEOUT = 5

DOCKER_HINT = (
    "Start Docker ('sudo systemctl start docker' or 'dockerd'), or point DOCKER_HOST at a "
    "running daemon. " + CONTAINER_INSTALL_HINT
)
PODMAN_HINT = (
    "Start the Podman API service ('systemctl --user start podman.socket', or as root "
    "'podman system service --time=0 unix:///run/podman/podman.sock &'), or point "
    "CONTAINER_HOST at one. " + CONTAINER_INSTALL_HINT
)


@dataclass(frozen=True)
class Check:
    """The result of probing one backend.

    Example:
        >>> Check("docker", False, None, "unix:///var/run/docker.sock", "connection refused",
        ...       "start it").to_dict()
        ... # doctest: +NORMALIZE_WHITESPACE
        {'backend': 'docker', 'available': False, 'version': None,
         'endpoint': 'unix:///var/run/docker.sock', 'detail': 'connection refused',
         'hint': 'start it'}
    """

    backend: str
    available: bool
    version: str | None
    endpoint: str
    detail: str
    hint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form printed by ``kstlib ops doctor --json``.

        Example:
            >>> sorted(Check("tmux", True, "tmux 3.3a", "/tmp/tmux-0/default", "").to_dict())
            ['available', 'backend', 'detail', 'endpoint', 'hint', 'version']
        """
        return asdict(self)


def _causes(err: BaseException) -> Iterator[BaseException]:
    """The error, its causes and contexts, and exceptions nested in their args."""
    seen: set[int] = set()
    todo: list[BaseException] = [err]
    while todo and len(seen) < 20:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo.extend(a for a in current.args if isinstance(a, BaseException))
        todo.extend(
            a
            for arg in current.args
            if isinstance(arg, tuple)
            for a in arg
            if isinstance(a, BaseException)
        )
        for nxt in (current.__cause__, current.__context__):
            if nxt is not None:
                todo.append(nxt)


def reason(err: BaseException) -> str:
    """A short, readable reason for a connection failure.

    The OS error deep in an SDK error chain says more than the wrapper does.

    Example:
        >>> reason(ConnectionError("aborted", FileNotFoundError(2, "No such file or directory")))
        'No such file or directory'
    """
    for cause in _causes(err):
        if isinstance(cause, OSError) and isinstance(cause.strerror, str) and cause.strerror:
            return cause.strerror
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def tmux_socket_path(socket_name: str | None = None) -> str:
    """The socket kstlib uses for ``-L socket_name`` (or the default server, even inside a pane).

    Example:
        >>> tmux_socket_path("work").endswith("/work")
        True
    """
    tmpdir = os.environ.get("TMUX_TMPDIR") or "/tmp"
    return os.path.join(tmpdir, f"tmux-{os.getuid()}", socket_name or "default")


def probe_tmux(tmux_bin: str | None = None, socket_name: str | None = None) -> Check:
    """Whether tmux is installed and recent enough, and the state of its server.

    Example:
        >>> probe_tmux(tmux_bin="/no/such/tmux").hint.startswith("Install tmux")
        True
    """
    endpoint = tmux_socket_path(socket_name)
    binary = shutil.which(tmux_bin or "tmux")
    if binary is None:
        missing = f"{tmux_bin} was not found" if tmux_bin else "tmux was not found on PATH"
        return Check("tmux", False, None, endpoint, missing, TMUX_INSTALL_HINT)
    try:
        from libtmux import exc as tmux_exc
        from libtmux.common import get_version, has_minimum_version

        version = f"tmux {get_version(tmux_bin=binary)}"
        try:
            has_minimum_version(raises=True, tmux_bin=binary)
        except tmux_exc.VersionTooLow:
            return Check(
                "tmux",
                False,
                version,
                endpoint,
                "kstlib needs tmux 3.2a or newer",
                TMUX_INSTALL_HINT,
            )
        from kstlib.ops.tmux import TmuxRunner

        count = len(TmuxRunner(socket_name=socket_name, tmux_bin=binary).list_sessions())
    except Exception as err:  # a diagnostic reports every failure, it never raises
        return Check("tmux", False, None, endpoint, reason(err), TMUX_INSTALL_HINT)
    if os.path.exists(endpoint):
        detail = f"server running, {count} session{'s' if count != 1 else ''}"
    else:
        detail = "no server running yet (the first session starts it)"
    return Check("tmux", True, version, endpoint, f"{binary}; {detail}")


def endpoints(runtime: str, base_url: str | None = None) -> list[str]:
    """The endpoints kstlib tries for ``runtime``, in the order the container backend does.

    Example:
        >>> endpoints("docker", "tcp://build:2375")
        ['tcp://build:2375']
    """
    if base_url:
        return [base_url]
    from kstlib.ops.engines.endpoints import default_endpoints

    return default_endpoints(runtime)


def _engine_version(runtime: str) -> Callable[[str, float], str]:
    """Ask one endpoint its version through the engine registry (the adapters' own clients)."""

    def ask(endpoint: str, timeout: float) -> str:
        from kstlib.ops.engines.endpoints import connect

        return connect(runtime, endpoint, timeout).version()

    return ask


def _probe_engine(
    runtime: str,
    base_url: str | None,
    name: str,
    hint: str,
    ask: Callable[[str, float], str],
    *,
    timeout: float,
) -> Check:
    from kstlib.ops.engines.errors import did_not_answer

    tried = endpoints(runtime, base_url)
    failures: list[str] = []
    hung = False
    for endpoint in tried:
        try:
            return Check(name, True, ask(endpoint, timeout), endpoint, "")
        except ImportError:
            return Check(
                name,
                False,
                None,
                endpoint,
                f"the {runtime} SDK is not installed",
                f"pip install {runtime}",
            )
        except Exception as err:  # a diagnostic reports every failure, it never raises
            failures.append(reason(err))
            hung = hung or did_not_answer(err)
    detail = "; ".join(_unique(failures))
    if hung:
        # Starting or installing an engine is the wrong advice for one that hangs.
        hint = (
            f"Something accepts connections there but did not answer within {timeout:g} s: "
            f"the {runtime} engine is hung or overloaded. Check it (its logs, "
            f"'{runtime} info'), or allow more time with KSTLIB_OPS_ENGINE_TIMEOUT."
        )
    return Check(name, False, None, ", ".join(tried), detail, hint)


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def probe_docker(
    base_url: str | None = None, name: str = "docker", timeout: float = TIMEOUT
) -> Check:
    """Ask a Docker API endpoint (``base_url``, else ``$DOCKER_HOST`` or the default) its version.

    Example:
        >>> probe_docker("unix:///nonexistent").detail
        'No such file or directory'
    """
    return _probe_engine(
        "docker", base_url, name, DOCKER_HINT, _engine_version("docker"), timeout=timeout
    )


def probe_podman(
    base_url: str | None = None, name: str = "podman", timeout: float = TIMEOUT
) -> Check:
    """Ping a Podman API endpoint (``base_url``, else ``$CONTAINER_HOST`` or the sockets).

    Example:
        >>> probe_podman("unix:///nonexistent").available
        False
    """
    return _probe_engine(
        "podman", base_url, name, PODMAN_HINT, _engine_version("podman"), timeout=timeout
    )


def probe_engine(engine: EngineConfig, timeout: float, tmux_bin: str | None = None) -> Check:
    """Probe one named engine (``ops.engines``) as its sessions reach it.

    Example:
        >>> from kstlib.ops.config import EngineConfig
        >>> check = probe_engine(EngineConfig("gone", "unix:///nonexistent.sock", "docker"), 2)
        >>> check.backend, check.available
        ('engine gone', False)
    """
    name = f"engine {engine.name}"
    if engine.backend == "tmux":
        found = probe_tmux(tmux_bin, engine.socket_name)
        return Check(name, found.available, found.version, found.endpoint, found.detail, found.hint)
    where = engine.base_url or "-"
    try:
        from kstlib.ops.engines.endpoints import connect

        version = connect(engine.runtime, engine.endpoint, timeout).version()
        return Check(name, True, version, where, "")
    except Exception as err:  # a diagnostic reports every failure, it never raises
        hint = "check the engine (kstlib ops doctor shows why above), or remove it from ops.engines"
        return Check(name, False, None, where, str(err), hint)


#: Seconds each engine call of the network probe may take.
NETWORK_TIMEOUT = 5.0

ADVICE = (
    "published ports (ports:, -p) do not reach containers on its default network; "
    "use network: host (the container shares the host's ports) or a network of yours"
)


def _default_mode(engine: EngineAdapter, images: Iterable[str]) -> str | None:
    """The network mode a container gets by default, from one created (never started)."""
    from kstlib.ops.engines.adapter import MANAGED_LABEL, ContainerSpec

    image = next((i for i in images if engine.image_exists(i)), None)
    if image is None:
        return None
    name = f"kstlib-doctor-{uuid.uuid4().hex[:10]}"
    spec = ContainerSpec(
        name=name, image=image, command=["true"], labels={MANAGED_LABEL: "doctor"}, init=False
    )
    ref = engine.create(spec)
    try:
        return engine.inspect(ref).network_mode
    finally:
        engine.remove(ref, name)


def probe_bridge(
    runtime: str, endpoint: str, timeout: float = NETWORK_TIMEOUT, images: Iterable[str] = ()
) -> str | None:
    """One sentence when ``runtime``'s default network cannot publish ports, else ``None``.

    Docker: its ``bridge`` network is missing. Podman: its default network is
    missing, or (Podman's default mode comes from its containers.conf, which
    no API call reports) a container created from one of ``images`` (never
    started, removed at once) gets network mode ``none``. An engine that
    does not answer yields ``None``: the availability probe reports it.

    Example:
        >>> probe_bridge("podman", "unix:///nonexistent.sock") is None
        True
    """
    from kstlib.ops.engines.endpoints import connect

    try:
        engine = connect(runtime, endpoint, timeout)
        if not engine.has_network("bridge"):
            return f"{runtime} has no default bridge network: {ADVICE}"
        if runtime == "podman":
            # Any image at hand will do: the probe's container is never started.
            images = [*images, *(c.image for c in engine.list_containers() if c.image)]
        if runtime == "podman" and _default_mode(engine, images) == "none":
            return (
                'podman gives containers no network by default (netns = "none" in its '
                f"containers.conf): {ADVICE}"
            )
    except Exception:  # a diagnostic never raises; an engine that is down is reported elsewhere
        return None
    return None


def network_notes(
    checks: Iterable[tuple[str, bool, str]], images: Iterable[str], timeout: float = NETWORK_TIMEOUT
) -> dict[str, str]:
    """For each usable ``(runtime, available, endpoint)`` whose bridge is off, its note.

    Example:
        >>> network_notes([("docker", False, "unix:///var/run/docker.sock")], [])
        {}
    """
    wanted = list(images)
    notes: dict[str, str] = {}
    for runtime, available, endpoint in checks:
        if available and runtime in ("docker", "podman"):
            note = probe_bridge(runtime, endpoint, timeout, wanted)
            if note is not None:
                notes[runtime] = note
    return notes


class _Hung(Exception):
    """A probe that did not finish in time, carrying the check that says so."""

    def __init__(self, check: Check) -> None:
        super().__init__(check.detail)
        self.check = check


def probe_engines(
    engines: Iterable[EngineConfig], timeout: float = TIMEOUT, tmux_bin: str | None = None
) -> dict[str, Check]:
    """Probe every named engine at once, each bounded by ``timeout`` (an ssh host may hang).

    Example:
        >>> from kstlib.ops.config import EngineConfig
        >>> gone = EngineConfig("gone", "unix:///nonexistent.sock", "docker")
        >>> probe_engines([gone], 2)["gone"].available
        False
    """
    from kstlib.ops.fleet import GRACE, gather, place_kinds

    chosen = {e.name: e for e in engines}

    def task(engine: EngineConfig) -> Callable[[], Check]:
        limit = min(engine.timeout or timeout, timeout)
        return lambda: probe_engine(engine, limit, tmux_bin)

    tasks = {name: task(e) for name, e in chosen.items()}

    def hung(key: str, seconds: float) -> BaseException:
        return _Hung(
            Check(
                f"engine {key}",
                False,
                None,
                chosen[key].base_url or "-",
                f"no answer within {seconds - GRACE:g} s",
                "check the host and the engine, or allow more time (timeout: in ops.engines)",
            )
        )

    done = gather(tasks, dict.fromkeys(tasks, timeout + GRACE), hung, place_kinds(chosen.values()))
    checks: dict[str, Check] = {}
    for key, outcome in done.items():
        if isinstance(outcome.error, _Hung):
            checks[key] = outcome.error.check
        elif outcome.value is not None:
            checks[key] = outcome.value
    return checks


def doctor(
    *,
    tmux_bin: str | None = None,
    socket_name: str | None = None,
    engines: Iterable[EngineConfig] = (),
    timeout: float = TIMEOUT,
) -> list[Check]:
    """Probe tmux, Docker, Podman and the named ``engines``: one :class:`Check` each.

    Example:
        >>> [c.backend for c in doctor(tmux_bin="/no/such/tmux", timeout=1)]
        ['tmux', 'docker', 'podman']
    """
    named = list(engines)
    checks = [
        probe_tmux(tmux_bin, socket_name),
        probe_docker(timeout=timeout),
        probe_podman(timeout=timeout),
    ]
    found = probe_engines(named, timeout, tmux_bin)
    return checks + [found[e.name] for e in named if e.name in found]
