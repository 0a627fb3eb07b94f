"""Engine container states read as session states (the restart policy included).

Example:
    >>> STATE_MAP["exited"].value
    'exited'
"""

from __future__ import annotations

import signal
import time
from datetime import datetime

from kstlib.ops.engines.adapter import ContainerInfo
from kstlib.ops.models import BackendType, SessionState, SessionStatus

#: Engine container states -> session states (anything else: UNKNOWN).
STATE_MAP: dict[str, SessionState] = {
    "running": SessionState.RUNNING,
    "restarting": SessionState.RUNNING,
    "stopping": SessionState.RUNNING,
    "exited": SessionState.EXITED,
    "dead": SessionState.EXITED,
    "stopped": SessionState.EXITED,
    "created": SessionState.STOPPED,
    "configured": SessionState.STOPPED,
    "initialized": SessionState.STOPPED,
    "paused": SessionState.STOPPED,
}


# States whose process may still be alive: a graceful stop() signals them.
LIVE_STATES = frozenset({"running", "restarting", "stopping", "paused"})


# Restart policies that never restart.
NO_RESTART_POLICY = frozenset({"", "no"})


# How long a Podman container may stay "stopped" with a restart due before we
# conclude that the engine will not restart it (its cleanup process failed).
_RESTART_GRACE = 10.0


def restart_pending(info: ContainerInfo) -> bool:
    """Whether the engine is about to restart this exited container.

    Docker says so itself (``restarting``, a RUNNING state). Podman says
    ``stopped`` from the exit until its cleanup, which applies the restart
    policy, has run (then ``running`` again, or ``exited`` for good); the
    policy, exit code and restart count tell whether a restart is due.
    """
    if info.state != "stopped":
        return False
    policy = info.restart_policy
    if policy in ("always", "unless-stopped"):
        return True
    if policy != "on-failure" or not info.exit_code:
        return False
    return info.restart_retries <= 0 or info.restart_count < info.restart_retries


def session_state(info: ContainerInfo) -> SessionState:
    """The session state of a container (one whose restart is due counts as running).

    Example:
        >>> session_state(ContainerInfo(id="a", name="bot", state="exited")).value
        'exited'
    """
    if restart_pending(info):
        return SessionState.RUNNING
    return STATE_MAP.get(info.state, SessionState.UNKNOWN)


class RestartWatch:
    """Tells a container that has exited for good from one about to be restarted.

    A restart that is due but does not come within ``_RESTART_GRACE``
    seconds is taken as not coming.
    """

    def __init__(self) -> None:
        self._key: tuple[object, ...] | None = None
        self._since = 0.0

    def settled(self, info: ContainerInfo) -> bool:
        """Whether this container has exited for good (no restart due, or one that never came)."""
        if not restart_pending(info):
            self._key = None
            return STATE_MAP.get(info.state) is SessionState.EXITED
        key = (info.id, info.restart_count, info.finished_at)
        now = time.monotonic()
        if key != self._key:
            self._key, self._since = key, now
        return now - self._since >= _RESTART_GRACE


def _reason(info: ContainerInfo, state: SessionState) -> str | None:
    """Why the container's process ended, as far as the engine tells (see SessionStatus)."""
    if info.oom_killed:
        return "oom-killed"
    if info.error:
        return info.error
    code = info.exit_code
    if state is SessionState.EXITED and code is not None and 128 < code < 128 + 65:
        try:
            return f"killed by {signal.Signals(code - 128).name}"
        except ValueError:
            return f"killed by signal {code - 128}"
    return None


def _last_run(info: ContainerInfo) -> tuple[int | None, datetime | None]:
    """The exit code and end time of the last run of a container its restart policy reruns.

    Both engines keep ``State.ExitCode`` and ``FinishedAt`` of the run that
    ended while the restart is pending (Docker's ``restarting``, Podman's
    ``stopped``), then reset the exit code to 0 when the next run starts
    (``FinishedAt`` stays): a running container's last code is unknown then.
    """
    pending = info.state == "restarting" or restart_pending(info)
    if info.restart_policy in NO_RESTART_POLICY or (not pending and info.restart_count <= 0):
        return None, None
    if pending or info.state not in LIVE_STATES:
        return info.exit_code, info.finished_at
    return None, info.finished_at


def to_status(info: ContainerInfo, runtime: str) -> SessionStatus:
    """The session status of a container the engine described.

    Example:
        >>> to_status(ContainerInfo(id="a", name="bot", state="running", pid=7), "docker").pid
        7
    """
    state = session_state(info)
    last_code, last_at = _last_run(info)
    return SessionStatus(
        name=info.name,
        state=state,
        backend=BackendType.CONTAINER,
        pid=info.pid if state is SessionState.RUNNING else None,
        created_at=info.created_at,
        image=info.image,
        exit_code=info.exit_code if state is SessionState.EXITED else None,
        runtime=runtime,
        managed=info.managed,
        restart_count=info.restart_count,
        oom_killed=info.oom_killed,
        reason=_reason(info, state),
        # No windows in a container (upstream says 0: ``window_count > 0`` works).
        window_count=0,
        last_exit_code=last_code,
        last_exited_at=last_at,
    )
