"""kstlib.ops: named, long-lived sessions in tmux or containers, one API.

Example:
    >>> from kstlib.ops import SessionManager
    >>> bot = SessionManager("doc-bot", command="echo ready; sleep 30", socket_name="kstlib-doc")
    >>> bot.start().state.value
    'running'
    >>> bot.stop()
    True
"""

from kstlib.ops.container import ContainerRunner
from kstlib.ops.exceptions import (
    BackendNotFoundError,
    ContainerRuntimeNotFoundError,
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
    TmuxNotFoundError,
)
from kstlib.ops.manager import SessionManager, auto_detect_backend
from kstlib.ops.models import BackendType, SessionConfig, SessionState, SessionStatus
from kstlib.ops.tmux import TmuxRunner

__all__ = [
    "BackendNotFoundError",
    "BackendType",
    "ContainerRunner",
    "ContainerRuntimeNotFoundError",
    "OpsError",
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
    "SessionTimeoutError",
    "TmuxNotFoundError",
    "TmuxRunner",
    "auto_detect_backend",
]
