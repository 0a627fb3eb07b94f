"""podman-py's ssh transport, bounded: a tunnel that cannot come up fails at once.

podman-py reaches an ``ssh://`` service through one ``ssh -L`` child per HTTP
connection and then waits up to 300 s for the forwarded socket, without
looking at the child: an ssh that exited at once (sshd gone, host unknown,
login refused) is a five-minute hang on every new connection, also long after
kstlib checked the host (:mod:`kstlib.ops.engines.ssh`). These subclasses of
podman-py's own classes keep its tunnel and add the missing bound: the wait
ends as soon as the ssh child has exited, and at the latest after the
connection's timeout (the child is then stopped). The error is a
:class:`ConnectionRefusedError` or :class:`TimeoutError`, which the Podman
translation table turns into :class:`~kstlib.ops.exceptions.ContainerRuntimeNotFoundError`.

Example:
    >>> adapter = bounded_adapter("ssh://root@127.0.0.1:1/run/podman/podman.sock", None, 5)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Any

__all__ = ["bounded_adapter", "mount"]

#: How often the wait looks at the ssh child.
_POLL = 0.05
#: How long a closing tunnel's ssh child has to exit on SIGTERM before it is killed.
_STOP_GRACE = 1.0


def _end(proc: Any) -> None:
    """Stop podman-py's ssh child: SIGTERM, up to ``_STOP_GRACE`` s, then SIGKILL; reap it."""
    for send in (proc.terminate, proc.kill):
        with contextlib.suppress(OSError):
            send()
        deadline = time.monotonic() + _STOP_GRACE
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(_POLL)
        if proc.returncode is not None:
            return


def _classes() -> tuple[type[Any], type[Any]]:
    """The bounded socket and adapter classes (built on first use: podman-py loads then)."""
    from podman.api import ssh as podman_ssh

    # podman-py's classes, untyped here: these subclasses replace two methods each.
    ssh_socket: Any = podman_ssh.SSHSocket
    ssh_connection: Any = podman_ssh.SSHConnection
    ssh_pool: Any = podman_ssh.SSHConnectionPool
    ssh_pool_manager: Any = podman_ssh.SSHPoolManager
    ssh_adapter: Any = podman_ssh.SSHAdapter

    class BoundedSSHSocket(ssh_socket):  # type: ignore[misc]
        _proc: Any  # podman-py's ssh child (a Popen), None once closed

        def connect(self, **kwargs: Any) -> None:
            bound = self.gettimeout() or 30.0
            box: dict[str, BaseException] = {}

            def run() -> None:
                try:
                    super(BoundedSSHSocket, self).connect(**kwargs)
                except BaseException as err:  # handed to the caller below
                    box["error"] = err

            worker = threading.Thread(target=run, name="kstlib-podman-ssh", daemon=True)
            worker.start()
            deadline = time.monotonic() + bound
            while worker.is_alive():
                worker.join(_POLL)
                proc = self._proc
                if not worker.is_alive():
                    break
                if proc is not None and proc.poll() is not None:
                    raise ConnectionRefusedError(
                        f"ssh exited (code {proc.returncode}) before its tunnel to {self.uri} "
                        "came up"
                    )
                if time.monotonic() > deadline:
                    if proc is not None:
                        proc.kill()
                    raise TimeoutError(
                        f"the ssh tunnel to {self.uri} did not come up in {bound:g} s"
                    )
            if "error" in box:
                raise box["error"]

        def close(self) -> None:
            # podman-py's own close sends SIGTERM and then waits up to 20 s: an ssh
            # child still in its handshake (or whose channel just failed) can sit
            # out that SIGTERM, so a failed connection held its caller for the whole
            # 20 s. The tunnel carries nothing once its HTTP connection is closed:
            # end it within _STOP_GRACE, then kill it. podman-py also unlinked its
            # forwarding socket without checking that it is still there (ssh
            # removes it on exit), which printed a traceback from a finalizer.
            proc = self._proc
            if proc is None:
                socket.socket.close(self)
                return
            self._proc = None
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    with contextlib.suppress(OSError):
                        pipe.close()
            _end(proc)
            with contextlib.suppress(OSError):
                self.local_sock.unlink()
            socket.socket.close(self)

    class BoundedSSHConnection(ssh_connection):  # type: ignore[misc]
        def connect(self) -> None:
            sock = BoundedSSHSocket(self.uri, self.identity)
            sock.settimeout(self.timeout)
            sock.connect()
            self.sock = sock

    class BoundedSSHConnectionPool(ssh_pool):  # type: ignore[misc]
        ConnectionCls = BoundedSSHConnection

    class BoundedSSHPoolManager(ssh_pool_manager):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.pool_classes_by_scheme = {
                "http": BoundedSSHConnectionPool,
                "http+ssh": BoundedSSHConnectionPool,
            }

    class BoundedSSHAdapter(ssh_adapter):  # type: ignore[misc]
        def init_poolmanager(
            self, connections: int, maxsize: int, block: bool = False, **kwargs: Any
        ) -> None:
            pool_kwargs = {**kwargs, **self._pool_kwargs}
            self.poolmanager = BoundedSSHPoolManager(
                num_pools=connections, maxsize=maxsize, block=block, **pool_kwargs
            )

    return BoundedSSHSocket, BoundedSSHAdapter


def bounded_adapter(uri: str, identity: str | None, timeout: float) -> Any:
    """podman-py's ``SSHAdapter`` for ``uri``, whose tunnels fail fast (see the module).

    Example:
        >>> bounded_adapter("ssh://h/run/podman/podman.sock", None, 5)  # doctest: +SKIP
        <...BoundedSSHAdapter object at ...>
    """
    _, adapter = _classes()
    options: dict[str, Any] = {"timeout": timeout}
    if identity is not None:
        options["identity"] = identity
    return adapter(uri, **options)


def mount(client: Any, uri: str, identity: str | None, timeout: float) -> None:
    """Put the bounded adapter on a ``PodmanClient`` made for ``uri``, where podman-py put its own.

    Example:
        >>> mount(client, "ssh://h/run/podman/podman.sock", None, 5)  # doctest: +SKIP
    """
    adapter = bounded_adapter(uri, identity, timeout)
    client.api.mount("http://", adapter)
    client.api.mount("https://", adapter)


def open_client(endpoint: str, timeout: float, translate: Any) -> tuple[Any, dict[str, str]]:
    """A ``PodmanClient`` over ssh, after kstlib checked the host and the login; and its ping headers.

    podman-py runs ``ssh`` with ``StrictHostKeyChecking no``:
    :func:`kstlib.ops.engines.ssh.login` checks the host key and the key first;
    the client's tunnels are bounded (:func:`mount`), and so is the first ping.
    ``translate`` is the Podman module's translation context manager.

    Raises:
        ContainerRuntimeNotFoundError: with ``ssh_problem`` saying what failed.

    Example:
        >>> open_client("ssh://root@127.0.0.1:1/run/podman/podman.sock", 2, None)
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.ContainerRuntimeNotFoundError: The podman engine at ssh://root@127.0.0.1:1/run/podman/podman.sock cannot be reached: ssh to root@127.0.0.1:1 was refused: ...
    """
    import podman

    from kstlib.ops.engines import ssh
    from kstlib.ops.engines.errors import did_not_answer, unreachable
    from kstlib.ops.exceptions import ContainerRuntimeNotFoundError
    from kstlib.ops.translate import Op

    runtime = "podman"
    target = ssh.parse_target(endpoint)
    ssh.login(target, timeout, runtime).close()

    def ping() -> tuple[Any, dict[str, str]]:
        with translate(Op.READ, None, endpoint, timeout, connecting=True, call="connect"):
            client = podman.PodmanClient(
                base_url=target.sdk_url, identity=target.identity, timeout=timeout
            )
            # podman-py's own tunnel would wait 300 s for an ssh that already exited.
            mount(client, client.api.base_url.geturl(), target.identity, timeout)
            client.api.trust_env = False
            response = client.api.get("/_ping")
            status = int(response.status_code)
        if status != 200:
            raise unreachable(
                endpoint, f"no Podman API there (libpod ping: HTTP {status})", runtime
            )
        return client, dict(response.headers)

    def too_slow() -> Exception:
        return ssh.problem(
            target,
            "timeout",
            f"ssh to {target.where} logged in, but the tunnel to {target.path} did not come up "
            f"within {timeout:g} s",
            runtime,
        )

    try:
        return ssh.bounded(ping, timeout, too_slow)
    except ContainerRuntimeNotFoundError as err:
        if err.ssh_problem is not None or did_not_answer(err):
            raise
        where = target.path or "(no socket path in the URL)"
        raise ssh.problem(
            target,
            "no-engine",
            f"ssh to {target.where} works, but no Podman service answered at {where} there "
            "(start it: podman system service --time=0 unix://PATH)",
            runtime,
        ) from err
