"""The runner of each backend, built from a session configuration.

The one place that maps a :class:`~kstlib.ops.models.BackendType` to its
runner class; the runners' modules are imported on first use, so a tmux
session never loads a container SDK.

Example:
    >>> make_runner(SessionConfig(name="a", socket_name="kstlib-doc"))
    TmuxRunner(socket='kstlib-doc')
"""

from __future__ import annotations

from kstlib.ops.models import BackendType, SessionConfig
from kstlib.ops.runner import Runner

__all__ = ["make_runner"]


def make_runner(
    config: SessionConfig, tmux_bin: str | None = None, engine_timeout: float | None = None
) -> Runner:
    """Build the runner that serves ``config`` (tmux server or container engine).

    Example:
        >>> make_runner(SessionConfig(name="a", socket_name="kstlib-doc"))
        TmuxRunner(socket='kstlib-doc')
    """
    if config.backend is BackendType.TMUX:
        from kstlib.ops.tmux import TmuxRunner

        return TmuxRunner(
            socket_name=config.socket_name, socket_path=config.socket_path, tmux_bin=tmux_bin
        )
    from kstlib.ops.container import ContainerRunner

    if engine_timeout is None:
        return ContainerRunner(runtime=config.runtime, base_url=config.base_url)
    return ContainerRunner(runtime=config.runtime, base_url=config.base_url, timeout=engine_timeout)
