"""Input checks run before any engine call.

Internal package: the public API is :mod:`kstlib.ops` (``kstlib.ops.__all__``).

Each check raises :class:`~kstlib.ops.exceptions.SessionConfigError` naming
the field and what is wrong with the value, so nothing is created from bad
input.

The checks of a runner method's other arguments (``start``'s config type,
tmux's working directory and socket path, ``send_keys``'s ``literal``) live
in :mod:`kstlib.ops.validators.calls`.

The checks of container-only options live in
:mod:`kstlib.ops.validators.container`, those of swarm services in
:mod:`kstlib.ops.validators.swarm`; both are re-exported here, so this
package stays the one place to look.

Example:
    >>> validate_name("bot-2")
    'bot-2'
    >>> validate_ports(["127.0.0.1:8080:80/tcp"])
    ('127.0.0.1:8080:80/tcp',)
    >>> validate_env({"1BAD": "x"})
    Traceback (most recent call last):
    ...
    kstlib.ops.exceptions.SessionConfigError: env: key '1BAD' must match ^[A-Za-z_][A-Za-z0-9_]*$
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone

from kstlib.ops.validators._common import (
    MAX_SHOWN,
    config_error,
    require_str,
    short,
    shown,
    shown_key,
)
from kstlib.ops.validators.calls import (
    validate_instance,
    validate_optional_flag,
    validate_same_runtime,
    validate_socket_path,
    validate_working_dir,
)
from kstlib.ops.validators.container import (
    HOST_PORT_RE,
    IMAGE_RE,
    MAX_IMAGE,
    MAX_PORTS,
    MAX_VOLUMES,
    MEMORY_RE,
    NETWORK_MODES,
    NETWORK_NAME_RE,
    PULL_POLICIES,
    RESTART_RE,
    RUNTIMES,
    VOLUME_NAME_RE,
    VOLUME_OPTIONS,
    parse_port,
    resolve_host_path,
    validate_cpus,
    validate_image,
    validate_insecure_registries,
    validate_memory,
    validate_network,
    validate_network_ports,
    validate_ports,
    validate_pull,
    validate_restart,
    validate_runtime,
    validate_volumes,
)
from kstlib.ops.validators.readiness import (
    validate_host,
    validate_http_status,
    validate_http_url,
    validate_pattern,
    validate_port_number,
)
from kstlib.ops.validators.shell import (
    DANGEROUS_ENV_KEYS,
    MAX_SEND_KEYS_LENGTH,
    refuse_shell_patterns,
    validate_send_keys,
)
from kstlib.ops.validators.swarm import (
    validate_mode,
    validate_placement,
    validate_replicas,
    validate_service_name,
    validate_stop_timeout,
)
from kstlib.ops.validators.urls import refuse_password

__all__ = [
    "DANGEROUS_ENV_KEYS",
    "ENV_KEY_RE",
    "HOST_PORT_RE",
    "IMAGE_RE",
    "MAX_COMMAND_BYTES",
    "MAX_COMMAND_LENGTH",
    "MAX_ENV_KEYS",
    "MAX_ENV_KEY_LENGTH",
    "MAX_ENV_VALUE_BYTES",
    "MAX_ENV_VALUE_LENGTH",
    "MAX_ENV_VARS",
    "MAX_IMAGE",
    "MAX_IMAGE_NAME_LENGTH",
    "MAX_NAME",
    "MAX_PORTS",
    "MAX_SEND_KEYS_LENGTH",
    "MAX_SESSION_NAME_LENGTH",
    "MAX_SHOWN",
    "MAX_VOLUMES",
    "MEMORY_RE",
    "NAME_RE",
    "NETWORK_MODES",
    "NETWORK_NAME_RE",
    "PULL_POLICIES",
    "RESERVED_ENV_PREFIX",
    "RESTART_RE",
    "RUNTIMES",
    "VOLUME_NAME_RE",
    "VOLUME_OPTIONS",
    "config_error",
    "parse_port",
    "require_str",
    "resolve_host_path",
    "short",
    "shown",
    "shown_key",
    "validate_base_url",
    "validate_call_timeout",
    "validate_command",
    "validate_cpus",
    "validate_env",
    "validate_host",
    "validate_http_status",
    "validate_http_url",
    "validate_image",
    "validate_image_name",
    "validate_insecure_registries",
    "validate_instance",
    "validate_labels",
    "validate_lines",
    "validate_lookup_name",
    "validate_memory",
    "validate_mode",
    "validate_name",
    "validate_network",
    "validate_network_ports",
    "validate_optional_flag",
    "validate_optional_str",
    "validate_optional_timeout",
    "validate_pattern",
    "validate_placement",
    "validate_port_number",
    "validate_ports",
    "validate_pull",
    "validate_replicas",
    "validate_restart",
    "validate_runtime",
    "validate_same_runtime",
    "validate_send_keys",
    "validate_service_name",
    "validate_session_name",
    "validate_since",
    "validate_socket_name",
    "validate_socket_path",
    "validate_stop_timeout",
    "validate_timeout",
    "validate_volumes",
    "validate_working_dir",
]


NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
MAX_NAME = 64
ENV_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: Linux refuses a single argument or env string over 128 KiB (MAX_ARG_STRLEN).
MAX_ENV_VALUE_BYTES = 128 * 1024
MAX_ENV_KEYS = 1024
#: The longest environment key (as upstream kstlib).
MAX_ENV_KEY_LENGTH = 128
MAX_COMMAND_BYTES = 128 * 1024

# Upstream kstlib's names for the same limits (one rule each: these are aliases).
MAX_SESSION_NAME_LENGTH = MAX_NAME
MAX_IMAGE_NAME_LENGTH = MAX_IMAGE
MAX_COMMAND_LENGTH = MAX_COMMAND_BYTES
MAX_ENV_VARS = MAX_ENV_KEYS
MAX_ENV_VALUE_LENGTH = MAX_ENV_VALUE_BYTES
# The image reference grammar of the distribution spec, simplified to one regex.


def validate_name(name: object) -> str:
    """Check a session name: 1-64 chars, ``^[A-Za-z][A-Za-z0-9_-]*$``.

    Example:
        >>> validate_name("a" * 65)
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: name: must be 1 to 64 characters long, got 65
    """
    value = require_str("name", name)
    if not 1 <= len(value) <= MAX_NAME:
        raise config_error("name", f"must be 1 to {MAX_NAME} characters long, got {len(value)}")
    if not NAME_RE.fullmatch(value):
        raise config_error(
            "name",
            f"{short(value)} must start with a letter and contain only letters, "
            "digits, '_' and '-'",
        )
    return value


def validate_lookup_name(name: object) -> str:
    """Check a name used to look up an existing session.

    Lenient, since sessions kstlib did not create (named by tmux, docker or a
    person) may use other characters; only what no engine accepts is refused.

    Example:
        >>> validate_lookup_name("0")
        '0'
    """
    value = require_str("name", name)
    if not value or len(value) > 255 or any(c in value for c in ":\n\r\t"):
        raise config_error("name", f"{short(value)} is not a session name")
    return value


def validate_command(command: object, *, strict: bool = False) -> str | tuple[str, ...] | None:
    """Check a command: ``None``, a non-empty string, or a non-empty argv list of strings.

    ``strict=True`` also refuses a command string holding a shell pattern
    (``;``, ``|``, ``$(...)``, redirections, ``eval``...), as upstream kstlib
    does by default; an argv list reaches no shell, so it has nothing to refuse.

    Example:
        >>> validate_command(["echo", "a;b"])
        ('echo', 'a;b')
        >>> validate_command("echo a; echo b", strict=True)
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: command: contains ';' (command chaining), a potentially dangerous shell pattern (pass an argv list, or strict=False)
    """
    if command is None:
        return None
    if isinstance(command, str):
        require_str("command", command)
        if not command.strip():
            raise config_error("command", "must not be empty")
        if len(command.encode()) > MAX_COMMAND_BYTES:
            raise config_error("command", f"is longer than {MAX_COMMAND_BYTES} bytes")
        return refuse_shell_patterns("command", command) if strict else command
    if isinstance(command, Sequence) and not isinstance(command, (bytes, bytearray)):
        argv = tuple(command)
        if not argv:
            raise config_error("command", "an argv list must not be empty")
        total = 0
        for i, arg in enumerate(argv):
            require_str(f"command[{i}]", arg)
            total += len(arg.encode()) + 1
        if not argv[0]:
            raise config_error("command", "the program (argv[0]) must not be empty")
        if total > MAX_COMMAND_BYTES:
            raise config_error("command", f"is longer than {MAX_COMMAND_BYTES} bytes")
        return argv
    raise config_error(
        "command", f"expected a string or a list of strings, got {type(command).__name__}"
    )


#: Env keys starting with this are kstlib's own (the tmux session wrapper's variables).
RESERVED_ENV_PREFIX = "__kstlib_"


def validate_env(env: object, *, strict: bool = False) -> dict[str, str]:
    """Check environment variables: keys ``^[A-Za-z_][A-Za-z0-9_]*$``, string values.

    ``strict=True`` also refuses the keys that load code into a process
    (:data:`DANGEROUS_ENV_KEYS`: ``LD_PRELOAD``, ``PYTHONPATH``...), as upstream
    kstlib always does. Keys starting with ``__kstlib_`` are reserved: the tmux
    backend applies the environment inside its session wrapper, whose variables
    bear that prefix, so such a key could change the wrapper's own state.

    Example:
        >>> validate_env({"GREETING": "hello 'world'"})
        {'GREETING': "hello 'world'"}
        >>> validate_env({"__kstlib_nonce": "x"})
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: env: key '__kstlib_nonce' is reserved (names starting with __kstlib_ are kstlib's own)
    """
    if env is None:
        return {}
    if not isinstance(env, Mapping):
        raise config_error(
            "env", f"expected a mapping of names to values, got {type(env).__name__}"
        )
    if len(env) > MAX_ENV_KEYS:
        raise config_error("env", f"has {len(env)} keys, more than the {MAX_ENV_KEYS} allowed")
    out: dict[str, str] = {}
    for key, raw in env.items():
        if not isinstance(key, str) or not ENV_KEY_RE.fullmatch(key):
            raise config_error("env", f"key {short(key)} must match ^[A-Za-z_][A-Za-z0-9_]*$")
        if len(key) > MAX_ENV_KEY_LENGTH:
            raise config_error("env", f"key {short(key)} is longer than {MAX_ENV_KEY_LENGTH}")
        if key.startswith(RESERVED_ENV_PREFIX):
            raise config_error(
                "env",
                f"key {short(key)} is reserved (names starting with {RESERVED_ENV_PREFIX} "
                "are kstlib's own)",
            )
        if strict and key in DANGEROUS_ENV_KEYS:
            raise config_error("env", f"key {key!r} loads code into the process (strict)")
        number = isinstance(raw, (int, float)) and not isinstance(raw, bool)
        value = require_str(f"env[{key}]", str(raw) if number else raw, secret=True)
        if len(value.encode()) > MAX_ENV_VALUE_BYTES:
            raise config_error(f"env[{key}]", f"is longer than {MAX_ENV_VALUE_BYTES} bytes")
        out[key] = value
    return out


def validate_labels(labels: object) -> dict[str, str]:
    """Check container labels: non-empty string keys, string values.

    Example:
        >>> validate_labels({"team": "ops"})
        {'team': 'ops'}
    """
    if labels is None:
        return {}
    if not isinstance(labels, Mapping):
        raise config_error("labels", f"expected a mapping, got {type(labels).__name__}")
    out: dict[str, str] = {}
    for key, value in labels.items():
        if not isinstance(key, str) or not key or len(key) > 255:
            raise config_error("labels", f"key {short(key)} must be a non-empty string")
        require_str(f"labels[{key}]", key)
        out[key] = require_str(f"labels[{key}]", value)
    return out


def validate_socket_name(socket_name: object) -> str:
    """Check a tmux socket name (``-L``): non-empty, no ``/``.

    Example:
        >>> validate_socket_name("ci-run")
        'ci-run'
    """
    value = require_str("socket_name", socket_name)
    if not value or "/" in value or len(value) > 100:
        raise config_error("socket_name", f"{short(value)} must be a short name without '/'")
    return value


def validate_optional_str(field: str, value: object) -> str | None:
    """Check that an optional field is a string without NUL.

    Example:
        >>> validate_optional_str("working_dir", "/tmp")
        '/tmp'
    """
    if value is None:
        return None
    text = require_str(field, value)
    if not text:
        raise config_error(field, "must not be empty")
    return text


# -- call arguments: one rule each ----------------------------------------------------

_URL_SCHEMES = ("unix", "tcp", "ssh", "http", "https")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _seconds(value: object) -> bool:
    """Whether ``value`` is a finite, non-negative number of seconds (not a bool)."""
    return (
        not isinstance(value, bool)
        and isinstance(value, (int, float))
        and math.isfinite(value)
        and value >= 0
    )


def validate_timeout(timeout: object, field: str = "timeout") -> float:
    """Check a timeout: a finite, non-negative number of seconds (the one rule).

    Example:
        >>> validate_timeout(5)
        5.0
        >>> validate_timeout(float("nan"))
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: timeout: nan must be a finite, non-negative number of seconds
    """
    if not _seconds(timeout):
        raise config_error(
            field, f"{shown(timeout)} must be a finite, non-negative number of seconds"
        )
    return float(timeout)  # type: ignore[arg-type]


def validate_optional_timeout(timeout: object, field: str = "timeout") -> float | None:
    """:func:`validate_timeout`, where ``None`` (no limit) is allowed.

    Example:
        >>> validate_optional_timeout(None) is None
        True
    """
    return None if timeout is None else validate_timeout(timeout, field)


def validate_call_timeout(timeout: object) -> float:
    """Check the timeout of one engine API call: the timeout rule, and more than 0.

    Example:
        >>> validate_call_timeout(30)
        30.0
        >>> validate_call_timeout(0)
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: timeout: 0 must be a finite, positive number of seconds
    """
    if not _seconds(timeout) or not timeout:
        raise config_error(
            "timeout", f"{shown(timeout)} must be a finite, positive number of seconds"
        )
    return float(timeout)  # type: ignore[arg-type]


def validate_lines(lines: object) -> int | None:
    """Check a number of log lines: ``None`` (all) or a non-negative integer.

    Example:
        >>> validate_lines(20), validate_lines(None)
        (20, None)
    """
    if lines is None:
        return None
    if isinstance(lines, bool) or not isinstance(lines, int) or lines < 0:
        raise config_error("lines", f"{shown(lines)} must be a non-negative integer")
    return lines


def validate_since(since: object) -> datetime | None:
    """``since`` as an aware datetime: a datetime (naive: UTC) or a Unix time in seconds.

    Example:
        >>> validate_since(0).isoformat()
        '1970-01-01T00:00:00+00:00'
    """
    if since is None:
        return None
    if isinstance(since, datetime):
        return since if since.tzinfo is not None else since.replace(tzinfo=timezone.utc)
    if isinstance(since, (int, float)) and not isinstance(since, bool) and math.isfinite(since):
        try:
            return _EPOCH + timedelta(seconds=since)
        except OverflowError:
            pass
    raise config_error("since", f"{shown(since)} must be a datetime or a Unix time in seconds")


def validate_base_url(base_url: object) -> str | None:
    """Check an engine URL: ``unix://``, ``tcp://``, ``ssh://``, ``http(s)://``.

    Example:
        >>> validate_base_url("ssh://ops@build-01")
        'ssh://ops@build-01'
        >>> validate_base_url("ftp://x")
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: base_url: 'ftp://x' must start with unix://, tcp://, ssh://, http:// or https://
    """
    if base_url is None:
        return None
    if (
        not isinstance(base_url, str)
        or "://" not in base_url
        or (base_url.split("://", 1)[0] not in _URL_SCHEMES)
        or not base_url.split("://", 1)[1]
    ):
        raise config_error(
            "base_url",
            f"{shown(base_url)} must start with unix://, tcp://, ssh://, http:// or https://",
        )
    return refuse_password(base_url)


# Upstream kstlib's names for the same checks (aliases: one rule each).
validate_session_name = validate_name
validate_image_name = validate_image
