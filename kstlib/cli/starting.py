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
from dataclasses import fields
from typing import TYPE_CHECKING

from kstlib.cli import engines, state
from kstlib.cli.parser import UsageError
from kstlib.ops import validators
from kstlib.ops.exceptions import (
    SessionConfigError,
)
from kstlib.ops.models import SessionConfig

if TYPE_CHECKING:
    pass
from kstlib.cli.context import Context
from kstlib.cli.places import (
    CONTAINER,
    SWARM,
    TMUX,
    _option_error,
    _resolve_cli_volume,
    parse_env,
)

__all__ = ["start_config"]


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
        raise _option_error(err) from None
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
    cli_env = parse_env(args.env)
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
            *(_resolve_cli_volume(v) for v in args.volume),
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
        raise _option_error(err) from None
    if result.backend in (CONTAINER, SWARM) and not result.image:
        raise SessionConfigError(
            f"--image: an image is required to start {name!r} in a {result.backend.value} "
            "(give -i IMAGE, or 'image:' for it in the config file)",
            field="image",
        )
    return result
