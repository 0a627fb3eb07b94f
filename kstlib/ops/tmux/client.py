"""The connection to one tmux server: socket, binary, bounded calls, pane queries.

:class:`TmuxClient` is the base of :class:`~kstlib.ops.tmux.TmuxRunner`: it
owns the ``libtmux.Server``, runs every tmux command through
:func:`~kstlib.ops.tmux.call.run_tmux` with the runner's timeout, reads one
session's pane in one command, and knows the server's state folder.

Example:
    >>> client = TmuxClient(socket_name="kstlib-doc", timeout=3)
    >>> client.timeout, client.binary is None
    (3, True)
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from kstlib.ops.exceptions import (
    SessionConfigError,
    SessionError,
    SessionNotFoundError,
    TmuxNotFoundError,
)
from kstlib.ops.models import BackendType
from kstlib.ops.tmux import control as control_mode
from kstlib.ops.tmux import files
from kstlib.ops.tmux.call import (
    DEFAULT_TIMEOUT,
    context,
    failed,
    no_answer,
    run_tmux,
    run_tmux_chain,
    translate,
)
from kstlib.ops.tmux.pane import FORMAT, Pane, parse
from kstlib.ops.validators import (
    validate_optional_flag,
    validate_optional_timeout,
    validate_socket_name,
)

if TYPE_CHECKING:
    import libtmux

__all__ = ["TmuxClient", "exact", "exact_pane"]

BACKEND = BackendType.TMUX


def exact(name: str) -> str:
    """Target a session by exact name (tmux otherwise matches prefixes)."""
    return f"={name}"


def exact_pane(name: str) -> str:
    """Target the active pane of a session by exact name."""
    return f"={name}:"


def _identity(levels: tuple[Path, ...]) -> list[tuple[int, ...]] | None:
    """What each folder is (device, inode, mode, owner); ``None`` if one is missing."""
    try:
        return [
            (st.st_dev, st.st_ino, st.st_mode, st.st_uid) for st in (os.lstat(p) for p in levels)
        ]
    except OSError:
        return None


class TmuxClient:
    """One tmux server: where it listens, which binary drives it, how long a call may take.

    Args:
        socket_name: tmux ``-L`` socket name (``None``: the default server).
        socket_path: tmux ``-S`` socket path; wins over ``socket_name``.
        tmux_bin: path of the tmux binary (``None``: ``tmux`` on ``PATH``).
        binary: the upstream spelling of ``tmux_bin``.
        timeout: seconds any one tmux call may take (``None``: no bound).
        control: answer queries through a persistent ``tmux -C`` channel
            (:mod:`kstlib.ops.tmux.control`); ``None``: only if the environment
            sets ``KSTLIB_TMUX_CONTROL=1``.

    Example:
        >>> TmuxClient(socket_name="s", binary="/usr/bin/tmux").tmux_bin
        '/usr/bin/tmux'
    """

    def __init__(
        self,
        socket_name: str | None = None,
        socket_path: str | None = None,
        tmux_bin: str | None = None,
        *,
        binary: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        control: bool | None = None,
    ) -> None:
        validate_optional_timeout(timeout)
        validate_optional_flag("control", control)
        if socket_name is not None:
            validate_socket_name(socket_name)
        if tmux_bin is not None and binary is not None and tmux_bin != binary:
            raise SessionConfigError("binary: give tmux_bin or binary, not both", "binary")
        self.socket_name = socket_name
        self.socket_path = socket_path
        self.tmux_bin = tmux_bin if tmux_bin is not None else binary
        self.timeout = timeout
        self._server: libtmux.Server | None = None
        self._known_folder: (
            tuple[tuple[str | None, str | None], Path, list[tuple[int, ...]] | None] | None
        ) = None
        self._resolved: tuple[tuple[str | None, str | None], str] | None = None
        # The persistent control-mode channel for queries (opt-in, see control.py).
        self._channels = control_mode.Channels() if control_mode.wanted(control) else None
        self._channel_version_ok: bool | None = None  # asked on first use

    @property
    def binary(self) -> str | None:
        """The tmux binary given to the runner (upstream name of ``tmux_bin``).

        Example:
            >>> TmuxClient(tmux_bin="/usr/bin/tmux").binary
            '/usr/bin/tmux'
        """
        return self.tmux_bin

    def __repr__(self) -> str:
        where = self.socket_path or self.socket_name or "default"
        return f"{type(self).__name__}(socket={where!r})"

    @property
    def server(self) -> libtmux.Server:
        """The :class:`libtmux.Server` this runner drives (created on first use).

        Example:
            >>> TmuxClient(socket_name="kstlib-doc").server.socket_name
            'kstlib-doc'
        """
        if self._server is None:
            import libtmux
            from libtmux.common import has_minimum_version

            with translate(None, None):
                has_minimum_version(raises=True, tmux_bin=self.tmux_bin)
            # A resolved binary spares libtmux a PATH lookup on every command.
            # No socket named: the user's default server, by its name. Without one,
            # tmux would ask the server of $TMUX (the pane this process runs in).
            default = None if self.socket_path else "default"
            self._server = libtmux.Server(
                socket_name=self.socket_name or default,
                socket_path=self.socket_path,
                tmux_bin=self._tmux_path(),
            )
        return self._server

    def _tmux_path(self) -> str:
        # Resolved once per PATH: a lookup costs more than the rest of a start's Python.
        key = (self.tmux_bin, os.environ.get("PATH"))
        if self._resolved is not None and self._resolved[0] == key:
            return self._resolved[1]
        binary = self.tmux_bin or shutil.which("tmux")
        if binary is None:
            raise TmuxNotFoundError()
        path = os.path.abspath(binary) if os.sep in binary else binary
        self._resolved = (key, path)
        return path

    def _run(
        self,
        op_error: type[SessionError],
        name: str | None,
        *args: str,
        missing_ok: bool = False,
    ) -> list[str] | None:
        """Run one tmux command (bounded); its stdout lines, ``None`` for a missing session."""
        if self._channels is not None and args and args[0] in control_mode.READ_ONLY:
            answer = self._ask(args)
            if answer is not None:
                ok, lines = answer
                if ok:
                    return lines
                where = self.socket_path or self.socket_name or "default"
                ctx = context(op_error, name, where, self.timeout or 0)
                failed(ctx, "; ".join(lines) or f"tmux {args[0]} failed", missing_ok)
                return None
        return run_tmux(self.server, self.timeout, op_error, name, *args, missing_ok=missing_ok)

    def _ask(self, args: tuple[str, ...]) -> tuple[bool, list[str]] | None:
        """A read-only query through the control channel; ``None``: take the fork path."""
        line = control_mode.encode(args)
        channels = self._channels
        if line is None or channels is None:
            return None
        if self._channel_version_ok is None:
            from libtmux.common import get_version

            with translate(None, None):
                version = str(get_version(tmux_bin=self._tmux_path()))
            self._channel_version_ok = control_mode.version_ok(version)
        if not self._channel_version_ok:
            return None
        channel = channels.get([self._tmux_path(), *self._socket_args()])
        if channel is None:
            return None
        try:
            return channel.request(line, self.timeout)
        except control_mode.ChannelDead:
            return None
        except TimeoutError:
            raise no_answer(self.socket_path or self.socket_name, self.timeout or 0) from None

    def _socket_args(self) -> list[str]:
        if self.socket_path:
            return ["-S", self.socket_path]
        if self.socket_name:
            return ["-L", self.socket_name]
        return []

    def close(self) -> None:
        """End this runner's control channel, if it has one (its client exits).

        Example:
            >>> TmuxClient(socket_name="kstlib-doc", control=True).close()
        """
        if self._channels is not None:
            self._channels.close()

    def _chain(
        self, op_error: type[SessionError], name: str | None, *args: str
    ) -> tuple[list[str], bool]:
        """Run a tmux command chain (bounded); its output and whether it ran to the end."""
        return run_tmux_chain(self.server, self.timeout, op_error, name, *args)

    def _query(self, name: str, op_error: type[SessionError] = SessionError) -> Pane | None:
        # list-panes fails on a missing target (display-message prints blanks),
        # and "=name:" (not "=name") keeps tmux from falling back to a window.
        out = self._run(
            op_error, name, "list-panes", "-t", exact_pane(name), "-F", FORMAT, missing_ok=True
        )
        if not out:
            return None
        return self._trusted(parse(out[0], self.socket_name))

    def _pane_or_missing(self, name: str, op_error: type[SessionError] = SessionError) -> Pane:
        pane = self._query(name, op_error)
        if pane is None:
            raise SessionNotFoundError(name, BACKEND)
        return pane

    def _folder(self, *, create: bool = False) -> Path:
        """This server's private state folder (logs, FIFOs, run files).

        The path is worked out once per state location; with ``create``, a
        folder checked before is trusted again while an ``lstat`` of each of
        its checked levels shows the same folder (inode, owner, mode), else it
        is made and checked anew.
        """
        key = (os.environ.get("XDG_STATE_HOME"), os.environ.get("HOME"))
        known = self._known_folder
        if known is None or known[0] != key:
            path = files.server_folder(self.socket_name, self.socket_path, create=False)
            known = self._known_folder = (key, path, None)
        path = known[1]
        if not create:
            return path
        levels = (path.parent.parent.parent, path.parent.parent, path.parent, path)
        if known[2] is not None and _identity(levels) == known[2]:
            return path
        path = files.server_folder(self.socket_name, self.socket_path, create=True)
        self._known_folder = (key, path, _identity(levels))
        return path

    def _trusted(self, pane: Pane) -> Pane:
        """Keep a pane's log path only if it lies in this server's own folder.

        The path comes from a tmux option that anything on the server can
        set; kstlib reads and deletes only files of its own folder.
        """
        if pane.log is not None and pane.log.parent != self._folder():
            return pane._replace(log=None)
        return pane
