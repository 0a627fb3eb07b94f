"""What the engines need to know of registry images: references, progress, credentials, failures.

Internal: the public names are re-exported by :mod:`kstlib.ops.images`. This
module imports no engine adapter, so the adapters can use it.

Example:
    >>> split_reference("127.0.0.1:5000/team/app:1")
    ('127.0.0.1:5000/team/app', '1')
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from kstlib.ops.exceptions import ImagePullError, SessionConfigError
from kstlib.ops.validators import HOST_PORT_RE as _HOST_RE

PullPolicy = Literal["missing", "always", "never"]


#: Seconds the engine may stay silent during a pull (a layer download can be long).
DEFAULT_PULL_TIMEOUT = 120.0


_DOCKER_HUB = "docker.io"


@dataclass(frozen=True)
class PullProgress:
    """One step of a pull, the same on Docker and Podman.

    ``layer`` is the layer's short id (12 hex digits), ``None`` for the
    image as a whole. ``status`` is one of ``pulling`` (the pull began),
    ``waiting``, ``downloading``, ``verifying``, ``downloaded``,
    ``extracting``, ``exists`` (the engine already has the layer), ``done``
    (the layer is in place), ``info`` (any other word of the engine, kept in
    ``detail``) and ``complete``: the last event of a successful pull.
    ``current``/``total`` are bytes when the engine says (Docker does; Podman
    4.x reports steps without byte counts).

    Example:
        >>> ev = PullProgress("app:1", "ff67cf588786", "downloading", 36445, 3146862)
        >>> ev.fraction is not None and round(ev.fraction, 3)
        0.012
        >>> PullProgress("app:1", None, "complete").is_final
        True
    """

    image: str
    layer: str | None
    status: str
    current: int | None = None
    total: int | None = None
    detail: str = ""

    @property
    def fraction(self) -> float | None:
        """``current / total`` when both are known, else ``None``.

        Example:
            >>> PullProgress("a", "l", "downloading", 5, 10).fraction
            0.5
        """
        if self.current is None or not self.total:
            return None
        return min(1.0, self.current / self.total)

    @property
    def is_final(self) -> bool:
        """Whether this is the last event of a successful pull.

        Example:
            >>> PullProgress("a", None, "pulling").is_final
            False
        """
        return self.status == "complete"


ProgressCallback = Callable[[PullProgress], None]


@dataclass(frozen=True)
class PullResult:
    """What :func:`pull_image` pulled.

    Example:
        >>> PullResult("app:1", "docker", "sha256:eb09f023").image_id
        'sha256:eb09f023'
    """

    image: str
    runtime: str
    image_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``image``, ``runtime``, ``image_id``).

        Example:
            >>> PullResult("app:1", "podman").to_dict()
            {'image': 'app:1', 'runtime': 'podman', 'image_id': None}
        """
        return {"image": self.image, "runtime": self.runtime, "image_id": self.image_id}


def split_reference(image: str) -> tuple[str, str]:
    """Split an image reference into ``(repository, tag or digest)``; the tag defaults to ``latest``.

    Example:
        >>> split_reference("127.0.0.1:5000/kstlib/pulltest:1")
        ('127.0.0.1:5000/kstlib/pulltest', '1')
        >>> split_reference("alpine")
        ('alpine', 'latest')
        >>> split_reference("app@sha256:" + "0" * 64)[1][:7]
        'sha256:'
    """
    if "@" in image:
        repository, _, digest = image.partition("@")
        return repository, digest
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        return image[:colon], image[colon + 1 :]
    return image, "latest"


def registry_of(image: str) -> str:
    """The registry host (``host[:port]``) an image reference names; ``docker.io`` for none.

    Example:
        >>> registry_of("localhost/app"), registry_of("team/app"), registry_of("quay.io/a/b:1")
        ('localhost', 'docker.io', 'quay.io')
    """
    first, sep, _ = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return _DOCKER_HUB


def _host(registry: str) -> str:
    if registry.startswith("["):
        return registry[1 : registry.find("]")]
    return registry.rsplit(":", 1)[0] if registry.count(":") == 1 else registry


def is_insecure(registry: str, insecure_registries: Iterable[str] = ()) -> bool:
    """Whether plain HTTP (or an unverified certificate) is allowed for ``registry``.

    Only where the user says so (``insecure_registries``: ``host`` or
    ``host:port``), and on loopback (``localhost``, ``127.0.0.0/8``,
    ``::1``), as Docker itself treats it.

    Example:
        >>> is_insecure("localhost:5000"), is_insecure("[::1]:5000")
        (True, True)
        >>> is_insecure("10.0.0.5:5000", ["10.0.0.5:5000"]), is_insecure("10.0.0.5:5000")
        (True, False)
    """
    listed = set(insecure_registries)
    host = _host(registry)
    if registry in listed or host in listed:
        return True
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, repr=False)
class RegistryAuth:
    """Credentials for one registry: a user and a password, or the variable that holds it.

    Prefer ``password_env`` (the name of an environment variable read at pull
    time) to a password in code or in a file. ``registry`` limits them to one
    registry (``host[:port]``); ``None``: the registry of the image pulled.
    The password never shows in a ``repr``, a message or a log record.

    Example:
        >>> auth = RegistryAuth(username="ci", password_env="REG_PASS")
        >>> auth.auth_config(env={"REG_PASS": "s3cret"})["username"]
        'ci'
        >>> RegistryAuth(username="ci")
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: registry_auth: give a password or password_env (the name of an environment variable)
    """

    username: str
    password: str | None = None
    password_env: str | None = None
    registry: str | None = None

    def __post_init__(self) -> None:
        field = "registry_auth"
        if not isinstance(self.username, str) or not self.username or "\x00" in self.username:
            raise SessionConfigError(f"{field}: username must be a non-empty string", field=field)
        if self.password is not None and not isinstance(self.password, str):
            raise SessionConfigError(f"{field}: password must be a string", field=field)
        if self.password_env is not None and (
            not isinstance(self.password_env, str)
            or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.password_env)
        ):
            raise SessionConfigError(
                f"{field}: password_env {self.password_env!r} is not an environment variable name",
                field=field,
            )
        if (self.password is None) == (self.password_env is None):
            raise SessionConfigError(
                f"{field}: give a password or password_env (the name of an environment variable)"
                if self.password is None
                else f"{field}: give either password or password_env, not both",
                field=field,
            )
        if self.registry is not None and (
            not isinstance(self.registry, str) or not _HOST_RE.fullmatch(self.registry)
        ):
            raise SessionConfigError(
                f"{field}: registry {self.registry!r} is not a host[:port]", field=field
            )

    def __repr__(self) -> str:
        shown = "'***'" if self.password is not None else "None"
        return (
            f"RegistryAuth(username={self.username!r}, password={shown}, "
            f"password_env={self.password_env!r}, registry={self.registry!r})"
        )

    def applies_to(self, registry: str) -> bool:
        """Whether these credentials are for ``registry``.

        Example:
            >>> RegistryAuth("u", "p", registry="quay.io").applies_to("docker.io")
            False
        """
        return self.registry is None or self.registry == registry

    def auth_config(self, env: Mapping[str, str] | None = None) -> dict[str, str]:
        """The SDKs' ``auth_config`` (``username``, ``password``); reads ``password_env`` now.

        Raises:
            SessionConfigError: the variable ``password_env`` names is not set.

        Example:
            >>> RegistryAuth("u", password_env="NOPE_UNSET").auth_config(env={})
            Traceback (most recent call last):
            ...
            kstlib.ops.exceptions.SessionConfigError: registry_auth: the environment variable NOPE_UNSET (password_env) is not set
        """
        password = self.password
        if self.password_env is not None:
            password = (os.environ if env is None else env).get(self.password_env)
            if password is None:
                raise SessionConfigError(
                    f"registry_auth: the environment variable {self.password_env} "
                    "(password_env) is not set",
                    field="registry_auth",
                )
        return {"username": self.username, "password": password or ""}

    def to_dict(self) -> dict[str, str] | None:
        """What may be written down: ``None`` when it holds a password itself.

        Example:
            >>> RegistryAuth("u", password_env="P").to_dict()
            {'username': 'u', 'password_env': 'P'}
            >>> RegistryAuth("u", "secret").to_dict() is None
            True
        """
        if self.password is not None:
            return None
        out = {"username": self.username, "password_env": str(self.password_env)}
        if self.registry is not None:
            out["registry"] = self.registry
        return out


def validate_registry_auth(value: object) -> RegistryAuth | None:
    """A :class:`RegistryAuth` from itself or a mapping (``username`` + ``password``/``password_env``).

    Example:
        >>> validate_registry_auth({"username": "ci", "password_env": "REG_PASS"})
        RegistryAuth(username='ci', password=None, password_env='REG_PASS', registry=None)
        >>> validate_registry_auth({"user": "ci"})
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: registry_auth: unknown key 'user' (known: username, password, password_env, registry)
    """
    if value is None or isinstance(value, RegistryAuth):
        return value
    if not isinstance(value, Mapping):
        raise SessionConfigError(
            "registry_auth: expected a mapping with username and password_env (or password), "
            f"got {type(value).__name__}",
            field="registry_auth",
        )
    known = ("username", "password", "password_env", "registry")
    for key in value:
        if key not in known:
            raise SessionConfigError(
                f"registry_auth: unknown key {key!r} (known: {', '.join(known)})",
                field="registry_auth",
            )
    return RegistryAuth(**{str(k): v for k, v in value.items()})


_KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("tls", ("http response to https client", "x509:", "tls:", "certificate", "tls handshake")),
    ("unauthorized", ("unauthorized", "authentication required", "no basic auth credentials")),
    ("not_found", ("pull access denied", "manifest unknown", "name unknown", "not found")),
    ("timeout", ("timeout", "timed out", "deadline exceeded")),
    (
        "unreachable",
        (
            "connection refused",
            "no such host",
            "network is unreachable",
            "no route to host",
            "connection reset",
            "dial tcp",
            "eof",
        ),
    ),
    ("unauthorized", ("denied",)),
)


def classify(text: str) -> str:
    """The kind of a pull failure from the engine's words.

    Example:
        >>> classify('Get "http://127.0.0.1:5999/v2/": dial tcp 127.0.0.1:5999: connect: connection refused')
        'unreachable'
        >>> classify("reading manifest 1 in r/x: unauthorized: authentication required")
        'unauthorized'
        >>> classify("manifest for r/x:nope not found: manifest unknown: manifest unknown")
        'not_found'
        >>> classify('Get "https://r:5000/v2/": http: server gave HTTP response to HTTPS client')
        'tls'
        >>> classify("dial tcp 10.0.0.1:443: i/o timeout")
        'timeout'
    """
    lowered = text.lower()
    for kind, words in _KINDS:
        if any(w in lowered for w in words):
            return kind
    return "other"


def _clean(text: str) -> str:
    return " ".join(text.split()).rstrip(".")


def pull_failure(
    image: str,
    runtime: str,
    words: str,
    *,
    kind: str | None = None,
    session: str | None = None,
    credentials: str = "none",
    timeout: float | None = None,
) -> ImagePullError:
    """The :class:`~kstlib.ops.exceptions.ImagePullError` for a failed pull, in one sentence.

    ``words`` are the engine's own; ``credentials`` says where the credentials
    sent came from (``"none"``: none were sent).

    Example:
        >>> err = pull_failure("127.0.0.1:5999/a:1", "docker",
        ...     'Get "http://127.0.0.1:5999/v2/": dial tcp 127.0.0.1:5999: connect: connection refused')
        >>> err.kind, err.registry
        ('unreachable', '127.0.0.1:5999')
        >>> print(err)
        Could not pull image '127.0.0.1:5999/a:1' on docker: the registry 127.0.0.1:5999 is unreachable (connect: connection refused); check its address and that it runs.
    """
    registry = registry_of(image)
    kind = kind or classify(words)
    detail = _clean(words)
    short = detail.rsplit(": ", 2)
    brief = ": ".join(short[-2:]) if len(short) > 2 else detail
    said = f" ({brief})" if brief else ""  # the engine's words, shortened
    if kind == "not_found":
        reason = (
            f"the registry {registry} has no such image or tag{said}; check the repository and tag"
        )
        if "pull access denied" in detail.lower():
            reason = (
                f"the registry {registry} denied access{said}: the repository does not "
                "exist there or needs a login"
            )
    elif kind == "unauthorized":
        if credentials == "none":
            reason = (
                f"the registry {registry} requires a login and no credentials were found for it "
                "(registry_auth, auth.json, config.json)"
            )
        else:
            reason = (
                f"the registry {registry} refused the credentials from {credentials}"
                f"{said}; check the user and password"
            )
    elif kind == "unreachable":
        reason = f"the registry {registry} is unreachable{said}; check its address and that it runs"
    elif kind == "tls":
        reason = (
            f"the registry {registry} refused the TLS connection{said}; if it serves plain "
            "HTTP, list it in insecure_registries (Docker: in the daemon's insecure-registries)"
        )
    elif kind == "timeout":
        within = f" within {timeout:g} s" if timeout is not None else ""
        reason = (
            f"the pull from {registry} got no answer{within}{said}; check the network "
            "or raise the timeout"
        )
    else:
        reason = f"the {runtime} engine could not pull it" + (f" ({detail})" if detail else "")
    return ImagePullError(image, runtime, reason, kind=kind, registry=registry, session=session)
