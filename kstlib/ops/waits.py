"""Waiting for a session: a log line, a port, an HTTP answer, the running state.

:class:`~kstlib.ops.manager.SessionManager`'s ``wait_for_*`` methods are thin
calls into this module. Every wait has one rule: ``timeout`` is finite and
``>= 0`` (:func:`~kstlib.ops.validators.validate_timeout`), running out raises
:class:`~kstlib.ops.exceptions.SessionTimeoutError`, and a session that ends
first raises :class:`~kstlib.ops.exceptions.SessionError`.

Example:
    >>> what, attempt = port_probe("127.0.0.1", 1)
    >>> what
    'port 127.0.0.1:1 accepting connections'
    >>> attempt(0.5).startswith("ConnectionRefusedError")
    True
"""

from __future__ import annotations

import http.client
import re
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from kstlib.ops.cancel import pause
from kstlib.ops.exceptions import (
    SessionConfigError,
    SessionError,
    SessionNotFoundError,
    SessionTimeoutError,
)
from kstlib.ops.models import BackendType, SessionConfig, SessionState, SessionStatus
from kstlib.ops.runner import Runner
from kstlib.ops.validators import validate_timeout

__all__ = ["http_probe", "port_probe", "ready_wait", "until_running", "wait_for_log"]

#: One readiness attempt: given the seconds it may take, ``None`` when ready, else why not.
Attempt = Callable[[float], "str | None"]


def _pattern(pattern: object) -> re.Pattern[str]:
    if isinstance(pattern, re.Pattern):
        return pattern
    if not isinstance(pattern, str):
        raise SessionConfigError(
            f"pattern: expected a regular expression string, got {type(pattern).__name__}",
            "pattern",
        )
    try:
        return re.compile(pattern)
    except re.error as err:
        raise SessionConfigError(
            f"pattern: {pattern!r} is not a regular expression: {err}", "pattern"
        ) from None


def _check_port(port: object) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise SessionConfigError(f"port: {port!r} is not a port number (1-65535)", "port")
    return port


#: Pause between readiness attempts (a refused connection answers at once).
_READY_POLL = 0.1


def wait_for_log(
    runner: Runner, name: str, pattern: str | re.Pattern[str], timeout: float = 30
) -> str:
    """Return the first output line of session ``name`` that matches ``pattern``.

    See :meth:`SessionManager.wait_for_log`.

    Example:
        >>> from kstlib.ops import TmuxRunner
        >>> runner = TmuxRunner(socket_name="kstlib-doc")
        >>> _ = runner.start(SessionConfig(name="doc-wfl", command="echo up; sleep 30"))
        >>> wait_for_log(runner, "doc-wfl", "^up$", timeout=10)
        'up'
        >>> runner.stop("doc-wfl", graceful=False)
        True
    """
    regex = _pattern(pattern)
    limit = validate_timeout(timeout)
    lines = runner.follow_logs(name, since=0, ansi=False, timeout=timeout)
    try:
        for line in lines:
            if regex.search(line):
                return line
    except SessionTimeoutError as err:
        raise SessionTimeoutError(
            name, err.backend, f"no line matched {regex.pattern!r} within {limit:g} s"
        ) from err
    finally:
        close = getattr(lines, "close", None)
        if close is not None:
            close()
    try:
        code: int | None = runner.status(name).exit_code
    except SessionNotFoundError:
        code = None
    raise SessionError(
        f"session {name!r} on {runner.backend.value} ended (exit code {code}) before "
        f"printing a line that matches {regex.pattern!r}"
    )


def ready_wait(
    name: str,
    status: Callable[[], SessionStatus],
    what: str,
    attempt: Attempt,
    *,
    where: str,
    backend: str | BackendType,
    timeout: object,
) -> None:
    """Call ``attempt(seconds left)`` until it returns ``None`` (ready) or time runs out.

    ``attempt`` returns why it is not ready yet. Between attempts ``status()``
    is asked: a session that has exited (or vanished) ends the wait.

    Example:
        >>> st = SessionStatus(name="a", state=SessionState.RUNNING, backend=BackendType.TMUX)
        >>> ready_wait("a", lambda: st, "ready", lambda s: None, where="tmux", backend="tmux", timeout=1)
    """
    limit = validate_timeout(timeout)
    deadline = time.monotonic() + limit
    while True:
        left = deadline - time.monotonic()
        why = attempt(max(min(left, 5.0), 0.05))
        if why is None:
            return
        st = status()  # SessionNotFoundError if it is gone
        if not st.is_running:
            raise SessionError(
                f"session {name!r} on {where} ended (exit code "
                f"{st.exit_code}) before {what} ({why})"
            )
        if time.monotonic() >= deadline:
            raise SessionTimeoutError(
                name, backend, f"{what} did not happen within {limit:g} s ({why})"
            )
        pause(min(_READY_POLL, max(deadline - time.monotonic(), 0)))


def port_probe(host: object, port: object) -> tuple[str, Attempt]:
    """What a TCP readiness wait waits for, and one attempt at it (a connect).

    Example:
        >>> port_probe("127.0.0.1", 0)
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: port: 0 is not a port number (1-65535)
    """
    number = _check_port(port)
    if not isinstance(host, str) or not host:
        raise SessionConfigError(f"host: {host!r} must be a host name or address", "host")

    def attempt(seconds: float) -> str | None:
        try:
            with socket.create_connection((host, number), timeout=seconds):
                return None
        except OSError as err:
            return f"{type(err).__name__}: {err}"

    return f"port {host}:{number} accepting connections", attempt


def http_probe(url: object, status: object) -> tuple[str, Attempt]:
    """What an HTTP readiness wait waits for, and one attempt at it (a ``GET``).

    Redirects are followed; proxies from the environment are not used.

    Example:
        >>> http_probe("ftp://example.org/", 200)
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: url: 'ftp://example.org/' must start with http:// or https://
    """
    import urllib.error
    import urllib.request

    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise SessionConfigError(f"url: {url!r} must start with http:// or https://", "url")
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise SessionConfigError(f"status: {status!r} is not an HTTP status", "status")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def attempt(seconds: float) -> str | None:
        try:
            with opener.open(url, timeout=seconds) as answer:
                code = int(answer.status)
        except urllib.error.HTTPError as err:
            code = int(err.code)
            err.close()
        except (OSError, ValueError, http.client.HTTPException) as err:
            return f"{type(err).__name__}: {err}"
        return None if code == status else f"HTTP {code}"

    return f"HTTP {status} from {url}", attempt


def until_running(
    name: str,
    status: Callable[[], SessionStatus],
    where: str,
    backend: BackendType,
    timeout: float,
) -> SessionStatus:
    """Ask ``status()`` until the session exists and runs; return that status.

    Example:
        >>> st = SessionStatus(name="a", state=SessionState.RUNNING, backend=BackendType.TMUX)
        >>> until_running("a", lambda: st, "tmux", BackendType.TMUX, 1).state.value
        'running'
    """
    deadline = time.monotonic() + validate_timeout(timeout)
    while True:
        try:
            st: SessionStatus | None = status()
        except SessionNotFoundError:
            st = None
        if st is not None and st.is_running:
            return st
        if st is not None and st.state is SessionState.EXITED:
            raise SessionError(
                f"session {name!r} on {where} exited with code {st.exit_code} instead of running"
            )
        if time.monotonic() >= deadline:
            raise SessionTimeoutError(name, backend, f"not running after {timeout} s")
        pause(0.05)


class SessionWaits:
    """The waits of :class:`~kstlib.ops.manager.SessionManager`, which inherits them.

    Each waits on the session the manager names and asks its runner; see the
    module's rules above.

    Example:
        >>> from kstlib.ops import SessionManager
        >>> issubclass(SessionManager, SessionWaits)
        True
    """

    if TYPE_CHECKING:  # what SessionManager provides

        @property
        def name(self) -> str: ...

        @property
        def backend(self) -> BackendType: ...

        _config: SessionConfig

        def status(self) -> SessionStatus: ...

        def _lookup(self) -> Runner: ...

        def _where(self) -> str: ...

    def wait(self, timeout: float | None = None) -> int:
        """Wait until the process exits (after any restarts) and return its exit code.

        Raises :class:`~kstlib.ops.exceptions.SessionTimeoutError` after
        ``timeout`` seconds.

        Example:
            >>> from kstlib.ops import SessionManager
            >>> bot = SessionManager("doc-wait", socket_name="kstlib-doc")
            >>> _ = bot.start("exit 7")
            >>> bot.wait(timeout=5)
            7
            >>> bot.stop()
            True
        """
        return self._lookup().wait(self.name, timeout=timeout)

    def wait_for_log(self, pattern: str | re.Pattern[str], timeout: float = 30) -> str:
        """Return the first output line that matches the regex ``pattern``.

        Lines already written count too, so it is the way to wait for
        readiness. Raises :class:`~kstlib.ops.exceptions.SessionTimeoutError`
        after ``timeout`` seconds (its message names the pattern), and
        :class:`~kstlib.ops.exceptions.SessionError` if the session ends first.
        See also :meth:`wait_for_port` and :meth:`wait_for_http`.

        Example:
            >>> from kstlib.ops import SessionManager
            >>> bot = SessionManager("doc-ready", socket_name="kstlib-doc")
            >>> _ = bot.start("sleep 0.2; echo 'listening on :8080'; sleep 30")
            >>> bot.wait_for_log(r"listening on :\\d+", timeout=10)
            'listening on :8080'
            >>> bot.stop(graceful=False)
            True
        """
        return wait_for_log(self._lookup(), self.name, pattern, timeout)

    def _ready(self, what: str, attempt: Attempt, timeout: object) -> None:
        ready_wait(
            self.name,
            self.status,
            what,
            attempt,
            where=self._where(),
            backend=self._timeout_backend(),
            timeout=timeout,
        )

    def wait_for_port(self, port: int, host: str = "127.0.0.1", timeout: float = 30) -> None:
        """Wait until a TCP connection to ``host:port`` succeeds (the session listens).

        The same rules as :meth:`wait_for_log`: raises
        :class:`~kstlib.ops.exceptions.SessionTimeoutError` after ``timeout``
        seconds (the message has the last connection error), and
        :class:`~kstlib.ops.exceptions.SessionError` if the session exits
        first. A container's published port is reached on the host side
        (``ports=["8080:80"]``: ``wait_for_port(8080)``).

        Example:
            >>> from kstlib.ops import SessionManager
            >>> bot = SessionManager("doc-port", socket_name="kstlib-doc")
            >>> _ = bot.start("sleep 30")
            >>> bot.wait_for_port(1, timeout=0.2)
            Traceback (most recent call last):
            ...
            kstlib.ops.exceptions.SessionTimeoutError: Could not wait for session 'doc-port' on the tmux backend: port 127.0.0.1:1 accepting connections did not happen within 0.2 s (...)
            >>> bot.stop(graceful=False)
            True
        """
        what, attempt = port_probe(host, port)
        self._ready(what, attempt, timeout)

    def wait_for_http(self, url: str, status: int = 200, timeout: float = 30) -> int:
        """Wait until ``GET url`` answers with HTTP ``status``; return that status.

        The same rules as :meth:`wait_for_log` and :meth:`wait_for_port`.
        Redirects are followed; proxies from the environment are not used
        (readiness is about this machine). Only ``http://`` and ``https://``.

        Example:
            >>> from kstlib.ops import SessionManager
            >>> bot = SessionManager("doc-http", socket_name="kstlib-doc")
            >>> _ = bot.start("sleep 30")
            >>> bot.wait_for_http("http://127.0.0.1:1/health", timeout=0.2)
            Traceback (most recent call last):
            ...
            kstlib.ops.exceptions.SessionTimeoutError: Could not wait for session 'doc-http' on the tmux backend: HTTP 200 from http://127.0.0.1:1/health did not happen within 0.2 s (...)
            >>> bot.stop(graceful=False)
            True
        """
        what, attempt = http_probe(url, status)
        self._ready(what, attempt, timeout)
        return status

    def _timeout_backend(self) -> str | BackendType:
        return self._config.runtime or self.backend

    def wait_until_running(self, timeout: float = 30) -> SessionStatus:
        """Wait until the session exists and runs; return its status.

        Raises :class:`~kstlib.ops.exceptions.SessionTimeoutError` after
        ``timeout`` seconds and :class:`~kstlib.ops.exceptions.SessionError`
        if it exits instead.

        Example:
            >>> from kstlib.ops import SessionManager
            >>> bot = SessionManager("doc-up", socket_name="kstlib-doc")
            >>> _ = bot.start("sleep 30")
            >>> bot.wait_until_running(timeout=5).state.value
            'running'
            >>> bot.stop(graceful=False)
            True
        """
        return until_running(self.name, self.status, self._where(), self.backend, timeout)
