"""Pulling an image through an engine, and the credentials a pull sends (internal).

The public names are re-exported by :mod:`kstlib.ops.images`, which says how
pulls, credentials and progress events work.

Example:
    >>> [p.name for p in auth_files("podman", {"REGISTRY_AUTH_FILE": "/tmp/a.json"})][:1]
    ['a.json']
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from kstlib.ops.display import PlainLine
from kstlib.ops.exceptions import SessionConfigError
from kstlib.ops.images._types import (
    DEFAULT_PULL_TIMEOUT,
    ProgressCallback,
    PullProgress,
    PullResult,
    RegistryAuth,
    is_insecure,
    registry_of,
    validate_registry_auth,
)
from kstlib.ops.validators import (
    validate_insecure_registries,
)

__all__ = [
    "auth_files",
    "find_credentials",
    "notebook_progress",
    "pull_image",
    "pull_with",
]

logger = logging.getLogger(__name__)


# -- events ---------------------------------------------------------------------------


# -- references and registries ----------------------------------------------------------


# -- validation -----------------------------------------------------------------------------


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
        text = PlainLine(_summary(event, state))  # shown as itself, not as a str repr
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
    the ``kstlib.ops`` loggers have one line per layer either way).
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
    from kstlib.ops.engines.adapter import PullOptions
    from kstlib.ops.engines.pull import PullTracker

    tracker = PullTracker(image, engine.runtime, on_progress)
    options = PullOptions(credentials, source, insecure=insecure, timeout=timeout, session=session)
    image_id = engine.pull(image, tracker, options)
    return PullResult(image, engine.runtime, image_id)
