"""``kstlib ops doctor``: which backends answer, their versions and endpoints.

Each probe asks the engine through the same adapters the sessions use (the
engine registry, :func:`kstlib.ops.engines.endpoints.connect`; libtmux for
tmux), imported only when the probe runs, and turns every failure into a
:class:`Check` with a reason and a hint; nothing raises.

Example:
    >>> check = probe_tmux(tmux_bin="/no/such/tmux")
    >>> check.available, check.backend
    (False, 'tmux')
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from kstlib.cli import output
from kstlib.ops import validators
from kstlib.ops.config import OpsConfig
from kstlib.ops.exceptions import CONTAINER_INSTALL_HINT, TMUX_INSTALL_HINT, SessionConfigError
from kstlib.ops.models import BackendType

if TYPE_CHECKING:
    from kstlib.cli.context import Context
    from kstlib.ops.config_engines import EngineConfig

__all__ = [
    "Check",
    "cmd_doctor",
    "endpoints",
    "probe_docker",
    "probe_podman",
    "probe_tmux",
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
    """The socket a tmux client uses for ``-L socket_name`` (or the default server).

    Example:
        >>> tmux_socket_path("work").endswith("/work")
        True
    """
    inside = os.environ.get("TMUX")
    if socket_name is None and inside:
        return inside.split(",", 1)[0]
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
        >>> from kstlib.ops.config_engines import EngineConfig
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


def _probe_named(ctx: Context, config: OpsConfig, timeout: float) -> list[Check]:
    """Every named engine at once, each bounded by ``timeout`` (an ssh host may hang)."""
    from kstlib.ops.fleet import GRACE, gather, place_kinds

    checks: dict[str, Check] = {}
    tasks: dict[str, Callable[[], Check]] = {}
    for engine in config.engines.values():
        if config.untrusted_endpoint(engine.base_url):
            # a host a file from the current folder chose (ssh would run for an ssh:// one)
            from kstlib.ops.config_trust import how_to_trust

            checks[engine.name] = Check(
                f"engine {engine.name}",
                False,
                None,
                engine.base_url or "-",
                "not probed: a remote engine named only by a project-local config file",
                how_to_trust(config),
            )
            continue
        limit = min(engine.timeout or timeout, timeout)
        tasks[engine.name] = lambda e=engine, t=limit: probe_engine(e, t, ctx.tmux_binary())  # type: ignore[misc]

    def hung(key: str, seconds: float) -> Check:
        engine = config.engines[key]
        return Check(
            f"engine {key}",
            False,
            None,
            engine.base_url or "-",
            f"no answer within {seconds - GRACE:g} s",
            "check the host and the engine, or allow more time (timeout: in ops.engines)",
        )

    done = gather(
        tasks,
        dict.fromkeys(tasks, timeout + GRACE),
        lambda k, s: _Hung(hung(k, s)),
        place_kinds(config.engines[n] for n in tasks),
    )
    for key, outcome in done.items():
        if isinstance(outcome.error, _Hung):
            checks[key] = outcome.error.check
        elif outcome.value is not None:
            checks[key] = outcome.value
    return [checks[name] for name in config.engines if name in checks]


class _Hung(Exception):
    """A probe that did not finish in time, carrying the check that says so."""

    def __init__(self, check: Check) -> None:
        super().__init__(check.detail)
        self.check = check


def cmd_doctor(ctx: Context) -> int:
    """``kstlib ops doctor``: each backend, usable or not, and what to do about it.

    Example:
        >>> from kstlib.cli import main
        >>> main(["ops", "doctor", "-q"]) in (0, 1)
        True
    """
    config_info: dict[str, Any] = {"path": None, "valid": True, "error": None, "sessions": 0}
    try:
        config = ctx.config
        config_info.update(
            path=str(config.path) if config.path else None, sessions=len(config.sessions)
        )
        if ctx.invalid_sessions:
            config_info.update(
                valid=False, error="; ".join(str(e) for e in ctx.invalid_sessions.values())
            )
    except SessionConfigError as err:
        config = OpsConfig()
        config_info.update(valid=False, error=str(err))
    timeout = min(float(TIMEOUT), ctx.engine_timeout)  # doctor never waits long
    checks = [
        probe_tmux(
            ctx.tmux_binary() if config_info["valid"] else None,
            ctx.option("socket") or config.tmux_socket,
        ),
        probe_docker(timeout=timeout),
        probe_podman(timeout=timeout),
    ]
    checks.extend(_probe_named(ctx, config, timeout))
    public = _public_ports(config)
    config_info["public_ports"] = public
    usable = any(c.available for c in checks)
    from kstlib.cli.doctor_network import network_notes

    images = [s.image for s in config.sessions.values() if s.image]
    notes = network_notes([(c.backend, c.available, c.endpoint) for c in checks], images, timeout)
    if ctx.args.json:
        report = {"config": config_info, "backends": [c.to_dict() for c in checks]}
        output.emit(output.dumps_json({**report, "network": notes}))
    elif not ctx.args.quiet:
        rows = [
            [
                c.backend,
                "ok" if c.available else "unavailable",
                c.version or "-",
                c.endpoint,
                c.detail or "-",
            ]
            for c in checks
        ]
        output.emit(
            output.render_table(["BACKEND", "STATUS", "VERSION", "ENDPOINT", "DETAIL"], rows)
        )
        for c in checks:
            if not c.available and c.hint:
                output.emit(f"\nTo use {c.backend}: {c.hint}")
        if config_info["valid"]:
            where = config_info["path"] or "none found (optional)"
            output.emit(f"\nConfig file: {where}")
        else:
            output.emit(f"\nConfig file: invalid: {config_info['error']}")
        for name, ports in public.items():
            _, host, ctr, proto = validators.parse_port(ports[0])
            local = f"127.0.0.1:{host}:{ctr}" + ("" if proto == "tcp" else f"/{proto}")
            output.emit(
                f"\nSession {name!r} publishes {', '.join(ports)} on every network interface: "
                f"any host that can reach this machine can connect. Write {local} to keep "
                "it on this machine."
            )
        for note in notes.values():
            output.emit(f"\nNetwork: {note}.")
        count = sum(c.available for c in checks)
        output.emit(
            f"{count} of {len(checks)} backends usable."
            + ("" if usable else " Install or start one of them (see above).")
        )
    return 0 if usable else 1


def _public_ports(config: OpsConfig) -> dict[str, list[str]]:
    """The config's container sessions' port mappings that bind every interface.

    ``"8080:80"`` binds 0.0.0.0 (and ::), as ``docker run -p`` does.

    Example:
        >>> from kstlib.ops.config import parse_config
        >>> _public_ports(parse_config(
        ...     "ops: {sessions: {web: {backend: docker, image: nginx, "
        ...     "ports: ['8080:80', '127.0.0.1:8443:443']}}}", source="x.yml"))
        {'web': ['8080:80']}
    """
    out: dict[str, list[str]] = {}
    for name, session in config.sessions.items():
        if session.backend is not BackendType.CONTAINER:
            continue
        wide = [p for p in session.ports if validators.parse_port(p)[0] in (None, "0.0.0.0", "::")]
        if wide:
            out[name] = wide
    return out
