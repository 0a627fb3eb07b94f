"""Waiting for a session: a log line, a port, an HTTP answer, the running state.

Internal module: the public API is :mod:`kstlib.ops` (``kstlib.ops.__all__``).

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

from kstlib.ops.exceptions import (
    SessionError,
    SessionNotFoundError,
    SessionTimeoutError,
)
from kstlib.ops.models import BackendType, SessionState, SessionStatus
from kstlib.ops.runner import Runner
from kstlib.ops.validators import (
    validate_host,
    validate_http_status,
    validate_http_url,
    validate_pattern,
    validate_port_number,
    validate_timeout,
)

__all__ = ["http_probe", "port_probe", "ready_wait", "until_running", "wait_for_log"]

#: One readiness attempt: given the seconds it may take, ``None`` when ready, else why not.
Attempt = Callable[[float], "str | None"]


#: Pause between readiness attempts (a refused connection answers at once).
_READY_POLL = 0.1


def wait_for_log(
    runner: Runner, name: str, pattern: str | re.Pattern[str], timeout: float = 30
) -> str:
    """Return the first output line of session ``name`` that matches ``pattern``.

    See :meth:`SessionManager.wait_for_log`.

    Example:
        >>> from kstlib.ops import SessionConfig, TmuxRunner
        >>> runner = TmuxRunner(socket_name="kstlib-doc")
        >>> _ = runner.start(SessionConfig(name="doc-wfl", command="echo up; sleep 30"))
        >>> wait_for_log(runner, "doc-wfl", "^up$", timeout=10)
        'up'
        >>> runner.stop("doc-wfl", graceful=False)
        True
    """
    regex = validate_pattern(pattern)
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
        time.sleep(min(_READY_POLL, max(deadline - time.monotonic(), 0)))


def port_probe(host: object, port: object) -> tuple[str, Attempt]:
    """What a TCP readiness wait waits for, and one attempt at it (a connect).

    Example:
        >>> port_probe("127.0.0.1", 0)
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: port: 0 is not a port number (1-65535)
    """
    number = validate_port_number(port)
    host = validate_host(host)

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

    url = validate_http_url(url)
    status = validate_http_status(status)
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
        time.sleep(0.05)
