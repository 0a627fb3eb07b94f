"""The checks of the options only a Swarm service has: replicas, placement, mode, grace period.

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
from collections.abc import Iterable

from kstlib.ops.validators._common import config_error, shown

__all__ = [
    "MAX_REPLICAS",
    "MODES",
    "SWARM_ONLY",
    "validate_mode",
    "validate_placement",
    "validate_replicas",
    "validate_service_name",
    "validate_stop_timeout",
]

#: SessionConfig fields that only the swarm backend honours.
SWARM_ONLY = ("replicas", "placement", "mode", "stop_timeout")
#: Service modes: one task per replica, or one task on every node that fits.
MODES = ("replicated", "global")
MAX_REPLICAS = 1000

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
    items: Iterable[object] = (placement,) if isinstance(placement, str) else placement  # type: ignore[assignment]
    if not isinstance(items, (list, tuple)):
        raise config_error("placement", f"{shown(placement)} must be a list of strings")
    checked: list[str] = []
    for item in items:
        if not isinstance(item, str) or not (
            _CONSTRAINT_RE.fullmatch(item.strip()) or _SPREAD_RE.fullmatch(item.strip())
        ):
            raise config_error(
                "placement",
                f"{shown(item)} must be a constraint such as node.labels.role==worker, "
                "or spread=node.KEY",
            )
        checked.append(item.strip())
    return tuple(checked)


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
