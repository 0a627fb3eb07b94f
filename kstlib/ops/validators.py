"""Input checks run before any engine call.

Each check raises :class:`~kstlib.ops.exceptions.SessionConfigError` naming
the field and what is wrong with the value, so nothing is created from bad
input.

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

import ipaddress
import math
import os
import re
import reprlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone

from kstlib.ops.exceptions import SessionConfigError

__all__ = [
    "MAX_COMMAND_BYTES",
    "MAX_ENV_KEYS",
    "MAX_ENV_VALUE_BYTES",
    "config_error",
    "resolve_host_path",
    "short",
    "shown",
    "shown_key",
    "validate_base_url",
    "validate_call_timeout",
    "validate_command",
    "validate_cpus",
    "validate_env",
    "validate_image",
    "validate_insecure_registries",
    "validate_labels",
    "validate_lines",
    "validate_lookup_name",
    "validate_memory",
    "validate_name",
    "validate_optional_timeout",
    "validate_ports",
    "validate_pull",
    "validate_restart",
    "validate_runtime",
    "validate_since",
    "validate_socket_name",
    "validate_timeout",
    "validate_volumes",
]

NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
MAX_NAME = 64
ENV_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: Linux refuses a single argument or env string over 128 KiB (MAX_ARG_STRLEN).
MAX_ENV_VALUE_BYTES = 128 * 1024
MAX_ENV_KEYS = 1024
MAX_COMMAND_BYTES = 128 * 1024
# The image reference grammar of the distribution spec, simplified to one regex.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]+)?)"
IMAGE_RE = re.compile(
    rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9A-Fa-f]{32,})?"
)
MAX_IMAGE = 255
VOLUME_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
VOLUME_OPTIONS = frozenset({"ro", "rw", "z", "Z"})
RESTART_RE = re.compile(r"no|always|unless-stopped|on-failure(?::([0-9]{1,4}))?")
MEMORY_RE = re.compile(r"[0-9]{1,15}[bkmgBKMG]?")
RUNTIMES = ("docker", "podman")
#: The pull policies: pull when the engine lacks the image, always, never.
PULL_POLICIES: tuple[str, ...] = ("missing", "always", "never")
#: A registry address: ``host[:port]`` or ``[ipv6][:port]``.
HOST_PORT_RE = re.compile(r"[A-Za-z0-9.-]+(?::[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?")


def config_error(field: str, problem: str) -> SessionConfigError:
    """Build the error for a bad value of ``field``.

    Example:
        >>> str(config_error("ports", "'x' is not a port"))
        "ports: 'x' is not a port"
    """
    return SessionConfigError(f"{field}: {problem}", field=field, problem=problem)


#: The longest echo of a user value in any message (the value itself may be megabytes).
MAX_SHOWN = 60
_REPR = reprlib.Repr()
_REPR.maxlevel = 2
_REPR.maxstring = MAX_SHOWN
_REPR.maxother = MAX_SHOWN
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 4


def shown(value: object) -> str:
    """A bounded ``repr`` of a user value, for messages.

    Never more than :data:`MAX_SHOWN` characters, and cheap whatever the size
    or the nesting of ``value`` (a YAML alias bomb expands to billions of
    items: its full ``repr`` would exhaust memory).

    Example:
        >>> shown("x" * 1000)[:8], len(shown("x" * 1000)) <= MAX_SHOWN
        ("'xxxxxxx", True)
        >>> shown([[1, 2, 3, 4, 5, 6]])
        '[[1, 2, 3, 4, ...]]'
    """
    try:
        text = _REPR.repr(value)
    except Exception:  # a hostile __repr__: say what it is, not what it claims
        text = f"<{type(value).__name__}>"
    return text if len(text) <= MAX_SHOWN else f"{text[: MAX_SHOWN - 3]}..."


def shown_key(key: object) -> str:
    """A mapping key as written in a key path (``ops.sessions.KEY``), bounded like :func:`shown`.

    Example:
        >>> shown_key("bot"), shown_key("k" * 100)[-5:]
        ('bot', 'kk...')
    """
    text = key if isinstance(key, str) else shown(key)
    return text if len(text) <= MAX_SHOWN else f"{text[: MAX_SHOWN - 3]}..."


short = shown
_short = shown


def _require_str(field: str, value: object, *, secret: bool = False) -> str:
    """``value`` as a checked string; ``secret``: messages never show the value."""
    if not isinstance(value, str):
        raise config_error(field, f"expected a string, got {type(value).__name__}")
    what = "value" if secret else _short(value)
    if "\x00" in value:
        raise config_error(field, f"{what} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (e.g. from os.fsdecode of bad bytes) cannot reach
        # any engine or command line; say so instead of failing on .encode().
        raise config_error(field, f"{what} is not valid Unicode text") from None
    return value


def validate_name(name: object) -> str:
    """Check a session name: 1-64 chars, ``^[A-Za-z][A-Za-z0-9_-]*$``.

    Example:
        >>> validate_name("a" * 65)
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: name: must be 1 to 64 characters long, got 65
    """
    value = _require_str("name", name)
    if not 1 <= len(value) <= MAX_NAME:
        raise config_error("name", f"must be 1 to {MAX_NAME} characters long, got {len(value)}")
    if not NAME_RE.fullmatch(value):
        raise config_error(
            "name",
            f"{_short(value)} must start with a letter and contain only letters, "
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
    value = _require_str("name", name)
    if not value or len(value) > 255 or any(c in value for c in ":\n\r\t"):
        raise config_error("name", f"{_short(value)} is not a session name")
    return value


def validate_command(command: object) -> str | tuple[str, ...] | None:
    """Check a command: ``None``, a non-empty string, or a non-empty argv list of strings.

    Example:
        >>> validate_command(["echo", "a;b"])
        ('echo', 'a;b')
    """
    if command is None:
        return None
    if isinstance(command, str):
        _require_str("command", command)
        if not command.strip():
            raise config_error("command", "must not be empty")
        if len(command.encode()) > MAX_COMMAND_BYTES:
            raise config_error("command", f"is longer than {MAX_COMMAND_BYTES} bytes")
        return command
    if isinstance(command, Sequence) and not isinstance(command, (bytes, bytearray)):
        argv = tuple(command)
        if not argv:
            raise config_error("command", "an argv list must not be empty")
        total = 0
        for i, arg in enumerate(argv):
            _require_str(f"command[{i}]", arg)
            total += len(arg.encode()) + 1
        if not argv[0]:
            raise config_error("command", "the program (argv[0]) must not be empty")
        if total > MAX_COMMAND_BYTES:
            raise config_error("command", f"is longer than {MAX_COMMAND_BYTES} bytes")
        return argv
    raise config_error(
        "command", f"expected a string or a list of strings, got {type(command).__name__}"
    )


def validate_env(env: object) -> dict[str, str]:
    """Check environment variables: keys ``^[A-Za-z_][A-Za-z0-9_]*$``, string values.

    Example:
        >>> validate_env({"GREETING": "hello 'world'"})
        {'GREETING': "hello 'world'"}
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
            raise config_error("env", f"key {_short(key)} must match ^[A-Za-z_][A-Za-z0-9_]*$")
        number = isinstance(raw, (int, float)) and not isinstance(raw, bool)
        value = _require_str(f"env[{key}]", str(raw) if number else raw, secret=True)
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
            raise config_error("labels", f"key {_short(key)} must be a non-empty string")
        _require_str(f"labels[{key}]", key)
        out[key] = _require_str(f"labels[{key}]", value)
    return out


def validate_image(image: object) -> str:
    """Check an image reference such as ``localhost/app:1.2`` or ``alpine@sha256:...``.

    Example:
        >>> validate_image("Alpine")
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: image: 'Alpine' is not a valid image reference (e.g. 'alpine:3.20' or 'registry:5000/team/app@sha256:...')
    """
    value = _require_str("image", image)
    if not value or len(value) > MAX_IMAGE or not IMAGE_RE.fullmatch(value):
        raise config_error(
            "image",
            f"{_short(value)} is not a valid image reference "
            "(e.g. 'alpine:3.20' or 'registry:5000/team/app@sha256:...')",
        )
    return value


def _sequence_of_str(field: str, values: object) -> tuple[str, ...]:
    if values is None:
        return ()
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise config_error(field, f"expected a list of strings, got {type(values).__name__}")
    return tuple(_require_str(field, v) for v in values)


def resolve_host_path(path: str, base: str | None = None) -> str:
    """A relative host path (``.``, ``./x``, ``../x``, ``~/x``) made absolute; others unchanged.

    ``base`` is the folder a relative path starts from (default: the current
    directory). A bare word (``cache``) is a named volume and stays as is.

    Example:
        >>> resolve_host_path("./data", base="/srv/app")
        '/srv/app/data'
        >>> resolve_host_path("cache", base="/srv/app")
        'cache'
    """
    if path.startswith("~"):
        return os.path.expanduser(path)
    if path in (".", "..") or path.startswith(("./", "../")):
        return os.path.normpath(os.path.join(base if base is not None else os.getcwd(), path))
    return path


def validate_volumes(volumes: object, field: str = "volumes") -> tuple[str, ...]:
    """Check volumes ``host:container[:ro|rw|z|Z]`` (host: a path or a volume name).

    A relative host path (``./data``, ``../data``, ``~/data``) is resolved
    against the current directory, as docker compose does against its file.

    Example:
        >>> validate_volumes(["/srv/data:/data:ro", "cache:/cache"])
        ('/srv/data:/data:ro', 'cache:/cache')
        >>> import os
        >>> validate_volumes(["./data:/app/data"]) == (os.path.join(os.getcwd(), "data") + ":/app/data",)
        True
    """
    items = _sequence_of_str(field, volumes)
    out: list[str] = []
    for item in items:
        parts = item.split(":")
        if len(parts) not in (2, 3):
            raise config_error(field, f"{_short(item)} must be host:container[:ro|rw|z|Z]")
        parts[0] = resolve_host_path(parts[0])
        host, ctr = parts[0], parts[1]
        if not (host.startswith("/") or VOLUME_NAME_RE.fullmatch(host)):
            raise config_error(
                field,
                f"{_short(item)}: host side must be a path (absolute, or starting with ./ "
                "../ or ~) or a volume name",
            )
        if not ctr.startswith("/"):
            raise config_error(field, f"{_short(item)}: container side must be an absolute path")
        if len(parts) == 3:
            options = parts[2].split(",")
            if not options or any(o not in VOLUME_OPTIONS for o in options):
                raise config_error(field, f"{_short(item)}: mode must be one of ro, rw, z, Z")
        out.append(":".join(parts))
    return tuple(out)


def _port_number(item: str, text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise config_error(
            "ports", f"{_short(item)}: {_short(text)} is not a port number (1-65535)"
        )
    return int(text)


def validate_ports(ports: object) -> tuple[str, ...]:
    """Check port mappings ``[ip:][host:]container[/tcp|udp]``.

    Without a host port (``"80"``, ``"127.0.0.1::80"``) the engine picks a
    free one on the host (Docker and Podman alike); ``status().ports`` shows it.

    Example:
        >>> validate_ports(["127.0.0.1:8080:80", "[::1]:5353:53/udp", "80", "127.0.0.1::9000"])
        ('127.0.0.1:8080:80', '[::1]:5353:53/udp', '80', '127.0.0.1::9000')
    """
    items = _sequence_of_str("ports", ports)
    for item in items:
        parse_port(item)
    return items


def parse_port(item: str) -> tuple[str | None, int | None, int, str]:
    """Split a checked port mapping into ``(ip, host_port, container_port, protocol)``.

    ``host_port`` is ``None`` when the engine is to pick one.

    Example:
        >>> parse_port("127.0.0.1:8080:80/udp")
        ('127.0.0.1', 8080, 80, 'udp')
        >>> parse_port("80")
        (None, None, 80, 'tcp')
    """
    spec, slash, proto = item.partition("/")
    proto = proto if slash else "tcp"
    if proto not in ("tcp", "udp"):
        raise config_error("ports", f"{_short(item)}: protocol must be tcp or udp")
    ip: str | None = None
    if spec.startswith("["):
        end = spec.find("]")
        if end < 0 or spec[end + 1 : end + 2] != ":":
            raise config_error("ports", f"{_short(item)} must be [ip:]host:container[/tcp|udp]")
        ip, spec = spec[1:end], spec[end + 2 :]
        parts = spec.split(":")
        if len(parts) != 2:
            raise config_error("ports", f"{_short(item)} must be [ip:]host:container[/tcp|udp]")
    else:
        parts = spec.split(":")
        if len(parts) == 3:
            ip, parts = parts[0], parts[1:]
        elif len(parts) == 1:
            parts = ["", parts[0]]  # the container port alone: the engine picks the host's
        elif len(parts) != 2:
            raise config_error("ports", f"{_short(item)} must be [ip:]host:container[/tcp|udp]")
    if ip is not None:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise config_error(
                "ports", f"{_short(item)}: {_short(ip)} is not an IP address"
            ) from None
    if not parts[0] and (ip is not None or len(spec.split(":")) == 1):
        host: int | None = None  # "80", "ip::80": a free host port
    else:
        host = _port_number(item, parts[0])
    return ip, host, _port_number(item, parts[1]), proto


def validate_runtime(runtime: object) -> str:
    """Check a container runtime name: ``docker`` or ``podman``.

    Example:
        >>> validate_runtime("Podman")
        'podman'
    """
    value = _require_str("runtime", runtime).lower()
    if value not in RUNTIMES:
        raise config_error("runtime", f"{_short(runtime)} is not docker or podman")
    return value


def validate_restart(restart: object) -> str:
    """Check a restart policy: ``no``, ``always``, ``unless-stopped`` or ``on-failure[:N]``.

    Example:
        >>> validate_restart("on-failure:2")
        'on-failure:2'
    """
    value = _require_str("restart", restart)
    if not RESTART_RE.fullmatch(value):
        raise config_error(
            "restart", f"{_short(value)} must be no, always, unless-stopped or on-failure[:N]"
        )
    return value


def validate_memory(memory: object) -> str:
    """Check a memory limit such as ``512m`` or ``1g``.

    Example:
        >>> validate_memory("256m")
        '256m'
    """
    value = _require_str("memory", memory)
    if not MEMORY_RE.fullmatch(value):
        raise config_error("memory", f"{_short(value)} must be a number with b, k, m or g")
    return value


def validate_cpus(cpus: object) -> float:
    """Check a CPU limit: a positive number of CPUs.

    Example:
        >>> validate_cpus(1.5)
        1.5
    """
    if isinstance(cpus, bool) or not isinstance(cpus, (int, float)) or not 0 < cpus <= 1024:
        raise config_error("cpus", f"{_short(cpus)} must be a number of CPUs above 0")
    return float(cpus)


def validate_socket_name(socket_name: object) -> str:
    """Check a tmux socket name (``-L``): non-empty, no ``/``.

    Example:
        >>> validate_socket_name("ci-run")
        'ci-run'
    """
    value = _require_str("socket_name", socket_name)
    if not value or "/" in value or len(value) > 100:
        raise config_error("socket_name", f"{_short(value)} must be a short name without '/'")
    return value


def validate_optional_str(field: str, value: object) -> str | None:
    """Check that an optional field is a string without NUL.

    Example:
        >>> validate_optional_str("working_dir", "/tmp")
        '/tmp'
    """
    if value is None:
        return None
    text = _require_str(field, value)
    if not text:
        raise config_error(field, "must not be empty")
    return text


def validate_pull(pull: object) -> str:
    """Check a pull policy: ``missing``, ``always`` or ``never``.

    Example:
        >>> validate_pull("Always")
        'always'
        >>> validate_pull("sometimes")
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: pull: 'sometimes' must be missing, always or never
    """
    if isinstance(pull, str) and pull.lower() in PULL_POLICIES:
        return pull.lower()
    raise SessionConfigError(f"pull: {pull!r} must be missing, always or never", field="pull")


def validate_insecure_registries(value: object) -> tuple[str, ...]:
    """Check a list of registries (``host`` or ``host:port``) allowed over plain HTTP.

    Example:
        >>> validate_insecure_registries(["registry.lan:5000", "10.0.0.5"])
        ('registry.lan:5000', '10.0.0.5')
    """
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise SessionConfigError(
            f"insecure_registries: expected a list of host[:port], got {type(value).__name__}",
            field="insecure_registries",
        )
    out: list[str] = []
    for item in value:
        if not isinstance(item, str) or not HOST_PORT_RE.fullmatch(item):
            raise SessionConfigError(
                f"insecure_registries: {item!r} is not a registry host[:port]",
                field="insecure_registries",
            )
        out.append(item)
    return tuple(out)


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
    return base_url
