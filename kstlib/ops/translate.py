"""The translation toolkit: SDK exceptions become the :mod:`kstlib.ops.exceptions` tree.

Internal module: the public API is :mod:`kstlib.ops` (``kstlib.ops.__all__``).

In the style of httpx's ``map_httpcore_exceptions``: each SDK module owns an
ordered table of rows ``(exception types, handler)``; :func:`translating` is
the context manager that wraps every SDK call and raises the first matching
row's error with the SDK's exception as ``__cause__``. :class:`Op` names what
the call serves (it picks the exception class), :class:`CallContext` carries
what a message needs to know about the call.

Example:
    >>> rows = lambda: (((KeyError,), lambda err, ctx: op_error(ctx.op, ctx.name, ctx.runtime, ctx.endpoint, "gone")),)
    >>> with translating(rows, CallContext(Op.STOP, "bot", "docker", "unix:///x", 5)):
    ...     raise KeyError("bot")
    Traceback (most recent call last):
    ...
    kstlib.ops.exceptions.SessionStopError: Could not stop session 'bot' on the docker backend: gone
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum

from kstlib.ops.exceptions import (
    OpsError,
    SessionAttachError,
    SessionError,
    SessionStartError,
    SessionStopError,
)


class Op(str, Enum):
    """The kind of operation an engine call serves; picks the exception an error becomes.

    Example:
        >>> Op.STOP.error_class.__name__
        'SessionStopError'
    """

    START = "start"
    STOP = "stop"
    ATTACH = "attach"
    READ = "read"
    WAIT = "wait"

    @property
    def error_class(self) -> type[SessionError]:
        """The :class:`~kstlib.ops.exceptions.SessionError` subclass for this operation.

        Example:
            >>> Op.READ.error_class.__name__
            'SessionError'
        """
        return _OP_ERRORS[self]


_OP_ERRORS: dict[Op, type[SessionError]] = {
    Op.START: SessionStartError,
    Op.STOP: SessionStopError,
    Op.ATTACH: SessionAttachError,
    Op.READ: SessionError,
    Op.WAIT: SessionError,
}


def op_error(op: Op, name: str | None, runtime: str, endpoint: str, reason: str) -> SessionError:
    """Build the error of operation ``op`` on session ``name`` (``None``: no one session).

    Example:
        >>> err = op_error(Op.STOP, "bot", "podman", "unix:///run/podman/podman.sock", "boom")
        >>> type(err).__name__, err.backend, err.reason
        ('SessionStopError', 'podman', 'boom')
        >>> print(op_error(Op.READ, "bot", "docker", "unix:///var/run/docker.sock", "boom"))
        docker (unix:///var/run/docker.sock) failed for session 'bot': boom
    """
    cls = op.error_class
    if name is not None and cls is not SessionError:
        return cls(name, runtime, reason)  # type: ignore[call-arg]
    subject = f" for session {name!r}" if name is not None else ""
    return SessionError(f"{runtime} ({endpoint}) failed{subject}: {reason}")


def cause_chain(err: BaseException) -> Iterable[BaseException]:
    """``err`` and its ``__cause__``/``__context__`` chain (each once).

    Example:
        >>> [type(e).__name__ for e in cause_chain(ValueError("x"))]
        ['ValueError']
    """
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


@dataclass(frozen=True)
class CallContext:
    """What an error message needs to know about the engine call that failed.

    Example:
        >>> CallContext(Op.START, "bot", "docker", "unix:///var/run/docker.sock", 30.0).op.value
        'start'
    """

    op: Op
    name: str | None
    runtime: str
    endpoint: str
    timeout: float
    image: str | None = None
    connecting: bool = False


Handler = Callable[[Exception, CallContext], OpsError]
#: A handler of an error text (a CLI's stderr); ``None``: not this row's case, try the next.
TextHandler = Callable[[str, CallContext], "OpsError | None"]
#: A text table: rows of (words, handler); a row matches when its words occur in the text.
TextTable = tuple[tuple[tuple[str, ...], TextHandler], ...]


#: A translation table: rows of (exception types, handler); the first match wins.
Table = tuple[tuple[tuple[type[BaseException], ...], Handler], ...]


def explanation(err: BaseException) -> str:
    """The engine's own words for an SDK error (its ``explanation``), else ``str(err)``.

    Example:
        >>> explanation(ValueError("bad"))
        'bad'
    """
    text = getattr(err, "explanation", None) or str(err) or type(err).__name__
    return str(text)


def translate_with(table: Table, err: Exception, ctx: CallContext) -> OpsError | None:
    """Run ``err`` through ``table``; ``None`` if no row matches (not an SDK error).

    Example:
        >>> from kstlib.ops.engines.errors import on_other
        >>> rows = (((KeyError,), on_other),)
        >>> translate_with(rows, ZeroDivisionError(), CallContext(Op.READ, None, "d", "u", 1)) is None
        True
    """
    if isinstance(err, OpsError):
        return err
    for types, handler in table:
        if isinstance(err, types):
            return handler(err, ctx)
    return None


_log = logging.getLogger(__name__)
_USERINFO_RE = re.compile(r"://[^/@]*@")


def safe_endpoint(endpoint: str) -> str:
    """``endpoint`` without any user or password it holds, for logs.

    Example:
        >>> safe_endpoint("tcp://ops:s3cret@10.0.0.5:2375")
        'tcp://***@10.0.0.5:2375'
    """
    return _USERINFO_RE.sub("://***@", endpoint, count=1)


@contextmanager
def translating(
    table: Callable[[], Table], ctx: CallContext, call: str | None = None
) -> Iterator[None]:
    """Raise every exception ``table`` knows as its kstlib error, the original as ``__cause__``.

    With DEBUG logging on (logger ``kstlib.ops.translate``), a named ``call``
    is logged with its duration, and every translated error with the type of
    its SDK cause. Records name the call, the operation, the session and the
    endpoint (without credentials): never an argument value.

    Example:
        >>> from kstlib.ops.engines.errors import on_other
        >>> rows = lambda: (((ValueError,), on_other),)
        >>> with translating(rows, CallContext(Op.STOP, "bot", "docker", "u", 5)):
        ...     raise ValueError("boom")
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionStopError: Could not stop session 'bot' on the docker backend: ValueError: boom
    """
    log = _log
    debug = log.isEnabledFor(logging.DEBUG)
    began = time.perf_counter() if debug else 0.0
    outcome = "ok"
    try:
        yield
    except OpsError as err:
        outcome = type(err).__name__
        raise
    except Exception as err:
        translated = translate_with(table(), err, ctx)
        if translated is None:
            outcome = f"untranslated {type(err).__name__}"
            raise
        outcome = type(translated).__name__
        if debug:
            log.debug(
                "%s %s%s: %s.%s translated to %s",
                ctx.runtime,
                ctx.op.value,
                f" {ctx.name!r}" if ctx.name else "",
                type(err).__module__,
                type(err).__qualname__,
                outcome,
            )
        raise translated from err
    finally:
        if debug and call is not None:
            log.debug(
                "%s %s%s at %s -> %s in %.1f ms",
                ctx.runtime,
                call,
                f" {ctx.name!r}" if ctx.name else "",
                safe_endpoint(ctx.endpoint),
                outcome,
                (time.perf_counter() - began) * 1000,
            )


def says(words: tuple[str, ...], text: str) -> bool:
    """Whether any of ``words`` occurs in ``text`` (case-insensitive).

    Example:
        >>> says(("no server running",), "No server running on /tmp/tmux-1/x")
        True
    """
    lowered = text.lower()
    return any(word in lowered for word in words)


def translate_text(table: TextTable, text: str, ctx: CallContext) -> OpsError | None:
    """Run an error text (a tool's stderr) through ``table``; ``None`` if no row answers.

    The first row whose words occur in ``text`` and whose handler returns an
    error wins; a handler that returns ``None`` passes to the next row.

    Example:
        >>> from kstlib.ops.exceptions import SessionNotFoundError
        >>> rows = ((("can't find session",), lambda t, c: SessionNotFoundError(c.name, c.runtime)),)
        >>> ctx = CallContext(Op.READ, "bot", "tmux", "default", 5)
        >>> translate_text(rows, "can't find session: bot", ctx).name
        'bot'
        >>> translate_text(rows, "unknown option", ctx) is None
        True
    """
    for words, handler in table:
        if says(words, text):
            found = handler(text, ctx)
            if found is not None:
                return found
    return None


def op_of(error_class: type[SessionError] | None) -> Op:
    """The :class:`Op` whose error is ``error_class`` (``None`` or a plain SessionError: a read).

    Example:
        >>> from kstlib.ops.exceptions import SessionStopError
        >>> op_of(SessionStopError), op_of(None)
        (<Op.STOP: 'stop'>, <Op.READ: 'read'>)
    """
    for op, cls in _OP_ERRORS.items():
        if cls is error_class:
            return op
    return Op.READ
