"""A swarm service's life on the real two-node swarm: scale, stop, a failed start, last runs.

Each test looks at what the swarm and each node's own engine really hold:
scaling changes only the replica count (the running tasks stay), a stop
returns once no node has a container of the service, a command that cannot
be executed is a start error that leaves nothing behind, and a restarting
service reports its last run's exit code and time.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from kstlib.ops.exceptions import SessionStartError
from kstlib.ops.models import SessionState
from kstlib.ops.swarm import SwarmRunner

from .swarm_support import Swarm, swarm_name, until

pytestmark = pytest.mark.docker

LOOP = "trap 'exit 0' TERM; echo up; while :; do sleep 1; done"


def _running_tasks(swarm: Swarm, name: str) -> set[str]:
    service = swarm.manager.services.get(name)
    return {t["ID"] for t in service.tasks() if t["Status"]["State"] == "running"}


def test_scaling_up_and_down_leaves_the_running_tasks_alone(swarm: Swarm) -> None:
    name = swarm_name()
    swarm.runner.start(swarm.config(name, ["sh", "-c", LOOP]))
    try:
        first = until("one running task", lambda: _running_tasks(swarm, name))
        spec_before = swarm.manager.services.get(name).attrs["Spec"]["TaskTemplate"]
        scaled = swarm.runner.scale(name, 3)
        assert scaled.state is SessionState.RUNNING and scaled.restart_count == 0
        # The task that ran before the scale still runs: nothing was replaced.
        running = _running_tasks(swarm, name)
        assert first <= running and len(running) == 3
        service = swarm.manager.services.get(name)
        assert service.attrs["Spec"]["TaskTemplate"] == spec_before
        assert service.attrs["Spec"]["Mode"] == {"Replicated": {"Replicas": 3}}
        down = swarm.runner.scale(name, 2)
        assert down.restart_count == 0
        assert first <= _running_tasks(swarm, name)
        # No task beyond the three the scales asked for was ever created (the
        # one scaled away may already be forgotten).
        assert len(service.tasks()) <= 3
        assert swarm.runner.status(name).restart_count == 0
    finally:
        swarm.runner.stop(name, timeout=2)


def test_stop_returns_once_no_node_has_a_container_of_the_service(swarm: Swarm) -> None:
    runner = SwarmRunner(
        base_url=swarm.env["KSTLIB_TEST_SWARM_MANAGER"],
        timeout=30,
        # A node engine that does not answer is skipped (a node that is down removes
        # its containers when it comes back): the others are still waited for.
        node_urls=["unix:///nonexistent-node.sock", swarm.env["KSTLIB_TEST_SWARM_WORKER"]],
    )
    name = swarm_name()
    status = runner.start(
        swarm.config(name, ["sh", "-c", LOOP], replicas=2, placement=["spread=node.id"])
    )
    assert set(status.nodes) == {swarm.manager_id, swarm.worker_id}
    assert runner.stop(name, timeout=2) is True
    # Asked of each node's own engine at once: no container, running or exited.
    assert swarm.containers(name) == {"manager": [], "worker": []}


def test_stop_without_the_other_nodes_still_waits_for_the_managers_own(swarm: Swarm) -> None:
    name = swarm_name()
    swarm.runner.start(swarm.config(name, ["sh", "-c", LOOP], placement=["node.role==manager"]))
    assert swarm.runner.stop(name, timeout=2) is True
    assert swarm.containers(name)["manager"] == []


@pytest.mark.parametrize(
    ("argv", "init", "words"),
    [
        (["no-such-program-here", "x"], False, "executable file not found"),
        (["/etc/passwd"], False, "permission denied"),
        # With the init (the default) the init says it; a task on the manager's
        # node is asked whether the init ran the command before start returns.
        (["no-such-program-here", "x"], True, "exec no-such-program-here failed"),
        (["/etc/passwd"], True, "exec /etc/passwd failed: Permission denied"),
    ],
    ids=["not-found", "not-executable", "init-not-found", "init-not-executable"],
)
def test_a_command_that_cannot_be_executed_is_a_start_error_and_nothing_stays(
    swarm: Swarm, argv: list[str], init: bool, words: str
) -> None:
    name = swarm_name()
    config = swarm.config(
        name, argv, init=init, secrets={"token": "t0k3n-x"}, placement=["node.role==manager"]
    )
    with pytest.raises(SessionStartError, match="could not be executed") as caught:
        swarm.runner.start(config)
    assert words in caught.value.reason
    assert not swarm.runner.exists(name)
    assert swarm.containers(name)["manager"] == []
    labelled = swarm.manager.secrets.list(filters={"label": f"io.kstlib.secret-of={name}"})
    assert labelled == []


def test_a_restarting_service_reports_its_last_runs_exit_code_and_time(swarm: Swarm) -> None:
    name = swarm_name()
    before = datetime.now().astimezone()
    swarm.runner.start(
        swarm.config(name, ["sh", "-c", "echo run; sleep 0.2; exit 5"], restart="always")
    )
    try:

        def restarted() -> object:
            status = swarm.runner.status(name)
            return status if status.restart_count >= 1 and status.last_exit_code else None

        status = until("a restart with the last run's exit code", restarted)
        assert status.last_exit_code == 5
        assert isinstance(status.last_exited_at, datetime)
        assert status.last_exited_at >= before
        assert status.to_dict()["last_exit_code"] == 5
    finally:
        swarm.runner.stop(name, timeout=2)


def test_a_one_shot_that_ended_reports_its_run_as_the_last_one(swarm: Swarm) -> None:
    name = swarm_name()
    swarm.runner.start(swarm.config(name, ["sh", "-c", "exit 3"]))
    try:
        assert swarm.runner.wait(name, timeout=30) == 3
        status = swarm.runner.status(name)
        assert (status.exit_code, status.last_exit_code) == (3, 3)
        assert status.last_exited_at is not None
    finally:
        swarm.runner.stop(name, timeout=2)
