"""A persistent tmux control-mode client (``tmux -C``) that answers queries without a fork.

Opt-in (``KSTLIB_TMUX_CONTROL=1`` or ``TmuxRunner(control=True)``), and only
with tmux 3.7 or later (:data:`MIN_VERSION`: tmux 3.3a, 3.5a and 3.6 crash): a runner
then keeps one control client attached to its server with
``-f no-output,ignore-size,read-only``, so it never receives pane output
and never resizes a session. tmux does not hold a control client's commands
to ``read-only`` (3.3a and 3.5a run a ``new-session`` written to it), so the
channel itself carries nothing but :data:`READ_ONLY` queries (:func:`encode`). The
queries ``status()``, ``exists()`` and ``list_sessions()`` make
(``list-panes``, ``has-session``, ``list-sessions``) are written to it and
answered in order, each framed by ``%begin``/``%end`` (or ``%error``) lines of
one number; commands from several threads are pipelined. Everything else,
and any query the channel cannot carry byte for byte, takes the fork path
(:mod:`kstlib.ops.tmux.call`).

The client is started from an argv list (never a shell) and is the only
process this module starts; it is not a session, so it appears in no list.
A control client must attach to a session, so a server without one has no
channel; a channel whose session goes (tmux then detaches it), whose server
dies or that answers anything unexpected is dropped, the call goes the fork
path, and a new channel is tried a moment later, once the old client has
exited (never two of a runner's clients waiting on a hung server). A query that gets no
answer within the runner's timeout ends the channel and raises as the fork
path does, so every call keeps its bound.

Example:
    >>> encode(["list-panes", "-t", "=bot:", "-F", "#{pane_pid}"])
    "'list-panes' '-t' '=bot:' '-F' '#{pane_pid}'"
    >>> encode(["kill-session", "-t", "=bot"]) is None  # not a read-only query
    True
    >>> encode(["has-session", "-t", "=it's"]) is None  # not carried byte for byte
    True
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import subprocess
import threading
import time
import weakref
from collections.abc import Sequence

__all__ = [
    "MIN_VERSION",
    "READ_ONLY",
    "RETRY_AFTER",
    "Channel",
    "ChannelDead",
    "Channels",
    "encode",
    "version_ok",
    "wanted",
]

#: The commands the channel carries: the read-only queries kstlib's look-ups make.
READ_ONLY = frozenset({"list-panes", "list-sessions", "has-session"})
_ENV = "KSTLIB_TMUX_CONTROL"
# Inside single quotes tmux's parser takes every byte as it is, but a quote,
# a backslash (kept as is by the fork path's escaping) or a line break.
_QUOTABLE = re.compile(r"[^'\\\n\r\x00]*")
_FLAGS = "no-output,ignore-size,read-only"
#: After a channel ends, the fork path serves this long before a new one is tried.
RETRY_AFTER = 1.0


#: The oldest tmux the channel is used with. tmux 3.3a's and 3.5a's servers
#: segfault when a control client attaches to a session killed at that moment
#: (two runners racing to replace an exited session, each with a channel;
#: a plain-tmux reproduction is in docs/performance.md, "tmux 3.5a: the
#: control-mode channel"). 3.3a's also when it serves a control client killed
#: before its attach was handled, and 3.5a's died once resumed after a SIGSTOP
#: with given-up control clients queued (a runner now never queues a second
#: client behind one still waiting). 3.5a passed the rest: the soak of
#: thousands of channel queries beside forked new-session/new-window/
#: kill-session, and the byte-exact name tests. 3.4 was not tried. 3.6 (built
#: from its release) crashed the same way in 19 of 20 runs of the reproduction;
#: 3.7c survived 20 of 20, and every reproduction above (tmux 3.7 changed
#: control.c: "Fix server crash when control client session is destroyed").
MIN_VERSION = (3, 7)


def version_ok(version: str) -> bool:
    """Whether the channel may be used with this tmux version (``"3.3a"``, ``"3.7c"``).

    Example:
        >>> version_ok("3.3a"), version_ok("3.6"), version_ok("3.7c"), version_ok("next-3.8")
        (False, False, True, True)
        >>> version_ok("master")
        False
    """
    found = re.search(r"(\d+)\.(\d+)", version)
    return found is not None and (int(found[1]), int(found[2])) >= MIN_VERSION


def wanted(option: bool | None) -> bool:
    """Whether a runner uses the channel: its option, else ``KSTLIB_TMUX_CONTROL=1``.

    Example:
        >>> wanted(True), wanted(False)
        (True, False)
    """
    if option is not None:
        return option
    return os.environ.get(_ENV, "") == "1"


def encode(args: Sequence[str]) -> str | None:
    """The control-mode line for the read-only query ``args``; ``None`` if it cannot go.

    Example:
        >>> encode(["list-sessions", "-F", "#{session_name}"])
        "'list-sessions' '-F' '#{session_name}'"
    """
    if not args or args[0] not in READ_ONLY or ";" in args:
        return None
    if not all(_QUOTABLE.fullmatch(item) for item in args):
        return None
    return " ".join(f"'{item}'" for item in args)


class ChannelDead(Exception):
    """The channel cannot answer (ended, never attached, or answered out of order)."""


class _Reply:
    __slots__ = ("broken", "done", "lines", "ok")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.ok = False
        self.broken = False  # the channel ended before the answer was complete
        self.lines: list[str] = []

    def abandon(self) -> None:
        self.broken = True
        self.done.set()


class Channel:
    """One ``tmux -C`` client attached read-only to a server; ``request`` answers a query.

    Args:
        argv: the tmux binary and its socket options (``[tmux, "-L", name]``).

    Example:
        >>> channel = Channel(["tmux", "-L", "kstlib-doc-none"])  # doctest: +SKIP
    """

    def __init__(self, argv: Sequence[str]) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}
        self._lock = threading.Lock()
        self._pending: collections.deque[_Reply] = collections.deque()
        self._dead = False
        self._proc = subprocess.Popen(  # an argv list: no shell
            [*argv, "-C", "attach-session", "-f", _FLAGS],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            close_fds=True,
            start_new_session=True,  # a Ctrl-C meant for the caller does not end it
        )
        threading.Thread(target=self._read, name="kstlib-tmux-control", daemon=True).start()

    @property
    def alive(self) -> bool:
        """Whether the channel still answers."""
        return not self._dead

    @property
    def running(self) -> bool:
        """Whether its ``tmux -C`` client process has not exited yet."""
        return self._proc.poll() is None

    def request(self, line: str, timeout: float | None) -> tuple[bool, list[str]]:
        """Send one command line; ``(succeeded, output lines)`` once tmux answered.

        Raises:
            ChannelDead: the channel ended before it answered (use the fork path).
            TimeoutError: no answer within ``timeout`` s (the channel is ended).
        """
        reply = _Reply()
        with self._lock:
            if self._dead or self._proc.stdin is None:
                raise ChannelDead("the control channel has ended")
            self._pending.append(reply)
            try:
                self._proc.stdin.write(line.encode("utf-8", "surrogateescape") + b"\n")
                self._proc.stdin.flush()
            except (OSError, ValueError) as err:
                self._end_locked()
                raise ChannelDead("the control channel has ended") from err
        if not reply.done.wait(timeout):
            self.close()
            raise TimeoutError
        if reply.broken:
            raise ChannelDead("the control channel has ended")
        return reply.ok, reply.lines

    def _read(self) -> None:
        stdout = self._proc.stdout
        assert stdout is not None
        current: _Reply | None = None
        number = b""
        try:
            for raw in stdout:
                line = raw.rstrip(b"\n")
                if current is None and number == b"":
                    if line.startswith(b"%begin "):
                        parts = line.split(b" ")
                        if len(parts) != 4:
                            break  # not the protocol we know
                        number = parts[2]
                        if int(parts[3]) & 1:  # a command of ours (0: the attach itself)
                            with self._lock:
                                if not self._pending:
                                    break  # an answer nobody asked for
                                current = self._pending.popleft()
                    elif line == b"%exit" or line.startswith(b"%exit "):
                        break
                    continue  # a notification
                parts = line.split(b" ")
                if len(parts) == 4 and parts[0] in (b"%end", b"%error") and parts[2] == number:
                    if current is not None:
                        current.ok = parts[0] == b"%end"
                        current.done.set()
                    current, number = None, b""
                elif current is not None:
                    current.lines.append(line.decode("utf-8", "surrogateescape"))
        except (OSError, ValueError):
            pass
        finally:
            with self._lock:
                if current is not None:
                    current.abandon()
                if not self._dead:
                    self._end_locked()

    def _end_locked(self) -> None:
        self._dead = True
        while self._pending:
            self._pending.popleft().abandon()
        # End of input makes the client detach and leave as soon as its server
        # answers. It is never killed: tmux 3.3a's server crashes (SIGSEGV)
        # when it goes on to serve a control client killed before its attach
        # was handled, as a client started while the server was stopped is.
        with contextlib.suppress(OSError, ValueError):
            if self._proc.stdin is not None:
                self._proc.stdin.close()
        threading.Thread(target=self._reap, daemon=True).start()

    def _reap(self) -> None:
        with contextlib.suppress(Exception):
            self._proc.wait()  # it ends with its server at the latest

    def close(self, *, kill: bool = False) -> None:
        """End the channel (its client exits); pending requests go the fork path.

        ``kill``: also SIGKILL the client, for a server that is being killed
        (an exiting tmux server waits for a control client that waits for it).
        """
        with self._lock:
            if not self._dead:
                self._end_locked()
        if kill:
            with contextlib.suppress(OSError):
                self._proc.kill()


class Channels:
    """A runner's channel: started on first use, replaced a moment after it ends.

    The channel ends with its runner (garbage collected or :meth:`close`).
    """

    def __init__(self) -> None:
        self._holder: list[Channel | None] = [None]
        self._retry_at = 0.0
        self._lock = threading.Lock()
        weakref.finalize(self, _end, self._holder)
        _ALL.add(self)

    @property
    def _channel(self) -> Channel | None:
        return self._holder[0]

    def get(self, argv: Sequence[str]) -> Channel | None:
        """The live channel, a new one, or ``None`` while a dead one is being waited out."""
        with self._lock:
            channel = self._holder[0]
            if channel is not None and channel.alive:
                return channel
            if channel is not None and channel.running:
                # Its client still waits for its server (a hung one, say): no
                # second control client queues up behind it (see MIN_VERSION).
                return None
            self._holder[0] = None
            now = time.monotonic()
            if now < self._retry_at:  # at most one new channel a RETRY_AFTER
                return None
            self._retry_at = now + RETRY_AFTER
            try:
                self._holder[0] = Channel(argv)
            except OSError:
                return None
            return self._holder[0]

    def close(self, *, kill: bool = False) -> None:
        """End the channel if there is one (``kill``: its server is being killed)."""
        with self._lock:
            _end(self._holder, kill=kill)


def _end(holder: list[Channel | None], *, kill: bool = False) -> None:
    channel, holder[0] = holder[0], None
    if channel is not None:
        channel.close(kill=kill)


def _after_fork() -> None:  # a child's channels belong to its parent
    for channels in list(_ALL):
        channels._holder[0] = None
        channels._lock = threading.Lock()


_ALL: weakref.WeakSet[Channels] = weakref.WeakSet()
os.register_at_fork(after_in_child=_after_fork)
