"""The terminal relay of :meth:`~kstlib.ops.container.ContainerRunner.attach_terminal`.

Bytes go both ways between this terminal and the container's attach socket;
Ctrl-P Ctrl-Q detaches (spotted here, not by the engine), and a watch thread
learns the container's exit code.
"""

from __future__ import annotations

import os
import select
import signal
import threading
from collections.abc import Callable
from contextlib import suppress
from typing import TYPE_CHECKING

from kstlib.ops.engines.streams import EntrySplitter
from kstlib.ops.exceptions import OpsError, SessionTimeoutError

if TYPE_CHECKING:
    import socket

    from kstlib.ops.engines.adapter import EngineAdapter


# How long one engine wait of the attach exit watch may last, and how long, once the
# attached stream has ended, to wait for the engine to report the exit code.
EXIT_SLICE = 10.0


EXIT_GRACE = 5.0


class ExitWatch:
    """Waits in a thread for a container's process to exit, to learn its exit code."""

    def __init__(self, engine: EngineAdapter, ref: str, step: float) -> None:
        self._stop = threading.Event()
        self._done = threading.Event()
        self._code: int | None = None
        self._thread = threading.Thread(
            target=self._run, args=(engine, ref, step), name="kstlib-attach-exit", daemon=True
        )
        self._thread.start()

    def _run(self, engine: EngineAdapter, ref: str, step: float) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self._code = engine.wait(ref, step)
                    return
                except SessionTimeoutError:
                    continue
                except OpsError:
                    return  # removed, or the engine went away: no code to give
        finally:
            self._done.set()

    def cancel(self) -> None:
        """Stop after the current engine wait (the thread is a daemon: nothing blocks on it)."""
        self._stop.set()

    def result(self, timeout: float) -> int | None:
        """The exit code, waiting at most ``timeout`` seconds (``None``: not known); then stop."""
        self._done.wait(timeout)
        self._stop.set()
        return self._code


class _DetachKeys:
    """Spots Ctrl-P Ctrl-Q in terminal input, holding back a partial match.

    Detaching is done here, not by the engine: Podman only recognises the
    keys when each arrives in a read of its own, and a fast typist (or a
    paste) sends both at once.
    """

    KEYS = b"\x10\x11"

    def __init__(self) -> None:
        self._pending = bytearray()

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """Return the bytes to send on, and whether the detach sequence was typed."""
        out = bytearray()
        for byte in data:
            if byte == self.KEYS[len(self._pending)]:
                self._pending.append(byte)
                if len(self._pending) == len(self.KEYS):
                    self._pending.clear()
                    return bytes(out), True
                continue
            out += self._pending
            self._pending.clear()
            if byte == self.KEYS[0]:
                self._pending.append(byte)
            else:
                out.append(byte)
        return bytes(out), False


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class TerminalError(Exception):
    """termios failed (its own error type is not an OSError)."""


def relay_terminal(
    sock: socket.socket,
    in_fd: int,
    out_fd: int,
    *,
    framed: bool,
    raw: bool,
    on_resize: Callable[[], None] | None = None,
) -> bool:
    """Copy terminal input to the socket and socket output to the terminal.

    ``raw``: put the terminal in raw mode (a container with a TTY: keys go to it
    as typed, and it does the echo and line endings); else the terminal keeps its
    line discipline, and Ctrl-C detaches. ``on_resize`` is called on SIGWINCH
    (only from the main thread, where signals arrive). The terminal's settings are
    restored however this ends, and left at the start of a line. Returns ``True``
    when the user detached, ``False`` when the connection ended (the container
    exited, or the engine closed it).

    Example (needs a terminal and a socket attached to a container)::

        detached = relay_terminal(sock, 0, 1, framed=False, raw=True)
    """
    import termios
    import tty

    frames = EntrySplitter(framed=True) if framed else None
    keys = _DetachKeys()
    try:
        saved = termios.tcgetattr(in_fd)
    except termios.error as err:
        raise TerminalError(str(err)) from err
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    watch_size = (
        on_resize is not None
        and hasattr(signal, "SIGWINCH")
        and threading.current_thread() is threading.main_thread()
    )
    if watch_size:

        def on_winch(signum: int, frame: object) -> None:
            with suppress(OSError):  # a full pipe already holds a wake-up
                os.write(wake_w, b"w")

        previous = signal.getsignal(signal.SIGWINCH)
        signal.signal(signal.SIGWINCH, on_winch)
    last = b"\n"  # the last byte written: what follows starts on a line of its own
    try:
        if raw:
            tty.setraw(in_fd)
        sock.settimeout(None)
        sock_fd = sock.fileno()
        while True:
            try:
                readable, _, _ = select.select([sock_fd, in_fd, wake_r], [], [])
            except InterruptedError:  # pragma: no cover - PEP 475 retries select
                continue
            if wake_r in readable:
                os.read(wake_r, 512)
                if on_resize is not None:
                    with suppress(OpsError):  # it may just have ended: the socket says so
                        on_resize()
            if sock_fd in readable:
                data = sock.recv(65536)
                if not data:
                    return False  # the container ended, or the engine closed the connection
                data = b"".join(frames.feed(data)) if frames else data
                _write_all(out_fd, data)
                last = data[-1:] or last
            if in_fd in readable:
                data = os.read(in_fd, 4096)
                if not data:
                    return True  # end of input (Ctrl-D without a TTY): detach
                data, detach = keys.feed(data)
                if data:
                    sock.sendall(data)
                if detach:
                    return True  # closing the connection detaches; the container runs on
    except KeyboardInterrupt:
        if raw:
            raise  # pragma: no cover - in raw mode Ctrl-C is a key for the container
        last = b""  # the terminal echoed ^C: end that line
        return True  # Ctrl-C without a TTY: detach, as docker attach --sig-proxy=false
    except termios.error as err:
        raise TerminalError(str(err)) from err
    finally:
        if watch_size:
            # None: a handler not set from Python; the default is the closest
            signal.signal(signal.SIGWINCH, previous or signal.SIG_DFL)
        os.close(wake_r)
        os.close(wake_w)
        try:
            termios.tcsetattr(in_fd, termios.TCSADRAIN, saved)
        except termios.error as err:
            raise TerminalError(f"could not restore the terminal: {err}") from err
        if last != b"\n":
            with suppress(OSError):
                _write_all(out_fd, b"\r\n")
