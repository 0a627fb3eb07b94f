"""The ``kstlib ops`` commands: where a session is, then one runner call.

Each command finds where its session runs (the ``-b``/``--runtime``/``-L``
options, else the config file's place for it, then the tmux server, then the
container engines), calls the runner, and prints a table, a panel or JSON.
Errors propagate as :class:`~kstlib.ops.exceptions.OpsError` or
:class:`~kstlib.cli.parser.UsageError`; :func:`kstlib.cli.main` turns them into
one line on stderr and an exit code.

Container SDKs are imported only when a command reaches a container engine,
so a tmux-only command never loads docker or podman.

Every ``cmd_*`` handler lives in this package, one module a group
(:mod:`~kstlib.cli.commands.lifecycle`, :mod:`~kstlib.cli.commands.listing`,
:mod:`~kstlib.cli.commands.interactive`, :mod:`~kstlib.cli.commands.doctor`,
:mod:`~kstlib.cli.commands.pull`, :mod:`~kstlib.cli.commands.events`), each
declared with its handler in :mod:`kstlib.cli.parser`; :mod:`kstlib.cli.context`
finds where a session runs (through :mod:`kstlib.ops.discovery`).

Example:
    >>> from kstlib.cli.parser import parse_args
    >>> handler_of(parse_args(["ops", "status", "bot"])).__module__
    'kstlib.cli.commands.lifecycle'
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from kstlib.cli.commands.listing import collect_sessions
from kstlib.cli.context import Context
from kstlib.cli.places import defined_status, label, parse_env
from kstlib.ops.exceptions import OpsError, SessionNotFoundError
from kstlib.ops.locations import Location

if TYPE_CHECKING:
    from kstlib.ops.runners import RunnerFactory

__all__ = [
    "Context",
    "Location",
    "collect_sessions",
    "defined_status",
    "handler_of",
    "label",
    "parse_env",
    "run",
]


def handler_of(args: argparse.Namespace) -> Callable[[Context], int]:
    """The function that runs the parsed command, as its parser declared it.

    Each command is declared with its handler (``"module:function"``) in
    :mod:`kstlib.cli.parser`; the module is imported here, on use.

    Example:
        >>> from kstlib.cli.parser import parse_args
        >>> handler_of(parse_args(["ops", "list"])).__name__
        'cmd_list'
    """
    module, _, function = args.handler.partition(":")
    handler: Callable[[Context], int] = getattr(importlib.import_module(module), function)
    return handler


def run(args: argparse.Namespace, runner_factory: RunnerFactory | None = None) -> int:
    """Run the parsed ``kstlib ops`` command; return its exit code.

    Example:
        >>> from kstlib.cli.parser import parse_args
        >>> run(parse_args(["ops", "status", "no-such-session", "-L", "kstlib-doc"]))
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionNotFoundError: Session 'no-such-session' was not found on the tmux (socket kstlib-doc) backend; check the name with 'kstlib ops list'.
    """
    ctx = Context(args, runner_factory=runner_factory)
    try:
        return handler_of(args)(ctx)
    except SessionNotFoundError as err:
        close = _close_names(ctx, err.name) if not err.suggestions else []
        if not close:
            raise
        raise SessionNotFoundError(
            err.name, err.backend, searched=err.searched, suggestions=close
        ) from None


def _close_names(ctx: Context, name: str) -> list[str]:
    """Names of sessions (running or defined) close to ``name``: what the user may have meant.

    Every place is listed as ``list`` does (each bounded); a place that fails
    just gives no suggestion.
    """
    import difflib

    try:
        place = ctx.explicit_place(name)
        if place is None:
            names = {s.name for s in collect_sessions(ctx)[0]}
        else:  # the place the user named only (a tmux look-up loads no container SDK)
            names = {s.name for s in ctx.runner(place).list_sessions()}
            names.update(ctx.config.sessions)
    except OpsError:
        return []
    known = sorted(names - {name})
    return difflib.get_close_matches(name, known, n=3, cutoff=0.75)
