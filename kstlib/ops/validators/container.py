"""The checks of container-only options: image, volumes, ports, runtime, limits, pulls.

Example:
    >>> validate_ports(["127.0.0.1:8080:80/tcp"])
    ('127.0.0.1:8080:80/tcp',)
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterable

from kstlib.ops.exceptions import SessionConfigError
from kstlib.ops.validators._common import (
    config_error,
    matching,
    require_str,
    sequence_of_str,
    short,
)

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]+)?)"
IMAGE_RE = re.compile(
    rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9A-Fa-f]{32,})?"
)
MAX_IMAGE = 255
#: At most this many volumes and port mappings on one session (as upstream kstlib).
MAX_VOLUMES = 20
MAX_PORTS = 50
VOLUME_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
VOLUME_OPTIONS = frozenset({"ro", "rw", "z", "Z"})
RESTART_RE = re.compile(r"no|always|unless-stopped|on-failure(?::([0-9]{1,4}))?")
MEMORY_RE = re.compile(r"[0-9]{1,15}[bkmgBKMG]?")
RUNTIMES = ("docker", "podman")
#: The pull policies: pull when the engine lacks the image, always, never.
PULL_POLICIES: tuple[str, ...] = ("missing", "always", "never")
#: Network modes every engine knows; any other ``network`` names a network of the engine.
NETWORK_MODES: tuple[str, ...] = ("host", "none")
#: A network name as both engines accept one.
NETWORK_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
#: A registry address: ``host[:port]`` or ``[ipv6][:port]``.
HOST_PORT_RE = re.compile(r"[A-Za-z0-9.-]+(?::[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?")


def validate_image(image: object) -> str:
    """Check an image reference such as ``localhost/app:1.2`` or ``alpine@sha256:...``.

    Example:
        >>> validate_image("Alpine")
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: image: 'Alpine' is not a valid image reference (e.g. 'alpine:3.20' or 'registry:5000/team/app@sha256:...')
    """
    value = require_str("image", image)
    if not value or len(value) > MAX_IMAGE or not IMAGE_RE.fullmatch(value):
        raise config_error(
            "image",
            f"{short(value)} is not a valid image reference "
            "(e.g. 'alpine:3.20' or 'registry:5000/team/app@sha256:...')",
        )
    return value


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
    items = sequence_of_str(field, volumes)
    if len(items) > MAX_VOLUMES:
        raise config_error(field, f"has {len(items)} entries, more than the {MAX_VOLUMES} allowed")
    out: list[str] = []
    for item in items:
        parts = item.split(":")
        if len(parts) not in (2, 3):
            raise config_error(field, f"{short(item)} must be host:container[:ro|rw|z|Z]")
        parts[0] = resolve_host_path(parts[0])
        host, ctr = parts[0], parts[1]
        if not (host.startswith("/") or VOLUME_NAME_RE.fullmatch(host)):
            raise config_error(
                field,
                f"{short(item)}: host side must be a path (absolute, or starting with ./ "
                "../ or ~) or a volume name",
            )
        if not ctr.startswith("/"):
            raise config_error(field, f"{short(item)}: container side must be an absolute path")
        if len(parts) == 3:
            options = parts[2].split(",")
            if not options or any(o not in VOLUME_OPTIONS for o in options):
                raise config_error(field, f"{short(item)}: mode must be one of ro, rw, z, Z")
        out.append(":".join(parts))
    return tuple(out)


def _port_number(item: str, text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise config_error("ports", f"{short(item)}: {short(text)} is not a port number (1-65535)")
    return int(text)


def validate_ports(ports: object) -> tuple[str, ...]:
    """Check port mappings ``[ip:][host:]container[/tcp|udp]``.

    Without a host port (``"80"``, ``"127.0.0.1::80"``) the engine picks a
    free one on the host (Docker and Podman alike); ``status().ports`` shows it.

    Example:
        >>> validate_ports(["127.0.0.1:8080:80", "[::1]:5353:53/udp", "80", "127.0.0.1::9000"])
        ('127.0.0.1:8080:80', '[::1]:5353:53/udp', '80', '127.0.0.1::9000')
    """
    items = sequence_of_str("ports", ports)
    if len(items) > MAX_PORTS:
        raise config_error("ports", f"has {len(items)} entries, more than the {MAX_PORTS} allowed")
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
        raise config_error("ports", f"{short(item)}: protocol must be tcp or udp")
    ip: str | None = None
    if spec.startswith("["):
        end = spec.find("]")
        if end < 0 or spec[end + 1 : end + 2] != ":":
            raise config_error("ports", f"{short(item)} must be [ip:]host:container[/tcp|udp]")
        ip, spec = spec[1:end], spec[end + 2 :]
        parts = spec.split(":")
        if len(parts) != 2:
            raise config_error("ports", f"{short(item)} must be [ip:]host:container[/tcp|udp]")
    else:
        parts = spec.split(":")
        if len(parts) == 3:
            ip, parts = parts[0], parts[1:]
        elif len(parts) == 1:
            parts = ["", parts[0]]  # the container port alone: the engine picks the host's
        elif len(parts) != 2:
            raise config_error("ports", f"{short(item)} must be [ip:]host:container[/tcp|udp]")
    if ip is not None:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise config_error(
                "ports", f"{short(item)}: {short(ip)} is not an IP address"
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
    value = require_str("runtime", runtime).lower()
    if value not in RUNTIMES:
        raise config_error("runtime", f"{short(runtime)} is not docker or podman")
    return value


def validate_restart(restart: object) -> str:
    """Check a restart policy: ``no``, ``always``, ``unless-stopped`` or ``on-failure[:N]``.

    Example:
        >>> validate_restart("on-failure:2")
        'on-failure:2'
    """
    return matching(
        "restart", restart, RESTART_RE, "must be no, always, unless-stopped or on-failure[:N]"
    )


def validate_memory(memory: object) -> str:
    """Check a memory limit such as ``512m`` or ``1g``.

    Example:
        >>> validate_memory("256m")
        '256m'
    """
    return matching("memory", memory, MEMORY_RE, "must be a number with b, k, m or g")


def validate_cpus(cpus: object) -> float:
    """Check a CPU limit: a positive number of CPUs.

    Example:
        >>> validate_cpus(1.5)
        1.5
    """
    if isinstance(cpus, bool) or not isinstance(cpus, (int, float)) or not 0 < cpus <= 1024:
        raise config_error("cpus", f"{short(cpus)} must be a number of CPUs above 0")
    return float(cpus)


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


def validate_network(network: object) -> str:
    """Check a container's ``network``: ``host``, ``none`` or a network's name.

    The engine is asked whether a named network exists when the container
    is started (before it is created).

    Example:
        >>> validate_network("host"), validate_network("backend_net")
        ('host', 'backend_net')
        >>> validate_network("my net")
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: network: 'my net' is not 'host', 'none' or a network name (letters, digits, '_', '.', '-'; a letter or digit first)
    """
    value = require_str("network", network)
    if not NETWORK_NAME_RE.fullmatch(value):
        raise config_error(
            "network",
            f"{short(value)} is not 'host', 'none' or a network name "
            "(letters, digits, '_', '.', '-'; a letter or digit first)",
        )
    return value


def validate_network_ports(network: str | None, ports: Iterable[str]) -> None:
    """Refuse published ports on the ``host`` or ``none`` network: they would do nothing.

    On ``host`` the container's ports are the host's own (nothing to
    publish); on ``none`` there is no interface to publish them on. Both
    engines accept the combination and silently ignore the ports.

    Example:
        >>> validate_network_ports("host", ["8080:80"])
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: ports: cannot be published on network 'host': the container already uses the host's ports (drop ports:, or use another network)
    """
    ports = list(ports)
    if network == "host" and ports:
        raise config_error(
            "ports",
            "cannot be published on network 'host': the container already uses the "
            "host's ports (drop ports:, or use another network)",
        )
    if network == "none" and ports:
        raise config_error(
            "ports",
            "cannot be published on network 'none': the container has no network "
            "interface but its loopback (drop ports:, or use another network)",
        )
