"""The typed keyword options of :class:`~kstlib.ops.manager.SessionManager`.

Internal module: the public API is :mod:`kstlib.ops` (``kstlib.ops.__all__``).

Example:
    >>> options: SessionOptions = {"command": "top", "env": {"TERM": "xterm"}}
    >>> sorted(options)
    ['command', 'env']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, TypedDict

if TYPE_CHECKING:
    from kstlib.ops.images import PullProgress, RegistryAuth

__all__ = ["SessionOptions"]


class SessionOptions(TypedDict, total=False):
    """The keyword options of :class:`~kstlib.ops.manager.SessionManager`, typed for mypy.

    Every :class:`~kstlib.ops.models.SessionConfig` field but ``name`` and
    ``backend`` (a test keeps the two lists equal), plus the runner's own:
    ``tmux_bin`` (upstream spelling ``tmux_binary``) and ``engine_timeout``.
    An unknown key is also refused at run time (SessionConfigError).

    Example:
        >>> options: SessionOptions = {"command": "top", "env": {"TERM": "xterm"}}
        >>> sorted(options)
        ['command', 'env']
    """

    command: str | Sequence[str] | None
    working_dir: str | None
    env: Mapping[str, str]
    socket_name: str | None
    socket_path: str | None
    image: str | None
    volumes: Sequence[str]
    log_volume: str | None
    ports: Sequence[str]
    runtime: str | None
    base_url: str | None
    labels: Mapping[str, str]
    restart: str | None
    memory: str | None
    cpus: float | None
    init: bool
    network: str | None
    pull: str
    registry_auth: RegistryAuth | None
    insecure_registries: Sequence[str]
    on_progress: Callable[[PullProgress], None] | None
    replicas: int | None
    placement: Sequence[str]
    mode: str | None
    stop_timeout: float | None
    secrets: Mapping[str, str]
    secret_refs: Sequence[str]
    with_registry_auth: bool
    tmux_bin: str | None
    tmux_binary: str | None
    engine_timeout: float | None
