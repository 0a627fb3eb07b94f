"""Engines over ``ssh://``: who to log in as, which key, which host keys, checked first.

Both SDKs reach a remote engine through ssh, each in its own way: the docker
SDK logs in with paramiko and runs ``docker system dial-stdio`` there; podman-py
runs the ``ssh`` program with ``StrictHostKeyChecking no`` (it never checks the
host) to forward the remote socket, and waits up to 300 s for a tunnel that
may never come. So kstlib does the login itself first, with paramiko, bounded
by the engine timeout: it checks the host key against ``known_hosts`` (an
unknown or changed key is refused), logs in with the key, and only then hands
the engine to the SDK. Each way this can fail is its own
:class:`~kstlib.ops.exceptions.ContainerRuntimeNotFoundError` sentence, whose
``ssh_problem`` attribute names it (:data:`PROBLEMS`).

Settings come as users keep them: ``~/.ssh/config`` (``HostName``, ``Port``,
``User``, ``IdentityFile``, ``UserKnownHostsFile`` of the host), then
``~/.ssh/known_hosts`` and ``/etc/ssh/ssh_known_hosts``, then the default keys
and the ssh agent. The endpoint's query overrides them: ``identity=PATH``,
``known_hosts=PATH`` and ``verify_host_key=no`` (the opt-out: trust whatever
host answers; not recommended). Named engines in ``kstlib.conf.yml`` write
these for you (``identity:``, ``known_hosts:``, ``verify_host_key:``).

paramiko is the ``ssh`` extra (``pip install kstlib[ssh]``): the docker SDK needs
it for any ``ssh://`` URL, and kstlib needs it to check the host before podman-py
runs ``ssh``. Without it an ``ssh://`` engine is a
:class:`~kstlib.ops.exceptions.ContainerRuntimeNotFoundError` that says so.

Example:
    >>> t = parse_target("ssh://deploy@edge:2200/run/podman/podman.sock?identity=/k/edge",
    ...                  ssh_config="/nonexistent")
    >>> t.user, t.hostname, t.port, t.path, t.identity
    ('deploy', 'edge', 2200, '/run/podman/podman.sock', '/k/edge')
    >>> t.sdk_url
    'ssh://deploy@edge:2200/run/podman/podman.sock'
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from kstlib.ops.exceptions import ContainerRuntimeNotFoundError, SessionConfigError
from kstlib.ops.validators import shown

__all__ = [
    "PROBLEMS",
    "QUERY_KEYS",
    "SshTarget",
    "bounded",
    "docker_api",
    "is_ssh",
    "login",
    "parse_target",
    "problem",
]

#: What ``ContainerRuntimeNotFoundError.ssh_problem`` may say.
PROBLEMS = (
    "no-paramiko",
    "unresolvable",
    "refused",
    "timeout",
    "unknown-host-key",
    "changed-host-key",
    "auth-failed",
    "ssh-failed",
    "no-engine",
)
#: The query keys an ``ssh://`` endpoint may carry (kstlib's, removed before the SDK sees it).
QUERY_KEYS = ("identity", "known_hosts", "verify_host_key")
_SYSTEM_KNOWN_HOSTS = "/etc/ssh/ssh_known_hosts"
_FALSE = ("no", "false", "0", "off")
_TRUE = ("yes", "true", "1", "on")

_T = TypeVar("_T")


def is_ssh(endpoint: str | None) -> bool:
    """Whether ``endpoint`` is reached over ssh.

    Example:
        >>> is_ssh("ssh://root@host"), is_ssh("unix:///run/podman/podman.sock"), is_ssh(None)
        (True, False, False)
    """
    return bool(endpoint) and str(endpoint).startswith(("ssh://", "http+ssh://"))


@dataclass(frozen=True)
class SshTarget:
    """One ssh login: where, as whom, with which key and host keys.

    Build it with :func:`parse_target`. ``endpoint`` is what the user wrote
    (messages name it); :attr:`sdk_url` is what the SDKs get.

    Example:
        >>> SshTarget("ssh://h", "h", "10.0.0.5", 22, None, "", None, (), True).where
        '10.0.0.5:22'
    """

    endpoint: str
    host: str
    hostname: str
    port: int
    user: str | None
    path: str
    identity: str | None
    known_hosts: tuple[str, ...]
    verify_host_key: bool

    @property
    def where(self) -> str:
        """``[user@]host:port`` for messages.

        Example:
            >>> parse_target("ssh://ops@10.0.0.5", ssh_config="/nonexistent").where
            'ops@10.0.0.5:22'
        """
        user = f"{self.user}@" if self.user else ""
        return f"{user}{self.hostname}:{self.port}"

    @property
    def sdk_url(self) -> str:
        """The URL handed to the SDK: resolved host, port and user, without kstlib's query.

        Example:
            >>> parse_target("ssh://ops@h:2222?identity=/k", ssh_config="/nonexistent").sdk_url
            'ssh://ops@h:2222'
        """
        user = f"{self.user}@" if self.user else ""
        host = f"[{self.hostname}]" if ":" in self.hostname else self.hostname
        return f"ssh://{user}{host}:{self.port}{self.path}"

    @property
    def host_key_files(self) -> str:
        """The known_hosts files consulted, for messages.

        Example:
            >>> SshTarget("ssh://h", "h", "h", 22, None, "", None, (), True).host_key_files
            'no known_hosts file'
        """
        return ", ".join(self.known_hosts) or "no known_hosts file"


def _bool(value: str, key: str) -> bool:
    lowered = value.lower()
    if lowered in _FALSE:
        return False
    if lowered in _TRUE:
        return True
    raise SessionConfigError(f"base_url: {key}={shown(value)} must be yes or no", "base_url")


def parse_target(endpoint: str, *, ssh_config: str | None = None) -> SshTarget:
    """Resolve an ``ssh://`` endpoint as ``ssh`` would, plus kstlib's query keys.

    ``ssh_config`` is the client config to read (default ``~/.ssh/config``;
    a missing file is fine). ``~`` in paths is expanded.

    Raises:
        SessionConfigError: the URL has no host, a bad port or an unknown query key.

    Example:
        >>> parse_target("ssh://h?colour=blue", ssh_config="/nonexistent")
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: base_url: 'ssh://h?colour=blue': unknown query key 'colour' (known: identity, known_hosts, verify_host_key)
        >>> parse_target("ssh://h?verify_host_key=no", ssh_config="/nonexistent").verify_host_key
        False
    """
    url = endpoint[len("http+") :] if endpoint.startswith("http+ssh://") else endpoint
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise SessionConfigError(f"base_url: {shown(endpoint)}: bad port", "base_url") from None
    if not parts.hostname:
        raise SessionConfigError(f"base_url: {shown(endpoint)}: no host", "base_url")
    query = parse_qs(parts.query, keep_blank_values=True)
    for key in query:
        if key not in QUERY_KEYS:
            raise SessionConfigError(
                f"base_url: {shown(endpoint)}: unknown query key {key!r} "
                f"(known: {', '.join(QUERY_KEYS)})",
                "base_url",
            )
    given = {k: v[-1] for k, v in query.items()}
    host = parts.hostname
    found = _ssh_config(host, ssh_config)
    hostname = str(found.get("hostname") or host)
    if port is None:
        port = int(found.get("port") or 22)
    user = parts.username or found.get("user")
    identity = given.get("identity")
    if identity is None:
        files = [os.path.expanduser(f) for f in found.get("identityfile") or []]
        identity = next((f for f in files if os.path.exists(f)), None)
    if "known_hosts" in given:
        known = [given["known_hosts"]]
    elif found.get("userknownhostsfile"):
        known = str(found["userknownhostsfile"]).split()
    else:
        known = ["~/.ssh/known_hosts", _SYSTEM_KNOWN_HOSTS]
    known_files = tuple(
        p for p in (os.path.expanduser(k) for k in known) if p != "/dev/null" and os.path.exists(p)
    )
    verify = (
        _bool(given["verify_host_key"], "verify_host_key") if "verify_host_key" in given else True
    )
    return SshTarget(
        endpoint=endpoint,
        host=host,
        hostname=hostname,
        port=port,
        user=str(user) if user else None,
        path=parts.path,
        identity=os.path.expanduser(identity) if identity else None,
        known_hosts=known_files,
        verify_host_key=verify,
    )


def _ssh_config(host: str, path: str | None) -> dict[str, Any]:
    """The ``~/.ssh/config`` entries for ``host`` (empty without paramiko or a file)."""
    path = os.path.expanduser(path or "~/.ssh/config")
    if not os.path.isfile(path):
        return {}
    try:
        import paramiko
    except ImportError:
        return {}
    try:
        config = paramiko.SSHConfig.from_path(path)
        return dict(config.lookup(host))
    except (OSError, ValueError, paramiko.SSHException):
        return {}  # an unreadable config: ssh's defaults, the login then says what fails


def table_rows() -> tuple[tuple[tuple[type[BaseException], ...], Any], ...]:
    """Translation rows for paramiko's errors once a connection is up (an sshd gone, say).

    Empty without paramiko (then no ssh:// engine can be open either).

    Example:
        >>> [h.__name__ for _, h in table_rows()]
        ['on_unreachable']
    """
    try:
        import paramiko
    except ImportError:
        return ()
    from kstlib.ops.engines.errors import on_unreachable

    return (((paramiko.SSHException, EOFError), on_unreachable),)


def problem(
    target: SshTarget, kind: str, sentence: str, runtime: str
) -> ContainerRuntimeNotFoundError:
    """The error for one ssh failure: ``sentence``, naming the engine; ``.ssh_problem = kind``.

    Example:
        >>> t = parse_target("ssh://ops@h:2222", ssh_config="/nonexistent")
        >>> err = problem(t, "refused", "nothing listens there", "docker")
        >>> err.ssh_problem, err.endpoints
        ('refused', ('ssh://ops@h:2222',))
        >>> print(err)
        The docker engine at ssh://ops@h:2222 cannot be reached: nothing listens there.
    """
    return ContainerRuntimeNotFoundError(
        f"The {runtime} engine at {target.endpoint} cannot be reached: {sentence}.",
        [target.endpoint],
        ssh_problem=kind,
    )


def _quiet_paramiko() -> None:
    # paramiko logs a failed handshake at ERROR with a traceback; with no
    # handler configured Python would print it to stderr. Records still reach
    # the handlers an application configures.
    log = logging.getLogger("paramiko")
    if not any(isinstance(h, logging.NullHandler) for h in log.handlers):
        log.addHandler(logging.NullHandler())


def _translate(
    target: SshTarget, err: BaseException, runtime: str, timeout: float
) -> ContainerRuntimeNotFoundError:
    import paramiko

    where = target.where
    if isinstance(err, _UnknownHostKey):
        return problem(
            target,
            "unknown-host-key",
            f"the host key of {where} is not in {target.host_key_files}; check it and record it "
            f"(connect once with 'ssh -p {target.port} {target.user + '@' if target.user else ''}"
            f"{target.hostname}'), or give known_hosts=FILE; verify_host_key: false turns the "
            "check off (not recommended)",
            runtime,
        )
    if isinstance(err, paramiko.BadHostKeyException):
        return problem(
            target,
            "changed-host-key",
            f"the host key of {where} does not match the one in {target.host_key_files} "
            "(the host was reinstalled, or someone is in between): check it before you "
            "update known_hosts",
            runtime,
        )
    if isinstance(err, paramiko.AuthenticationException):
        key = f"key {target.identity}" if target.identity else "the default keys and the ssh agent"
        return problem(
            target,
            "auth-failed",
            f"ssh login as {where} was refused with {key} ({type(err).__name__}: {err}); "
            "check the key (identity) and the remote authorized_keys",
            runtime,
        )
    if isinstance(err, socket.gaierror):
        return problem(
            target,
            "unresolvable",
            f"the ssh host {target.hostname!r} cannot be resolved ({err.strerror or err}); "
            "check the host in base_url (or its HostName in ~/.ssh/config)",
            runtime,
        )
    if isinstance(err, (socket.timeout, TimeoutError)):
        return problem(
            target,
            "timeout",
            f"ssh to {where} did not answer within {timeout:g} s (host down or firewalled, "
            "or no sshd behind that port?)",
            runtime,
        )
    if isinstance(err, (paramiko.ssh_exception.NoValidConnectionsError, ConnectionRefusedError)):
        return problem(
            target,
            "refused",
            f"ssh to {where} was refused: no sshd listens there (is sshd running, is the "
            "port right?)",
            runtime,
        )
    return problem(
        target,
        "ssh-failed",
        f"ssh to {where} failed ({type(err).__name__}: {err})",
        runtime,
    )


class _UnknownHostKey(Exception):
    """A host key that no known_hosts file lists."""


def _refuse_unknown() -> Any:
    import paramiko

    class RefuseUnknown(paramiko.MissingHostKeyPolicy):  # type: ignore[misc]
        def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
            raise _UnknownHostKey(hostname)

    return RefuseUnknown()


def login(target: SshTarget, timeout: float, runtime: str) -> Any:
    """Log in to ``target`` with paramiko (host key checked first); the connected ``SSHClient``.

    Every step (connect, banner, key exchange, authentication) is bounded by
    ``timeout``; only the name lookup is the resolver's own.

    Raises:
        ContainerRuntimeNotFoundError: with ``ssh_problem`` naming the failure.

    Example:
        >>> t = parse_target("ssh://root@127.0.0.1:1", ssh_config="/nonexistent")
        >>> login(t, 2, "docker")
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.ContainerRuntimeNotFoundError: The docker engine at ssh://root@127.0.0.1:1 cannot be reached: ssh to root@127.0.0.1:1 was refused: ...
    """
    try:
        import paramiko
    except ImportError as err:
        raise problem(
            target,
            "no-paramiko",
            "ssh:// engines need paramiko: pip install 'kstlib[ssh]'",
            runtime,
        ) from err
    _quiet_paramiko()
    client = paramiko.SSHClient()
    for path in target.known_hosts:
        try:
            client.load_system_host_keys(path)
        except (OSError, paramiko.SSHException) as err:
            raise problem(
                target, "ssh-failed", f"known_hosts file {path} cannot be read ({err})", runtime
            ) from err
    client.set_missing_host_key_policy(
        _refuse_unknown() if target.verify_host_key else paramiko.AutoAddPolicy()
    )
    began = time.monotonic()
    try:
        client.connect(**connect_params(target, timeout))
    except Exception as err:
        client.close()
        if time.monotonic() - began >= timeout * 0.9 and not isinstance(
            err, (_UnknownHostKey, paramiko.BadHostKeyException, paramiko.AuthenticationException)
        ):
            # paramiko reports a silent peer as a generic "no existing session" or banner error.
            silent = TimeoutError(f"no ssh handshake within {timeout:g} s ({err})")
            raise _translate(target, silent, runtime, timeout) from err
        raise _translate(target, err, runtime, timeout) from err
    return client


def connect_params(target: SshTarget, timeout: float) -> dict[str, Any]:
    """The keyword arguments of ``paramiko.SSHClient.connect`` for ``target``.

    Example:
        >>> p = connect_params(parse_target("ssh://ops@h?identity=/k", ssh_config="/nonexistent"), 5)
        >>> p["key_filename"], p["look_for_keys"], p["timeout"]
        ('/k', False, 5)
    """
    return {
        "hostname": target.hostname,
        "port": target.port,
        "username": target.user,
        "key_filename": target.identity,
        "look_for_keys": target.identity is None,
        "allow_agent": True,
        "timeout": timeout,
        "banner_timeout": timeout,
        "auth_timeout": timeout,
        "channel_timeout": timeout,
    }


def bounded(call: Callable[[], _T], timeout: float, on_timeout: Callable[[], Exception]) -> _T:
    """Run ``call`` in a daemon thread; raise ``on_timeout()`` if it takes over ``timeout`` s.

    For an SDK call that has no bound of its own (podman-py waits up to 300 s
    for its ssh tunnel): the thread is left to finish on its own, and never
    holds up the interpreter's exit.

    Example:
        >>> bounded(lambda: 42, 1, lambda: TimeoutError())
        42
        >>> import time
        >>> bounded(lambda: time.sleep(5), 0.05, lambda: TimeoutError("too slow"))
        Traceback (most recent call last):
        ...
        TimeoutError: too slow
    """
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = call()
        except BaseException as err:  # handed to the caller's thread below
            box["error"] = err

    worker = threading.Thread(target=run, name="kstlib-bounded", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise on_timeout()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def docker_api(target: SshTarget, timeout: float, client: Any) -> Any:
    """A ``docker.APIClient`` over the docker SDK's own ssh transport, logged in as ``client``.

    The SDK's adapter would read ``~/.ssh`` alone and log in itself; this one
    takes the checked, logged-in paramiko ``client`` from :func:`login` (and
    logs in again the same way if the connection drops). The API version is
    asked once, as ``version="auto"`` would.

    Example:
        >>> api = docker_api(target, 10, login(target, 10, "docker"))  # doctest: +SKIP
        >>> api.base_url  # doctest: +SKIP
        'http+docker://ssh'
    """
    import docker
    import docker.constants
    from docker.transport import SSHHTTPAdapter

    params = connect_params(target, timeout)

    class CheckedSSHAdapter(SSHHTTPAdapter):
        def _create_paramiko_client(self, base_url: str) -> None:
            self.ssh_client = client
            self.ssh_params = params

        def _connect(self) -> None:
            transport = client.get_transport()
            if transport is None or not transport.is_active():
                client.connect(**self.ssh_params)

    # One ssh channel per pooled connection: sshd allows 10 per login (MaxSessions),
    # so at most the SDK's own number of pools for ssh (9), as it does itself.
    adapter = CheckedSSHAdapter(
        target.sdk_url,
        timeout=timeout,  # type: ignore[arg-type]
        pool_connections=docker.constants.DEFAULT_NUM_POOLS_SSH,
    )
    # A fixed version: the constructor makes no request; the real one is asked below.
    api: Any = docker.APIClient(base_url="tcp://127.0.0.1:9", version="1.41", timeout=timeout)  # type: ignore[arg-type]
    api.mount("http+docker://ssh", adapter)
    api._custom_adapter = adapter
    api._unmount("http://", "https://")
    api.base_url = "http+docker://ssh"
    api.trust_env = False
    api._version = api.version(api_version=False)["ApiVersion"]
    return api
