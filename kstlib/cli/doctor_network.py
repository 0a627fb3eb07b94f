"""``kstlib ops doctor``: whether an engine's default network can publish ports.

A container publishes a port (``ports: ["8080:80"]``) through the engine's
default bridge network. Where that bridge is off (``dockerd --bridge=none``;
Podman with ``netns = "none"`` in its containers.conf, or without its
``podman`` network) containers get only a loopback interface, the engine
still accepts ``ports`` and the published port silently leads nowhere.
:func:`probe_bridge` asks the engine through its SDK and says so; nothing
raises.

Example:
    >>> probe_bridge("docker", "unix:///nonexistent.sock") is None
    True
"""

from __future__ import annotations

import uuid
from typing import Any

__all__ = ["probe_bridge"]

#: Seconds each engine call of the probe may take.
TIMEOUT = 5.0

_ADVICE = (
    "published ports (ports:) do not reach containers on the default network; "
    "use network: host (the container shares the host's ports) or a network of yours"
)


def _docker_bridge(endpoint: str, timeout: float) -> str | None:
    import docker

    api = docker.APIClient(base_url=endpoint, version="auto", timeout=timeout)  # type: ignore[arg-type]
    try:
        found = api.networks(names=["bridge"])
    finally:
        api.close()
    if any(item.get("Name") == "bridge" for item in found or []):
        return None
    return f"docker has no 'bridge' network (dockerd runs with --bridge=none): {_ADVICE}"


def _podman_bridge(endpoint: str, timeout: float) -> str | None:
    import podman

    client = podman.PodmanClient(base_url=endpoint, timeout=timeout)
    try:
        if not client.networks.exists("podman"):
            return f"podman has no 'podman' network (its default bridge): {_ADVICE}"
        # Podman's default network mode comes from its containers.conf, which no
        # API call reports: a container created (never started) shows it.
        images = client.images.list()
        if not images:
            return None
        probe: Any = client.containers.create(
            images[0].id, ["true"], name=f"kstlib-doctor-{uuid.uuid4().hex[:10]}"
        )
        try:
            mode = (probe.attrs.get("HostConfig") or {}).get("NetworkMode")
            if mode is None:
                probe.reload()
                mode = (probe.attrs.get("HostConfig") or {}).get("NetworkMode")
        finally:
            probe.remove(force=True)
    finally:
        client.close()  # type: ignore[no-untyped-call]
    if mode == "none":
        return (
            'podman gives containers no network by default (netns = "none" in its '
            f"containers.conf): {_ADVICE}"
        )
    return None


def probe_bridge(runtime: str, endpoint: str, timeout: float = TIMEOUT) -> str | None:
    """One line when ``runtime``'s default network cannot publish ports, else ``None``.

    An engine that does not answer yields ``None`` (the availability probe
    already reports it).

    Example:
        >>> probe_bridge("podman", "unix:///nonexistent.sock") is None
        True
    """
    ask = _docker_bridge if runtime == "docker" else _podman_bridge
    try:
        return ask(endpoint, timeout)
    except Exception:  # a diagnostic never raises; an engine that is down is reported elsewhere
        return None
