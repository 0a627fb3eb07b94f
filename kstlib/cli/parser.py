"""The argument parser of ``kstlib``: ``kstlib ops <command> ...``.

Usage errors raise :class:`UsageError` (one line, exit code 2) instead of
argparse's usage block on stderr. Everything after the first ``--`` is kept
apart as the command to run (``start``, ``restart``, ``exec``) or the keys to
type (``send-keys``).

Example:
    >>> args = parse_args(["ops", "start", "bot", "-e", "MODE=fast", "--", "python", "bot.py"])
    >>> args.command_name, args.name, args.env, args.argv
    ('start', 'bot', ['MODE=fast'], ['python', 'bot.py'])
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any, NoReturn

from kstlib import __version__
from kstlib.cli.argtypes import line_count, since_time, timeout_seconds
from kstlib.ops.models import BackendType

__all__ = ["BACKEND_CHOICES", "UsageError", "build_parser", "parse_args"]

BACKEND_CHOICES = BackendType.spellings()
DEFAULT_TIMEOUT = 10.0
DEFAULT_LINES = 100
TAKES_ARGV = ("start", "restart", "exec")


class UsageError(Exception):
    """A command line that cannot be run: wrong option, missing argument, bad value.

    Example:
        >>> str(UsageError("--env: 'X' must be KEY=VALUE"))
        "--env: 'X' must be KEY=VALUE"
    """


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one-line exceptions, not usage dumps."""

    def error(self, message: str) -> NoReturn:
        if len(message) > 300:  # argparse echoes what it refused, whatever its size
            message = message[:297] + "..."
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _runtime_option(parser: Any, help_text: str) -> None:
    """``--runtime docker|podman`` on ``parser`` (a parser or an argument group)."""
    parser.add_argument(
        "--runtime", choices=("docker", "podman"), metavar="RUNTIME", help=help_text
    )


def _socket_option(parser: Any, help_text: str) -> None:
    """``-L/--socket SOCKET`` (a tmux socket name) on ``parser`` (a parser or an argument group)."""
    parser.add_argument("-L", "--socket", metavar="SOCKET", help=help_text)


def _config_option(parser: Any, help_text: str = "config file") -> None:
    """``--config PATH`` on ``parser`` (a parser or an argument group)."""
    parser.add_argument("--config", metavar="PATH", help=help_text)


def _where(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("where the session runs")
    group.add_argument(
        "-b",
        "--backend",
        choices=BACKEND_CHOICES,
        metavar="BACKEND",
        help="tmux, container, docker, podman (docker/podman: container on that runtime) or "
        "swarm (a Docker Swarm service; DOCKER_HOST or the config's base_url names a manager). "
        "Default: where the session is found, else the config file's default_backend.",
    )
    _runtime_option(group, "container runtime: docker or podman (implies the container backend)")
    _socket_option(
        group,
        "tmux socket name, as 'tmux -L SOCKET' (default: ops.tmux_socket, "
        "else tmux's default server)",
    )
    group.add_argument(
        "--engine",
        metavar="NAME",
        help="a named engine of the config file (ops.engines), e.g. an ssh:// Docker host",
    )
    _config_option(
        group,
        "config file (default: $KSTLIB_CONFIG, ./kstlib.conf.yml, "
        "$XDG_CONFIG_HOME/kstlib/kstlib.conf.yml)",
    )


def _output(parser: argparse.ArgumentParser, quiet_help: str) -> None:
    group = parser.add_argument_group("output")
    group.add_argument(
        "--json", action="store_true", help="print JSON only (the schema is in docs/cli.md)"
    )
    group.add_argument("-q", "--quiet", action="store_true", help=quiet_help)


def _spec(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("what the session runs (override the config file)")
    group.add_argument(
        "-i",
        "--image",
        metavar="IMAGE",
        help="container image (selects the container backend without -b)",
    )
    group.add_argument(
        "-c",
        "--command",
        metavar="COMMAND",
        dest="shell_command",
        help="command line run by a shell (tmux) or split like a shell (containers); "
        "or give an argv after --",
    )
    group.add_argument(
        "-e",
        "--env",
        action="append",
        default=[],
        metavar="KEY[=VALUE]",
        help="environment variable; KEY alone passes kstlib's own value of KEY, so that the "
        "value is not on the command line (repeatable)",
    )
    group.add_argument(
        "--env-file",
        action="append",
        default=[],
        metavar="FILE",
        help="read environment variables from FILE: KEY=VALUE lines, # comments, KEY alone "
        "as for -e (repeatable; -e wins)",
    )
    group.add_argument(
        "-v",
        "--volume",
        action="append",
        default=[],
        metavar="HOST:CTR[:MODE]",
        help="volume for containers, host path or volume name (repeatable)",
    )
    group.add_argument(
        "-p",
        "--port",
        action="append",
        default=[],
        metavar="[IP:]HOST:CTR[/PROTO]",
        help="published port (repeatable)",
    )
    group.add_argument(
        "--network",
        metavar="NETWORK",
        help="container network: host (the host's own network; no -p), none (loopback "
        "only; no -p) or the name of an engine network (default: the engine's)",
    )
    group.add_argument(
        "-w",
        "--workdir",
        metavar="DIR",
        help="working directory (tmux: on this machine; containers: in the image)",
    )
    group.add_argument(
        "--restart",
        metavar="POLICY",
        help="restart policy: no, always, unless-stopped or on-failure[:N]",
    )
    group.add_argument(
        "--pull",
        choices=("missing", "always", "never"),
        metavar="POLICY",
        help="when to pull the image from its registry: missing (default: when the engine "
        "lacks it), always, never",
    )


def _swarm(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("swarm services (-b swarm)")
    group.add_argument("--replicas", type=int, metavar="N", help="tasks to run (default 1)")
    group.add_argument(
        "--placement",
        action="append",
        default=[],
        metavar="RULE",
        help="constraint such as node.labels.role==worker, or spread=node.id (repeatable)",
    )
    group.add_argument(
        "--mode", choices=("replicated", "global"), help="global: one task on every node"
    )
    group.add_argument(
        "--with-registry-auth",
        action="store_true",
        default=None,
        help="send the registry credentials of the Docker config files with the service, "
        "for the nodes that pull its image (as docker service create --with-registry-auth)",
    )


def _name(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="session name")


def _names(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", nargs="+", help="session names")


def _timeout_option(
    parser: argparse.ArgumentParser, help_text: str, default: float | None = None
) -> None:
    """``-t/--timeout SECONDS`` on ``parser``."""
    parser.add_argument(
        "-t",
        "--timeout",
        type=timeout_seconds,
        default=default,
        metavar="SECONDS",
        help=help_text,
    )


def _stop_options(parser: argparse.ArgumentParser) -> None:
    _timeout_option(
        parser,
        f"seconds to wait after SIGTERM before killing (default {DEFAULT_TIMEOUT:g})",
        DEFAULT_TIMEOUT,
    )


def _command(
    commands: argparse._SubParsersAction[_Parser], name: str, handler: str, **kwargs: Any
) -> _Parser:
    """Declare command ``name`` run by ``handler`` (``"module:function"``, imported on use)."""
    parser = commands.add_parser(name, **kwargs)
    parser.set_defaults(handler=handler)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The full ``kstlib`` parser.

    Example:
        >>> build_parser().prog
        'kstlib'
    """
    root = _Parser(
        prog="kstlib",
        description="kstlib: run named, long-lived sessions in tmux or containers.",
        epilog="Exit codes: 0 success, 1 operation failed, 2 usage or config error, "
        "3 session not found, 130 interrupted; exec and wait pass on the command's "
        "or session's code (wait --print-code does not).",
    )
    root.add_argument("--version", action="version", version=f"kstlib {__version__}")
    areas = root.add_subparsers(dest="area", metavar="AREA", parser_class=_Parser)
    ops = areas.add_parser(
        "ops",
        help="manage sessions (tmux, Docker, Podman)",
        description="Manage named sessions on tmux or in Docker/Podman containers. "
        "A command after -- is an argv (no shell); -c takes a shell command line.",
    )
    ops.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log every tmux and engine call, with its duration, to stderr (DEBUG)",
    )
    commands = ops.add_subparsers(dest="command_name", metavar="COMMAND", parser_class=_Parser)

    p = _command(
        commands,
        "start",
        "kstlib.cli.commands.lifecycle:cmd_start",
        help="start a session",
        description="Start session NAME. Options override its definition in the config file.",
        usage="kstlib ops start NAME [options] [-- COMMAND [ARG ...]]",
    )
    _name(p)
    _where(p)
    _spec(p)
    _swarm(p)
    _output(p, "print nothing on success")

    p = _command(
        commands,
        "stop",
        "kstlib.cli.commands.lifecycle:cmd_stop",
        help="stop sessions and remove them",
        description="Stop each session NAME: SIGTERM, wait --timeout "
        "seconds, then kill; the session is removed. --all stops every session "
        "kstlib started (asks first on a terminal, unless --yes).",
        usage="kstlib ops stop (NAME [NAME ...] | --all [--yes]) [options]",
    )
    p.add_argument("name", metavar="NAME", nargs="*", help="session names")
    p.add_argument(
        "--all",
        action="store_true",
        dest="all_sessions",
        help="stop every session kstlib manages (never one it did not start)",
    )
    p.add_argument("-y", "--yes", action="store_true", help="with --all: do not ask")
    _where(p)
    _stop_options(p)
    p.add_argument("-f", "--force", action="store_true", help="kill at once, no grace period")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")

    p = _command(
        commands,
        "restart",
        "kstlib.cli.commands.lifecycle:cmd_restart",
        help="stop a session, then start it again",
        description="Stop NAME gracefully (if it runs), then start it with "
        "its config file definition, else the configuration of its last "
        "'kstlib ops start', with these options applied.",
        usage="kstlib ops restart NAME [options] [-- COMMAND [ARG ...]]",
    )
    _name(p)
    _where(p)
    _spec(p)
    _swarm(p)
    _stop_options(p)
    _output(p, "print nothing on success")

    p = _command(
        commands,
        "attach",
        "kstlib.cli.commands.interactive:cmd_attach",
        help="connect this terminal to a session",
        description="Attach this terminal to session NAME "
        "(tmux: detach with the prefix key, then d).",
    )
    _name(p)
    _where(p)

    p = _command(
        commands,
        "status",
        "kstlib.cli.commands.lifecycle:cmd_status",
        help="show the state of sessions",
        description="Show the state of each session NAME. Without -b it is "
        "looked up in the config file's place, then on tmux, then on the "
        "container engines; a session only in the config is 'defined'.",
    )
    _names(p)
    _where(p)
    _output(p, "print the state only")

    p = _command(
        commands,
        "logs",
        "kstlib.cli.commands.lifecycle:cmd_logs",
        help="print sessions' recent output",
        description="Print the last lines of session NAME's output (also after it exited). "
        "With several names, each line starts with its session's name.",
    )
    _names(p)
    _where(p)
    p.add_argument(
        "-n",
        "--lines",
        type=line_count,
        default=DEFAULT_LINES,
        metavar="N",
        help=f"number of lines, or 'all' (default {DEFAULT_LINES})",
    )
    p.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="print the last N lines (-n), then keep printing new output until the session "
        "ends (Ctrl-C stops)",
    )
    p.add_argument(
        "--since",
        type=since_time,
        metavar="WHEN",
        help="only output written since WHEN: an ISO 8601 time, a Unix time, "
        "or an age such as 90s, 10m, 2h",
    )
    p.add_argument(
        "--timestamps",
        action="store_true",
        help="prefix each line with the UTC time it was written",
    )
    p.add_argument(
        "--no-color", action="store_true", help="strip colours and other terminal escape sequences"
    )
    p.add_argument(
        "--prefix",
        action="store_true",
        help="swarm: start each line with its task and node (web.2@NODE | ...)",
    )

    p = _command(
        commands,
        "wait",
        "kstlib.cli.commands.lifecycle:cmd_wait",
        help="wait for a session to exit, or for a log line",
        description="Wait until session NAME exits and exit with its exit "
        "code; with --for REGEX, wait until its output has a line matching "
        "REGEX, print that line and exit 0. Exit 1 on timeout. A session's own "
        "exit code can be 1, 2 or 3 too: with --print-code or --json the code is "
        "printed instead and the exit status is kstlib's alone (0 waited, 1 failed "
        "or timed out, 2 usage error, 3 not found).",
    )
    _name(p)
    _where(p)
    p.add_argument(
        "--for",
        dest="pattern",
        metavar="REGEX",
        help="wait for an output line that matches this regular expression",
    )
    _timeout_option(p, "give up after SECONDS (default: wait as long as it takes)")
    p.add_argument("-q", "--quiet", action="store_true", help="do not print the matched line")
    report = p.add_mutually_exclusive_group()
    report.add_argument(
        "--print-code",
        action="store_true",
        help="print the session's exit code on stdout and exit 0, so that the exit "
        "status only says whether the wait worked (1 failed, 2 usage, 3 not found)",
    )
    report.add_argument(
        "--json",
        action="store_true",
        help="print the result as JSON (name, exit_code or line) and exit 0 "
        "once the wait is over, as --print-code does",
    )

    p = _command(
        commands,
        "list",
        "kstlib.cli.commands.listing:cmd_list",
        help="list sessions on every reachable backend",
        description="List the sessions of every reachable backend (tmux, "
        "Docker, Podman) and the config file's sessions that do not run "
        "('defined').",
    )
    _where(p)
    p.add_argument(
        "--managed",
        action="store_true",
        help="only sessions kstlib started (and config definitions)",
    )
    p.add_argument(
        "--watch",
        action="store_true",
        help="redraw the table when a session changes (one line per change "
        "when not a terminal) until Ctrl-C",
    )
    _output(p, "print the names only")

    p = _command(
        commands,
        "exec",
        "kstlib.cli.commands.interactive:cmd_exec",
        help="run a command in a container session",
        description="Run COMMAND in the running container session NAME, "
        "print its output and exit with its exit code.",
        usage="kstlib ops exec NAME [options] -- COMMAND [ARG ...]",
    )
    _name(p)
    _where(p)

    p = _command(
        commands,
        "send-keys",
        "kstlib.cli.commands.interactive:cmd_send_keys",
        help="type keys into a tmux session",
        description="Type KEYS literally into tmux session NAME, then Enter (unless --no-enter).",
        usage="kstlib ops send-keys NAME [options] (KEYS | -- WORD ...)",
    )
    _name(p)
    p.add_argument("keys", metavar="KEYS", help="text to type (or the words after '--')")
    p.add_argument("--no-enter", action="store_true", help="do not press Enter afterwards")
    p.add_argument("--literal", action="store_true", default=None, help="type KEYS as text")
    p.add_argument("--key", dest="literal", action="store_false", help="read KEYS as key names")
    _socket_option(p, "tmux socket name (tmux -L)")
    p.add_argument(
        "-b", "--backend", choices=("tmux",), metavar="BACKEND", help="only tmux sessions take keys"
    )
    _config_option(p)

    p = _command(
        commands,
        "pull",
        "kstlib.cli.commands.pull:cmd_pull",
        help="pull an image from its registry",
        description="Pull IMAGE into a container engine (--runtime, else the first that "
        "answers: Podman, then Docker), with a progress bar on a terminal. Credentials "
        "come from Podman's auth.json and Docker's config.json; a registry on loopback "
        "or in ops.insecure_registries may use plain HTTP.",
    )
    p.add_argument("image", metavar="IMAGE", help="image reference, e.g. registry:5000/team/app:1")
    _runtime_option(p, "container runtime: docker or podman")
    p.add_argument(
        "--insecure",
        action="store_true",
        help="allow plain HTTP for this registry (Podman; Docker decides in its daemon)",
    )
    _timeout_option(p, "seconds the engine may stay silent during the pull (default 120)")
    _config_option(p)
    _output(p, "print nothing on success")

    p = _command(
        commands,
        "events",
        "kstlib.cli.commands.events:cmd_events",
        help="print session events as they happen",
        description="Follow sessions as they start, exit, restart, stop and go: "
        "a snapshot first, then one line per event until Ctrl-C.",
    )
    p.add_argument("names", nargs="*", metavar="NAME", help="only these sessions")
    p.add_argument("-b", "--backend", choices=("container", "swarm", "tmux"), help="backend")
    _socket_option(p, "tmux socket name (tmux -L)")
    p.add_argument("--engine", choices=("docker", "podman"), help="container engine")
    p.add_argument("--json", action="store_true", help="one JSON object a line")

    p = _command(
        commands,
        "doctor",
        "kstlib.cli.commands.doctor:cmd_doctor",
        help="check which backends are usable",
        description="Probe tmux, Docker and Podman (and the config file's "
        "engines): reachable or not, version, endpoint, and what to do "
        "when missing. Exit 0 when at least one backend is usable.",
    )
    _socket_option(p, "tmux socket name to check")
    _config_option(p)
    _output(p, "print nothing; only the exit code tells")
    return root


def split_argv(argv: Sequence[str]) -> tuple[list[str], list[str] | None]:
    """Split at the first ``--``: ``(options, command)``; ``command`` is ``None`` without it.

    Example:
        >>> split_argv(["ops", "exec", "bot", "--", "ls", "--", "-l"])
        (['ops', 'exec', 'bot'], ['ls', '--', '-l'])
    """
    items = list(argv)
    if "--" not in items:
        return items, None
    at = items.index("--")
    return items[:at], items[at + 1 :]


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse a ``kstlib`` command line; the argv after ``--`` lands in ``args.argv``.

    Raises:
        UsageError: the command line is not valid.

    Example:
        >>> parse_args(["ops", "stop", "bot", "--backend", "lxc"])
        Traceback (most recent call last):
        ...
        kstlib.cli.parser.UsageError: argument -b/--backend: invalid choice: 'lxc' (choose from 'tmux', 'container', 'docker', 'podman', 'swarm') (see 'kstlib ops stop --help')
    """
    options, command = split_argv(argv)
    if command is not None and "send-keys" in options:
        # The words after '--' are the keys, even when they look like options.
        options, command = [*options, "--", " ".join(command)], None
    args = build_parser().parse_args(options)
    args.argv = command
    name = getattr(args, "command_name", None)
    if command is not None and name not in TAKES_ARGV:
        shown = f"kstlib ops {name}" if name else "kstlib"
        raise UsageError(f"'{shown}' takes no command after '--' (see '{shown} --help')")
    return args
