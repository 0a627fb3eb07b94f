"""An ``ssh://`` endpoint read as ``ssh`` would: user, host, port, key, known_hosts files.

Settings come as users keep them: ``~/.ssh/config`` (``HostName``, ``Port``,
``User``, ``IdentityFile``, ``UserKnownHostsFile`` of the host), then
``~/.ssh/known_hosts`` and ``/etc/ssh/ssh_known_hosts``, then the default keys
and the ssh agent. The endpoint's query overrides them: ``identity=PATH``,
``known_hosts=PATH`` and ``verify_host_key=no``. A host that ``~/.ssh/config``
sends through ``ProxyCommand`` or ``ProxyJump`` is refused: kstlib starts no
programs and checks the one host it connects to. :mod:`kstlib.ops.engines.ssh`
logs in with the result.

Example:
    >>> t = parse_target("ssh://deploy@edge:2200/run/podman/podman.sock?identity=/k/edge",
    ...                  ssh_config="/nonexistent")
    >>> t.user, t.hostname, t.port, t.path, t.identity
    ('deploy', 'edge', 2200, '/run/podman/podman.sock', '/k/edge')
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from kstlib.ops.exceptions import SessionConfigError
from kstlib.ops.validators import shown

__all__ = ["QUERY_KEYS", "SshTarget", "is_ssh", "parse_target", "shown_endpoint"]

#: The query keys an ``ssh://`` endpoint may carry (kstlib's, removed before the SDK sees it).
QUERY_KEYS = ("identity", "known_hosts", "verify_host_key")
_SYSTEM_KNOWN_HOSTS = "/etc/ssh/ssh_known_hosts"
_FALSE = ("no", "false", "0", "off")
_TRUE = ("yes", "true", "1", "on")


def is_ssh(endpoint: str | None) -> bool:
    """Whether ``endpoint`` is reached over ssh.

    Example:
        >>> is_ssh("ssh://root@host"), is_ssh("unix:///run/podman/podman.sock"), is_ssh(None)
        (True, False, False)
    """
    return bool(endpoint) and str(endpoint).startswith(("ssh://", "http+ssh://"))


def shown_endpoint(endpoint: str) -> str:
    """``endpoint`` as messages show it: an ``ssh://`` one without kstlib's query.

    The query holds only kstlib's own keys (``identity``, ``known_hosts``,
    ``verify_host_key``), already said where they matter; other endpoints are unchanged.

    Example:
        >>> shown_endpoint("ssh://ops@h:2222/run/x.sock?identity=%2Fk%2Fid")
        'ssh://ops@h:2222/run/x.sock'
        >>> shown_endpoint("unix:///run/podman/podman.sock")
        'unix:///run/podman/podman.sock'
    """
    return endpoint.split("?", 1)[0] if is_ssh(endpoint) else endpoint


@dataclass(frozen=True)
class SshTarget:
    """One ssh login: where, as whom, with which key and host keys.

    Build it with :func:`parse_target`. ``endpoint`` is what the user wrote;
    :attr:`shown` is how messages name it; :attr:`sdk_url` is what the SDKs get.
    ``looked_in`` are the known_hosts files looked for, ``known_hosts`` those
    that exist.

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
    looked_in: tuple[str, ...] = ()

    @property
    def shown(self) -> str:
        """The endpoint for messages: as written, without kstlib's query.

        The login it resolves to follows when ``~/.ssh/config`` changed it.

        Example:
            >>> parse_target("ssh://ops@h:2222/run/x.sock?identity=/k", ssh_config="/nonexistent").shown
            'ssh://ops@h:2222/run/x.sock'
            >>> SshTarget("ssh://lab", "lab", "10.0.0.5", 22, "ops", "", None, (), True).shown
            'ssh://lab (ops@10.0.0.5:22)'
        """
        written = shown_endpoint(self.endpoint)
        parts = urlsplit(written[len("http+") :] if written.startswith("http+") else written)
        same = (parts.hostname, parts.port or 22, parts.username) == (
            self.hostname,
            self.port,
            self.user,
        )
        return written if same else f"{written} ({self.where})"

    @property
    def where(self) -> str:
        """``[user@]host:port`` for messages.

        Example:
            >>> parse_target("ssh://ops@10.0.0.5", ssh_config="/nonexistent").where
            'ops@10.0.0.5:22'
        """
        return f"{self._user_at}{self.hostname}:{self.port}"

    @property
    def sdk_url(self) -> str:
        """The URL handed to the SDK: resolved host, port and user, without kstlib's query.

        Example:
            >>> parse_target("ssh://ops@h:2222?identity=/k", ssh_config="/nonexistent").sdk_url
            'ssh://ops@h:2222'
        """
        host = f"[{self.hostname}]" if ":" in self.hostname else self.hostname
        return f"ssh://{self._user_at}{host}:{self.port}{self.path}"

    @property
    def _user_at(self) -> str:
        return f"{self.user}@" if self.user else ""

    @property
    def host_key_files(self) -> str:
        """The known_hosts files consulted, for messages ("... is not in FILES").

        Example:
            >>> SshTarget("ssh://h", "h", "h", 22, None, "", None, ("/k",), True).host_key_files
            '/k'
            >>> SshTarget("ssh://h", "h", "h", 22, None, "", None, (), True, ("/a",)).host_key_files
            'any known_hosts file (/a does not exist)'
        """
        if self.known_hosts:
            return ", ".join(self.known_hosts)
        if not self.looked_in:
            return "any known_hosts file"
        if len(self.looked_in) == 1:
            return f"any known_hosts file ({self.looked_in[0]} does not exist)"
        return f"any known_hosts file (none of {', '.join(self.looked_in)} exists)"


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
    _refuse_proxy(host, found, ssh_config)
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
    looked_in = tuple(p for p in (os.path.expanduser(k) for k in known) if p != "/dev/null")
    known_files = tuple(p for p in looked_in if os.path.exists(p))
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
        looked_in=looked_in,
    )


def _refuse_proxy(host: str, found: dict[str, Any], path: str | None) -> None:
    """Refuse a ``ProxyCommand`` / ``ProxyJump`` for ``host``: kstlib would not follow it.

    Following either means starting a program or logging in to another host
    first; kstlib starts no programs, and checks the one host it connects to.
    """
    for key, word in (("proxycommand", "ProxyCommand"), ("proxyjump", "ProxyJump")):
        value = found.get(key)
        if value and str(value).lower() != "none":
            where = os.path.expanduser(path or "~/.ssh/config")
            raise SessionConfigError(
                f"base_url: {where} gives host {host!r} a {word} ({shown(str(value))}); kstlib "
                "connects to an ssh engine directly and starts no programs, so it does not "
                f"follow {word}: reach the host directly (a Host entry without {word}), or run "
                "the jump yourself and give base_url its local end",
                "base_url",
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
