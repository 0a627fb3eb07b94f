"""Finding, reading and parsing ``kstlib.conf.yml`` (internal: import from :mod:`kstlib.ops.config`).

The lookup order, the bounds on the file (size, expansion) and the YAML loader
that records each key's line; :func:`parse_config` walks the ``ops:`` section
with the checks of :mod:`kstlib.ops.config._schema`.

Example:
    >>> parse_config("ops: {default_backend: tmux}", source="inline.yml").default_backend.value
    'tmux'
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from kstlib.ops import validators
from kstlib.ops.config._engines import EngineConfig
from kstlib.ops.config._schema import (
    CONFIG_ENV,
    CONFIG_FILENAME,
    MAX_CONFIG_BYTES,
    MAX_CONFIG_VALUES,
    OPS_KEYS,
    OpsConfig,
    ParseContext,
    _backend_and_runtime,
    _runtime,
    as_mapping,
    check_keys,
    config_candidates,
    parse_engines,
    parse_session,
    type_name,
)
from kstlib.ops.config._trust import (
    merge_project,
    program_problem,
    trusts,
    validate_trusted_projects,
)
from kstlib.ops.exceptions import SessionConfigError
from kstlib.ops.models import BackendType, SessionConfig

__all__ = [
    "CONFIG_ENV",
    "CONFIG_FILENAME",
    "EngineConfig",
    "OpsConfig",
    "config_candidates",
    "find_config_file",
    "load_config",
    "parse_config",
]


# -- locating the file ------------------------------------------------------------------


def find_config_file(path: str | os.PathLike[str] | None = None) -> Path | None:
    """Return the config file to read, or ``None`` when there is none.

    An explicit ``path`` or ``$KSTLIB_CONFIG`` must name an existing file;
    the default places are optional.

    Example:
        >>> find_config_file("/no/such/kstlib.conf.yml")
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: config file '/no/such/kstlib.conf.yml' does not exist; check --config / $KSTLIB_CONFIG
    """
    from_env = path is None and bool(os.environ.get(CONFIG_ENV))
    asked = os.fspath(path) if path is not None else os.environ.get(CONFIG_ENV) or None
    if asked is not None:
        # Name where the path came from: a bad $KSTLIB_CONFIG is a setting to fix.
        origin = f"${CONFIG_ENV}: " if from_env else ""
        shown = validators.shown(asked)
        try:
            chosen = Path(asked).expanduser()
            exists, is_file = chosen.exists(), chosen.is_file()
        except (OSError, RuntimeError) as err:  # a name too long, a home that is not there
            reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
            raise SessionConfigError(
                f"{origin}config file {shown} cannot be used ({reason})",
                field=CONFIG_ENV if from_env else "config",
            ) from None
        if not exists:
            raise SessionConfigError(
                f"{origin}config file {shown} does not exist; check --config / ${CONFIG_ENV}",
                field=CONFIG_ENV if from_env else "config",
            )
        if not is_file:
            raise SessionConfigError(
                f"{origin}config file {shown} is not a file",
                field=CONFIG_ENV if from_env else "config",
            )
        return chosen
    for candidate in config_candidates():
        try:
            if candidate.is_file():
                return candidate
        except OSError as err:  # e.g. $XDG_CONFIG_HOME or $HOME too long to be a path
            raise SessionConfigError(
                f"config file {validators.shown(str(candidate))} cannot be used "
                f"({err.strerror or err}); check $XDG_CONFIG_HOME and $HOME",
                field="config",
            ) from None
    return None


def is_project_local(found: Path | None, path: str | os.PathLike[str] | None = None) -> bool:
    """Whether ``found`` came from the current directory rather than from the user.

    A path the user named (``path``, ``$KSTLIB_CONFIG``) or their own
    ``$XDG_CONFIG_HOME`` file is theirs; ``./kstlib.conf.yml`` picked up by
    the search came with the folder.

    Example:
        >>> is_project_local(Path.cwd() / CONFIG_FILENAME), is_project_local(None)
        (True, False)
    """
    if found is None or path is not None or os.environ.get(CONFIG_ENV):
        return False
    local, own = config_candidates()
    if found != local:
        return False
    try:  # the user working in their own config folder
        return found.resolve() != own.resolve()
    except (OSError, RuntimeError):
        return True


def _user_file() -> Path | None:
    """The user's own config file (``$XDG_CONFIG_HOME/kstlib/kstlib.conf.yml``), if any."""
    own = config_candidates()[1]
    try:
        return own if own.is_file() else None
    except OSError:
        return None


def read_config_text(path: Path) -> str:
    """The text of config file ``path``: one open, at most :data:`MAX_CONFIG_BYTES` read.

    The size is checked on the open descriptor and the read stops one byte
    past the limit, so a file swapped or grown after a check (or a FIFO, a
    device) can neither block nor exhaust memory.

    Raises:
        SessionConfigError: not a regular file, too large, unreadable or not UTF-8.

    Example:
        >>> read_config_text(Path("/dev/zero"))
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: /dev/zero: is not a regular file
    """

    def too_large(size: str) -> SessionConfigError:
        return SessionConfigError(
            f"{path}: is {size} bytes, more than the {MAX_CONFIG_BYTES} allowed for a config file",
            field="config",
        )

    # O_NONBLOCK: a FIFO put in the file's place must not make the open wait for a writer.
    flags = os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    chunks: list[bytes] = []
    total = 0
    try:
        fd = os.open(path, flags)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise SessionConfigError(f"{path}: is not a regular file", field="config")
            if info.st_size > MAX_CONFIG_BYTES:
                raise too_large(str(info.st_size))
            while total <= MAX_CONFIG_BYTES:
                chunk = os.read(fd, MAX_CONFIG_BYTES + 1 - total)
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
        finally:
            os.close(fd)
    except OSError as err:
        raise SessionConfigError(
            f"{path}: cannot be read ({err.strerror or err}); check its permissions",
            field="config",
        ) from err
    if total > MAX_CONFIG_BYTES:
        raise too_large("more than")
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError as err:
        raise SessionConfigError(
            f"{path}: is not UTF-8 text ({err.reason})", field="config"
        ) from err


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    invalid: dict[str, SessionConfigError] | None = None,
) -> OpsConfig:
    r"""Find, read and validate the configuration (empty if there is no file).

    ``invalid``: see :func:`parse_config` (bad session entries are skipped and
    collected there instead of failing the whole file; ``""`` holds the error
    of an ``ops.sessions`` that is not a mapping). A project-local file is
    merged under the user's own (:mod:`kstlib.ops.config`).

    Example:
        >>> import os, tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     p = os.path.join(tmp, "kstlib.conf.yml")
        ...     _ = open(p, "w").write("ops:\n  sessions:\n    web: {backend: docker, image: nginx}\n")
        ...     cfg = load_config(p)
        >>> cfg.session("web").backend.value, cfg.session("web").runtime
        ('container', 'docker')
    """
    found = find_config_file(path)
    if found is None:
        return OpsConfig()
    config = parse_config(read_config_text(found), source=found, invalid=invalid)
    if not is_project_local(found, path):
        return config
    own = _user_file()
    user = OpsConfig()
    if own is not None:
        user = parse_config(read_config_text(own), source=own, invalid=invalid)
    project = replace(config, project_local=True)
    return merge_project(project, user, trusted=trusts(user.trusted_projects, found))


# -- parsing --------------------------------------------------------------------------


def _make_loader() -> type[Any]:
    """A safe YAML loader that refuses duplicate keys and remembers key lines."""
    import yaml

    base: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class Loader(base):  # type: ignore[misc]
        def __init__(self, stream: str) -> None:
            super().__init__(stream)
            # id(mapping) -> {key: 1-based line}; the mappings live in the result.
            self.key_lines: dict[int, dict[Any, int]] = {}
            self._node_lines: dict[int, dict[Any, int]] = {}

        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                try:
                    if key in seen:
                        raise yaml.constructor.ConstructorError(
                            None,
                            None,
                            f"duplicate key {validators.shown(key)} (first on line {seen[key]})",
                            key_node.start_mark,
                        )
                    seen[key] = line
                except TypeError:
                    pass  # an unhashable key: the base class reports it
            self._node_lines[id(node)] = seen
            mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
            return mapping

        def construct_yaml_map(self, node: Any) -> Iterator[dict[Any, Any]]:
            data: dict[Any, Any] = {}
            yield data
            data.update(self.construct_mapping(node))
            self.key_lines[id(data)] = self._node_lines.pop(id(node), {})

    Loader.add_constructor("tag:yaml.org,2002:map", Loader.construct_yaml_map)
    return Loader


def _check_expansion(root: Any, source: str) -> None:
    """Refuse a document whose aliases expand past :data:`MAX_CONFIG_VALUES` or loop.

    Counts the values of the expanded document without expanding it (each
    node's size is computed once), so an alias bomb costs microseconds.
    """
    import yaml

    if root is None:
        return
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            on_path.discard(key)
            if isinstance(node, yaml.MappingNode):
                kids = [n for pair in node.value for n in pair]
            elif isinstance(node, yaml.SequenceNode):
                kids = list(node.value)
            else:
                kids = []
            size = 1 + sum(sizes[id(k)] for k in kids)
            if size > MAX_CONFIG_VALUES:
                line = node.start_mark.line + 1
                raise SessionConfigError(
                    f"{source}:{line}: the YAML aliases (*name) expand to more than "
                    f"{MAX_CONFIG_VALUES} values; write the values out or use fewer aliases",
                    field="config",
                )
            sizes[key] = size
            continue
        if key in sizes:
            continue
        if key in on_path:
            line = node.start_mark.line + 1
            raise SessionConfigError(
                f"{source}:{line}: a YAML alias (*name) refers to a value that contains it",
                field="config",
            )
        on_path.add(key)
        stack.append((node, True))
        if isinstance(node, yaml.MappingNode):
            stack.extend((n, False) for pair in node.value for n in pair)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((n, False) for n in node.value)


def parse_config(
    text: str,
    source: str | os.PathLike[str] = "<string>",
    *,
    invalid: dict[str, SessionConfigError] | None = None,
) -> OpsConfig:
    """Parse and validate the YAML text of a config file.

    ``source`` names the file in error messages; relative host paths are
    resolved against its directory. With an ``invalid`` dict, an entry of
    ``ops.sessions`` that is not valid is left out and its error stored there
    under its name, instead of failing the whole file. YAML aliases may expand
    the document to at most :data:`MAX_CONFIG_VALUES` values.

    Example:
        >>> parse_config("ops: {default_backend: podman}", source="x.yml").container_runtime
        'podman'
        >>> parse_config("ops: [1, 2]", source="x.yml")
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: x.yml:1: ops: expected a mapping, got list
        >>> bad: dict[str, SessionConfigError] = {}
        >>> sorted(parse_config("ops: {sessions: {a: {}, b: {colour: x}}}", invalid=bad).sessions)
        ['a']
        >>> list(bad)
        ['b']
    """
    import yaml

    source_str = os.fspath(source)
    loader = _make_loader()(text)
    try:
        node = loader.get_single_node()
        _check_expansion(node, source_str)
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{source_str}:{mark.line + 1}" if mark is not None else source_str
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        context = getattr(err, "context", None)
        detail = f"{context}, {problem}" if context else problem
        if len(detail) > 200:  # e.g. a megabyte-long tag: the start says enough
            detail = detail[:197] + "..."
        raise SessionConfigError(
            f"{where}: invalid YAML: {detail}".replace("\n", " "), field="config"
        ) from None
    except RecursionError:
        raise SessionConfigError(
            f"{source_str}: invalid YAML: nested too deeply", field="config"
        ) from None
    finally:
        loader.dispose()
    ctx = ParseContext(source_str, loader.key_lines)
    path = Path(source_str) if source_str != "<string>" else None
    base_dir = path.resolve().parent if path is not None else Path.cwd()

    if data is None:
        return OpsConfig(path=path)
    if not isinstance(data, dict):
        raise ctx.error(
            "(top level)", f"expected a mapping with an 'ops' key, got {type_name(data)}"
        )
    if "ops" not in data:
        return OpsConfig(path=path)
    ops = as_mapping(ctx, data["ops"], "ops", data, "ops")
    check_keys(ctx, ops, OPS_KEYS, "ops")

    default_backend = BackendType.TMUX
    container_runtime: str | None = None
    try:
        if ops.get("default_backend") is not None:
            default_backend, container_runtime = _backend_and_runtime(ops["default_backend"])
    except SessionConfigError as err:
        raise ctx.wrap(err, "ops", ops, "default_backend") from None
    try:
        runtime = _runtime(ops.get("container_runtime"))
    except SessionConfigError as err:
        raise ctx.error("ops.container_runtime", err.problem, ops, "container_runtime") from None
    if container_runtime and runtime and runtime != container_runtime:
        raise ctx.error(
            "ops.container_runtime",
            f"{runtime!r} contradicts default_backend {container_runtime!r}",
            ops,
            "container_runtime",
        )
    container_runtime = container_runtime or runtime

    tmux_socket: str | None = None
    if ops.get("tmux_socket") is not None:
        try:
            tmux_socket = validators.validate_socket_name(ops["tmux_socket"])
        except SessionConfigError as err:
            raise ctx.error("ops.tmux_socket", err.problem, ops, "tmux_socket") from None
    tmux_binary: str | None = None
    if ops.get("tmux_binary") is not None:
        try:
            tmux_binary = validators.validate_optional_str("tmux_binary", ops["tmux_binary"])
        except SessionConfigError as err:
            raise ctx.error("ops.tmux_binary", err.problem, ops, "tmux_binary") from None
        if tmux_binary is not None:
            problem = program_problem(tmux_binary)
            if problem is not None:
                raise ctx.error("ops.tmux_binary", problem, ops, "tmux_binary")

    engines = parse_engines(ctx, as_mapping(ctx, ops.get("engines"), "ops.engines", ops, "engines"))
    pull: str | None = None
    insecure_registries: tuple[str, ...] = ()
    try:
        if ops.get("pull") is not None:
            pull = validators.validate_pull(ops["pull"])
    except SessionConfigError as err:
        raise ctx.error("ops.pull", err.problem, ops, "pull") from None
    try:
        insecure_registries = validators.validate_insecure_registries(
            ops.get("insecure_registries")
        )
    except SessionConfigError as err:
        raise ctx.error(
            "ops.insecure_registries",
            err.problem,
            ops,
            "insecure_registries",
        ) from None
    try:
        trusted_projects = validate_trusted_projects(ops.get("trusted_projects"))
    except SessionConfigError as err:
        raise ctx.error("ops.trusted_projects", err.problem, ops, "trusted_projects") from None
    defaults = OpsConfig(
        path=path,
        default_backend=default_backend,
        container_runtime=container_runtime,
        tmux_socket=tmux_socket,
        tmux_binary=tmux_binary,
        engines=engines,
        pull=pull,
        insecure_registries=insecure_registries,
        trusted_projects=trusted_projects,
    )
    try:
        raw_sessions = as_mapping(ctx, ops.get("sessions"), "ops.sessions", ops, "sessions")
    except SessionConfigError as err:
        if invalid is None:
            raise
        invalid[""] = err  # the whole section: no session is ever named ""
        raw_sessions = {}
    sessions: dict[str, SessionConfig] = {}
    for name, body in raw_sessions.items():
        try:
            sessions[str(name)] = parse_session(
                ctx, name=name, raw=body, parent=raw_sessions, defaults=defaults, base_dir=base_dir
            )
        except SessionConfigError as err:
            if invalid is None:
                raise
            invalid[str(name)] = err
    return replace(defaults, sessions=sessions)
