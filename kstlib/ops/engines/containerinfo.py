"""A container as the engines describe it: the inspect and list payloads, read field by field.

Docker and Podman send the same shapes for the fields kstlib reads; each
field goes through :mod:`kstlib.ops.engines.payload`'s checks, so a hostile or
broken engine yields a typed error, never an ``AttributeError``.

Example:
    >>> list_info({"Id": "abc", "State": "exited", "Labels": {}}, name="bot", exit_code=3).exit_code
    3
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kstlib.ops.engines.adapter import ContainerInfo
from kstlib.ops.engines.payload import integer, labels, obj, text
from kstlib.ops.engines.streams import parse_timestamp, restart_policy

__all__ = ["inspect_info", "list_info"]


def inspect_info(
    payload: Mapping[str, Any], *, image_fields: tuple[str, ...], oom_false_told: bool
) -> ContainerInfo:
    """Normalise an inspect payload (``GET /containers/{id}/json``, both APIs).

    The engines differ in two readings: where the image is named
    (``image_fields``, the first that is set wins: ``Image``, ``ImageName``
    or ``Config.Image``), and whether a false ``State.OOMKilled`` is
    told (``oom_false_told``; if not, only a true one says anything).

    Example:
        >>> info = inspect_info({"Id": "abc", "Name": "/bot", "State": {"Status": "exited",
        ...     "Pid": 0, "ExitCode": 3}}, image_fields=("Image",), oom_false_told=False)
        >>> info.name, info.state, info.pid, info.exit_code, info.image, info.oom_killed
        ('bot', 'exited', None, 3, None, None)
    """
    payload = obj(payload, "the inspect answer")
    config = obj(payload.get("Config"), "Config")
    image = ""
    for field in image_fields:
        holder = config if field.startswith("Config.") else payload
        image = text(holder.get(field.rpartition(".")[2]), field)
        if image:
            break
    state = obj(payload.get("State"), "State")
    oom = state.get("OOMKilled")
    host = obj(payload.get("HostConfig"), "HostConfig")
    pid = integer(state.get("Pid"), "State.Pid")
    code = integer(state.get("ExitCode"), "State.ExitCode")
    policy, retries = restart_policy(host)
    mode = text(host.get("NetworkMode"), "HostConfig.NetworkMode")
    return ContainerInfo(
        network_mode=mode or None,
        id=text(payload.get("Id"), "Id"),
        name=text(payload.get("Name"), "Name").lstrip("/"),
        state=text(state.get("Status"), "State.Status") or "unknown",
        pid=pid if pid is not None and pid > 0 else None,
        exit_code=code,
        created_at=parse_timestamp(payload.get("Created")),
        image=image or None,
        labels=labels(config.get("Labels"), "Config.Labels"),
        tty=bool(config.get("Tty")),
        restart_count=integer(payload.get("RestartCount"), "RestartCount") or 0,
        restart_policy=policy,
        restart_retries=retries,
        started_at=parse_timestamp(state.get("StartedAt")),
        finished_at=parse_timestamp(state.get("FinishedAt")),
        oom_killed=bool(oom) if oom_false_told else (True if oom is True else None),
        error=text(state.get("Error"), "State.Error") or None,
    )


def list_info(
    item: Mapping[str, Any], *, name: str, exit_code: int | None, pid: int | None = None
) -> ContainerInfo:
    """Normalise one entry of a container listing; the engine-specific fields are the caller's.

    Example:
        >>> list_info({"Id": "abc", "State": "running", "Labels": None}, name="bot",
        ...           exit_code=None).state
        'running'
    """
    item = obj(item, "a listed container")
    return ContainerInfo(
        id=text(item.get("Id"), "Id"),
        name=name,
        state=text(item.get("State"), "State") or "unknown",
        pid=pid,
        exit_code=exit_code,
        created_at=parse_timestamp(item.get("Created")),
        image=text(item.get("Image"), "Image") or None,
        labels=labels(item.get("Labels"), "Labels"),
    )
