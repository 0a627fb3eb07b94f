"""The swarm backend on the real two-node swarm: a session is one service.

Each test proves one "Must show" point of the swarm backend through
:class:`~kstlib.ops.swarm.SwarmRunner` on the manager, and checks each
node's own engine for what really runs (or no longer runs) there.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import urllib.request
from pathlib import Path

import pytest

from kstlib.ops import SessionManager
from kstlib.ops.exceptions import (
    ContainerRuntimeNotFoundError,
    SessionAttachError,
    SessionConfigError,
    SessionError,
    SessionExistsError,
    SessionNotFoundError,
    SessionStartError,
    SessionTimeoutError,
)
from kstlib.ops.models import BackendType, SessionState
from kstlib.ops.swarm import SwarmRunner

from .conftest import DOCKER_URL
from .swarm_support import RUN, RUN_LABEL, Swarm, swarm_name, until

pytestmark = pytest.mark.docker

#: A task that says hello, and bye on SIGTERM (busybox sh wakes from sleep 1 to run the trap).
LOOP = "trap 'echo bye; exit 0' TERM; echo hello; while :; do sleep 1; done"


def test_two_spread_replicas_run_on_both_nodes_log_from_both_and_stop_leaves_nothing(
    swarm: Swarm, tmp_path: Path
) -> None:
    tmp_path.chmod(0o777)
    name = swarm_name()
    # Each task leaves a file named after its slot on SIGTERM (both nodes
    # share this machine's file system): the trap ran, not the kill.
    command = [
        "sh",
        "-c",
        "trap 'touch /out/bye-$SLOT; exit 0' TERM; echo hello from $NODE; "
        "while :; do sleep 1; done",
    ]
    status = swarm.runner.start(
        swarm.config(
            name,
            command,
            replicas=2,
            placement=["spread=node.id"],
            env={"NODE": "{{.Node.ID}}", "SLOT": "{{.Task.Slot}}"},
            volumes=[f"{tmp_path}:/out"],
        )
    )
    try:
        assert status.state is SessionState.RUNNING
        assert status.backend is BackendType.SWARM and status.managed
        assert set(status.nodes) == {swarm.manager_id, swarm.worker_id}
        per_node = swarm.containers(name)
        assert [len(per_node["manager"]), len(per_node["worker"])] == [1, 1], per_node

        def both() -> str | None:
            text = swarm.runner.logs(name, prefix=True)
            want = [f"hello from {swarm.manager_id}", f"hello from {swarm.worker_id}"]
            return text if all(w in text for w in want) else None

        text = until("a line from each node in logs()", both)
        # The prefix names the task's slot and node: each line's own node.
        for line in text.splitlines():
            task, _, said = line.partition(" | ")
            assert task.startswith(f"{name}.") and said.split()[-1].startswith(task.rsplit("@", 1)[1]), line
    finally:
        assert swarm.runner.stop(name, timeout=2) is True
    assert not swarm.runner.exists(name)
    swarm.gone_everywhere(name)
    assert sorted(os.listdir(tmp_path)) == ["bye-1", "bye-2"]


def test_a_one_shot_that_exits_3_ends_exited_with_its_code_and_output(swarm: Swarm) -> None:
    name = swarm_name()
    swarm.runner.start(swarm.config(name, ["sh", "-c", "echo last words; exit 3"]))
    try:
        assert swarm.runner.wait(name, timeout=30) == 3
        status = swarm.runner.status(name)
        assert (status.state, status.exit_code) == (SessionState.EXITED, 3)
        assert status.reason is not None and "3" in status.reason
        assert swarm.runner.logs(name) == "last words"
        # A follow from the beginning ends by itself once the service has ended.
        assert list(swarm.runner.follow_logs(name, since=0, timeout=30)) == ["last words"]
        # An ended service is replaced by the next start of its name.
        again = swarm.runner.start(swarm.config(name, ["sh", "-c", "echo second; exit 0"]))
        assert again.name == name
        assert swarm.runner.wait(name, timeout=30) == 0
        assert swarm.runner.logs(name) == "second"
    finally:
        swarm.runner.stop(name, timeout=2)
    swarm.gone_everywhere(name)


def test_on_failure_2_is_two_restarts_counted_from_the_task_history(swarm: Swarm) -> None:
    name = swarm_name()
    swarm.runner.start(swarm.config(name, ["sh", "-c", "echo run; exit 4"], restart="on-failure:2"))
    try:
        assert swarm.runner.wait(name, timeout=60) == 4
        status = swarm.runner.status(name)
        assert (status.state, status.exit_code, status.restart_count) == (
            SessionState.EXITED,
            4,
            2,
        )
        assert swarm.runner.logs(name).splitlines() == ["run", "run", "run"]
    finally:
        swarm.runner.stop(name, timeout=2)


def test_names_match_exactly_and_duplicates_and_missing_names_raise(swarm: Swarm) -> None:
    name = swarm_name("bot")
    longer = f"{name}-2"
    swarm.runner.start(swarm.config(longer, ["sh", "-c", LOOP]))
    # A service kstlib did not create: listed, marked not managed.
    foreign = swarm.manager.services.create(
        swarm.image,
        command=["sleep", "300"],
        name=swarm_name("foreign"),
        networks=["host"],
        labels={RUN_LABEL: RUN},
    )
    try:
        # The swarm itself matches prefixes; kstlib never does.
        for call in (swarm.runner.status, swarm.runner.logs, swarm.runner.stop):
            with pytest.raises(SessionNotFoundError) as caught:
                call(name)
            assert (caught.value.name, caught.value.backend) == (name, "swarm")
        assert not swarm.runner.exists(name)
        swarm.runner.start(swarm.config(name, ["sh", "-c", LOOP]))
        with pytest.raises(SessionExistsError) as exists:
            swarm.runner.start(swarm.config(name, ["sh", "-c", LOOP]))
        assert (exists.value.name, exists.value.backend) == (name, "swarm")
        rows = {s.name: s for s in swarm.runner.list_sessions()}
        assert rows[name].managed and rows[longer].managed
        assert rows[foreign.name].managed is False
        assert rows[name].state is SessionState.RUNNING
        swarm.runner.stop(name, timeout=2)
        assert swarm.runner.status(longer).state is SessionState.RUNNING
    finally:
        foreign.remove()
        for each in (name, longer):
            if swarm.runner.exists(each):
                swarm.runner.stop(each, timeout=2)


def test_a_task_no_node_can_run_is_a_start_error_with_the_swarms_reason(swarm: Swarm) -> None:
    name = swarm_name()
    # An image the registry does not have: the node cannot get it.
    registry = swarm.env["KSTLIB_TEST_REGISTRY"]
    config = swarm.config(name, ["sleep", "30"]).with_overrides(
        image=f"{registry}/kstlib/{name}:1"
    )
    with pytest.raises(SessionStartError) as caught:
        swarm.runner.start(config)
    assert "No such image" in caught.value.reason
    assert not swarm.runner.exists(name)
    # A placement no node satisfies: the scheduler's own words.
    other = swarm_name()
    with pytest.raises(SessionStartError) as pending:
        swarm.runner.start(
            swarm.config(other, ["sleep", "30"], placement=["node.labels.role==nowhere"])
        )
    assert "no suitable node" in pending.value.reason
    assert not swarm.runner.exists(other)


def running_ids(swarm: Swarm, name: str) -> set[str]:
    return {
        c.id
        for cs in swarm.containers(name).values()
        for c in cs
        if c.attrs.get("State") == "running"
    }


def test_scale_and_rolling_restart(swarm: Swarm) -> None:
    name = swarm_name()
    first = swarm.runner.start(swarm.config(name, ["sh", "-c", LOOP], placement=["spread=node.id"]))
    try:
        assert len(first.nodes) == 1
        scaled = swarm.runner.scale(name, 2)
        assert scaled.state is SessionState.RUNNING
        # Two tasks run; where is the scheduler's choice (spread is a preference,
        # and a busy node may get both): placement has its own test above.
        assert set(scaled.nodes) <= {swarm.manager_id, swarm.worker_id} and scaled.nodes
        until("two running tasks", lambda: len(running_ids(swarm, name)) == 2 or None)
        before = {c.id for cs in swarm.containers(name).values() for c in cs}
        restarted = swarm.runner.restart(name)
        assert restarted.state is SessionState.RUNNING
        running = running_ids(swarm, name)
        assert len(running) == 2 and not running & before
        with pytest.raises(SessionConfigError):
            swarm.runner.scale(name, 0)
    finally:
        swarm.runner.stop(name, timeout=2)
    swarm.gone_everywhere(name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_host_mode_published_port_answers(swarm: Swarm) -> None:
    port = _free_port()
    name = swarm_name()
    command = [
        "sh",
        "-c",
        f"echo served > /tmp/i; trap 'exit 0' TERM; httpd -f -p {port} -h /tmp & wait",
    ]
    swarm.runner.start(
        swarm.config(name, command, ports=[f"{port}:{port}"], placement=["node.role==worker"])
    )
    try:
        service = swarm.manager.services.get(name)
        published = service.attrs["Spec"]["EndpointSpec"]["Ports"]
        assert published == [
            {"Protocol": "tcp", "PublishedPort": port, "TargetPort": port, "PublishMode": "host"}
        ]

        def answer() -> bytes | None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/i", timeout=2) as r:
                    return bytes(r.read())
            except OSError:
                return None

        assert until("the task's port to answer", answer, timeout=15) == b"served\n"
    finally:
        swarm.runner.stop(name, timeout=2)


def test_attach_and_exec_say_what_a_manager_cannot_do(swarm: Swarm) -> None:
    with pytest.raises(SessionAttachError, match="cannot attach a terminal to a task"):
        swarm.runner.attach("anything")
    with pytest.raises(SessionError, match="cannot run a command in a task"):
        swarm.runner.exec("anything", ["true"])


def test_a_worker_endpoint_is_not_a_manager(swarm: Swarm) -> None:
    runner = SwarmRunner(base_url=swarm.env["KSTLIB_TEST_SWARM_WORKER"], timeout=10)
    with pytest.raises(ContainerRuntimeNotFoundError, match="worker node"):
        runner.status("anything")
    # The machine's own engine is in no swarm at all.
    outside = SwarmRunner(base_url=DOCKER_URL, timeout=10)
    with pytest.raises(ContainerRuntimeNotFoundError, match="swarm state is 'inactive'") as caught:
        outside.list_sessions()
    assert caught.value.endpoints == (DOCKER_URL,)


def test_the_session_manager_runs_a_swarm_session(swarm: Swarm) -> None:
    name = swarm_name()
    session = SessionManager(
        name,
        backend="swarm",
        base_url=swarm.env["KSTLIB_TEST_SWARM_MANAGER"],
        image=swarm.image,
        command=["sh", "-c", "echo booting; sleep 1; echo ready; while :; do sleep 1; done"],
        replicas=2,
        stop_timeout=2,
        labels={RUN_LABEL: RUN},
    )
    session.start()
    try:
        assert session.wait_for_log("^ready$", timeout=30) == "ready"
        assert session.status().state is SessionState.RUNNING
        assert len(session.status().nodes) == 2
    finally:
        assert session.stop(timeout=2) is True
    swarm.gone_everywhere(name)


def test_registry_credentials_go_with_the_service_to_the_node_that_pulls(
    swarm: Swarm, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kstlib.ops import RegistryAuth

    registry = swarm.env["KSTLIB_TEST_AUTH_REGISTRY"]
    with open(swarm.env["KSTLIB_TEST_REGISTRY_CREDENTIALS"], encoding="utf-8") as f:
        user, password = f.read().split()[:2]
    # A repository of its own on the login registry: no node has it yet.
    repository = f"{registry}/kstlib/{swarm_name('auth')}"
    swarm.manager.images.get(swarm.image).tag(repository, "1")
    pushed = swarm.manager.images.push(
        repository, "1", auth_config={"username": user, "password": password}
    )
    assert '"error"' not in pushed, pushed
    swarm.manager.images.remove(f"{repository}:1")
    worker_only = ["node.labels.role==worker"]
    name = swarm_name()
    try:
        with pytest.raises(SessionStartError, match="No such image"):
            swarm.runner.start(
                swarm.config(name, ["sleep", "30"], placement=worker_only).with_overrides(
                    image=f"{repository}:1"
                )
            )
        assert not swarm.runner.exists(name)
        monkeypatch.setenv("KSTLIB_SWARM_TEST_PW", password)
        status = swarm.runner.start(
            swarm.config(name, ["sh", "-c", LOOP], placement=worker_only).with_overrides(
                image=f"{repository}:1",
                registry_auth=RegistryAuth(username=user, password_env="KSTLIB_SWARM_TEST_PW"),
            )
        )
        assert status.state is SessionState.RUNNING
        assert status.nodes == (swarm.worker_id,)
        swarm.runner.stop(name, timeout=2)
    finally:
        if swarm.runner.exists(name):
            swarm.runner.stop(name, timeout=2)
        swarm.gone_everywhere(name)
        with contextlib.suppress(Exception):
            swarm.worker.images.remove(f"{repository}:1")


def test_follow_logs_gathers_both_nodes_and_ends_when_the_service_goes(swarm: Swarm) -> None:
    name = swarm_name()
    command = [
        "sh",
        "-c",
        "trap 'exit 0' TERM; i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.3; done",
    ]
    swarm.runner.start(swarm.config(name, command, replicas=2, placement=["spread=node.id"]))
    stopper: threading.Thread | None = None
    try:
        # A silent wait runs out at the follow's own deadline.
        with pytest.raises(SessionTimeoutError, match="the follow timed out after 0.5 s"):
            for _ in swarm.runner.follow_logs(name, timeout=0.5):
                pass  # lines come, but the deadline ends the follow all the same
        seen: set[str] = set()
        lines = swarm.runner.follow_logs(name, prefix=True, timeout=60)
        for line in lines:
            task, _, said = line.partition(" | ")
            assert said.startswith("tick "), line
            seen.add(task.rsplit("@", 1)[1])
            if len(seen) == 2 and stopper is None:
                # The swarm's own followed log never ends; kstlib's ends with the service.
                stopper = threading.Thread(target=swarm.runner.stop, args=(name,), daemon=True)
                stopper.start()
        assert seen == {swarm.manager_id[:12], swarm.worker_id[:12]}
    finally:
        if stopper is not None:
            stopper.join(60)
        if swarm.runner.exists(name):
            swarm.runner.stop(name, timeout=2)
    assert not swarm.runner.exists(name)


def test_a_global_service_runs_one_task_on_every_node(swarm: Swarm) -> None:
    name = swarm_name()
    status = swarm.runner.start(swarm.config(name, ["sh", "-c", LOOP], mode="global"))
    try:
        assert status.state is SessionState.RUNNING

        def on_both() -> tuple[str, ...] | None:
            nodes = swarm.runner.status(name).nodes
            return nodes if len(nodes) == 2 else None

        assert set(until("a task on each node", on_both)) == {swarm.manager_id, swarm.worker_id}
        with pytest.raises(SessionConfigError, match="global"):
            swarm.runner.scale(name, 3)
    finally:
        swarm.runner.stop(name, timeout=2)
    swarm.gone_everywhere(name)


def test_concurrent_starts_of_one_name_have_one_winner(swarm: Swarm) -> None:
    from concurrent.futures import ThreadPoolExecutor

    name = swarm_name()
    config = swarm.config(name, ["sh", "-c", LOOP])

    def attempt(_: int) -> str:
        try:
            SwarmRunner(base_url=swarm.env["KSTLIB_TEST_SWARM_MANAGER"]).start(config)
        except SessionExistsError:
            return "exists"
        return "started"

    try:
        with ThreadPoolExecutor(4) as pool:
            outcomes = sorted(pool.map(attempt, range(4)))
        assert outcomes == ["exists", "exists", "exists", "started"]
        assert [s.name for s in swarm.manager.services.list() if s.name == name] == [name]
    finally:
        swarm.runner.stop(name, timeout=2)


def test_follow_logs_with_lines_yields_the_backlog_then_follows(swarm: Swarm) -> None:
    # One replica prints 1..5, then waits for the test's gate before "later":
    # the backlog and the followed line come in a known order, without timing.
    name = swarm_name()
    gate = f"/tmp/{name}.gate"
    script = f"for i in 1 2 3 4 5; do echo line $i; done; while [ ! -e {gate} ]; do sleep 0.1; done; echo later; sleep 60"
    swarm.runner.start(swarm.config(name, ["sh", "-c", script], placement=["node.role==manager"]))
    try:
        until("five lines", lambda: swarm.runner.logs(name).count("line ") == 5 or None)
        lines = swarm.runner.follow_logs(name, lines=2, timeout=60)
        assert [next(lines), next(lines)] == ["line 4", "line 5"]
        swarm.manager.containers.list(filters={"label": f"com.docker.swarm.service.name={name}"})[
            0
        ].exec_run(["touch", gate])
        assert next(lines) == "later"
        lines.close()
    finally:
        swarm.runner.stop(name, timeout=2)
