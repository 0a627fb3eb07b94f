"""Calling tmux: one bounded libtmux call, argument escaping, error translation.

Every tmux command goes through :func:`run_tmux`: it runs libtmux's
``Server.cmd`` in a worker thread and, if the server does not answer within
the timeout (a stopped or stuck server), kills that call's tmux client and
raises :class:`~kstlib.ops.exceptions.TmuxNotFoundError` naming the socket,
so no call hangs and no stray client is left.

tmux's own command parser still reads argv items given to it: an item ending
in ``;`` separates commands, and some options (``-c``, ``pipe-pane``,
``run-shell``) expand ``#{...}``/``#(...)`` formats. :func:`arg` and
:func:`fmt` escape exactly those, so every item arrives byte for byte.

Example:
    >>> arg("find"), arg(";"), arg("a\\\\;")
    ('find', '\\\\;', 'a\\\\\\\\;')
    >>> fmt("/srv/#{session_name}")
    '/srv/##{session_name}'
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any, NoReturn

from kstlib.ops.exceptions import (
    OpsError,
    SessionError,
    SessionExistsError,
    SessionNotFoundError,
    TmuxNotFoundError,
)
from kstlib.ops.models import BackendType

if TYPE_CHECKING:
    import libtmux

__all__ = ["DEFAULT_TIMEOUT", "arg", "fmt", "run_tmux", "translate"]

_log = logging.getLogger("kstlib.ops.tmux")
_BACKEND = BackendType.TMUX
#: Seconds a tmux call may take before the server counts as not answering.
DEFAULT_TIMEOUT = 5.0

# tmux's own error texts, grouped by what they mean for a caller.
NOT_FOUND = (
    "can't find session",
    "no such session",
    "session not found",
    "can't find pane",
    "can't find window",
)
NO_SERVER = (
    "no server running",
    "error connecting to",
    "server exited unexpectedly",
    "no current target",  # a server that is shutting down
)
DUPLICATE = ("duplicate session",)


def arg(item: str) -> str:
    """Escape an argv item for tmux's parser: a trailing ``;`` would end the command.

    tmux drops a final ``;`` as a separator, and turns a final ``\\;`` into a
    literal ``;``; so a backslash before the last ``;`` keeps any item whole.
    """
    return item[:-1] + "\\;" if item.endswith(";") else item


def fmt(text: str) -> str:
    """Escape ``#`` for an argument that tmux expands as a format (``##`` is ``#``)."""
    return text.replace("#", "##")


@contextmanager
def translate(op_error: type[SessionError] | None, name: str | None) -> Iterator[None]:
    """Translate every libtmux and OS error raised inside into the OpsError tree."""
    from libtmux import exc as tmux_exc

    try:
        yield
    except OpsError:
        raise
    except tmux_exc.TmuxCommandNotFound as err:
        raise TmuxNotFoundError() from err
    except tmux_exc.VersionTooLow as err:
        raise TmuxNotFoundError(
            f"The tmux found is too old ({err}); kstlib needs tmux 3.2a or newer. "
            "Ubuntu/Debian: apt install tmux; macOS: brew install tmux."
        ) from err
    except (tmux_exc.LibTmuxException, OSError) as err:
        raise_op_error(op_error, name, str(err) or type(err).__name__, err)


def raise_op_error(
    op_error: type[SessionError] | None,
    name: str | None,
    reason: str,
    cause: BaseException | None = None,
) -> NoReturn:
    """Raise ``op_error`` for session ``name`` (a plain SessionError without one)."""
    if op_error is not None and name is not None and op_error is not SessionError:
        raise op_error(name, _BACKEND, reason) from cause  # type: ignore[call-arg]
    subject = f" for session {name!r}" if name else ""
    raise SessionError(f"tmux failed{subject}: {reason}") from cause


def _children_of(tid: int) -> list[int]:
    """The live child processes that thread ``tid`` of this process started."""
    try:
        with open(f"/proc/self/task/{tid}/children") as handle:
            return [int(pid) for pid in handle.read().split()]
    except OSError:
        return []


class _Job:
    """One tmux call handed to a worker thread."""

    def __init__(self, server: libtmux.Server, args: tuple[str, ...]) -> None:
        self.server = server
        self.args = args
        self.done = threading.Event()
        self.lock = threading.Lock()
        self.result: Any = None
        self.error: BaseException | None = None
        self.abandoned = False


class _Worker:
    """A daemon thread that runs the tmux calls handed to it, one at a time.

    Workers are reused (starting a thread costs more than handing a call
    over). A worker whose call timed out is abandoned: its tmux client is
    killed, and the thread ends once libtmux returns (when the server runs
    again or dies: the client handed its output pipes to the server).
    """

    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self.started = threading.Event()
        self.tid = 0
        threading.Thread(target=self._loop, name="kstlib-tmux-call", daemon=True).start()
        self.started.wait()

    def _loop(self) -> None:
        self.tid = threading.get_native_id()
        self.started.set()
        while True:
            job = self.jobs.get()
            try:
                job.result = job.server.cmd(*job.args)
            except BaseException as err:
                job.error = err
            with job.lock:  # the caller decides under this lock whether to give up
                job.done.set()
                if job.abandoned:
                    return


class _Pool:
    """Idle workers, shared by every runner of the process."""

    def __init__(self) -> None:
        self.idle: list[_Worker] = []
        self.lock = threading.Lock()

    def reset(self) -> None:
        """After a fork: the workers' threads do not exist in the child."""
        self.idle = []
        self.lock = threading.Lock()

    def take(self) -> _Worker:
        with self.lock:
            if self.idle:
                return self.idle.pop()
        return _Worker()

    def give_back(self, worker: _Worker, job: _Job) -> Any:
        with self.lock:
            self.idle.append(worker)
        if job.error is not None:
            raise job.error
        return job.result


_POOL = _Pool()
os.register_at_fork(after_in_child=_POOL.reset)


def _call(server: libtmux.Server, args: tuple[str, ...], timeout: float | None) -> Any:
    if timeout is None:
        return server.cmd(*args)
    worker = _POOL.take()
    job = _Job(server, args)
    worker.jobs.put(job)
    if job.done.wait(timeout):
        return _POOL.give_back(worker, job)
    with job.lock:
        if job.done.is_set():  # it answered at the last moment
            return _POOL.give_back(worker, job)
        job.abandoned = True
        # The server does not answer: end this call's tmux client so that
        # nothing is left waiting on it, then report the server.
        for pid in _children_of(worker.tid):
            with suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    where = server.socket_path or server.socket_name or "the default socket"
    raise TmuxNotFoundError(
        f"The tmux server on {where} did not answer within {timeout:g} s "
        "(stopped or stuck?); kstlib gave up on the call. "
        "Resume it (kill -CONT) or kill it, then try again."
    )


def run_tmux(
    server: libtmux.Server,
    timeout: float | None,
    op_error: type[SessionError],
    name: str | None,
    *args: str,
    missing_ok: bool = False,
) -> list[str] | None:
    """Run one tmux command; return its stdout lines, ``None`` for a missing session/server.

    Raises:
        SessionNotFoundError: the session (``name``) is not there (unless ``missing_ok``).
        SessionExistsError: a duplicate session name.
        TmuxNotFoundError: no tmux binary, or the server did not answer in time.
        SessionError: any other tmux failure (``op_error`` when it names a session).
    """
    began = time.perf_counter()
    with translate(op_error, name):
        proc = _call(server, args, timeout)
    if _log.isEnabledFor(logging.DEBUG):
        _log.debug(
            "tmux %s (%d args) -> %s in %.1f ms",
            args[0],
            len(args),
            proc.returncode,
            (time.perf_counter() - began) * 1000,
        )
    if proc.returncode == 0:
        return list(proc.stdout)
    message = "; ".join(proc.stderr) or f"tmux {args[0]} exited with {proc.returncode}"
    lowered = message.lower()
    if any(s in lowered for s in NOT_FOUND + NO_SERVER):
        if missing_ok:
            return None
        if name is not None:
            raise SessionNotFoundError(name, _BACKEND)
    if name is not None and any(s in lowered for s in DUPLICATE):
        raise SessionExistsError(name, _BACKEND)
    raise_op_error(op_error, name, message)
