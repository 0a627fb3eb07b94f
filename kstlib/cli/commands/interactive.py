"""The commands that reach into a session: ``exec``, ``send-keys``, ``attach``.

Example:
    >>> from kstlib.cli import main
    >>> main(["ops", "send-keys", "no-such-session", "-L", "kstlib-doc", "--", "ls"])
    3
"""

from __future__ import annotations

import sys

from kstlib.cli import EXIT_FAILED, output
from kstlib.cli.context import Context
from kstlib.cli.parser import UsageError
from kstlib.cli.places import CONTAINER, TMUX, label
from kstlib.ops.discovery import Location
from kstlib.ops.runner import CommandRunner, KeySender, TerminalAttacher

__all__ = ["cmd_attach", "cmd_exec", "cmd_send_keys"]


def _place_for(ctx: Context, name: str, command: str) -> Location:
    """Where session ``name`` runs; a usage error when ``command`` cannot reach its kind.

    ``send-keys`` types into tmux sessions (tmux is asked first: no container
    SDK is loaded for a tmux session); ``exec`` runs a command in any other.
    """
    tmux_only = command == "send-keys"
    place = ctx.require(name, first=tmux_only)
    if (place.backend is TMUX) == tmux_only:
        return place
    if tmux_only:
        kind = "container" if place.backend is CONTAINER else place.backend.value
        raise UsageError(
            f"{name!r} is a {kind} session ({label(place)}); send-keys types into tmux "
            "sessions (use 'kstlib ops exec' to run a command in it)"
        )
    raise UsageError(
        f"{name!r} is a tmux session; exec runs a command in a container "
        "session (use 'kstlib ops send-keys' to type into tmux)"
    )


def _unavailable(command: str, runner: object) -> UsageError:
    """The error for a runner that cannot do what ``command`` asks."""
    return UsageError(f"{command} is not available for {runner!r}")


def cmd_exec(ctx: Context) -> int:
    """``kstlib ops exec NAME -- CMD ...``: run a command in a container session.

    Prints the command's output and exits with its exit code.

    Example:
        >>> from kstlib.cli import main
        >>> main(["ops", "exec", "bot", "-b", "tmux", "--", "ls"])
        2
    """
    argv = ctx.args.argv
    if not argv:
        raise UsageError("give the command after '--', e.g. kstlib ops exec NAME -- ls -l")
    backend, _, _ = ctx.explicit_backend()
    if backend is TMUX:
        raise UsageError(
            "exec runs a command in a container session; for tmux sessions "
            "use 'kstlib ops send-keys'"
        )
    name = ctx.lookup_name(backend=CONTAINER)
    runner = ctx.runner(_place_for(ctx, name, "exec"))
    if not isinstance(runner, CommandRunner):
        raise _unavailable("exec", runner)
    code, out = runner.exec(name, list(argv))
    text = out.decode("utf-8", "replace") if isinstance(out, bytes) else str(out or "")
    sys.stdout.write(text)
    if text and not text.endswith("\n"):
        sys.stdout.write("\n")
    return code if 0 <= code <= 255 else 1


def cmd_send_keys(ctx: Context) -> int:
    """``kstlib ops send-keys NAME KEYS``: type text into a tmux session, then Enter.

    Example:
        >>> from kstlib.cli import main
        >>> main(["ops", "send-keys", "no-such-session", "ls", "-L", "kstlib-doc"])
        3
    """
    args = ctx.args
    keys = args.keys
    if not keys and args.no_enter:
        raise UsageError("nothing to send: give KEYS (or drop --no-enter to press Enter)")
    name = ctx.lookup_name(backend=TMUX)
    runner = ctx.tmux_runner(_place_for(ctx, name, "send-keys"))
    if not isinstance(runner, KeySender):
        raise _unavailable("send-keys", runner)
    runner.send_keys(name, keys, enter=not args.no_enter, literal=args.literal)
    return 0


def cmd_attach(ctx: Context) -> int:
    """``kstlib ops attach NAME``: this terminal joins the session (tmux: replaces kstlib).

    A container attach ends with one line on stderr: after a detach (Ctrl-P
    Ctrl-Q; Ctrl-C or Ctrl-D for a container without a TTY), exit 0; when the
    container ended, its exit code (1 when it was removed at once and the code
    is unknown).

    Example:
        >>> from kstlib.cli import main
        >>> main(["ops", "attach", "no-such-session", "-L", "kstlib-doc"])
        3
    """
    name = ctx.lookup_name()
    place = ctx.require(name, first=False)
    sys.stdout.flush()
    runner = ctx.runner(place)
    if place.backend is not CONTAINER:
        runner.attach(name)  # tmux: its client takes over this process; a swarm says why not
        return 0
    if not isinstance(runner, TerminalAttacher):
        raise _unavailable("attach", runner)
    where = output.printable(getattr(runner, "runtime", None) or label(place))
    code = runner.attach_terminal(name)
    if code is None:
        # the relay left the cursor at the start of a line (a newline if needed)
        sys.stderr.write(f"kstlib: detached from session {name!r} ({where}); it runs on.\n")
        return 0
    if code < 0:
        sys.stderr.write(
            f"kstlib: session {name!r} ({where}) ended and was removed; its exit code is unknown.\n"
        )
        return EXIT_FAILED
    sys.stderr.write(f"kstlib: session {name!r} ({where}) ended with exit code {code}.\n")
    return code if code <= 255 else EXIT_FAILED
