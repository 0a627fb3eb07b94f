"""Reading what engines send: timestamps, multiplexed payloads, log entries and log streams.

Engines answer log requests with entries that may be cut in 16 KiB parts
(Docker) and prefixed with a timestamp; :class:`EntrySplitter` reassembles
them, :class:`LogStream` reads a streamed answer with bounded reads.

Example:
    >>> split_entries(b"a\\r\\nb")
    [b'a\\r\\n', b'b']
"""

from __future__ import annotations

import contextlib
import re
import socket
import struct
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

_TIMESTAMP_RE = re.compile(
    r"(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?\s*(Z|[+-]\d{2}:?\d{2})?"
)


def parse_timestamp(value: object) -> datetime | None:
    """Parse an engine timestamp: RFC 3339 with nanoseconds, or Unix seconds.

    Returns an aware :class:`~datetime.datetime`, or ``None`` for a missing or
    zero time (``0001-01-01T00:00:00Z``).

    Example:
        >>> parse_timestamp("2024-05-01T12:34:56.123456789Z")
        datetime.datetime(2024, 5, 1, 12, 34, 56, 123456, tzinfo=datetime.timezone.utc)
        >>> parse_timestamp("2024-05-01T14:34:56.5+02:00").isoformat()
        '2024-05-01T14:34:56.500000+02:00'
        >>> parse_timestamp(1714566896).year
        2024
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        try:
            return datetime.fromtimestamp(value, tz=timezone.utc) if value > 0 else None
        except (OverflowError, OSError, ValueError):
            return None  # no time a clock can show: as good as none
    if not isinstance(value, str):
        return None
    match = _TIMESTAMP_RE.match(value[:64].strip())
    if match is None:
        return None
    date, clock, fraction, zone = match.groups()
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    tz = timezone.utc
    try:
        if zone and zone != "Z":
            sign = -1 if zone[0] == "-" else 1
            digits = zone[1:].replace(":", "")
            tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
        parsed = datetime.fromisoformat(f"{date}T{clock}").replace(microsecond=micros, tzinfo=tz)
    except ValueError:
        return None  # month 13, hour 25, a zone past a day: not a time
    return None if parsed.year <= 1 else parsed


def demux(payload: bytes) -> bytes:
    """Join the frames of an engine's multiplexed stdout/stderr stream, in order.

    Engines frame a stream that has no terminal (``[kind, 0, 0, 0, size(4)]``
    then ``size`` bytes); Docker sends a container with a terminal raw.
    Every header is checked, so raw output is returned unchanged: this tells
    the two apart without asking the engine (one call per ``logs()``).

    Example:
        >>> demux(b"\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x03hi\\n\\x02\\x00\\x00\\x00\\x00\\x00\\x00\\x04err\\n")
        b'hi\\nerr\\n'
        >>> demux(b"plain tty output\\r\\n")
        b'plain tty output\\r\\n'
    """
    return demux_streams(payload)[0]


def demux_streams(payload: bytes) -> tuple[bytes, bytes, bytes]:
    """The frames of a multiplexed stream: ``(all in order, stdout's, stderr's)``.

    Raw output (a terminal: not framed) is all stdout.

    Example:
        >>> demux_streams(b"\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x01a\\x02\\x00\\x00\\x00\\x00\\x00\\x00\\x01b")
        (b'ab', b'a', b'b')
        >>> demux_streams(b"raw")
        (b'raw', b'raw', b'')
    """
    frames: list[tuple[int, bytes]] = []
    index, size = 0, len(payload)
    while index < size:
        if size - index < 8 or payload[index] > 2 or payload[index + 1 : index + 4] != b"\0\0\0":
            return payload, payload, b""
        end = index + 8 + int.from_bytes(payload[index + 4 : index + 8], "big")
        if end > size:
            return payload, payload, b""
        frames.append((payload[index], payload[index + 8 : end]))
        index = end
    return (
        b"".join(data for _, data in frames),
        b"".join(data for kind, data in frames if kind != 2),
        b"".join(data for kind, data in frames if kind == 2),
    )


def restart_policy(host_config: Mapping[str, Any] | None) -> tuple[str, int]:
    """The ``(name, maximum retries)`` of an inspect payload's ``HostConfig.RestartPolicy``.

    Both engines use Docker's shape; no policy is ``("", 0)``.

    Example:
        >>> restart_policy({"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2}})
        ('on-failure', 2)
        >>> restart_policy(None)
        ('', 0)
    """
    from kstlib.ops.engines.payload import integer, obj, text

    policy = obj(obj(host_config, "HostConfig").get("RestartPolicy"), "RestartPolicy")
    retries = integer(policy.get("MaximumRetryCount"), "RestartPolicy.MaximumRetryCount")
    return text(policy.get("Name"), "RestartPolicy.Name"), retries or 0


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
#: Bytes asked of a followed log per read: whatever has arrived, up to this much.
_READ_SIZE = 1 << 16


def since_param(moment: datetime) -> str:
    """The engines' ``since`` query value for an aware ``moment``: Unix seconds with nanoseconds.

    Docker and Podman both read ``seconds.nanoseconds`` and keep entries
    written at that instant or later; a moment before 1970 is ``"0"`` (everything).

    Example:
        >>> since_param(datetime(2026, 1, 1, 0, 0, 1, 250000, tzinfo=timezone.utc))
        '1767225601.250000000'
        >>> since_param(datetime(1960, 1, 1, tzinfo=timezone.utc))
        '0'
    """
    delta = moment - _EPOCH
    if delta <= timedelta(0):
        return "0"
    return f"{delta.days * 86400 + delta.seconds}.{delta.microseconds:06d}000"


def log_params(
    tail: int | None, since: datetime | None, timestamps: bool, follow: bool = False
) -> dict[str, str]:
    """The query of ``GET /containers/{id}/logs``, the same on both engines.

    Example:
        >>> log_params(10, None, True)
        {'stdout': 'true', 'stderr': 'true', 'tail': '10', 'timestamps': 'true'}
        >>> log_params(None, datetime(2026, 1, 1, tzinfo=timezone.utc), False, follow=True)
        {'stdout': 'true', 'stderr': 'true', 'tail': 'all', 'since': '1767225600.000000000', 'follow': 'true'}
    """
    params = {"stdout": "true", "stderr": "true", "tail": "all" if tail is None else str(tail)}
    if since is not None:
        params["since"] = since_param(since)
    if timestamps:
        params["timestamps"] = "true"
    if follow:
        params["follow"] = "true"
    return params


@dataclass(frozen=True)
class LogQuery:
    """Which log entries to read: the last ``tail`` (``None``: all) from ``since`` on, timed or not.

    Example:
        >>> LogQuery(10, timestamps=True).params()
        {'stdout': 'true', 'stderr': 'true', 'tail': '10', 'timestamps': 'true'}
    """

    tail: int | None
    since: datetime | None = None
    timestamps: bool = False

    def params(self, follow: bool = False) -> dict[str, str]:
        """The query of ``GET /containers/{id}/logs`` (see :func:`log_params`)."""
        return log_params(self.tail, self.since, self.timestamps, follow)


_DOCKER_PARTIAL = 16 * 1024
_FRAME_SIZE = struct.Struct(">I")
_STAMP_PREFIX_RE = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d) ")


def _docker_parts(line: bytes) -> list[bytes]:
    """A long timestamped line of a raw Docker stream, cut back into its entries."""
    parts: list[bytes] = []
    start = 0
    stamp = _STAMP_PREFIX_RE.match(line)
    while stamp is not None:
        cut = stamp.end() + _DOCKER_PARTIAL
        stamp = _STAMP_PREFIX_RE.match(line, cut)
        if stamp is not None:
            parts.append(line[start:cut])
            start = cut
    parts.append(line[start:] + b"\n")
    return parts


class EntrySplitter:
    """Cuts an engine's log stream into entries, as the bytes arrive.

    A multiplexed stream (a container without a terminal, and every Podman
    log) is cut at its frames: one entry per frame, which may be a part of a
    line. A raw stream (Docker, a container with a terminal) is cut after
    each newline, and a timestamped line longer than 16 KiB at the
    timestamps Docker put inside it (its log copier stores such a line as
    16 KiB entries). Which kind of stream it is shows in the first bytes (a
    frame header starts with 0, 1 or 2 and three zero bytes), so no inspect
    is needed.

    Example:
        >>> splitter = EntrySplitter()
        >>> splitter.feed(b"\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x03a\\nb")
        [b'a\\nb']
        >>> raw = EntrySplitter()
        >>> raw.feed(b"one\\r\\ntw"), raw.feed(b"o\\r\\n"), raw.flush()
        ([b'one\\r\\n'], [b'two\\r\\n'], [])
    """

    def __init__(self, framed: bool | None = None) -> None:
        """``framed``: the stream's kind when the caller knows it (``None``: read it from the bytes).

        Example:
            >>> EntrySplitter(framed=True).feed(b"\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x02ab\\x01")
            [b'ab']
        """
        self._buffer = bytearray()
        self._framed = framed

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data``; return the entries it completed.

        Example:
            >>> EntrySplitter().feed(b"a\\nb\\nc")
            [b'a\\n', b'b\\n']
        """
        self._buffer += data
        if self._framed is None:
            self._framed = self._kind()
            if self._framed is None:
                return []
        return self._frames() if self._framed else self._lines()

    def flush(self) -> list[bytes]:
        """The end of the stream: a last line without a newline (a cut frame is dropped).

        Example:
            >>> splitter = EntrySplitter()
            >>> splitter.feed(b"prompt> "), splitter.flush()
            ([], [b'prompt> '])
        """
        rest = bytes(self._buffer)
        self._buffer.clear()
        return [rest] if rest and not self._framed else []

    def _kind(self) -> bool | None:
        buf = self._buffer
        if not buf:
            return None
        if buf[0] > 2:
            return False
        if len(buf) < 4:
            return None
        return bytes(buf[1:4]) == b"\0\0\0"

    def _frames(self) -> list[bytes]:
        # One header read and one copy per frame (a Podman log is a frame per line).
        buf, out, pos, size = self._buffer, [], 0, len(self._buffer)
        with memoryview(buf) as view:
            while size - pos >= 8:
                end = pos + 8 + _FRAME_SIZE.unpack_from(buf, pos + 4)[0]
                if end > size:
                    break
                if end > pos + 8:
                    out.append(view[pos + 8 : end].tobytes())
                pos = end
        del buf[:pos]
        return out

    def _lines(self) -> list[bytes]:
        end = self._buffer.rfind(b"\n") + 1
        if not end:
            return []
        done = bytes(self._buffer[:end])
        del self._buffer[:end]
        out: list[bytes] = []
        for line in done[:-1].split(b"\n"):
            if len(line) > _DOCKER_PARTIAL:
                out.extend(_docker_parts(line))
            else:
                out.append(line + b"\n")
        return out


def split_entries(payload: bytes) -> list[bytes]:
    """Cut a whole log answer into entries (see :class:`EntrySplitter`).

    Example:
        >>> split_entries(b"a\\r\\nb")
        [b'a\\r\\n', b'b']
    """
    splitter = EntrySplitter()
    return splitter.feed(payload) + splitter.flush()


def _response_socket(response: Any) -> Any:
    """The socket under a streamed ``requests`` answer, so that reads can be bounded.

    With ``Connection: close``, :mod:`http.client` hands the socket over to the
    answer and forgets it on the connection (``connection.sock`` is ``None``);
    the answer's file then holds it (``fp.raw._sock``).

    Example:
        >>> _response_socket(object()) is None
        True
    """
    raw = getattr(response, "raw", None)
    connection = getattr(raw, "connection", None) or getattr(raw, "_connection", None)
    sock = getattr(connection, "sock", None)
    if isinstance(sock, socket.socket):
        return sock
    reader = getattr(getattr(raw, "_fp", None), "fp", None)
    sock = getattr(getattr(reader, "raw", None), "_sock", None)
    if isinstance(sock, socket.socket):
        return sock
    # Over ssh (the docker SDK's paramiko transport) the answer reads a channel's file;
    # the channel has the socket's settimeout and shutdown.
    channel = getattr(reader, "channel", None)
    if hasattr(channel, "settimeout") and hasattr(channel, "shutdown"):
        return channel
    return None


def _chunks_without_read1(raw: Any) -> Any:
    """A chunk reader for an answer whose file cannot ``read1`` (a paramiko channel's), else None.

    :mod:`http.client` reads a chunked answer with ``read1`` of its file; a
    paramiko ``ChannelFile`` has none, so such an answer is read chunk by
    chunk (one log entry each) with urllib3's own chunk reader.

    Example:
        >>> _chunks_without_read1(object()) is None
        True
    """
    reader = getattr(getattr(raw, "_fp", None), "fp", None)
    if reader is None or hasattr(reader, "read1") or not getattr(raw, "chunked", False):
        return None
    return raw.read_chunked(decode_content=False)


class LogStream:
    """A followed log: the engine's open HTTP answer, read as its entries arrive.

    :meth:`read` waits at most its ``timeout`` for the next bytes (the
    socket's own timeout, so a silent container cannot block it longer);
    :meth:`close` releases the answer and its connection. Every error of the
    layers below is translated by ``translate``. Adapters create it.

    Example:
        >>> import io, requests
        >>> answer = requests.Response(); answer.raw = io.BytesIO(b"hi\\n")
        >>> stream = LogStream(answer, contextlib.nullcontext)
        >>> stream.read(None), stream.read(None), stream.read(None)
        ([b'hi\\n'], [], None)
        >>> stream.close()
    """

    def __init__(
        self, response: Any, translate: Callable[[], AbstractContextManager[None]]
    ) -> None:
        self._response = response
        self._translate = translate
        self._splitter = EntrySplitter()
        self._ended = False
        self._sock: Any = _response_socket(response)
        self._chunks: Any = None

    def read(self, timeout: float | None) -> list[bytes] | None:
        """The entries completed by the next bytes; ``None`` once the stream has ended.

        Raises :class:`~kstlib.ops.exceptions.SessionTimeoutError` (through
        ``translate``) when nothing arrives within ``timeout`` seconds
        (``None``: wait as long as it takes).

        Example:
            >>> stream = engine.follow_logs("3f2a...", "bot", LogQuery(0), timeout=None)  # doctest: +SKIP
            >>> stream.read(5.0)  # doctest: +SKIP
            [b'tick\\r\\n']
        """
        if self._ended:
            return None
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.settimeout(timeout)
        try:
            with self._translate():
                raw = self._response.raw
                if self._chunks is None:
                    self._chunks = _chunks_without_read1(raw) or False
                if self._chunks is not False:
                    data = next(self._chunks, b"")
                elif hasattr(raw, "read1"):
                    data = raw.read1(_READ_SIZE)
                else:
                    data = raw.read(_READ_SIZE)
        except BaseException:
            self._ended = True
            self._sock = None
            raise
        if not data:
            # From here the connection may be back in the pool: never touch its socket again.
            self._ended = True
            self._sock = None
            return self._splitter.flush()
        return self._splitter.feed(bytes(data))

    def interrupt(self) -> None:
        """End a read blocked in another thread (it sees the stream end); that thread closes.

        Only the socket is shut down: the answer itself stays the reading
        thread's, which must still call :meth:`close`.

        Example:
            >>> import requests
            >>> LogStream(requests.Response(), contextlib.nullcontext).interrupt()
        """
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Release the answer (idempotent). A read blocked in another thread returns.

        Example:
            >>> import requests
            >>> stream = LogStream(requests.Response(), contextlib.nullcontext)
            >>> stream.close(); stream.close()
            >>> stream.read(1.0) is None
            True
        """
        self._ended = True
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(Exception):
            self._response.close()
