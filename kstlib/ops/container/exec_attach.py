"""Reaching into a running container: :meth:`ContainerExecAttach.exec` and ``attach``.

``exec`` runs a command beside the session's process; ``attach`` relays this
terminal to the container's (see :mod:`kstlib.ops.container.relay`).

Example:
    >>> from kstlib.ops.container import ContainerRunner
    >>> ContainerRunner(runtime="docker").exec("bot", [])
    Traceback (most recent call last):
    ...
    kstlib.ops.exceptions.SessionConfigError: command: an argv list must not be empty
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from kstlib.ops.container.base import ContainerBase, require_engine_name
from kstlib.ops.container.relay import (
    EXIT_GRACE,
    EXIT_SLICE,
    ExitWatch,
    TerminalError,
    relay_terminal,
)
from kstlib.ops.container.states import session_state
from kstlib.ops.exceptions import (
    SessionAttachError,
    SessionConfigError,
    SessionNotFoundError,
)
from kstlib.ops.execresult import ExecResult
from kstlib.ops.models import SessionState
from kstlib.ops.translate import Op
from kstlib.ops.validators import (
    validate_command,
    validate_lookup_name,
)

__all__ = ["ContainerExecAttach"]


class ContainerExecAttach(ContainerBase):
    """Exec and attach of :class:`~kstlib.ops.container.runner.ContainerRunner`."""

    def exec(self, name: str, command: str | list[str] | tuple[str, ...]) -> ExecResult:
        """Run ``command`` in the running container; return ``(exit_code, output)``.

        A list is the argv; a string is split with :mod:`shlex` (no shell).
        Output is stdout and stderr in the order the engine relays them (no
        terminal). The result is an :class:`~kstlib.ops.ExecResult`: a pair
        that also has ``.returncode``, ``.stdout`` and ``.stderr`` (each
        stream alone). Bounded by the runner's ``timeout``.

        Example:
            >>> ContainerRunner(runtime="docker").exec("bot", ["echo", "hi"])  # doctest: +SKIP
            ExecResult(returncode=0, stdout='hi\\n', stderr='')
        """
        import shlex

        validate_lookup_name(name)
        checked = validate_command(command)
        if checked is None:
            raise SessionConfigError("command: must not be empty", "command")
        argv = shlex.split(checked) if isinstance(checked, str) else list(checked)
        with self._using() as engine:
            require_engine_name(engine, name)
            code, output, out, err = engine.exec(name, argv)
        return ExecResult(
            code,
            output.decode("utf-8", errors="replace"),
            stdout=out.decode("utf-8", errors="replace"),
            stderr=err.decode("utf-8", errors="replace"),
        )

    # -- attach -------------------------------------------------------------------------

    def attach(self, name: str) -> None:
        """Connect this terminal to the container until a detach, or until it ends.

        See :meth:`attach_terminal`, which also tells how the attach ended.

        Example:
            >>> ContainerRunner(runtime="docker").attach("bot")  # doctest: +SKIP
        """
        self.attach_terminal(name)

    def attach_terminal(self, name: str) -> int | None:
        """Connect this terminal to the container; tell whether it was a detach or an end.

        A container with a TTY (kstlib's are) gets the terminal in raw mode, and
        its size follows the terminal's (SIGWINCH); detach with Ctrl-P Ctrl-Q.
        A container without a TTY (started elsewhere) leaves the terminal as it
        is (line editing and echo, no raw mode); detach with Ctrl-C or Ctrl-D.
        The terminal is always restored; a detach leaves the container running.
        Works on Podman through its Docker-compatible API on the same socket.

        Returns:
            ``None`` after a detach (the session runs on), or the container's
            exit code when it ended while attached (``-1`` when the engine could
            not tell it: the container was removed at once).

        Example:
            >>> ContainerRunner(runtime="docker").attach_terminal("bot")  # doctest: +SKIP
            5
        """
        validate_lookup_name(name)
        with self._using() as engine:
            runtime = engine.runtime
            info = self._inspect(engine, name, Op.ATTACH)
            if session_state(info) is not SessionState.RUNNING:
                raise SessionAttachError(
                    name, runtime, f"the container is {info.state}, not running; start it first"
                )
            try:
                in_fd, out_fd = sys.stdin.fileno(), sys.stdout.fileno()
            except (AttributeError, ValueError, OSError) as err:
                raise SessionAttachError(name, runtime, "standard input is not a terminal") from err
            if not os.isatty(in_fd):
                raise SessionAttachError(name, runtime, "standard input is not a terminal")
            resize: Callable[[], None] | None = None
            if info.tty:

                def resize() -> None:
                    try:
                        size = os.get_terminal_size(in_fd)
                    except OSError as err:
                        raise SessionAttachError(name, runtime, f"no terminal size: {err}") from err
                    engine.resize(name, size.lines, size.columns)

                resize()
            # Watch for the exit before attaching, so its code is known even when
            # the container is removed right after (a stop from elsewhere).
            watch = ExitWatch(engine, info.id, min(self.timeout, EXIT_SLICE))
            handle = engine.attach_socket(name)
            try:
                detached = relay_terminal(
                    handle.sock,
                    in_fd,
                    out_fd,
                    framed=not info.tty,
                    raw=bool(info.tty),
                    on_resize=resize,
                )
            except OSError as err:
                watch.cancel()
                raise SessionAttachError(name, runtime, f"the connection broke: {err}") from err
            except TerminalError as err:
                watch.cancel()
                raise SessionAttachError(name, runtime, f"the terminal failed: {err}") from err
            except BaseException:
                watch.cancel()
                raise
            finally:
                handle.sock.close()
            if detached:
                watch.cancel()
                return None
            code = watch.result(min(self.timeout, EXIT_GRACE))
            if code is not None:
                return code
            try:
                info = self._inspect(engine, name)
            except SessionNotFoundError:
                return -1  # removed at once: the code went with it
            if session_state(info) is SessionState.RUNNING:
                return None  # the engine closed the connection; the session runs on
            return info.exit_code if info.exit_code is not None else -1
