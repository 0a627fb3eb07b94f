"""The schema of ``kstlib.conf.yml``'s ``ops:`` section: its keys, its model, its checks.

Internal: the public names are re-exported by :mod:`kstlib.ops.config`.

:class:`OpsConfig` and :class:`EngineConfig` are what a file turns into; the
functions here check one mapping each (``ops.engines``, one entry of
``ops.sessions``) and build messages that name the file, the line and the key
path. :mod:`kstlib.ops.config` finds and reads the file and calls them.

Example:
    >>> sorted(ENGINE_KEYS)[:4]
    ['backend', 'base_url', 'identity', 'known_hosts']
"""

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from kstlib.ops import validators
from kstlib.ops.config._engines import (
    ENGINE_KEYS,
    EngineConfig,
    EngineProblem,
    engine_from,
    swarm_nodes,
)
from kstlib.ops.exceptions import SessionConfigError
from kstlib.ops.models import BackendType, SessionConfig

CONFIG_FILENAME = "kstlib.conf.yml"
CONFIG_ENV = "KSTLIB_CONFIG"
#: A config file is a few kilobytes; refuse to parse something absurdly large.
MAX_CONFIG_BYTES = 1024 * 1024
#: The most values a config file may hold once its YAML aliases are expanded. Aliases
#: (``*defaults``) are handy for sharing an env or a volume list; an "alias bomb" of a
#: few hundred bytes expands to billions of values and would exhaust CPU and memory.
MAX_CONFIG_VALUES = 100_000

OPS_KEYS = (
    "default_backend",
    "container_runtime",
    "tmux_socket",
    "tmux_binary",
    "engines",
    "sessions",
    "pull",
    "insecure_registries",
    "trusted_projects",
)
SESSION_KEYS = (
    "backend",
    "command",
    "working_dir",
    "env",
    "image",
    "volumes",
    "ports",
    "runtime",
    "socket_name",
    "socket_path",
    "log_volume",
    "restart",
    "memory",
    "cpus",
    "labels",
    "init",
    "network",
    "base_url",
    "engine",
    "pull",
    "registry_auth",
    "insecure_registries",
    "replicas",
    "placement",
    "mode",
    "stop_timeout",
    "secret_refs",
    "with_registry_auth",
)


def _xdg_config_home() -> Path:
    value = os.environ.get("XDG_CONFIG_HOME", "")
    # The XDG spec says a relative value is invalid and must be ignored.
    if value and os.path.isabs(value):
        return Path(value)
    return Path.home() / ".config"


def config_candidates() -> list[Path]:
    """The optional places searched when no path is given and ``$KSTLIB_CONFIG`` is unset.

    Example:
        >>> [p.name for p in config_candidates()]
        ['kstlib.conf.yml', 'kstlib.conf.yml']
    """
    return [Path.cwd() / CONFIG_FILENAME, _xdg_config_home() / "kstlib" / CONFIG_FILENAME]


@dataclass(frozen=True)
class OpsConfig:
    """The ``ops:`` section of a ``kstlib.conf.yml``, validated.

    ``sessions`` maps each defined name to a complete
    :class:`~kstlib.ops.models.SessionConfig` (defaults already applied,
    relative host paths resolved against the file's directory).

    Example:
        >>> OpsConfig().sessions, OpsConfig().default_backend.value
        ({}, 'tmux')
    """

    path: Path | None = None
    default_backend: BackendType = BackendType.TMUX
    container_runtime: str | None = None
    tmux_socket: str | None = None
    tmux_binary: str | None = None
    engines: Mapping[str, EngineConfig] = field(default_factory=dict)
    sessions: Mapping[str, SessionConfig] = field(default_factory=dict)
    #: The default pull policy of container sessions (``None``: ``missing``).
    pull: str | None = None
    #: Registries allowed over plain HTTP for every session (loopback always is).
    insecure_registries: tuple[str, ...] = ()
    #: Found as ``./kstlib.conf.yml`` in the current directory, not named by the user.
    project_local: bool = False
    #: Project folders (or files) the user trusts (``ops.trusted_projects`` of their own file).
    trusted_projects: tuple[str, ...] = ()
    #: Remote engine URLs that only an untrusted project-local file names: never reached.
    untrusted_urls: frozenset[str] = frozenset()
    #: The user's own file merged under a project-local one (:mod:`kstlib.ops.config`).
    user_path: Path | None = None
    #: What was skipped of a project-local file, one sentence each (the CLI prints them).
    notes: tuple[str, ...] = ()

    @property
    def source(self) -> str:
        """Where this configuration came from, for messages.

        Example:
            >>> OpsConfig().source
            'no config file'
        """
        return str(self.path) if self.path is not None else "no config file"

    def untrusted_endpoint(self, url: str | None) -> bool:
        """Whether ``url`` is a remote engine named only by an untrusted project-local file.

        Example:
            >>> OpsConfig(untrusted_urls=frozenset({"tcp://h:2375"})).untrusted_endpoint("tcp://h:2375")
            True
        """
        return url is not None and url in self.untrusted_urls

    def swarm_nodes(self, manager: str | None) -> tuple[str, ...]:
        """The ``nodes`` its swarm engines list for the manager at ``manager`` (``None``: default).

        Example:
            >>> OpsConfig().swarm_nodes("tcp://manager:2375")
            ()
        """
        return swarm_nodes(self.engines, manager, self.untrusted_urls)

    def is_defined(self, name: str) -> bool:
        """Whether session ``name`` is defined in the file.

        Example:
            >>> OpsConfig().is_defined("bot")
            False
        """
        return name in self.sessions

    def session(self, name: str) -> SessionConfig:
        """The definition of session ``name``.

        Raises:
            SessionConfigError: the session is not defined.

        Example:
            >>> OpsConfig().session("bot")
            Traceback (most recent call last):
            ...
            kstlib.ops.exceptions.SessionConfigError: session 'bot' is not defined: no config file found (looked for ...)
        """
        try:
            return self.sessions[name]
        except KeyError:
            pass
        if self.path is None:
            where = (
                "no config file found (looked for "
                + ", ".join(str(p) for p in config_candidates())
                + f"; set ${CONFIG_ENV} or pass a path)"
            )
        else:
            defined = ", ".join(sorted(self.sessions)) or "none"
            where = f"it is not in {self.path} (defined there: {defined})"
        raise SessionConfigError(
            f"session {validators.shown(name)} is not defined: {where}", field="sessions"
        )

    def defaults_for(self, name: str, backend: BackendType | None = None) -> dict[str, Any]:
        """Field values for a session that the file does not define: the ``ops`` defaults.

        Example:
            >>> OpsConfig(tmux_socket="work").defaults_for("adhoc")
            {'name': 'adhoc', 'backend': <BackendType.TMUX: 'tmux'>, 'socket_name': 'work'}
        """
        backend = backend or self.default_backend
        out: dict[str, Any] = {"name": name, "backend": backend}
        if backend is BackendType.TMUX:
            if self.tmux_socket is not None:
                out["socket_name"] = self.tmux_socket
        elif backend is BackendType.SWARM:
            pass  # a swarm's engines are Docker's, and its nodes pull their own images
        else:
            if self.container_runtime is not None:
                out["runtime"] = self.container_runtime
            if self.pull is not None:
                out["pull"] = self.pull
            if self.insecure_registries:
                out["insecure_registries"] = self.insecure_registries
        return out

    def session_fields(self, name: str) -> dict[str, Any]:
        """The session's :class:`SessionConfig` fields as a dict (defaults if not defined).

        Example:
            >>> OpsConfig().session_fields("adhoc")["backend"].value
            'tmux'
        """
        if name not in self.sessions:
            return self.defaults_for(name)
        cfg = self.sessions[name]
        return {f.name: getattr(cfg, f.name) for f in fields(cfg)}

    def manager_options(self, name: str) -> dict[str, Any]:
        """Keyword arguments for :class:`~kstlib.ops.manager.SessionManager` for ``name``.

        Raises:
            SessionConfigError: ``name`` is not defined, or it runs on a remote
                engine that only an untrusted project-local file names.

        Example:
            >>> from kstlib.ops.config import parse_config
            >>> cfg = parse_config("ops: {tmux_binary: /usr/bin/tmux, sessions: {a: {}}}",
            ...                    source="inline.yml")
            >>> cfg.manager_options("a")["tmux_bin"]
            '/usr/bin/tmux'
        """
        definition = self.session(name)
        if self.untrusted_endpoint(definition.base_url):
            raise SessionConfigError(
                f"{self.source}: ops.sessions.{name}: base_url "
                f"{validators.shown(definition.base_url)}: a remote engine named only by a "
                "project-local config file is not reached; pass its path, or add its folder "
                "to ops.trusted_projects of your own config file",
                field="base_url",
            )
        options = {f.name: getattr(definition, f.name) for f in fields(definition)}
        options.pop("name")
        if self.tmux_binary is not None:
            options["tmux_bin"] = self.tmux_binary
        return options


class ParseContext:
    """Builds error messages that name the file, the line and the key path."""

    def __init__(self, source: str, lines: dict[int, dict[Any, int]]) -> None:
        self.source = source
        self.lines = lines

    def line_of(self, mapping: object, key: object) -> int | None:
        try:
            return self.lines.get(id(mapping), {}).get(key)
        except TypeError:
            return None

    def error(
        self, keypath: str, problem: str, mapping: object = None, key: object = None
    ) -> SessionConfigError:
        line = self.line_of(mapping, key) if mapping is not None else None
        where = f"{self.source}:{line}" if line else self.source
        return SessionConfigError(f"{where}: {keypath}: {problem}", field=keypath, problem=problem)

    def wrap(
        self, err: SessionConfigError, prefix: str, mapping: object, key: object
    ) -> SessionConfigError:
        # A validator's error carries its field and problem; put the key path in front.
        inner_field = err.field or str(key)
        problem = err.problem
        # env[KEY] / labels[KEY]: point at KEY's own line when it is known.
        top, _, rest = inner_field.partition("[")
        nested = mapping.get(top) if isinstance(mapping, dict) else None
        if rest.endswith("]") and isinstance(nested, dict) and self.line_of(nested, rest[:-1]):
            mapping, key = nested, rest[:-1]
        return self.error(f"{prefix}.{inner_field}", problem, mapping, key)


def check_keys(
    ctx: ParseContext, mapping: Mapping[Any, Any], allowed: tuple[str, ...], prefix: str
) -> None:
    """Refuse a key of ``mapping`` not in ``allowed``, naming its line and the known keys."""
    for key in mapping:
        if not isinstance(key, str) or key not in allowed:
            text = validators.shown_key(key)
            hint = difflib.get_close_matches(text, allowed, n=1)
            suggestion = f"did you mean {hint[0]!r}? " if hint else ""
            raise ctx.error(
                f"{prefix}.{text}",
                f"unknown key ({suggestion}known: {', '.join(allowed)})",
                mapping,
                key,
            )


def as_mapping(
    ctx: ParseContext, value: object, keypath: str, parent: object, key: object
) -> dict[Any, Any]:
    """``value`` as a mapping (``None`` is an empty one), else an error at ``keypath``."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ctx.error(keypath, f"expected a mapping, got {type_name(value)}", parent, key)
    return value


def type_name(value: object) -> str:
    """The YAML-ish name of a value's type, for messages.

    Example:
        >>> type_name(None), type_name([1])
        ('null', 'list')
    """
    return "null" if value is None else type(value).__name__


def _backend_and_runtime(value: object) -> tuple[BackendType, str | None]:
    """``tmux``/``container``, or ``docker``/``podman`` meaning container on that runtime."""
    return BackendType.parse(value)


def _runtime(value: object) -> str | None:
    if value is None or (isinstance(value, str) and value.lower() == "auto"):
        return None
    return validators.validate_runtime(value)


def _resolve_host_path(path: str, base: Path) -> str:
    """Expand ``~`` and make a relative path absolute against the config file's directory."""
    if path.startswith("~"):
        return os.path.expanduser(path)
    if path == "." or path.startswith(("./", "../")) or path == "..":
        return os.path.normpath(str(base / path))
    return path


def _resolve_volume(volume: object, base: Path) -> object:
    """Resolve the host side of ``./data:/data`` (docker compose does the same)."""
    if not isinstance(volume, str):
        return volume
    host, sep, rest = volume.partition(":")
    return _resolve_host_path(host, base) + sep + rest if sep else volume


def _number_to_str(value: object) -> object:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value


def _yaml_hint(key: str, value: object) -> str:
    """Explain the YAML 1.1 surprises that turn a value into another type."""
    if key == "ports" and isinstance(value, list) and any(isinstance(v, int) for v in value):
        return (
            " (YAML reads an unquoted mapping such as 22:22 as a base-60 number: "
            'quote port mappings, e.g. "2222:22")'
        )
    if isinstance(value, bool) or (
        isinstance(value, dict) and any(isinstance(v, bool) for v in value.values())
    ):
        return " (YAML reads yes/no/on/off/true/false as booleans: quote the value)"
    return ""


def parse_engines(ctx: ParseContext, raw: dict[Any, Any]) -> dict[str, EngineConfig]:
    """Check each entry of ``ops.engines`` into an :class:`EngineConfig`."""
    engines: dict[str, EngineConfig] = {}
    for key, value in raw.items():
        keypath = f"ops.engines.{validators.shown_key(key)}"
        if not isinstance(key, str) or not key:
            raise ctx.error(keypath, "an engine name must be a non-empty string", raw, key)
        body = as_mapping(
            ctx, {"base_url": value} if isinstance(value, str) else value, keypath, raw, key
        )
        check_keys(ctx, body, ENGINE_KEYS, keypath)
        try:
            engines[key] = engine_from(key, body)
        except EngineProblem as err:
            where, at = (body, err.key) if err.key in body else (raw, key)
            raise ctx.error(f"{keypath}.{err.key}", err.problem, where, at) from None
    return engines


def parse_session(
    ctx: ParseContext,
    *,
    name: object,
    raw: object,
    parent: dict[Any, Any],
    defaults: OpsConfig,
    base_dir: Path,
) -> SessionConfig:
    keypath = f"ops.sessions.{validators.shown_key(name)}"
    try:
        validators.validate_name(name)
    except SessionConfigError as err:
        raise ctx.error(keypath, f"invalid session name: {err.problem}", parent, name) from None
    name = str(name)
    body = as_mapping(ctx, raw, keypath, parent, name)
    check_keys(ctx, body, SESSION_KEYS, keypath)

    def fail(err: SessionConfigError, key: str) -> SessionConfigError:
        value = body.get(key)
        wrapped = ctx.wrap(err, keypath, body, key)
        hint = _yaml_hint(key, value)
        if hint:
            wrapped = SessionConfigError(
                wrapped.message + hint, field=wrapped.field, problem=wrapped.problem + hint
            )
        return wrapped

    values: dict[str, Any] = {"name": name}
    try:
        if "backend" in body:
            backend, implied_runtime = _backend_and_runtime(body["backend"])
        else:
            backend, implied_runtime = defaults.default_backend, None
    except SessionConfigError as err:
        raise fail(err, "backend") from None
    values["backend"] = backend

    engine: EngineConfig | None = None
    if body.get("engine") is not None:
        ref = body["engine"]
        if not isinstance(ref, str) or ref not in defaults.engines:
            known = ", ".join(sorted(defaults.engines)) or "none defined in ops.engines"
            raise ctx.error(
                f"{keypath}.engine",
                f"{validators.shown(ref)} is not an engine (known: {known})",
                body,
                "engine",
            )
        if body.get("base_url") is not None:
            raise ctx.error(
                f"{keypath}.engine", "give either engine or base_url, not both", body, "engine"
            )
        engine = defaults.engines[ref]
        try:
            engine_backend = BackendType.coerce(engine.backend)
        except SessionConfigError:
            raise ctx.error(
                f"{keypath}.engine",
                f"engine {ref!r} is a {engine.backend} engine, which this kstlib cannot run",
                body,
                "engine",
            ) from None
        if "backend" not in body:
            backend = values["backend"] = engine_backend
        elif backend is not engine_backend:
            raise ctx.error(
                f"{keypath}.backend",
                f"{backend.value!r} contradicts engine {ref!r} ({engine.label})",
                body,
                "backend",
            )

    try:
        runtime = _runtime(body.get("runtime"))
    except SessionConfigError as err:
        raise fail(err, "runtime") from None
    if implied_runtime and runtime and implied_runtime != runtime:
        raise ctx.error(
            f"{keypath}.runtime",
            f"{runtime!r} contradicts backend {implied_runtime!r}",
            body,
            "runtime",
        )
    runtime = implied_runtime or runtime or (engine.runtime if engine else None)
    if backend is BackendType.CONTAINER:
        values["runtime"] = runtime or defaults.container_runtime
        values["base_url"] = engine.endpoint if engine else body.get("base_url")
    elif backend is BackendType.SWARM:
        values["runtime"] = runtime
        values["base_url"] = engine.base_url if engine else body.get("base_url")
    else:
        values["runtime"] = runtime
        default_socket = engine.socket_name if engine else defaults.tmux_socket
        socket = body.get("socket_name", default_socket)
        values["socket_name"] = socket

    for key in (
        "command",
        "env",
        "image",
        "ports",
        "restart",
        "memory",
        "cpus",
        "labels",
        "socket_path",
        "replicas",
        "placement",
        "mode",
        "stop_timeout",
        "network",
        "secret_refs",
        "with_registry_auth",
    ):
        if body.get(key) is not None:
            values[key] = body[key]
    # `command: [sleep, 30]` and `memory: 1024` are natural YAML: numbers become strings.
    if isinstance(values.get("command"), list):
        values["command"] = [_number_to_str(v) for v in values["command"]]
    if "memory" in values:
        values["memory"] = _number_to_str(values["memory"])
    if body.get("restart") is False:
        values["restart"] = "no"  # YAML 1.1 reads an unquoted `no` as false
    if body.get("init") is not None:
        if not isinstance(body["init"], bool):
            raise ctx.error(
                f"{keypath}.init",
                f"expected true or false, got {type_name(body['init'])}",
                body,
                "init",
            )
        values["init"] = body["init"]
    if backend is BackendType.CONTAINER and defaults.pull is not None:
        values["pull"] = defaults.pull
    for key in ("pull", "registry_auth"):
        if body.get(key) is not None:
            values[key] = body[key]
    insecure = body.get("insecure_registries")
    if defaults.insecure_registries or insecure is not None:
        if insecure is not None and not isinstance(insecure, list):
            raise ctx.error(
                f"{keypath}.insecure_registries",
                f"expected a list of host[:port], got {type_name(insecure)}",
                body,
                "insecure_registries",
            )
        values["insecure_registries"] = [*defaults.insecure_registries, *(insecure or [])]
    if body.get("working_dir") is not None:
        wd = body["working_dir"]
        # Inside a container the path belongs to the image; on the host it is ours.
        if isinstance(wd, str) and backend is BackendType.TMUX:
            wd = _resolve_host_path(wd, base_dir)
        values["working_dir"] = wd

    volumes: list[object] = []
    raw_volumes = body.get("volumes")
    if raw_volumes is not None:
        if not isinstance(raw_volumes, list):
            raise ctx.error(
                f"{keypath}.volumes",
                f"expected a list of strings, got {type_name(raw_volumes)}",
                body,
                "volumes",
            )
        volumes.extend(_resolve_volume(v, base_dir) for v in raw_volumes)
    if body.get("log_volume") is not None:
        try:
            validators.validate_volumes([_resolve_volume(body["log_volume"], base_dir)])
        except SessionConfigError as err:
            raise fail(
                SessionConfigError(
                    err.message.replace("volumes", "log_volume", 1), field="log_volume"
                ),
                "log_volume",
            ) from None
        volumes.append(_resolve_volume(body["log_volume"], base_dir))
    if volumes:
        values["volumes"] = volumes

    if backend in (BackendType.CONTAINER, BackendType.SWARM) and not values.get("image"):
        raise ctx.error(
            f"{keypath}.image",
            f"is required for a {backend.value} session (e.g. image: alpine:3.20)",
            parent,
            name,
        )
    try:
        return SessionConfig(**values)
    except SessionConfigError as err:
        top = (err.field or "").split("[", 1)[0]
        key = top if top in body else ("backend" if top == "image" else top)
        raise fail(err, key) from None
