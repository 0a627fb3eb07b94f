"""HTTP over channels of one checked ssh login: how every ``ssh://`` engine carries its data.

kstlib logs in with paramiko and checks the host key first
(:func:`kstlib.ops.engines.ssh.login`). Every HTTP connection to the engine
is then one channel on *that* login, never a second connection nor an
``ssh`` program: Docker's is a session channel running ``docker system
dial-stdio``, Podman's a ``direct-streamlocal@openssh.com`` channel to the
remote service's unix socket (what ``ssh -L`` does, on the checked
transport). So the host whose key was checked is the host that receives
every request, registry credentials and env values included. A login that
drops is made again by the same client: the same known_hosts files, the same
refusal of an unknown or changed key.

Example:
    >>> adapter = channel_adapter(streamlocal_opener("/run/podman/podman.sock"),
    ...                           client, params, timeout=10)  # doctest: +SKIP
    >>> api.mount("http://", adapter)  # doctest: +SKIP
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "STREAMLOCAL",
    "channel_adapter",
    "dial_stdio_opener",
    "open_streamlocal",
    "streamlocal_opener",
]

#: The channel kind that reaches a unix socket on the ssh server (OpenSSH's extension).
STREAMLOCAL = "direct-streamlocal@openssh.com"

#: Opens one channel on a logged-in transport, bounded by the timeout (seconds).
Opener = Callable[[Any, float], Any]


def open_streamlocal(transport: Any, path: str, timeout: float) -> Any:
    """A ``direct-streamlocal@openssh.com`` channel to the unix socket ``path`` on the server.

    paramiko's ``Transport.open_channel`` knows only the tcp and x11 kinds, so
    this is its request with the streamlocal fields (socket path, a reserved
    string and a reserved uint32, as OpenSSH's PROTOCOL file has them).

    Raises:
        paramiko.SSHException: the server refused the channel (no socket there,
            forwarding not allowed), the login ended, or no answer within ``timeout``.

    Example:
        >>> chan = open_streamlocal(client.get_transport(), "/run/podman/podman.sock", 5)  # doctest: +SKIP
    """
    from paramiko.channel import Channel
    from paramiko.common import cMSG_CHANNEL_OPEN
    from paramiko.message import Message
    from paramiko.ssh_exception import SSHException

    if not transport.is_active():
        raise SSHException("the ssh login is no longer active")
    with transport.lock:
        window = transport._sanitize_window_size(None)
        packet = transport._sanitize_packet_size(None)
        chanid = transport._next_channel()
        message = Message()
        message.add_byte(cMSG_CHANNEL_OPEN)
        message.add_string(STREAMLOCAL)
        message.add_int(chanid)
        message.add_int(window)
        message.add_int(packet)
        message.add_string(path)
        message.add_string("")  # reserved
        message.add_int(0)  # reserved
        chan = Channel(chanid)
        transport._channels.put(chanid, chan)
        transport.channel_events[chanid] = event = threading.Event()
        transport.channels_seen[chanid] = True
        chan._set_transport(transport)
        chan._set_window(window, packet)
    transport._send_user_message(message)
    deadline = time.monotonic() + timeout
    while not event.wait(0.1):
        if not transport.is_active():
            raise transport.get_exception() or SSHException("the ssh login ended")
        if time.monotonic() > deadline:
            with transport.lock:
                transport._channels.delete(chanid)
                transport.channel_events.pop(chanid, None)
            raise SSHException(f"no answer to a channel to {path} within {timeout:g} s")
    opened = transport._channels.get(chanid)
    if opened is None:
        raise transport.get_exception() or SSHException(f"the channel to {path} was refused")
    return opened


def streamlocal_opener(path: str) -> Opener:
    """An opener of channels to the unix socket ``path`` on the server (Podman's service).

    Example:
        >>> callable(streamlocal_opener("/run/podman/podman.sock"))
        True
    """

    def opener(transport: Any, timeout: float) -> Any:
        return open_streamlocal(transport, path, timeout)

    return opener


def dial_stdio_opener() -> Opener:
    """An opener of session channels running ``docker system dial-stdio`` (Docker's way).

    Example:
        >>> callable(dial_stdio_opener())
        True
    """

    def opener(transport: Any, timeout: float) -> Any:
        chan = transport.open_session(timeout=timeout)
        chan.settimeout(timeout)
        chan.exec_command("docker system dial-stdio")
        return chan

    return opener


def _seconds(value: object, default: float) -> float:
    return float(value) if isinstance(value, (int, float)) else default


def channel_adapter(
    opener: Opener,
    client: Any,
    params: Mapping[str, Any],
    timeout: float,
    pools: int = 9,
    *,
    refused: Callable[[Exception], Exception] | None = None,
) -> Any:
    """A requests adapter whose every connection is a channel made by ``opener`` on ``client``.

    ``client`` is the logged-in, host-checked ``paramiko.SSHClient``; if its
    login drops, it logs in again with ``params`` (the same checks; a failure
    there is raised as ``refused(error)`` when given). At most
    ``pools`` pooled connections: sshd allows 10 channels per login
    (MaxSessions). Closing the adapter closes the login.

    Example:
        >>> api.mount("http://", channel_adapter(dial_stdio_opener(), client, params, 10))  # doctest: +SKIP
    """
    from docker.transport import sshconn
    from urllib3.exceptions import HTTPError

    # The docker SDK's ssh classes, untyped here: each subclass replaces one method.
    ssh_connection: Any = sshconn.SSHConnection
    ssh_pool: Any = sshconn.SSHConnectionPool
    ssh_adapter: Any = sshconn.SSHHTTPAdapter
    relogin = threading.Lock()
    # A refused login again, per thread: urllib3 wraps an OSError a connect raises
    # into a generic connection error; the adapter raises the refusal itself.
    refusals = threading.local()

    def login() -> Any:
        with relogin:
            transport = client.get_transport()
            if transport is None or not transport.is_active():
                try:
                    client.connect(**params)
                except Exception as err:
                    client.close()
                    if refused is None:
                        raise
                    told = refused(err)
                    refusals.error = told
                    raise told from err
                transport = client.get_transport()
            return transport

    def channel(wanted: object) -> Any:
        from paramiko.ssh_exception import SSHException

        bound = _seconds(wanted, timeout)
        for again in (True, False):
            transport = login()
            try:
                chan = opener(transport, bound)
            except SSHException:
                if again and not transport.is_active():
                    continue  # the login ended meanwhile: log in again (checked again)
                raise
            except OSError as err:
                if again and not transport.is_active():
                    continue
                # Not an OSError to urllib3, which takes a reset for a reply still to read.
                raise SSHException(f"the ssh login broke ({err})") from err
            chan.settimeout(bound)
            return chan
        raise SSHException("the ssh login keeps breaking")  # pragma: no cover

    class ChannelConnection(ssh_connection):  # type: ignore[misc]
        def connect(self) -> None:
            self.sock = channel(self.timeout)

    class ChannelPool(ssh_pool):  # type: ignore[misc]
        def _new_conn(self) -> Any:
            return ChannelConnection(None, self.timeout, None)

        def _get_conn(self, timeout: Any = None) -> Any:
            conn = super()._get_conn(timeout)
            chan = conn.sock
            if chan is not None and (chan.closed or not chan.get_transport().is_active()):
                conn.close()  # its login ended: the request opens a channel anew
            return conn

    class ChannelAdapter(ssh_adapter):  # type: ignore[misc]
        def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
            # Log in again here when the login is known to have ended; a login
            # that ends during the request is made again inside urllib3.
            login()
            refusals.error = None
            try:
                return super().send(request, *args, **kwargs)
            except (OSError, HTTPError):
                # What a connect's failure can come out of requests as: its own
                # errors (OSErrors) or a urllib3 error it passes on. A refusal that
                # neither wraps (not an OSError) reaches the caller as it is.
                told = getattr(refusals, "error", None)
                if told is None:
                    raise
                refusals.error = None
                raise told from told.__cause__  # the login's own error stays the cause

        def get_connection(self, url: str, proxies: Any = None) -> Any:
            with self.pools.lock:
                pool = self.pools.get(url)
                if pool is None:
                    pool = ChannelPool(None, self.timeout, self.max_pool_size, None)
                    self.pools[url] = pool
            return pool

    # shell_out=True: the SDK makes no paramiko client of its own (it would read ~/.ssh).
    adapter = ChannelAdapter(
        "ssh://kstlib-checked-login", timeout=timeout, pool_connections=pools, shell_out=True
    )
    adapter.ssh_client = client  # closed with the adapter
    return adapter
