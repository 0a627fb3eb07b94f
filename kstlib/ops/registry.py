"""Images from registries: pull policy, credentials, progress events and pull errors.

A container session whose image the engine lacks is pulled from its registry
(``pull="missing"``, the default), always re-checked against the registry
(``"always"``), or refused with a clear error (``"never"``). The pull goes
through the engine's SDK (docker SDK ``/images/create``, podman-py
``images.pull``) as a stream; each step becomes a :class:`PullProgress` event
for an ``on_progress`` callback, ending in one ``"complete"`` event.

Credentials come from where users keep them, first match wins:

1. an explicit :class:`RegistryAuth` (``registry_auth=``; it may name an
   environment variable that holds the password, ``password_env``);
2. Podman's ``auth.json`` (``$REGISTRY_AUTH_FILE``, then
   ``$XDG_RUNTIME_DIR/containers/auth.json``, then
   ``~/.config/containers/auth.json``) and Docker's ``config.json``
   (``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``): Podman
   reads auth.json first, Docker config.json first, as the engines themselves do.

They are read by the docker SDK's ``auth`` module (credential stores and
helpers included) and sent in the request header, never on a command line;
no message, log record or ``repr`` shows a password.

Every failure is an :class:`~kstlib.ops.exceptions.ImagePullError` (a
:class:`~kstlib.ops.exceptions.SessionStartError`) whose ``kind`` tells the
cause apart: ``not_found``, ``unauthorized``, ``unreachable``, ``tls``,
``timeout`` or ``other``.

Example:
    >>> registry_of("127.0.0.1:5000/team/app:1"), registry_of("alpine:3.20")
    ('127.0.0.1:5000', 'docker.io')
    >>> is_insecure("127.0.0.1:5000"), is_insecure("registry.example.com")
    (True, False)
    >>> RegistryAuth(username="ci", password="s3cret")
    RegistryAuth(username='ci', password='***', password_env=None, registry=None)
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from kstlib.ops.exceptions import ImagePullError, SessionConfigError
from kstlib.ops.validators import HOST_PORT_RE as _HOST_RE
from kstlib.ops.validators import (
    PULL_POLICIES,
    validate_insecure_registries,
    validate_pull,
)

__all__ = [
    "DEFAULT_PULL_TIMEOUT",
    "PULL_POLICIES",
    "ProgressCallback",
    "PullPolicy",
    "PullProgress",
    "PullResult",
    "RegistryAuth",
    "auth_files",
    "classify",
    "find_credentials",
    "is_insecure",
    "notebook_progress",
    "pull_failure",
    "pull_image",
    "pull_with",
    "registry_of",
    "split_reference",
    "validate_insecure_registries",
    "validate_pull",
    "validate_registry_auth",
]

logger = logging.getLogger("kstlib.ops.pull")

PullPolicy = Literal["missing", "always", "never"]
#: Seconds the engine may stay silent during a pull (a layer download can be long).
DEFAULT_PULL_TIMEOUT = 120.0
_DOCKER_HUB = "docker.io"


# -- events ---------------------------------------------------------------------------


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


# -- references and registries ----------------------------------------------------------


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


# -- validation -----------------------------------------------------------------------------


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


# -- credentials files ------------------------------------------------------------------------


def auth_files(runtime: str, env: Mapping[str, str] | None = None) -> list[Path]:
    """The credential files read for ``runtime``, in order (existing or not).

    Podman: ``$REGISTRY_AUTH_FILE``, ``$XDG_RUNTIME_DIR/containers/auth.json``,
    ``~/.config/containers/auth.json``, then Docker's ``config.json``. Docker:
    ``config.json`` (``$DOCKER_CONFIG``, else ``~/.docker``) first.

    Example:
        >>> [str(p) for p in auth_files("podman", env={"REGISTRY_AUTH_FILE": "/a.json",
        ...                                              "HOME": "/h"})]
        ['/a.json', '/h/.config/containers/auth.json', '/h/.docker/config.json']
        >>> [str(p) for p in auth_files("docker", env={"DOCKER_CONFIG": "/d", "HOME": "/h"})][0]
        '/d/config.json'
    """
    env = os.environ if env is None else env
    home = Path(env.get("HOME") or Path.home())
    podman: list[Path] = []
    if env.get("REGISTRY_AUTH_FILE"):
        podman.append(Path(env["REGISTRY_AUTH_FILE"]))
    if env.get("XDG_RUNTIME_DIR"):
        podman.append(Path(env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    podman.append(home / ".config" / "containers" / "auth.json")
    docker_dir = Path(env["DOCKER_CONFIG"]) if env.get("DOCKER_CONFIG") else home / ".docker"
    docker = [docker_dir / "config.json"]
    return podman + docker if runtime == "podman" else docker + podman


def find_credentials(
    registry: str,
    runtime: str,
    explicit: RegistryAuth | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[dict[str, str] | None, str]:
    """The ``auth_config`` to send for ``registry`` and where it came from (``None``: none found).

    Example:
        >>> find_credentials("127.0.0.1:5000", "docker", env={"HOME": "/nonexistent"})
        (None, 'none')
        >>> find_credentials("r:1", "podman", RegistryAuth("u", "p"), env={})[1]
        'registry_auth'
    """
    if explicit is not None and explicit.applies_to(registry):
        return explicit.auth_config(env), "registry_auth"
    for path in auth_files(runtime, env):
        if not path.is_file():
            continue
        found = _from_file(path, registry)
        if found is not None:
            return found, str(path)
    return None, "none"


def _from_file(path: Path, registry: str) -> dict[str, str] | None:
    import docker.auth
    import docker.errors

    try:
        config = docker.auth.load_config(config_path=str(path))
        found = config.resolve_authconfig(registry)
    except (OSError, ValueError, docker.errors.DockerException) as err:
        # A broken file or credential helper: say which file, never its content.
        raise SessionConfigError(
            f"registry credentials: {path} cannot be used ({type(err).__name__})",
            field="registry_auth",
        ) from None
    if not found:
        return None
    # The keys of the engines' X-Registry-Auth; the SDK may spell them in other cases.
    out: dict[str, str] = {}
    for key in ("username", "password", "identitytoken", "registrytoken", "serveraddress"):
        value = next((v for k, v in found.items() if str(k).lower() == key), None)
        if value:
            out[key] = str(value)
    return out if ("username" in out or "identitytoken" in out) else None


# -- errors ------------------------------------------------------------------------------------

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


# -- progress displays --------------------------------------------------------------------


def notebook_progress() -> ProgressCallback | None:
    """A progress display for a Jupyter notebook, or ``None`` outside one (or without IPython).

    One line that updates in place: layers done, bytes, then the result.

    Example:
        >>> notebook_progress() is None  # not in a notebook here
        True
    """
    ipython_module = sys.modules.get("IPython")
    if ipython_module is None:
        return None
    try:
        import importlib

        shell = ipython_module.get_ipython()
        display = importlib.import_module("IPython.display").display
    except Exception:  # an IPython that cannot display: stay quiet
        return None
    if shell is None or not getattr(shell, "kernel", None):
        return None
    state: dict[str, Any] = {"handle": None, "done": set(), "layers": set(), "bytes": {}}

    def show(event: PullProgress) -> None:
        if event.layer is not None:
            state["layers"].add(event.layer)
            if event.status in ("done", "exists"):
                state["done"].add(event.layer)
            if event.total:
                state["bytes"][event.layer] = (event.current or 0, event.total)
        text = _summary(event, state)
        if state["handle"] is None:
            state["handle"] = display(text, display_id=True)
        elif state["handle"] is not None:
            state["handle"].update(text)

    return show


def _summary(event: PullProgress, state: Mapping[str, Any]) -> str:
    if event.is_final:
        return f"Pulled {event.image} ({len(state['layers'])} layers)"
    got = sum(c for c, _ in state["bytes"].values())
    total = sum(t for _, t in state["bytes"].values())
    size = f", {got / 1e6:.1f}/{total / 1e6:.1f} MB" if total else ""
    return f"Pulling {event.image}: {len(state['done'])}/{len(state['layers'])} layers{size}"


# -- the public call ------------------------------------------------------------------------


def pull_image(
    image: str,
    runtime: str | None = None,
    base_url: str | None = None,
    on_progress: ProgressCallback | None = None,
    *,
    registry_auth: RegistryAuth | Mapping[str, str] | None = None,
    insecure_registries: Iterable[str] = (),
    insecure: bool | None = None,
    timeout: float = DEFAULT_PULL_TIMEOUT,
) -> PullResult:
    """Pull ``image`` into an engine (``runtime=None``: the first that answers, Podman then Docker).

    ``on_progress`` receives :class:`PullProgress` events in order, the last
    one ``complete`` (default: a display in a Jupyter notebook, else none;
    the ``kstlib.ops.pull`` logger has one line per layer either way).
    Credentials: see the module docs. ``insecure=True`` allows plain HTTP
    for this pull; otherwise only the ``insecure_registries`` and loopback do
    (Docker decides this in its daemon: there, only its own settings count).
    ``timeout``: seconds the engine may stay silent.

    Raises:
        ImagePullError: the pull failed (``kind``: not_found, unauthorized,
            unreachable, tls, timeout, other).
        ContainerRuntimeNotFoundError: no engine answers.
        SessionConfigError: a bad argument.

    Example:
        >>> pull_image("127.0.0.1:5000/kstlib/pulltest:1", runtime="docker")  # doctest: +SKIP
        PullResult(image='127.0.0.1:5000/kstlib/pulltest:1', runtime='docker', image_id='sha256:...')
        >>> pull_image("Bad Image")
        Traceback (most recent call last):
        ...
        kstlib.ops.exceptions.SessionConfigError: image: 'Bad Image' is not a valid image reference ...
    """
    from kstlib.ops.engines.endpoints import connect
    from kstlib.ops.validators import (
        validate_base_url,
        validate_call_timeout,
        validate_image,
        validate_runtime,
    )

    validate_image(image)
    rt = validate_runtime(runtime) if runtime is not None else None
    url = validate_base_url(base_url)
    limit = validate_call_timeout(timeout)
    auth = validate_registry_auth(registry_auth)
    listed = validate_insecure_registries(insecure_registries)
    if on_progress is not None and not callable(on_progress):
        raise SessionConfigError("on_progress: expected a callable", field="on_progress")
    engine = connect(rt, url)
    return pull_with(
        engine,
        image,
        on_progress=on_progress if on_progress is not None else notebook_progress(),
        registry_auth=auth,
        insecure=insecure if insecure is not None else is_insecure(registry_of(image), listed),
        timeout=limit,
    )


def pull_with(
    engine: Any,
    image: str,
    *,
    on_progress: ProgressCallback | None,
    registry_auth: RegistryAuth | None,
    insecure: bool,
    timeout: float,
    session: str | None = None,
) -> PullResult:
    """Pull ``image`` through a connected engine adapter (the adapters' ``pull``).

    Example:
        >>> pull_with(engine, "127.0.0.1:5000/kstlib/pulltest:1", on_progress=None,
        ...           registry_auth=None, insecure=True, timeout=60)  # doctest: +SKIP
        PullResult(image='127.0.0.1:5000/kstlib/pulltest:1', runtime='podman', image_id='...')
    """
    registry = registry_of(image)
    credentials, source = find_credentials(registry, engine.runtime, registry_auth)
    logger.info(
        "pulling %s on %s (credentials: %s, %s)",
        image,
        engine.runtime,
        source,
        "plain HTTP allowed" if insecure else "TLS",
    )
    from kstlib.ops.engines.pull import PullTracker

    tracker = PullTracker(image, engine.runtime, on_progress)
    image_id = engine.pull(
        image,
        tracker,
        auth_config=credentials,
        credentials=source,
        insecure=insecure,
        timeout=timeout,
        session=session,
    )
    return PullResult(image, engine.runtime, image_id)
