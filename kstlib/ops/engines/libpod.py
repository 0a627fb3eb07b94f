"""libpod's payloads read into :class:`~kstlib.ops.engines.adapter.ContainerInfo`.

The Podman adapter (:mod:`kstlib.ops.engines.podman`) reads libpod's inspect
and list answers directly (no podman-py model is built), and checks its tail
answers for Podman 4.3's backward-read bug.

Example:
    >>> info_from_list({"Id": "abc", "Names": ["bot"], "State": "running"}).name
    'bot'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kstlib.ops.engines.adapter import ContainerInfo
from kstlib.ops.engines.containerinfo import inspect_info, list_info
from kstlib.ops.engines.payload import integer, obj, seq, text

__all__ = ["garbled_tail", "info_from_inspect", "info_from_list", "last_lines"]


def info_from_inspect(payload: Mapping[str, Any]) -> ContainerInfo:
    """Normalise a libpod ``GET /containers/{id}/json`` payload.

    Example:
        >>> info = info_from_inspect({"Id": "abc", "Name": "bot", "ImageName": "app:1",
        ...     "Created": "2024-05-01T14:00:00.123456789+02:00",
        ...     "State": {"Status": "running", "Pid": 4242, "ExitCode": 0},
        ...     "Config": {"Labels": {"io.kstlib.managed": "true"}, "Tty": True}})
        >>> info.pid, info.managed, info.created_at.isoformat()
        (4242, True, '2024-05-01T14:00:00.123456+02:00')
    """
    # Podman 4.3 reports OOMKilled false even when the OOM killer struck:
    # only a true value tells anything.
    return inspect_info(payload, image_fields=("ImageName", "Config.Image"), oom_false_told=False)


def info_from_list(item: Mapping[str, Any]) -> ContainerInfo:
    """Normalise one entry of libpod's ``GET /containers/json?all=true``.

    Example:
        >>> info = info_from_list({"Id": "abc", "Names": ["bot"], "State": "exited",
        ...     "ExitCode": 3, "Pid": 0, "Created": "2024-05-01T12:00:00Z", "Image": "app:1",
        ...     "Labels": None})
        >>> info.name, info.exit_code, info.pid, info.managed
        ('bot', 3, None, False)
    """
    item = obj(item, "a listed container")
    names = [text(n, "Names[]") for n in seq(item.get("Names"), "Names")]
    pid = integer(item.get("Pid"), "Pid")
    return list_info(
        item,
        name=names[0].lstrip("/") if names else text(item.get("Id"), "Id")[:12],
        exit_code=integer(item.get("ExitCode"), "ExitCode"),
        pid=pid if pid is not None and pid > 0 else None,
    )


def garbled_tail(entries: list[bytes], stamped: bool) -> bool:
    """Whether a tail answer shows Podman's backward-read bug (a terminal line with more after its ``\\r``).

    With a terminal every line ends in ``\\r\\n``; Podman 4.3's tail glues
    the partial entries that follow a line onto it, behind its ``\\r``. (A
    line that really holds a ``\\r``, a progress bar say, costs a full read.)

    Example:
        >>> garbled_tail([b"b\\rp2p1\\n"], stamped=False), garbled_tail([b"b\\r\\n", b"p1"], stamped=False)
        (True, False)
    """
    for entry in entries:
        text = entry.partition(b" ")[2] if stamped else entry
        if b"\r" in text.rstrip(b"\n")[:-1]:
            return True
    return False


def last_lines(entries: list[bytes], keep: int) -> list[bytes]:
    r"""The entries that make up the last ``keep`` lines (and a partial line after them).

    Example:
        >>> last_lines([b"a\r\n", b"b", b"c\r\n", b"d\r\n"], 2)
        [b'b', b'c\r\n', b'd\r\n']
    """
    ends = 0
    for index in range(len(entries) - 1, -1, -1):
        if entries[index].endswith(b"\n"):
            ends += 1
            if ends > keep:
                return entries[index + 1 :]
    return entries
