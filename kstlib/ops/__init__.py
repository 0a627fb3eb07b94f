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

The public API is this namespace: ``__all__`` names each public name once,
and ``kstlib.ops.NAME`` is its one documented import path; the exceptions are
also documented in :mod:`kstlib.ops.exceptions`. The modules under
``kstlib.ops`` are internal (their names may move between releases), even where
a package face such as :mod:`kstlib.ops.config` keeps importing its names.
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
    from kstlib.ops.config import EngineConfig, OpsConfig, load_config, parse_config
    from kstlib.ops.container import ContainerRunner
    from kstlib.ops.discovery import EngineUnavailableWarning, auto_detect_backend, list_sessions
    from kstlib.ops.execresult import ExecResult
    from kstlib.ops.images import PullProgress, PullResult, RegistryAuth, pull_image
    from kstlib.ops.manager import SessionManager
    from kstlib.ops.models import (
        BackendType,
        SessionConfig,
        SessionState,
        SessionStatus,
        SessionTable,
    )
    from kstlib.ops.runner import AbstractRunner, Runner
    from kstlib.ops.runners import RunnerFactory, make_runner
    from kstlib.ops.swarm import SwarmRunner
    from kstlib.ops.tmux import TmuxRunner
    from kstlib.ops.watch import EventStream, SessionEvent, events

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
    "EngineConfig": "kstlib.ops.config",
    "OpsConfig": "kstlib.ops.config",
    "load_config": "kstlib.ops.config",
    "parse_config": "kstlib.ops.config",
    "RunnerFactory": "kstlib.ops.runners",
    "make_runner": "kstlib.ops.runners",
    "EngineUnavailableWarning": "kstlib.ops.discovery",
    "ExecResult": "kstlib.ops.execresult",
    "Runner": "kstlib.ops.runner",
    "list_sessions": "kstlib.ops.discovery",
    "SessionManager": "kstlib.ops.manager",
    "AsyncSessionManager": "kstlib.ops.aio",
    "events": "kstlib.ops.watch",
    "EventStream": "kstlib.ops.eventstream",
    "SessionEvent": "kstlib.ops.eventstream",
    "auto_detect_backend": "kstlib.ops.discovery",
    "TmuxRunner": "kstlib.ops.tmux",
    "SwarmRunner": "kstlib.ops.swarm",
    "PullProgress": "kstlib.ops.images",
    "PullResult": "kstlib.ops.images",
    "RegistryAuth": "kstlib.ops.images",
    "pull_image": "kstlib.ops.images",
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
    "EngineConfig",
    "EngineUnavailableWarning",
    "EventStream",
    "ExecResult",
    "ImagePullError",
    "OpsConfig",
    "OpsError",
    "PullProgress",
    "PullResult",
    "RegistryAuth",
    "Runner",
    "RunnerFactory",
    "SessionAmbiguousError",
    "SessionAttachError",
    "SessionConfig",
    "SessionConfigError",
    "SessionError",
    "SessionEvent",
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
    "events",
    "list_sessions",
    "load_config",
    "make_runner",
    "parse_config",
    "pull_image",
]
