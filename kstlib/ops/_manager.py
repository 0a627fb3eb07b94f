"""What :class:`~kstlib.ops.manager.SessionManager` computes with plain functions (internal).

Its constructor's options read as a configuration (:func:`configure`), where
:meth:`~kstlib.ops.manager.SessionManager.find` found a session, read as
constructor options (:func:`found_options`), a config file's definition with
overrides (:func:`defined_options`), and the swarm runner that ``scale`` and
a rolling restart need (:func:`swarm_runner`).

Example:
    >>> config, options = configure("web", "docker", None, {"engine_timeout": 5})
    >>> config.backend.value, config.runtime, options
    ('container', 'docker', {'engine_timeout': 5})
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast

from kstlib.ops.discovery import IMPLY_CONTAINER, Location, detect, engine_options, not_found
from kstlib.ops.exceptions import SessionAmbiguousError, SessionConfigError, SessionError
from kstlib.ops.fleet import find_on_engines, named_engines
from kstlib.ops.models import BackendType, SessionConfig
from kstlib.ops.runner import CommandRunner, KeySender, Runner

if TYPE_CHECKING:
    from kstlib.ops.config import EngineConfig
    from kstlib.ops.runners import RunnerFactory, RunnerOptions
    from kstlib.ops.swarm.runner import SwarmRunner

__all__ = [
    "command_runner",
    "configure",
    "container_runtime",
    "defined_options",
    "found_engine",
    "found_options",
    "key_sender",
    "start_config",
    "swarm_runner",
]

#: Options that choose where a session runs rather than what it runs.
RUNNER_OPTIONS = ("tmux_bin", "engine_timeout", "node_urls")

#: Config fields that name the place a session runs (another place: another runner).
PLACE_FIELDS = ("backend", "socket_name", "socket_path", "runtime", "base_url")


def configure(
    name: str,
    backend: str | BackendType | None,
    engine: object,
    given: dict[str, Any],
    factory: RunnerFactory | None = None,
) -> tuple[SessionConfig, RunnerOptions]:
    """The session configuration and the runner's options of ``SessionManager(...)``.

    The runner's options are what the configuration does not say: the tmux
    binary, the engine timeout, and a named swarm engine's ``nodes``.

    Example:
        >>> configure("bot", "auto", None, {"image": "app:1"})[0].backend.value
        'container'
    """
    backend, options = engine_options(engine, backend, given)  # a named engine
    runner_options = cast(
        "RunnerOptions", {k: options.pop(k) for k in RUNNER_OPTIONS if k in options}
    )
    # upstream spelling: tmux_binary is libtmux's tmux_bin
    if "tmux_binary" in options:
        runner_options.setdefault("tmux_bin", options.pop("tmux_binary"))
    tmux_bin = runner_options.get("tmux_bin")
    timeout = runner_options.get("engine_timeout")
    if backend is None:
        chosen = detect(name, options, tmux_bin, timeout, factory)
    elif isinstance(backend, str) and backend.lower() == "auto":
        wants_container = any(options.get(k) is not None for k in IMPLY_CONTAINER)
        chosen = BackendType.CONTAINER if wants_container else BackendType.TMUX
    else:
        chosen, implied = BackendType.parse(backend)
        if implied is not None:
            runtime = options.get("runtime")
            if runtime is not None and str(runtime).lower() != implied:
                raise SessionConfigError(
                    f"runtime: {runtime!r} contradicts backend {implied!r}", "runtime"
                )
            options["runtime"] = implied
    config = SessionConfig(name=name, backend=chosen).with_overrides(**options)
    return config, runner_options


def start_config(
    config: SessionConfig, command: object, overrides: dict[str, Any]
) -> tuple[SessionConfig, bool]:
    """The configuration ``start(command, **overrides)`` uses; whether it runs elsewhere.

    Example:
        >>> config, moved = start_config(SessionConfig(name="bot"), "sleep 5", {"socket_name": "w"})
        >>> config.command, config.socket_name, moved
        ('sleep 5', 'w', True)
    """
    if command is not None:
        overrides["command"] = command
    if not overrides:
        return config, False
    return config.with_overrides(**overrides), any(k in overrides for k in PLACE_FIELDS)


def found_engine(
    name: str, engines: Iterable[str | EngineConfig], options: dict[str, Any]
) -> EngineConfig:
    """The one named engine that holds session ``name`` (all asked at once, each bounded).

    Raises:
        SessionNotFoundError: none holds it (``searched`` names each engine).
        SessionAmbiguousError: several do.

    Example:
        >>> from kstlib.ops.config import EngineConfig
        >>> found_engine("nobody", [EngineConfig("t", backend="tmux", socket_name="kstlib-doc")], {})
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionNotFoundError: Session 'nobody' was not found (searched: engine t); check the name with 'kstlib ops list'.
    """
    holding, searched = find_on_engines(
        name,
        named_engines(engines),
        options.get("engine_timeout"),
        options.get("runner_factory"),
    )
    if len(holding) > 1:
        raise SessionAmbiguousError(
            name, [e.backend for e in holding], places=[f"engine {e.name}" for e in holding]
        )
    if not holding:
        raise not_found(name, "any", searched)
    return holding[0]


def found_options(where: Location, base_url: str | None) -> dict[str, Any]:
    """The constructor options of the manager of a session found at ``where``.

    Example:
        >>> found_options(Location(BackendType.TMUX, socket_name="w"), None)
        {'backend': 'tmux', 'socket_name': 'w', 'socket_path': None}
    """
    if where.backend is BackendType.TMUX:
        # The server it was found on (another of the user's when none was named).
        return {
            "backend": "tmux",
            "socket_name": where.socket_name,
            "socket_path": where.socket_path,
        }
    if where.backend is BackendType.SWARM:
        return {"backend": "swarm", "base_url": where.endpoint}
    return {"backend": "container", "runtime": where.runtime, "base_url": base_url}


def defined_options(
    name: str, path: str | os.PathLike[str] | None, overrides: dict[str, Any]
) -> dict[str, Any]:
    """The constructor options of session ``name`` as the config file defines it, overridden.

    ``env`` is merged into the definition's (a key given here wins).

    Example:
        >>> import os, tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = os.path.join(tmp, "kstlib.conf.yml")
        ...     _ = open(path, "w").write("ops: {sessions: {bot: {env: {A: '1'}}}}")
        ...     defined_options("bot", path, {"env": {"B": "2"}})["env"]
        {'A': '1', 'B': '2'}
    """
    from kstlib.ops.config import load_config

    options = load_config(path).manager_options(name)
    if overrides.get("env") is not None:
        overrides["env"] = {**(options.get("env") or {}), **overrides["env"]}
    if "backend" in overrides and "runtime" not in overrides:
        # backend="docker" on a definition that named podman: the override decides.
        options.pop("runtime", None)
    options.update(overrides)
    return options


def container_runtime(config: SessionConfig, timeout: float | None) -> str | None:
    """The engine (``"docker"``, ``"podman"``) a container session runs on, if it must be searched.

    ``None``: not a container session, its runtime is known, or no engine
    answers (using the runner then raises the error naming those tried).

    Example:
        >>> container_runtime(SessionConfig(name="bot", socket_name="w"), None) is None
        True
    """
    if config.backend is not BackendType.CONTAINER or config.runtime is not None:
        return None
    from kstlib.ops.discovery import search_containers

    found = search_containers(config.name, None, config.base_url, timeout)
    if not found.found and not found.searched:
        return None
    return found.one(config.name, BackendType.CONTAINER.value).runtime


def command_runner(runner: Runner, name: str, where: str) -> CommandRunner:
    """``runner`` as one that can exec beside a session, or the SessionError saying it cannot.

    Example:
        >>> from kstlib.ops import TmuxRunner
        >>> command_runner(TmuxRunner(), "bot", "tmux")
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionError: session 'bot' runs on tmux, which cannot run a command beside it; use send_keys() to type into it
    """
    if not isinstance(runner, CommandRunner):
        raise SessionError(
            f"session {name!r} runs on {where}, which cannot run a command beside it; "
            "use send_keys() to type into it"
        )
    return runner


def key_sender(runner: Runner, name: str, where: str) -> KeySender:
    """``runner`` as one that can type keys into a session, or the SessionError saying it cannot.

    Example:
        >>> from kstlib.ops import TmuxRunner
        >>> key_sender(TmuxRunner(), "bot", "tmux")
        TmuxRunner(socket='default')
    """
    if not isinstance(runner, KeySender):
        raise SessionError(
            f"session {name!r} runs on {where}, which cannot type keys into it; "
            "use exec() to run a command in it"
        )
    return runner


def swarm_runner(runner: Runner, name: str, where: str, what: str) -> SwarmRunner:
    """``runner`` as a swarm runner, or the SessionError saying the session has no ``what``.

    Example:
        >>> from kstlib.ops import TmuxRunner
        >>> swarm_runner(TmuxRunner(), "bot", "tmux", "replicas to scale")
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionError: session 'bot' runs on tmux, which has no replicas to scale; use backend='swarm'
    """
    from kstlib.ops.swarm.runner import SwarmRunner

    if not isinstance(runner, SwarmRunner):
        raise SessionError(
            f"session {name!r} runs on {where}, which has no {what}; use backend='swarm'"
        )
    return runner
