"""The arguments of the readiness waits: a log pattern, a port and host, an HTTP URL and status.

Example:
    >>> validate_port_number(8080), validate_http_status(204)
    (8080, 204)
"""

from __future__ import annotations

import re

from kstlib.ops.exceptions import SessionConfigError

__all__ = [
    "validate_host",
    "validate_http_status",
    "validate_http_url",
    "validate_pattern",
    "validate_port_number",
]


def validate_pattern(pattern: object) -> re.Pattern[str]:
    """A regular expression (a string, compiled here, or a compiled one).

    Example:
        >>> validate_pattern("ready$").pattern
        'ready$'
        >>> validate_pattern("(")
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: pattern: '(' is not a regular expression: missing ), unterminated subpattern at position 0
    """
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


def validate_port_number(port: object) -> int:
    """A TCP port number, 1-65535.

    Example:
        >>> validate_port_number(0)
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: port: 0 is not a port number (1-65535)
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise SessionConfigError(f"port: {port!r} is not a port number (1-65535)", "port")
    return port


def validate_host(host: object) -> str:
    """A host name or address (a non-empty string).

    Example:
        >>> validate_host("127.0.0.1")
        '127.0.0.1'
    """
    if not isinstance(host, str) or not host:
        raise SessionConfigError(f"host: {host!r} must be a host name or address", "host")
    return host


def validate_http_url(url: object) -> str:
    """An ``http://`` or ``https://`` URL.

    Example:
        >>> validate_http_url("ftp://example.org/")
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: url: 'ftp://example.org/' must start with http:// or https://
    """
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise SessionConfigError(f"url: {url!r} must start with http:// or https://", "url")
    return url


def validate_http_status(status: object) -> int:
    """An HTTP status code, 100-599.

    Example:
        >>> validate_http_status(700)
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: status: 700 is not an HTTP status
    """
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise SessionConfigError(f"status: {status!r} is not an HTTP status", "status")
    return status
