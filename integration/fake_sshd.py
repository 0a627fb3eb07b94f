"""A small ssh server on loopback that plays the on-path attacker (paramiko's server side).

It accepts any client key, and relays each ``direct-streamlocal@openssh.com``
channel to a real unix socket (the harness's Podman service), recording every
byte the client sent, per ssh connection. Connection ``i`` presents host key
``host_keys[min(i, len - 1)]``: the right key first, then another one, as an
attacker that can tell two connections apart would. :meth:`FakeSshd.drop`
ends every live connection (the client must then log in again); with
``hang=True`` a channel request is never answered (a service that hangs).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field
from typing import Any

import paramiko

STREAMLOCAL = "direct-streamlocal@openssh.com"


class _Server(paramiko.ServerInterface):  # type: ignore[misc]
    def __init__(self, hang: threading.Event | None) -> None:
        self.hang = hang

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: Any) -> int:
        return paramiko.AUTH_SUCCESSFUL

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == STREAMLOCAL:
            if self.hang is not None:
                self.hang.wait()  # never answers (until the fake closes)
                return paramiko.OPEN_FAILED_CONNECT_FAILED
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED


@dataclass
class Connection:
    """One ssh connection the fake accepted: the key it showed and what the client sent."""

    host_key: str
    channels: int = 0
    received: bytearray = field(default_factory=bytearray)
    transport: Any = None


class FakeSshd:
    """The fake server; ``with FakeSshd(keys, upstream) as fake: fake.port``."""

    def __init__(
        self, host_keys: list[paramiko.PKey], upstream: str, *, hang: bool = False
    ) -> None:
        self.host_keys = host_keys
        self._hang = threading.Event() if hang else None
        self.upstream = upstream
        self.connections: list[Connection] = []
        self._lock = threading.Lock()
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port = int(self._listener.getsockname()[1])
        self._closed = False

    def __enter__(self) -> FakeSshd:
        threading.Thread(target=self._accept, name="fake-sshd", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closed = True
        if self._hang is not None:
            self._hang.set()
        self._listener.close()
        self.drop()

    def drop(self) -> None:
        """End every live ssh connection."""
        with self._lock:
            for conn in self.connections:
                if conn.transport is not None:
                    conn.transport.close()

    def received(self) -> bytes:
        """Every byte any client sent over any channel."""
        with self._lock:
            return b"".join(bytes(c.received) for c in self.connections)

    def _accept(self) -> None:
        while not self._closed:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                key = self.host_keys[min(len(self.connections), len(self.host_keys) - 1)]
                conn = Connection(key.get_base64())
                self.connections.append(conn)
            threading.Thread(target=self._serve, args=(sock, key, conn), daemon=True).start()

    def _serve(self, sock: socket.socket, key: paramiko.PKey, conn: Connection) -> None:
        transport = paramiko.Transport(sock)
        conn.transport = transport
        transport.add_server_key(key)
        try:
            transport.start_server(server=_Server(self._hang))
        except (paramiko.SSHException, EOFError, OSError):
            return  # the client refused the host key: it sent nothing
        while transport.is_active():
            chan = transport.accept(0.2)
            if chan is None:
                continue
            with self._lock:
                conn.channels += 1
            threading.Thread(target=self._relay, args=(chan, conn), daemon=True).start()

    def _relay(self, chan: Any, conn: Connection) -> None:
        upstream = socket.socket(socket.AF_UNIX)
        upstream.connect(self.upstream)

        def back() -> None:
            with contextlib.suppress(OSError, EOFError):
                while data := upstream.recv(65536):
                    chan.sendall(data)
            chan.close()

        threading.Thread(target=back, daemon=True).start()
        with contextlib.suppress(OSError, EOFError):
            while data := chan.recv(65536):
                with self._lock:
                    conn.received.extend(data)
                upstream.sendall(data)
        with contextlib.suppress(OSError):
            upstream.shutdown(socket.SHUT_WR)
