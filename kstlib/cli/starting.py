"""What ``kstlib ops start`` and ``restart`` start: the command line over the config file.

The options given override the session's definition in the config file (or,
for ``restart``, the configuration its last ``kstlib ops start`` used), and
the result is checked as a whole before anything starts.

Example:
    >>> import argparse
    >>> from kstlib.cli.context import Context
    >>> ns = argparse.Namespace(name="web", config=None, backend="docker", runtime=None,
    ...     socket=None, image="nginx:1.27", shell_command=None, argv=None, env=[],
    ...     volume=[], port=["8080:80"], workdir=None)
    >>> start_config(Context(ns)).ports
    ('8080:80',)
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import fields

from kstlib.cli import engines, state
from kstlib.cli.context import Context
from kstlib.cli.parser import UsageError
from kstlib.cli.places import (
    CONTAINER,
    SWARM,
    TMUX,
    option_error,
    parse_env,
    resolve_cli_volume,
)
from kstlib.ops import validators
from kstlib.ops.exceptions import (
    SessionConfigError,
)
from kstlib.ops.models import SessionConfig

__all__ = ["env_options", "read_env_file", "start_config"]

#: An env file holds a few variables; refuse to read something absurdly large.
MAX_ENV_FILE_BYTES = 1024 * 1024


def _from_environment(key: str, where: str, environ: Mapping[str, str]) -> str:
    """The value of ``key`` in kstlib's own environment (``-e KEY``, a bare line of an env file)."""
    if key not in environ:
        # The name is not echoed: an item without '=' may be a secret pasted in the wrong place.
        raise SessionConfigError(
            f"{where} names a variable that is not set in kstlib's environment (KEY alone "
            "passes kstlib's own value: export it first, or give KEY=VALUE)",
            field="env",
        )
    return environ[key]


def read_env_file(path: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables of an env file, as ``docker run --env-file`` reads it.

    One ``KEY=VALUE`` per line (the value is taken as it is: no quotes, no
    expansion); blank lines and lines starting with ``#`` are skipped; a line
    ``KEY`` alone takes kstlib's own value of ``KEY``. Messages name the file
    and the line, never a value.

    Raises:
        SessionConfigError: the file cannot be read, or a line is not valid.

    Example:
        >>> import os, tempfile
        >>> p = os.path.join(tempfile.mkdtemp(), "app.env")
        >>> _ = open(p, "w").write("# settings\\nMODE=fast\\n\\nURL=a=b\\nHOME\\n")
        >>> env = read_env_file(p, {"HOME": "/home/ci"})
        >>> env
        {'MODE': 'fast', 'URL': 'a=b', 'HOME': '/home/ci'}
        >>> _ = open(p, "w").write("MODE fast\\n")
        >>> read_env_file(p)
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: --env-file '...app.env':1: the name before '=' must match ^[A-Za-z_][A-Za-z0-9_]*$
    """
    environ = os.environ if environ is None else environ
    shown = validators.shown(path)
    try:
        with open(os.path.expanduser(path), "rb") as handle:
            data = handle.read(MAX_ENV_FILE_BYTES + 1)
    except OSError as err:
        raise SessionConfigError(
            f"--env-file {shown}: cannot be read ({err.strerror or err})", field="env"
        ) from None
    if len(data) > MAX_ENV_FILE_BYTES:
        raise SessionConfigError(
            f"--env-file {shown}: more than {MAX_ENV_FILE_BYTES} bytes", field="env"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise SessionConfigError(
            f"--env-file {shown}: is not UTF-8 text ({err.reason})", field="env"
        ) from None
    env: dict[str, str] = {}
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.removesuffix("\r").lstrip()
        if not line or line.startswith("#"):
            continue
        where = f"--env-file {shown}:{number}"
        key, sep, value = line.partition("=")
        if not validators.ENV_KEY_RE.fullmatch(key):
            raise SessionConfigError(
                f"{where}: the name before '=' must match ^[A-Za-z_][A-Za-z0-9_]*$", field="env"
            )
        env[key] = value if sep else _from_environment(key, where, environ)
    try:
        return validators.validate_env(env)
    except SessionConfigError as err:
        raise option_error(err, f"--env-file {shown}") from None


def env_options(
    items: Sequence[str], files: Sequence[str] = (), environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The env of ``-e KEY=VALUE`` / ``-e KEY`` and ``--env-file FILE`` options (``-e`` wins).

    ``-e KEY`` without ``=`` takes kstlib's own value of ``KEY``, as ``docker
    run -e KEY`` does: the value never appears on a command line, where other
    users of the machine could read it (``/proc/PID/cmdline``).

    Raises:
        SessionConfigError: an item or a file is not valid, or ``KEY`` is not set.

    Example:
        >>> env_options(["MODE=fast", "TOKEN"], environ={"TOKEN": "s3cret"})
        {'MODE': 'fast', 'TOKEN': 's3cret'}
        >>> env_options(["TOKEN"], environ={})
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: --env: item 1 names a variable that is not set in kstlib's environment (KEY alone passes kstlib's own value: export it first, or give KEY=VALUE)
    """
    environ = os.environ if environ is None else environ
    env: dict[str, str] = {}
    for path in files:
        env.update(read_env_file(path, environ))
    given: list[str] = []
    for number, item in enumerate(items, 1):
        if "=" not in item and validators.ENV_KEY_RE.fullmatch(item):
            value = _from_environment(item, f"--env: item {number}", environ)
            given.append(f"{item}={value}")
        else:
            given.append(item)
    env.update(parse_env(given))
    return env


def start_config(ctx: Context, *, restart: bool = False) -> SessionConfig:
    """The configuration to start: the options over the definition (or the defaults).

    ``restart=True`` falls back on the last configuration ``kstlib ops start``
    used when the config file does not define the session.

    Example:
        >>> import argparse
        >>> from kstlib.cli.context import Context
        >>> ns = argparse.Namespace(name="bot", config=None, backend="tmux", runtime=None,
        ...     socket="w", image=None, shell_command="sleep 9", argv=None, env=["A=1"],
        ...     volume=[], port=[], workdir=None)
        >>> cfg = start_config(Context(ns))
        >>> cfg.command, cfg.env, cfg.socket_name
        ('sleep 9', {'A': '1'}, 'w')
    """
    args = ctx.args
    try:
        name = validators.validate_name(args.name)
    except SessionConfigError as err:
        raise option_error(err) from None
    config = ctx.config
    last = state.load(name) if restart and not config.is_defined(name) else None
    if config.is_defined(name):
        values = config.session_fields(name)
    elif last is not None:
        values = {f.name: getattr(last.config, f.name) for f in fields(last.config)}
    else:
        values = config.defaults_for(name)
    backend, runtime, socket = ctx.explicit_backend()
    if backend is None and args.image and values["backend"] is TMUX:
        backend = CONTAINER
    if backend is not None and backend is not values["backend"]:
        values["backend"] = backend
        if backend is TMUX and values.get("socket_name") is None:
            values["socket_name"] = config.tmux_socket
        if backend is CONTAINER and values.get("runtime") is None:
            values["runtime"] = config.container_runtime
        if backend is SWARM:  # a service has no tmux socket, and runs on Docker engines
            values.pop("socket_name", None)
            values.pop("socket_path", None)
            values["runtime"] = None
    if runtime:
        values["runtime"] = runtime
    if socket:
        values["socket_name"] = socket
    values.update(engines.start_values(ctx))

    if args.shell_command is not None and args.argv is not None:
        raise UsageError("give the command either with -c/--command or after '--', not both")
    given_command = args.shell_command is not None or args.argv is not None
    if args.argv is not None:
        if not args.argv:
            raise UsageError("no command after '--'")
        values["command"] = list(args.argv)
    elif args.shell_command is not None:
        values["command"] = args.shell_command
    if (
        restart
        and not config.is_defined(name)
        and last is None
        and not (given_command or args.image)
    ):
        raise UsageError(
            f"cannot restart {name!r}: it is not defined in {config.source} and was not "
            "started with 'kstlib ops start' here; give its command with -c or after '--'"
        )
    if args.image is not None:
        values["image"] = args.image
    cli_env = env_options(args.env, getattr(args, "env_file", None) or [])
    if cli_env:
        values["env"] = {**values.get("env", {}), **cli_env}
    if last is not None and not (given_command or args.image):
        # The record keeps env names, never values: they must be given again.
        missing = [k for k in last.env_keys if k not in cli_env]
        if missing:
            raise UsageError(
                f"cannot restart {name!r} from its last start: kstlib does not keep env "
                f"values, give them again with -e ({', '.join(f'{k}=...' for k in missing)})"
            )
    if args.volume:
        values["volumes"] = [
            *values.get("volumes", ()),
            *(resolve_cli_volume(v) for v in args.volume),
        ]
    if args.port:
        values["ports"] = [*values.get("ports", ()), *args.port]
    if getattr(args, "network", None) is not None:
        values["network"] = args.network
    if getattr(args, "restart", None) is not None:
        values["restart"] = args.restart
    if getattr(args, "pull", None) is not None:
        values["pull"] = args.pull
    for key in ("replicas", "placement", "mode", "with_registry_auth"):  # swarm services
        if getattr(args, key, None):
            values[key] = getattr(args, key)
    if args.workdir is not None:
        workdir = args.workdir
        if values["backend"] is TMUX:
            workdir = os.path.abspath(os.path.expanduser(workdir))
        values["working_dir"] = workdir
    try:
        result = SessionConfig(**values)
    except SessionConfigError as err:
        raise option_error(err) from None
    if result.backend in (CONTAINER, SWARM) and not result.image:
        raise SessionConfigError(
            f"--image: an image is required to start {name!r} in a {result.backend.value} "
            "(give -i IMAGE, or 'image:' for it in the config file)",
            field="image",
        )
    return result
