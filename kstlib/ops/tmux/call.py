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
from contextlib import AbstractContextManager, suppress
from typing import TYPE_CHECKING, Any

from kstlib.ops.exceptions import (
    OpsError,
    SessionError,
    SessionExistsError,
    SessionNotFoundError,
    TmuxNotFoundError,
)
from kstlib.ops.models import BackendType
from kstlib.ops.translate import (
    CallContext,
    Table,
    TextTable,
    op_of,
    says,
    translate_text,
    translating,
)

if TYPE_CHECKING:
    import libtmux

__all__ = [
    "DEFAULT_TIMEOUT",
    "STDERR_TABLE",
    "arg",
    "context",
    "failed",
    "fmt",
    "no_answer",
    "run_tmux",
    "run_tmux_chain",
    "translate",
    "type_table",
]

_log = logging.getLogger(__name__)
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


def type_table() -> Table:
    """The tmux translation table: libtmux and OS exception types -> handler, first match wins.

    ===================================  ==========================================
    raised under libtmux                 raised by kstlib
    ===================================  ==========================================
    ``TmuxCommandNotFound``              ``TmuxNotFoundError`` (install hints)
    ``VersionTooLow``                    ``TmuxNotFoundError`` (tmux 3.2a or newer)
    other ``LibTmuxException``,
    ``OSError``                          the operation's error with the text
    ===================================  ==========================================

    Built on first use, so importing this module does not import libtmux.

    Example:
        >>> [h.__name__ for _, h in type_table()]
        ['_on_no_tmux', '_on_too_old', '_on_tmux_error']
    """
    from libtmux import exc as tmux_exc

    return (
        ((tmux_exc.TmuxCommandNotFound,), _on_no_tmux),
        ((tmux_exc.VersionTooLow,), _on_too_old),
        ((tmux_exc.LibTmuxException, OSError), _on_tmux_error),
    )


def _on_no_tmux(err: Exception, ctx: CallContext) -> OpsError:
    return TmuxNotFoundError()


def _on_too_old(err: Exception, ctx: CallContext) -> OpsError:
    return TmuxNotFoundError(
        f"The tmux found is too old ({err}); kstlib needs tmux 3.2a or newer. "
        "Ubuntu/Debian: apt install tmux; macOS: brew install tmux."
    )


def _on_tmux_error(err: Exception, ctx: CallContext) -> OpsError:
    return tmux_error(ctx, str(err) or type(err).__name__)


def tmux_error(ctx: CallContext, reason: str) -> SessionError:
    """The operation's error for session ``ctx.name`` (a plain SessionError without one).

    Example:
        >>> print(tmux_error(context(None, "bot"), "boom"))
        tmux failed for session 'bot': boom
    """
    cls = ctx.op.error_class
    if ctx.name is not None and cls is not SessionError:
        return cls(ctx.name, _BACKEND, reason)  # type: ignore[call-arg]
    subject = f" for session {ctx.name!r}" if ctx.name else ""
    return SessionError(f"tmux failed{subject}: {reason}")


def _on_missing(text: str, ctx: CallContext) -> OpsError | None:
    return SessionNotFoundError(ctx.name, _BACKEND) if ctx.name is not None else None


def _on_duplicate(text: str, ctx: CallContext) -> OpsError | None:
    return SessionExistsError(ctx.name, _BACKEND) if ctx.name is not None else None


#: What tmux's stderr means, read by its words (tmux has no error codes); first match wins.
STDERR_TABLE: TextTable = (
    (NOT_FOUND + NO_SERVER, _on_missing),
    (DUPLICATE, _on_duplicate),
)


def context(
    op_error: type[SessionError] | None, name: str | None, where: str = "", timeout: float = 0
) -> CallContext:
    """The :class:`~kstlib.ops.translate.CallContext` of a tmux call on socket ``where``.

    Example:
        >>> context(None, "bot").op.value
        'read'
    """
    return CallContext(op_of(op_error), name, str(_BACKEND.value), where, timeout)


def translate(
    op_error: type[SessionError] | None, name: str | None
) -> AbstractContextManager[None]:
    """Translate every libtmux and OS error raised inside (see :func:`type_table`).

    Example:
        >>> with translate(None, "bot"):
        ...     raise OSError("no such file")
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionError: tmux failed for session 'bot': no such file
    """
    return translating(type_table, context(op_error, name))


def _children_of(tid: int) -> list[int]:
    """The live child processes that thread ``tid`` of this process started."""
    try:
        with open(f"/proc/self/task/{tid}/children") as handle:
            return [int(pid) for pid in handle.read().split()]
    except OSError:
        return []


#: Seconds an idle worker thread waits for a call before it ends.
_IDLE_EXIT = 2.0


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

    def __init__(self, pool: _Pool) -> None:
        self.jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self.started = threading.Event()
        self.tid = 0
        self.pool = pool
        threading.Thread(target=self._loop, name="kstlib-tmux-call", daemon=True).start()
        self.started.wait()

    def _loop(self) -> None:
        self.tid = threading.get_native_id()
        self.started.set()
        while True:
            try:
                job = self.jobs.get(timeout=_IDLE_EXIT)
            except queue.Empty:
                if self.pool.retire(self):
                    return  # idle for a while: a burst leaves no threads behind
                continue  # taken meanwhile: its job is on the way
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
        return _Worker(self)

    def retire(self, worker: _Worker) -> bool:
        """Drop an idle worker from the pool; ``False`` if it was taken meanwhile."""
        with self.lock:
            if worker in self.idle:
                self.idle.remove(worker)
                return True
            return False

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
    raise no_answer(str(server.socket_path or server.socket_name or "") or None, timeout)


def no_answer(where: str | None, timeout: float) -> TmuxNotFoundError:
    """The error of a call the server did not answer within ``timeout`` s.

    Example:
        >>> "did not answer within 5 s" in str(no_answer("s", 5))
        True
    """
    return TmuxNotFoundError(
        f"The tmux server on {where or 'the default socket'} did not answer within "
        f"{timeout:g} s (stopped or stuck?); kstlib gave up on the call. "
        "Resume it (kill -CONT) or kill it, then try again."
    )


def _exec(
    server: libtmux.Server,
    timeout: float | None,
    op_error: type[SessionError],
    name: str | None,
    args: tuple[str, ...],
) -> tuple[Any, CallContext]:
    began = time.perf_counter()
    where = server.socket_path or server.socket_name or "default"
    ctx = context(op_error, name, str(where), timeout or 0)
    with translating(type_table, ctx):
        proc = _call(server, args, timeout)
    if _log.isEnabledFor(logging.DEBUG):
        _log.debug(
            "tmux %s (%d args) -> %s in %.1f ms",
            args[0],
            len(args),
            proc.returncode,
            (time.perf_counter() - began) * 1000,
        )
    return proc, ctx


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
    proc, ctx = _exec(server, timeout, op_error, name, args)
    if proc.returncode == 0:
        return list(proc.stdout)
    message = "; ".join(proc.stderr) or f"tmux {args[0]} exited with {proc.returncode}"
    failed(ctx, message, missing_ok)
    return None


def failed(ctx: CallContext, message: str, missing_ok: bool) -> None:
    """Return quietly for a missing session or server when ``missing_ok``; else raise.

    Example:
        >>> failed(context(None, "bot"), "can't find session: =bot", True) is None
        True
    """
    if missing_ok and says(NOT_FOUND + NO_SERVER, message):
        return None
    raise translate_text(STDERR_TABLE, message, ctx) or tmux_error(ctx, message)


def run_tmux_chain(
    server: libtmux.Server,
    timeout: float | None,
    op_error: type[SessionError],
    name: str | None,
    *args: str,
) -> tuple[list[str], bool]:
    """Run a chain of tmux commands whose last ones may fail by design.

    tmux stops a chain at the first command that fails; what the commands
    before it printed is kept. Returns that output and whether the whole
    chain ran (``False``: a session or the server was missing on the way).

    Raises:
        TmuxNotFoundError: no tmux binary, or the server did not answer in time.
        SessionError: a failure other than a missing session or server.
    """
    proc, ctx = _exec(server, timeout, op_error, name, args)
    if proc.returncode == 0:
        return list(proc.stdout), True
    message = "; ".join(proc.stderr) or f"tmux {args[0]} exited with {proc.returncode}"
    if says(NOT_FOUND + NO_SERVER, message):
        out = list(proc.stdout)
        if "has-session" in args and out == proc.stderr[:1]:
            out = []  # libtmux hands has-session's error over as its output
        return out, False
    raise translate_text(STDERR_TABLE, message, ctx) or tmux_error(ctx, message)
