"""Podman over ``ssh://``: podman-py's client, each request a channel of kstlib's checked login.

podman-py reaches an ``ssh://`` service through an ``ssh`` child per
connection, run with ``StrictHostKeyChecking no`` and without the engine's
known_hosts file: the host kstlib checked would not be the host that gets the
requests (registry credentials and env values among them). kstlib never runs
it. It logs in once with paramiko, host key checked
(:func:`kstlib.ops.engines.ssh.login`), and every HTTP connection of the
``PodmanClient`` is a ``direct-streamlocal@openssh.com`` channel to the
remote service's socket on that login (:mod:`kstlib.ops.engines.ssh_channel`).
No process is started, so none can outlive a failed connect; and podman-py's
ssh adapter, which prints every request at DEBUG level, is never used.

Example:
    >>> client, headers = open_client("ssh://root@edge/run/podman/podman.sock", 10, translate)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

__all__ = ["open_client"]

#: The ``base_url`` the ``PodmanClient`` is made with: a plain HTTP one, so podman-py sets
#: up no ssh transport of its own; kstlib's adapter then carries every request.
_PLACEHOLDER = "tcp://kstlib-ssh-channel:1"


def open_client(endpoint: str, timeout: float, translate: Any) -> tuple[Any, dict[str, str]]:
    """A ``PodmanClient`` over the checked ssh login to ``endpoint``; and its ping headers.

    The login (host key, key) is checked first; the ping is then the first
    request over a channel of that same login, and is bounded by ``timeout``.
    ``translate`` is the Podman module's translation context manager.

    Raises:
        ContainerRuntimeNotFoundError: with ``ssh_problem`` saying what failed.

    Example:
        >>> open_client("ssh://root@127.0.0.1:1/run/podman/podman.sock", 2, None)
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.ContainerRuntimeNotFoundError: The podman engine at ssh://root@127.0.0.1:1/run/podman/podman.sock cannot be reached: ssh was refused: ...
    """
    import podman

    from kstlib.ops.engines import ssh
    from kstlib.ops.engines.errors import did_not_answer, unreachable
    from kstlib.ops.engines.ssh_channel import channel_adapter, streamlocal_opener
    from kstlib.ops.exceptions import ContainerRuntimeNotFoundError
    from kstlib.ops.translate import Op

    runtime = "podman"
    target = ssh.parse_target(endpoint)
    login = ssh.login(target, timeout, runtime)
    adapter = channel_adapter(
        streamlocal_opener(target.path),
        login,
        ssh.connect_params(target, timeout),
        timeout,
        refused=ssh.relogin_error(target, timeout, runtime),
    )

    def ping() -> tuple[Any, dict[str, str]]:
        with translate(Op.READ, None, endpoint, timeout, connecting=True, call="connect"):
            client = podman.PodmanClient(base_url=_PLACEHOLDER, timeout=timeout)
            client.api.mount("http://", adapter)
            client.api.mount("https://", adapter)
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
            f"the ssh login works, but {target.path} there did not answer within {timeout:g} s",
            runtime,
        )

    try:
        return ssh.bounded(ping, timeout, too_slow)
    except ContainerRuntimeNotFoundError as err:
        adapter.close()
        if err.ssh_problem is not None or did_not_answer(err):
            raise
        where = target.path or "(no socket path in the URL)"
        raise ssh.problem(
            target,
            "no-engine",
            f"the ssh login works, but no Podman service answered at {where} there "
            "(start it: podman system service --time=0 unix://PATH)",
            runtime,
        ) from err
    except BaseException:
        adapter.close()
        raise
