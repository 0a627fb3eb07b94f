"""The lifecycle commands: ``start``, ``stop``, ``restart``, ``status``, ``logs``, ``wait``.

Example:
    >>> from kstlib.cli import main
    >>> main(["ops", "status", "no-such-session", "-L", "kstlib-doc"])
    3
"""

from __future__ import annotations

import re
import sys
from dataclasses import replace
from typing import Any

from kstlib.cli import output, state
from kstlib.cli.context import Context
from kstlib.cli.parser import UsageError
from kstlib.cli.places import Place, defined_status
from kstlib.cli.starting import start_config
from kstlib.ops import validators
from kstlib.ops.exceptions import (
    SessionNotFoundError,
    SessionTimeoutError,
)
from kstlib.ops.manager import wait_for_log
from kstlib.ops.models import BackendType, SessionStatus

__all__ = ["cmd_logs", "cmd_restart", "cmd_start", "cmd_status", "cmd_stop", "cmd_wait"]


def cmd_start(ctx: Context) -> int:
    """``kstlib ops start NAME``: start a session, print its status.

    Example:
        >>> from kstlib.cli import main
        >>> main(["ops", "start", "bot", "-q", "-c", "python bot.py"])  # doctest: +SKIP
        0
        >>> main(["ops", "start", "bot", "-c", "x", "--", "y"])  # both forms of a command
        2
    """
    status = ctx.start(start_config(ctx))
    if not ctx.option("json") and not ctx.option("quiet"):
        # Upstream kstlib's first line, then the status block.
        output.emit(f"Session '{status.name}' started ({status.backend.value} backend).")
    output.emit_status(ctx, status, None)
    return 0


def cmd_stop(ctx: Context) -> int:
    """``kstlib ops stop NAME``: stop (SIGTERM, wait, kill) and remove a session.

    Example:
        >>> from kstlib.cli import main
        >>> main(["ops", "stop", "no-such-session", "-L", "kstlib-doc"])
        3
    """
    name = ctx.lookup_name()
    place = ctx.require(name, first=False)
    ctx.runner(place).stop(name, graceful=not ctx.args.force, timeout=ctx.args.timeout)
    state.forget(name)
    if not ctx.args.quiet:
        output.emit(f"Stopped session {name!r} on {place.label}.")
    return 0


def cmd_restart(ctx: Context) -> int:
    """``kstlib ops restart NAME``: stop it gracefully if it runs, then start it again.

    Example:
        >>> from kstlib.cli import main
        >>> main(["ops", "restart", "bot", "-q"])  # doctest: +SKIP
        0
        >>> main(["ops", "restart", "9lives"])
        2
    """
    config = start_config(ctx, restart=True)
    # Where it will start is the likeliest place it runs now (a last-start socket
    # that no default search covers, for one).
    hits = ctx._probe(config.name, Place.of(config))
    place = hits[0] if len(hits) == 1 else ctx.find(config.name, first=False)
    if place is not None:
        ctx.runner(place).stop(config.name, graceful=True, timeout=ctx.args.timeout)
    output.emit_status(ctx, ctx.start(config), None)
    return 0


def cmd_status(ctx: Context) -> int:
    """``kstlib ops status NAME``: state, pid, exit code, creation time.

    Example:
        >>> from kstlib.cli import main
        >>> main(["ops", "status", "no-such-session", "-L", "kstlib-doc"])
        3
    """
    name = ctx.lookup_name()
    place = ctx.find(name, first=True)
    status: SessionStatus | None = None
    if place is not None:
        try:
            status = ctx.runner(place).status(name)
        except SessionNotFoundError:
            status = None  # it ended between the lookup and the query
        if status is not None and place.engine is not None:
            status = replace(status, engine=place.engine)
    if status is None:
        definition = ctx.config.sessions.get(name)
        if definition is None:
            raise ctx.not_found(name)
        status = defined_status(definition)
    output.emit_status(ctx, status, status.state.value)
    return 0


def cmd_logs(ctx: Context) -> int:
    """``kstlib ops logs NAME [-n N] [-f]``: the session's recent output.

    With ``-f``, the last ``N`` lines, then every new line until the session ends.
    ``--prefix`` (swarm sessions) starts each line with its task and node.

    Example:
        >>> from kstlib.cli import main
        >>> main(["ops", "logs", "no-such-session", "-L", "kstlib-doc"])
        3
    """
    name = ctx.lookup_name()
    runner = ctx.runner(ctx.require(name, first=True))
    task_prefix: dict[str, bool] = {}
    if ctx.option("prefix"):
        if runner.backend is not BackendType.SWARM:
            raise UsageError(
                f"--prefix: session {name!r} runs on {runner.backend.value}, which has no tasks "
                "to name; only swarm sessions do"
            )
        task_prefix["prefix"] = True
    # On a terminal, only colours pass: any other sequence in a session's output
    # could make the terminal answer (typed into the user's shell) or retitle it.
    show = output.terminal_safe if _is_terminal(sys.stdout) else _unchanged
    if ctx.args.follow:
        # As docker logs -f --tail N: the last N lines (-n all: every line kept), then new ones.
        backlog, since = ctx.args.lines, ctx.args.since
        if backlog is None and since is None:
            since = 0
        lines = runner.follow_logs(
            name,
            since=since,
            timestamps=ctx.args.timestamps,
            ansi=not ctx.args.no_color,
            lines=backlog,
            **task_prefix,  # swarm: prefix=True
        )
        for line in lines:
            sys.stdout.write(show(line) + "\n")
            sys.stdout.flush()
        return 0
    text = runner.logs(
        name,
        lines=ctx.args.lines,
        since=ctx.args.since,
        timestamps=ctx.args.timestamps,
        ansi=not ctx.args.no_color,
        **task_prefix,
    )
    if text:
        output.emit_output(show(text))
    return 0


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _unchanged(text: str) -> str:
    return text


_FOREVER = 10.0 * 365 * 86400  # wait_for_log needs a bound; --for without -t has none


def cmd_wait(ctx: Context) -> int:
    """``kstlib ops wait NAME [--for REGEX] [-t S]``: exit code, or a matching line.

    Example:
        >>> from kstlib.cli import main
        >>> main(["ops", "wait", "no-such-session", "-L", "kstlib-doc"])
        3
    """
    name = ctx.lookup_name()
    runner = ctx.runner(ctx.require(name, first=True))
    if ctx.args.pattern is not None:
        try:
            regex = re.compile(ctx.args.pattern)
        except re.error as err:
            raise UsageError(
                f"--for: {validators.shown(ctx.args.pattern)} is not a regular expression: {err}"
            ) from None
        timeout = ctx.args.timeout if ctx.args.timeout is not None else _FOREVER
        try:
            line = wait_for_log(runner, name, regex, timeout)
        except SessionTimeoutError as err:
            raise SessionTimeoutError(
                name,
                err.backend,
                f"no output line matched {regex.pattern!r} within {timeout:g} s",
            ) from err
        if ctx.args.json:
            output.emit(output.dumps_json({"name": name, "line": line}))
        elif not ctx.args.quiet and not ctx.args.print_code:
            output.emit_output(output.terminal_safe(line) if _is_terminal(sys.stdout) else line)
        return 0
    code = runner.wait(name, timeout=ctx.args.timeout)
    if ctx.args.json:
        output.emit(output.dumps_json({"name": name, "exit_code": code}))
        return 0
    if ctx.args.print_code:
        output.emit(str(code))
        return 0
    return code if 0 <= code <= 255 else 1
