"""The lifecycle commands: ``start``, ``stop``, ``restart``, ``status``, ``logs``, ``wait``.

Example:
    >>> from kstlib.cli import main
    >>> main(["ops", "status", "no-such-session", "-L", "kstlib-doc"])
    3
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from kstlib.cli import output, state
from kstlib.cli.context import Context
from kstlib.cli.parser import UsageError
from kstlib.cli.places import defined_status, label, of_config, of_engine
from kstlib.cli.starting import start_config
from kstlib.ops import validators
from kstlib.ops.discovery import Location
from kstlib.ops.exceptions import (
    OpsError,
    SessionConfigError,
    SessionNotFoundError,
    SessionTimeoutError,
)
from kstlib.ops.manager import wait_for_log
from kstlib.ops.models import BackendType, SessionState, SessionStatus

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
    """``kstlib ops stop NAME [NAME ...]`` or ``--all``: stop (SIGTERM, wait, kill) and remove.

    Each name is stopped in turn; one that fails is reported and the others are
    still stopped (the exit code is the worst one's). ``--all`` stops every
    session kstlib manages, after asking on a terminal unless ``--yes``.

    Example:
        >>> from kstlib.cli import main
        >>> main(["ops", "stop", "no-such-session", "-L", "kstlib-doc"])
        3
        >>> main(["ops", "stop"])
        2
    """
    names = list(ctx.args.name or [])
    if ctx.option("all_sessions"):
        if names:
            raise UsageError("--all stops every managed session: give no NAME with it")
        return _stop_all(ctx)
    if ctx.option("yes"):
        raise UsageError("--yes only applies to --all")
    if not names:
        raise UsageError(
            "the following arguments are required: NAME (one or more), or --all "
            "(see 'kstlib ops stop --help')"
        )
    return each_name(ctx, names, _stop_one)


def _stop_one(ctx: Context, name: str) -> None:
    name = ctx.lookup_name()
    place = ctx.require(name, first=False)
    _stop_at(ctx, name, place)


def _stop_at(ctx: Context, name: str, place: Location) -> None:
    ctx.runner(place).stop(name, graceful=not ctx.args.force, timeout=ctx.args.timeout)
    state.forget(name)
    if not ctx.args.quiet:
        output.emit(f"Stopped session {name!r} on {label(place)}.")


def _place_of(ctx: Context, status: SessionStatus) -> Location:
    """Where a listed session runs (its row says which server, engine or named engine)."""
    if status.engine is not None and status.engine in ctx.config.engines:
        return of_engine(ctx.config.engines[status.engine])
    if status.backend is BackendType.TMUX:
        return Location(BackendType.TMUX, socket_name=status.socket_name)
    if status.backend is BackendType.SWARM:
        definition = ctx.config.sessions.get(status.name)
        base_url = definition.base_url if definition is not None else None
        return Location(BackendType.SWARM, endpoint=base_url)
    return Location(BackendType.CONTAINER, runtime=status.runtime)


def _stop_all(ctx: Context) -> int:
    """``stop --all``: every running session kstlib started, nothing else."""
    from kstlib.cli.commands.listing import collect_sessions

    statuses, unreachable = collect_sessions(ctx)
    for line in unreachable:
        output.note(f"not reachable: {line}; its sessions are not stopped")
    chosen = [s for s in statuses if s.managed and s.state is not SessionState.DEFINED]
    if not chosen:
        if not ctx.args.quiet:
            output.emit("No managed sessions to stop.")
        return 0
    if not ctx.option("yes") and _is_terminal(sys.stdin):
        listing = ", ".join(s.name for s in chosen)
        sys.stderr.write(f"Stop {len(chosen)} session(s): {listing}? [y/N] ")
        sys.stderr.flush()
        try:
            answer = sys.stdin.readline()
        except (OSError, ValueError):
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            output.note("nothing stopped")
            return 1
    worst = 0
    for status in chosen:
        try:
            _stop_at(ctx, status.name, _place_of(ctx, status))
        except OpsError as err:
            report_failure(err)
            worst = max(worst, exit_code_of(err))
    return worst


def exit_code_of(err: BaseException) -> int:
    """The exit code ``main`` gives ``err`` (2 usage, 3 not found, 1 any other failure).

    Example:
        >>> exit_code_of(SessionNotFoundError("bot", "tmux"))
        3
    """
    if isinstance(err, (UsageError, SessionConfigError)):
        return 2
    if isinstance(err, SessionNotFoundError):
        return 3
    return 1


def report_failure(err: BaseException) -> None:
    """Print ``err`` as ``main`` prints a failure (one ``kstlib: error:`` line on stderr)."""
    line = output.printable(" ".join((str(err) or type(err).__name__).split()))
    sys.stderr.write(f"kstlib: error: {line}\n")
    sys.stderr.flush()


def each_name(ctx: Context, names: list[str], one: Callable[[Context, str], Any]) -> int:
    """Run ``one(ctx, name)`` for each name; a failure is reported and the rest still run.

    One name: its error propagates as before (``main`` reports it). Several:
    each failure is one error line, and the exit code is the worst of them
    (3 not found beats 1 failed; 2 usage beats both).

    Example:
        >>> import argparse
        >>> each_name(Context(argparse.Namespace(name=None)), ["a", "b"], lambda ctx, n: None)
        0
    """
    if len(names) == 1:
        ctx.args.name = names[0]
        one(ctx, names[0])
        return 0
    worst = 0
    for name in names:
        ctx.args.name = name
        try:
            one(ctx, name)
        except (OpsError, UsageError) as err:
            report_failure(err)
            code = exit_code_of(err)
            worst = code if worst == 0 or code > worst else worst
    return worst


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
    hits = ctx.search(config.name, [of_config(config)]).found
    place = hits[0] if len(hits) == 1 else ctx.find(config.name, first=False)
    if place is not None:
        ctx.runner(place).stop(config.name, graceful=True, timeout=ctx.args.timeout)
    output.emit_status(ctx, ctx.start(config), None)
    return 0


def cmd_status(ctx: Context) -> int:
    """``kstlib ops status NAME [NAME ...]``: state, pid, exit code, creation time.

    Example:
        >>> from kstlib.cli import main
        >>> main(["ops", "status", "no-such-session", "-L", "kstlib-doc"])
        3
    """
    names = list(ctx.args.name)
    if len(names) > 1 and ctx.option("json"):
        # one JSON document: a list of the sessions found (a missing one: its error line)
        found: list[SessionStatus] = []
        code = each_name(ctx, names, lambda ctx, name: found.append(_status_of(ctx)))
        output.emit(output.dumps_json([s.to_dict() for s in found]))
        return code
    return each_name(ctx, names, _status_one)


def _status_one(ctx: Context, name: str) -> None:
    status = _status_of(ctx)
    output.emit_status(ctx, status, status.state.value)


def _status_of(ctx: Context) -> SessionStatus:
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
    return status


def cmd_logs(ctx: Context) -> int:
    """``kstlib ops logs NAME [-n N] [-f]``: the session's recent output.

    With ``-f``, the last ``N`` lines, then every new line until the session ends.
    ``--prefix`` (swarm sessions) starts each line with its task and node.

    Example:
        >>> from kstlib.cli import main
        >>> main(["ops", "logs", "no-such-session", "-L", "kstlib-doc"])
        3
    """
    names = list(ctx.args.name)
    if len(names) > 1 and ctx.args.follow:
        raise UsageError("--follow follows one session: give one NAME")
    prefixed = len(names) > 1
    return each_name(ctx, names, lambda ctx, name: _logs_one(ctx, prefixed))


def _logs_one(ctx: Context, prefixed: bool) -> None:
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
        return
    text = runner.logs(
        name,
        lines=ctx.args.lines,
        since=ctx.args.since,
        timestamps=ctx.args.timestamps,
        ansi=not ctx.args.no_color,
        **task_prefix,
    )
    if text and prefixed:  # several sessions: each line says whose it is
        text = "\n".join(f"{name} | {line}" for line in text.splitlines())
    if text:
        output.emit_output(show(text))


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
