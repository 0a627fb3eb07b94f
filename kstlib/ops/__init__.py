"""kstlib.ops: named, long-lived sessions in tmux or containers, one API.

Example:
    >>> from kstlib.ops import SessionManager
    >>> bot = SessionManager("doc-bot", command="echo ready; sleep 30", socket_name="kstlib-doc")
    >>> bot.start().state.value
    'running'
    >>> bot.stop()
    True

Sessions anywhere: :func:`list_sessions` lists tmux's default server, the
user's other tmux servers and every reachable engine in one table;
``SessionManager.find(name)`` returns the manager of an existing session
wherever it runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kstlib.ops.exceptions import (
    BackendNotFoundError,
    ContainerRuntimeNotFoundError,
    ImagePullError,
    OpsError,
    SessionAmbiguousError,
    SessionAttachError,
    SessionConfigError,
    SessionError,
    SessionExistsError,
    SessionNotFoundError,
    SessionStartError,
    SessionStopError,
    SessionTimeoutError,
    StateDirError,
    TmuxNotFoundError,
)

if TYPE_CHECKING:
    from kstlib.ops.aio import AsyncSessionManager
    from kstlib.ops.container import ContainerRunner
    from kstlib.ops.locate import EngineUnavailableWarning, auto_detect_backend, list_sessions
    from kstlib.ops.manager import SessionManager
    from kstlib.ops.models import (
        BackendType,
        SessionConfig,
        SessionState,
        SessionStatus,
        SessionTable,
    )
    from kstlib.ops.registry import PullProgress, PullResult, RegistryAuth, pull_image
    from kstlib.ops.runner import AbstractRunner, Runner
    from kstlib.ops.swarm import SwarmRunner
    from kstlib.ops.tmux import TmuxRunner

# The models, the runners and the manager load on first use (PEP 562), so
# that ``import kstlib.ops`` costs only the exceptions (the models need
# dataclasses, datetime and the validators' compiled patterns; the runners
# the engines' SDKs). tests/test_lazy_import.py holds this.
_LAZY = {
    "BackendType": "kstlib.ops.models",
    "SessionConfig": "kstlib.ops.models",
    "SessionState": "kstlib.ops.models",
    "SessionStatus": "kstlib.ops.models",
    "SessionTable": "kstlib.ops.models",
    "AbstractRunner": "kstlib.ops.runner",
    "ContainerRunner": "kstlib.ops.container",
    "EngineUnavailableWarning": "kstlib.ops.locate",
    "Runner": "kstlib.ops.runner",
    "list_sessions": "kstlib.ops.locate",
    "SessionManager": "kstlib.ops.manager",
    "AsyncSessionManager": "kstlib.ops.aio",
    "auto_detect_backend": "kstlib.ops.locate",
    "TmuxRunner": "kstlib.ops.tmux",
    "SwarmRunner": "kstlib.ops.swarm",
    "PullProgress": "kstlib.ops.registry",
    "PullResult": "kstlib.ops.registry",
    "RegistryAuth": "kstlib.ops.registry",
    "pull_image": "kstlib.ops.registry",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'kstlib.ops' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "AbstractRunner",
    "AsyncSessionManager",
    "BackendNotFoundError",
    "BackendType",
    "ContainerRunner",
    "ContainerRuntimeNotFoundError",
    "EngineUnavailableWarning",
    "ImagePullError",
    "OpsError",
    "PullProgress",
    "PullResult",
    "RegistryAuth",
    "Runner",
    "SessionAmbiguousError",
    "SessionAttachError",
    "SessionConfig",
    "SessionConfigError",
    "SessionError",
    "SessionExistsError",
    "SessionManager",
    "SessionNotFoundError",
    "SessionStartError",
    "SessionState",
    "SessionStatus",
    "SessionStopError",
    "SessionTable",
    "SessionTimeoutError",
    "StateDirError",
    "SwarmRunner",
    "TmuxNotFoundError",
    "TmuxRunner",
    "auto_detect_backend",
    "list_sessions",
    "pull_image",
]
