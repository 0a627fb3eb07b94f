"""The checks of the options only a Swarm service has: replicas, placement, mode, grace period, secrets.

Checked when a session configuration is built, before any
engine call; each rule raises :class:`~kstlib.ops.exceptions.SessionConfigError`
naming the field.

Example:
    >>> validate_placement(["node.labels.role==worker", "spread=node.id"])
    ('node.labels.role==worker', 'spread=node.id')
    >>> validate_replicas(0)
    Traceback (most recent call last):
    ...
    kstlib.ops.exceptions.SessionConfigError: replicas: 0 must be a whole number from 1 to 1000
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from kstlib.ops.validators._common import config_error, short, shown, strings_of

__all__ = [
    "MAX_REPLICAS",
    "MAX_SECRET_BYTES",
    "MODES",
    "SWARM_ONLY",
    "refuse_swarm_only",
    "validate_flag",
    "validate_mode",
    "validate_placement",
    "validate_replicas",
    "validate_secret_refs",
    "validate_secrets",
    "validate_service_name",
    "validate_stop_timeout",
]

#: SessionConfig fields that only the swarm backend honours.
SWARM_ONLY = (
    "replicas",
    "placement",
    "mode",
    "stop_timeout",
    "secrets",
    "secret_refs",
    "with_registry_auth",
)
#: Service modes: one task per replica, or one task on every node that fits.
MODES = ("replicated", "global")
MAX_REPLICAS = 1000
#: The swarm's limit on a secret's value (500 KiB).
MAX_SECRET_BYTES = 500 * 1024
#: A secret's file name under /run/secrets: the swarm's secret-name rules, short enough
#: that kstlib's unique prefix still fits the swarm's 64 characters.
_SECRET_NAME_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,38}[A-Za-z0-9])?")
#: An existing secret's name, as the swarm accepts it.
_SECRET_REF_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,62}[A-Za-z0-9])?")

# A constraint as the swarm reads it: a dotted key (node.id, node.hostname,
# node.role, node.platform.os, node.labels.KEY, engine.labels.KEY), == or !=,
# and a value; or a spread preference over a node attribute.
_CONSTRAINT_RE = re.compile(r"(node|engine)\.[A-Za-z0-9_.-]+\s*(==|!=)\s*[^\s=!][^\n]*")
_SPREAD_RE = re.compile(r"spread=(node|engine)\.[A-Za-z0-9_.-]+")
# What the swarm accepts as a service name (a DNS label, with '_' too).
_SERVICE_NAME_RE = re.compile(r"[A-Za-z0-9](?:[-_]*[A-Za-z0-9]+)*")
_SERVICE_NAME_MAX = 63


def validate_service_name(name: str) -> str:
    """Check that a (valid) session name is also a swarm service name: at most 63 chars, no end '-'/'_'.

    Example:
        >>> validate_service_name("bot-")
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: name: 'bot-' cannot be a swarm service name (at most 63 letters, digits, '-' or '_', ending with a letter or digit)
    """
    if len(name) > _SERVICE_NAME_MAX or not _SERVICE_NAME_RE.fullmatch(name):
        raise config_error(
            "name",
            f"{shown(name)} cannot be a swarm service name (at most 63 letters, digits, '-' or "
            "'_', ending with a letter or digit)",
        )
    return name


def validate_replicas(replicas: object) -> int:
    """Check a replica count: a whole number from 1 to :data:`MAX_REPLICAS`.

    Example:
        >>> validate_replicas(3)
        3
    """
    if (
        isinstance(replicas, bool)
        or not isinstance(replicas, int)
        or not (1 <= replicas <= MAX_REPLICAS)
    ):
        raise config_error(
            "replicas", f"{shown(replicas)} must be a whole number from 1 to {MAX_REPLICAS}"
        )
    return replicas


def validate_mode(mode: object) -> str:
    """Check a service mode: ``replicated`` or ``global`` (any case).

    Example:
        >>> validate_mode("Global")
        'global'
    """
    if isinstance(mode, str) and mode.lower() in MODES:
        return mode.lower()
    raise config_error("mode", f"{shown(mode)} must be one of {', '.join(MODES)}")


def validate_placement(placement: object) -> tuple[str, ...]:
    """Check placement items: constraints (``node.labels.role==worker``) or ``spread=node.KEY``.

    A single string is one item.

    Example:
        >>> validate_placement("node.role!=manager")
        ('node.role!=manager',)
        >>> validate_placement(["role=worker"])
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: placement: 'role=worker' must be a constraint such as node.labels.role==worker, or spread=node.KEY
    """
    checked = strings_of(
        "placement",
        placement,
        "strings",
        lambda item: bool(
            _CONSTRAINT_RE.fullmatch(item.strip()) or _SPREAD_RE.fullmatch(item.strip())
        ),
        "must be a constraint such as node.labels.role==worker, or spread=node.KEY",
    )
    return tuple(item.strip() for item in checked)


def validate_stop_timeout(stop_timeout: object) -> float:
    """Check a stop grace period in seconds: a number from 0 to 3600.

    Example:
        >>> validate_stop_timeout(2)
        2.0
    """
    if (
        isinstance(stop_timeout, bool)
        or not isinstance(stop_timeout, (int, float))
        or not (0 <= stop_timeout <= 3600)
    ):
        raise config_error(
            "stop_timeout", f"{shown(stop_timeout)} must be a number of seconds from 0 to 3600"
        )
    return float(stop_timeout)


def validate_secrets(secrets: object) -> dict[str, str]:
    """Check secrets given by value: file names under ``/run/secrets`` and string values.

    A name is 1 to 40 letters, digits, ``_``, ``.`` or ``-`` (starting and
    ending with a letter or digit); a value is a non-empty string of at most
    :data:`MAX_SECRET_BYTES` bytes. Messages name the secret, never its value.

    Example:
        >>> validate_secrets({"db_password": "s3cr3t"})
        {'db_password': 's3cr3t'}
        >>> validate_secrets({"../x": "s3cr3t"})
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: secrets: name '../x' must be 1 to 40 letters, digits, '_', '.' or '-', starting and ending with a letter or digit
    """
    if secrets is None:
        return {}
    if not isinstance(secrets, Mapping):
        raise config_error(
            "secrets", f"expected a mapping of names to values, got {type(secrets).__name__}"
        )
    out: dict[str, str] = {}
    for key, value in secrets.items():
        if not isinstance(key, str) or not _SECRET_NAME_RE.fullmatch(key):
            raise config_error(
                "secrets",
                f"name {shown(key)} must be 1 to 40 letters, digits, '_', '.' or '-', "
                "starting and ending with a letter or digit",
            )
        if not isinstance(value, str) or not value:
            raise config_error(f"secrets[{key}]", "must be a non-empty string (value not shown)")
        if len(value.encode()) > MAX_SECRET_BYTES:
            raise config_error(f"secrets[{key}]", f"is longer than {MAX_SECRET_BYTES} bytes")
        out[key] = value
    return out


def validate_secret_refs(refs: object) -> tuple[str, ...]:
    """Check the names of existing swarm secrets to mount (at ``/run/secrets/NAME``).

    A single string is one name.

    Example:
        >>> validate_secret_refs("db-password")
        ('db-password',)
        >>> validate_secret_refs([""])
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: secret_refs: '' is not a swarm secret name (1 to 64 letters, digits, '_', '.' or '-')
    """
    names = strings_of(
        "secret_refs",
        refs,
        "secret names",
        lambda item: bool(_SECRET_REF_RE.fullmatch(item)),
        "is not a swarm secret name (1 to 64 letters, digits, '_', '.' or '-')",
    )
    if len(set(names)) != len(names):
        raise config_error("secret_refs", "names a secret twice")
    return tuple(names)


def validate_flag(field: str, value: object) -> bool:
    """Check a yes/no option: exactly ``True`` or ``False``.

    Example:
        >>> validate_flag("with_registry_auth", "yes")
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: with_registry_auth: expected true or false, got 'yes'
    """
    if not isinstance(value, bool):
        raise config_error(field, f"expected true or false, got {shown(value)}")
    return value


def refuse_swarm_only(config: object, backend: str) -> None:
    """Raise for an option of :data:`SWARM_ONLY` that ``config`` sets on another backend.

    A secret's value is never shown, only its name.

    Example:
        >>> from types import SimpleNamespace
        >>> config = SimpleNamespace(**{**dict.fromkeys(SWARM_ONLY), "secrets": {"token": "s3cr3t"}})
        >>> refuse_swarm_only(config, "container")
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: secrets: {'token': '***'} needs a swarm service, but the backend is container; give backend='swarm'
    """
    for name in SWARM_ONLY:
        value = getattr(config, name)
        if value is not None and value is not False and value not in ((), {}):
            what = dict.fromkeys(value, "***") if name == "secrets" else value
            raise config_error(
                name,
                f"{short(what)} needs a swarm service, but the backend is {backend}; "
                "give backend='swarm'",
            )
