"""Engines over ``ssh://``: one paramiko login, host key checked first, carries everything.

kstlib logs in itself, with paramiko, bounded by the engine timeout: it checks
the host key against the known_hosts files (an unknown or changed key is
refused), logs in with the key, and then every request to the engine is a
channel of *that* login (:mod:`kstlib.ops.engines.ssh_channel`): Docker's
``docker system dial-stdio``, Podman's remote socket. Neither SDK's own ssh
set-up is used (the docker SDK's reads ``~/.ssh`` alone; podman-py's runs an
``ssh`` program that never checks the host), and no process is started. Each
way a login can fail is its own
:class:`~kstlib.ops.exceptions.ContainerRuntimeNotFoundError` sentence, whose
``ssh_problem`` attribute names it (:data:`PROBLEMS`).

Which user, host, port, key and known_hosts files: :mod:`kstlib.ops.engines.ssh_target`
(``~/.ssh/config``, then the endpoint's query ``identity=PATH``,
``known_hosts=PATH``, ``verify_host_key=no``; named engines in
``kstlib.conf.yml`` write these for you).

paramiko is the ``ssh`` extra (``pip install kstlib[ssh]``). Without it an
``ssh://`` engine is a :class:`~kstlib.ops.exceptions.ContainerRuntimeNotFoundError`
that says so.

Example:
    >>> t = parse_target("ssh://deploy@edge:2200/run/podman/podman.sock?identity=/k/edge",
    ...                  ssh_config="/nonexistent")
    >>> t.sdk_url
    'ssh://deploy@edge:2200/run/podman/podman.sock'
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from kstlib.ops.engines.ssh_target import (
    QUERY_KEYS,
    SshTarget,
    is_ssh,
    parse_target,
    shown_endpoint,
)
from kstlib.ops.exceptions import ContainerRuntimeNotFoundError

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
    "relogin_error",
    "shown_endpoint",
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
    "bad-known-hosts",
    "ssh-failed",
    "no-engine",
)
_T = TypeVar("_T")


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
        f"The {runtime} engine at {target.shown} cannot be reached: {sentence}.",
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

    # The engine's URL (its host and port) starts the message: the sentences do not repeat it.
    if isinstance(err, _UnknownHostKey):
        user = f"{target.user}@" if target.user else ""
        return problem(
            target,
            "unknown-host-key",
            f"its host key is not in {target.host_key_files}; check it and record it (connect "
            f"once with 'ssh -p {target.port} {user}{target.hostname}'), or give "
            "known_hosts=FILE; verify_host_key: false turns the check off (not recommended)",
            runtime,
        )
    if isinstance(err, _BadKnownHosts):
        return problem(target, "bad-known-hosts", str(err), runtime)
    if isinstance(err, paramiko.BadHostKeyException):
        return problem(
            target,
            "changed-host-key",
            f"its host key does not match the one in {target.host_key_files} (the host was "
            "reinstalled, or someone is in between): check it before you update known_hosts",
            runtime,
        )
    if isinstance(err, paramiko.AuthenticationException):
        key = f"key {target.identity}" if target.identity else "the default keys and the ssh agent"
        user = f"as {target.user} " if target.user else ""
        return problem(
            target,
            "auth-failed",
            f"the ssh login {user}was refused with {key} ({type(err).__name__}: {err}); "
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
            f"ssh did not answer within {timeout:g} s (host down or firewalled, "
            "or no sshd behind that port?)",
            runtime,
        )
    if isinstance(err, (paramiko.ssh_exception.NoValidConnectionsError, ConnectionRefusedError)):
        return problem(
            target,
            "refused",
            "ssh was refused: no sshd listens there (is sshd running, is the port right?)",
            runtime,
        )
    return problem(target, "ssh-failed", f"ssh failed ({type(err).__name__}: {err})", runtime)


class _UnknownHostKey(Exception):
    """A host key that no known_hosts file lists."""


class _BadKnownHosts(Exception):
    """A known_hosts file with a line that is not a host key entry (the sentence says which)."""


def _load_known_hosts(client: Any, path: str) -> None:
    """Load ``path`` into ``client``; a malformed line is a :class:`_BadKnownHosts` naming it."""
    import paramiko

    try:
        client.load_system_host_keys(path)
    except paramiko.hostkeys.InvalidHostKey as err:
        bad = str(getattr(err, "line", "")).strip()
        number = None
        try:
            with open(path, encoding="utf-8", errors="replace") as lines:
                number = next((n for n, line in enumerate(lines, 1) if line.strip() == bad), None)
        except OSError:
            pass
        at = f"line {number}" if number else "a line"
        reason = getattr(err, "exc", None) or err
        raise _BadKnownHosts(
            f"the known_hosts file {path}, {at}, is not a host key entry ({reason}); fix or "
            "remove that line (ssh-keygen -R HOST removes a host's entries)"
        ) from err


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
        kstlib.ops.exceptions.ContainerRuntimeNotFoundError: The docker engine at ssh://root@127.0.0.1:1 cannot be reached: ssh was refused: ...
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
            _load_known_hosts(client, path)
        except _BadKnownHosts as err:
            raise _translate(target, err, runtime, timeout) from err.__cause__
        except (OSError, paramiko.SSHException) as err:
            raise problem(
                target, "ssh-failed", f"the known_hosts file {path} cannot be read ({err})", runtime
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


def relogin_error(
    target: SshTarget, timeout: float, runtime: str
) -> Callable[[Exception], Exception]:
    """How a failed login again (a dropped connection made anew) is told: as :func:`login` tells it.

    Example:
        >>> t = parse_target("ssh://ops@h:2222", ssh_config="/nonexistent")
        >>> relogin_error(t, 5, "podman")(ConnectionRefusedError()).ssh_problem
        'refused'
    """

    def told(err: Exception) -> Exception:
        return _translate(target, err, runtime, timeout)

    return told


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

    For a first call whose steps are each bounded but not their sum (a channel,
    then an answer): the thread is left to finish on its own, and never
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


def docker_api(target: SshTarget, timeout: float, client: Any, runtime: str = "docker") -> Any:
    """A ``docker.APIClient`` whose connections are channels of the checked login ``client``.

    The SDK's own adapter would read ``~/.ssh`` alone and log in itself; here
    each connection runs ``docker system dial-stdio`` on the paramiko
    ``client`` from :func:`login` (:mod:`kstlib.ops.engines.ssh_channel`),
    which logs in again the same way if the connection drops. The API version
    is asked once, as ``version="auto"`` would.

    Example:
        >>> api = docker_api(target, 10, login(target, 10, "docker"))  # doctest: +SKIP
        >>> api.base_url  # doctest: +SKIP
        'http+docker://ssh'
    """
    import docker
    import docker.constants

    from kstlib.ops.engines.ssh_channel import channel_adapter, dial_stdio_opener

    adapter = channel_adapter(
        dial_stdio_opener(),
        client,
        connect_params(target, timeout),
        timeout,
        pools=docker.constants.DEFAULT_NUM_POOLS_SSH,
        refused=relogin_error(target, timeout, runtime),
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
