"""The worker's dockerd SIGKILLed while a service's task runs there: status says so, nothing hangs.

The swarm notices a silent node after its heartbeat period (~11 s here); until
then the task still looks running. The test waits (bounded) for the status to
name the down node, checks that logs and stop return, and brings the worker
back with ``engines.sh swarm-up`` (~11 s), which also clears the orphaned task.
"""

from __future__ import annotations

import os
import signal

import pytest

from kstlib.ops.models import SessionState, SessionStatus

from .conftest import harness
from .swarm_support import Swarm, swarm_name, until

pytestmark = pytest.mark.docker


def test_a_task_on_a_killed_worker_shows_as_on_a_down_node_and_nothing_hangs(
    swarm: Swarm,
) -> None:
    name = swarm_name("down")
    command = ["sh", "-c", "echo up; while :; do sleep 1; done"]
    status = swarm.runner.start(
        swarm.config(name, command, placement=["node.labels.role==worker"], stop_timeout=1)
    )
    assert status.nodes == (swarm.worker_id,)
    until("its first line", lambda: swarm.runner.logs(name) == "up")
    pidfile = swarm.env["KSTLIB_TEST_SWARM_WORKER_PIDFILE"]
    with open(pidfile, encoding="ascii") as f:
        os.kill(int(f.read().strip()), signal.SIGKILL)
    try:

        def down() -> SessionStatus | None:
            st = swarm.runner.status(name)
            return st if st.reason and "node down" in st.reason else None

        seen = until("the status to name the down node", down, timeout=60)
        # Its only task is on the down node: nobody can say it runs.
        assert seen.state is SessionState.UNKNOWN
        assert seen.nodes == (swarm.worker_id,)
        assert seen.reason is not None and swarm.worker_id in seen.reason
        assert "heartbeat failure" in seen.reason
        # The manager cannot reach the node's logs: it says so in a line of its own.
        text = swarm.runner.logs(name)
        assert "not available" in text, text
        # Stop removes the service and does not wait for the unreachable node.
        assert swarm.runner.stop(name, timeout=1) is True
        assert not swarm.runner.exists(name)
    finally:
        harness("swarm-up", "the two-node test swarm")
    # Back up: the worker's engine cleans up the orphaned task container.
    swarm.gone_everywhere(name)
