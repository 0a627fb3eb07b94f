"""``kstlib ops doctor``: whether an engine's default network can publish ports.

A container publishes a port (``ports: ["8080:80"]``) through the engine's
default bridge network. Where that bridge is off (``dockerd --bridge=none``;
Podman without its ``podman`` network, or with ``netns = "none"`` in its
containers.conf) containers get only a loopback interface, the engine still
accepts ``ports`` and the published port silently leads nowhere.
:func:`probe_bridge` asks the engine, through the engine registry, and says
so; nothing raises.

Example:
    >>> probe_bridge("docker", "unix:///nonexistent.sock") is None
    True
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from kstlib.ops.engines.adapter import MANAGED_LABEL, ContainerSpec, EngineAdapter

__all__ = ["network_notes", "probe_bridge"]

#: Seconds each engine call of the probe may take.
TIMEOUT = 5.0

ADVICE = (
    "published ports (ports:, -p) do not reach containers on its default network; "
    "use network: host (the container shares the host's ports) or a network of yours"
)


def _default_mode(engine: EngineAdapter, images: Iterable[str]) -> str | None:
    """The network mode a container gets by default, from one created (never started)."""
    image = next((i for i in images if engine.image_exists(i)), None)
    if image is None:
        return None
    name = f"kstlib-doctor-{uuid.uuid4().hex[:10]}"
    spec = ContainerSpec(
        name=name, image=image, command=["true"], labels={MANAGED_LABEL: "doctor"}, init=False
    )
    ref = engine.create(spec)
    try:
        return engine.inspect(ref).network_mode
    finally:
        engine.remove(ref, name)


def probe_bridge(
    runtime: str, endpoint: str, timeout: float = TIMEOUT, images: Iterable[str] = ()
) -> str | None:
    """One sentence when ``runtime``'s default network cannot publish ports, else ``None``.

    Docker: its ``bridge`` network is missing. Podman: its default network is
    missing, or (Podman's default mode comes from its containers.conf, which
    no API call reports) a container created from one of ``images`` (never
    started, removed at once) gets network mode ``none``. An engine that
    does not answer yields ``None``: the availability probe reports it.

    Example:
        >>> probe_bridge("podman", "unix:///nonexistent.sock") is None
        True
    """
    from kstlib.ops.engines.endpoints import connect

    try:
        engine = connect(runtime, endpoint, timeout)
        if not engine.has_network("bridge"):
            return f"{runtime} has no default bridge network: {ADVICE}"
        if runtime == "podman":
            # Any image at hand will do: the probe's container is never started.
            images = [*images, *(c.image for c in engine.list_containers() if c.image)]
        if runtime == "podman" and _default_mode(engine, images) == "none":
            return (
                'podman gives containers no network by default (netns = "none" in its '
                f"containers.conf): {ADVICE}"
            )
    except Exception:  # a diagnostic never raises; an engine that is down is reported elsewhere
        return None
    return None


def network_notes(
    checks: Iterable[tuple[str, bool, str]], images: Iterable[str], timeout: float = TIMEOUT
) -> dict[str, str]:
    """For each usable ``(runtime, available, endpoint)`` whose bridge is off, its note.

    Example:
        >>> network_notes([("docker", False, "unix:///var/run/docker.sock")], [])
        {}
    """
    wanted = list(images)
    notes: dict[str, str] = {}
    for runtime, available, endpoint in checks:
        if available and runtime in ("docker", "podman"):
            note = probe_bridge(runtime, endpoint, timeout, wanted)
            if note is not None:
                notes[runtime] = note
    return notes
