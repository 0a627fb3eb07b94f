"""The engines harness's two-node Docker Swarm really is two nodes.

``engines.sh swarm-up`` (idempotent; ``make engines-down`` stops it) runs two
more dockerd beside the shared one, a manager on 127.0.0.1 and a worker on
127.0.0.2 labelled ``role=worker``, both pulling from the loopback registry.
These tests prove what a swarm backend will rely on, through the docker SDK
only: replicas spread over both nodes, service logs gathered from both, a
one-shot task's exit code, removal that leaves no container on either node,
and which published ports work without iptables (host network only).
"""

from __future__ import annotations

import os
import socket
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .conftest import engine_missing
from .swarm_support import swarm_up, until

docker = pytest.importorskip("docker", reason="the docker SDK is not installed")
from docker.types import (  # noqa: E402
    EndpointSpec,
    PlacementPreference,
    RestartPolicy,
    ServiceMode,
)

pytestmark = pytest.mark.docker

ENGINES = Path(__file__).resolve().parent / "engines" / "engines.sh"
LABEL = "kstlib.test.harness"
#: Seconds a task gets between SIGTERM and SIGKILL (the commands below trap TERM).
GRACE_NS = 3_000_000_000


@dataclass(frozen=True)
class Swarm:
    manager: Any  # docker.DockerClient on the manager's socket
    worker: Any  # docker.DockerClient on the worker's own engine
    manager_id: str
    worker_id: str
    image: str

    def containers(self, service: str) -> dict[str, list[Any]]:
        """The service's containers on each node's own engine (stopped ones too).

        sparse: no inspect per container (a task's container may be removed
        between the list and its inspect, a NotFound otherwise).
        """
        flt = {"label": f"com.docker.swarm.service.name={service}"}
        return {
            "manager": self.manager.containers.list(all=True, sparse=True, filters=flt),
            "worker": self.worker.containers.list(all=True, sparse=True, filters=flt),
        }


@pytest.fixture(scope="session")
def swarm() -> Iterator[Swarm]:
    _, registry, manager, worker = swarm_up()
    nodes = {n.id: n.attrs for n in manager.nodes.list()}
    worker_id = worker.info()["Swarm"]["NodeID"]
    manager_id = manager.info()["Swarm"]["NodeID"]
    assert set(nodes) == {manager_id, worker_id}, nodes
    assert all(n["Status"]["State"] == "ready" for n in nodes.values()), nodes
    assert nodes[worker_id]["Spec"]["Labels"].get("role") == "worker"
    assert nodes[manager_id]["ManagerStatus"]["Leader"] is True
    yield Swarm(manager, worker, manager_id, worker_id, f"{registry}/kstlib/pulltest:1")
    for svc in manager.services.list(filters={"label": LABEL}):
        svc.remove()
    manager.close()
    worker.close()


def service_name() -> str:
    return f"hx-{uuid.uuid4().hex[:10]}"


def running_tasks(service: Any, n: int) -> list[dict[str, Any]] | None:
    tasks = [t for t in service.tasks() if t["Status"]["State"] == "running"]
    return tasks if len(tasks) == n else None


def remove_and_wait_gone(swarm: Swarm, service: Any) -> None:
    name = service.name
    service.remove()
    until(
        f"no container of {name} left on either node",
        lambda: not any(swarm.containers(name).values()),
        timeout=30,
    )


def test_a_spread_service_runs_on_both_nodes_and_its_logs_come_from_both(swarm: Swarm) -> None:
    name = service_name()
    svc = swarm.manager.services.create(
        swarm.image,
        command=[
            "sh",
            "-c",
            "trap 'echo bye; exit 0' TERM; echo hello node=$NODE task=$TASK; "
            "while :; do sleep 1; done",
        ],
        name=name,
        # Service templates: each task learns its node, so its log line names it.
        env=["NODE={{.Node.ID}}", "TASK={{.Task.Name}}"],
        networks=["host"],
        mode=ServiceMode("replicated", replicas=2),
        preferences=[PlacementPreference("spread", "node.id")],
        restart_policy=RestartPolicy(condition="none"),
        stop_grace_period=GRACE_NS,
        labels={LABEL: "1"},
    )
    try:
        tasks = until("2 running tasks", lambda: running_tasks(svc, 2), timeout=60)
        assert {t["NodeID"] for t in tasks} == {swarm.manager_id, swarm.worker_id}
        # Each node's own engine runs one of them: the worker pulled the image itself.
        per_node = swarm.containers(name)
        assert [len(per_node["manager"]), len(per_node["worker"])] == [1, 1], per_node

        def both_nodes_logged() -> str | None:
            text = b"".join(svc.logs(stdout=True, stderr=True)).decode()
            want = (f"hello node={swarm.manager_id}", f"hello node={swarm.worker_id}")
            return text if all(w in text for w in want) else None

        text = until("a log line from each node through service logs", both_nodes_logged, timeout=60)
        assert sorted(line.split(" task=")[1].rsplit(".", 1)[0] for line in text.splitlines()) == [
            f"{name}.1",
            f"{name}.2",
        ]
        # details=True prefixes each line with the node, service and task ids that made it.
        for raw in svc.logs(stdout=True, stderr=True, details=True):
            details, _, line = raw.decode().partition(" ")
            attrs = dict(kv.split("=", 1) for kv in details.split(","))
            assert line.startswith(f"hello node={attrs['com.docker.swarm.node.id']} ")
            assert attrs["com.docker.swarm.service.id"] == svc.id
    finally:
        remove_and_wait_gone(swarm, svc)


def test_a_one_shot_task_on_the_labelled_worker_reports_its_exit_code(swarm: Swarm) -> None:
    name = service_name()
    svc = swarm.manager.services.create(
        swarm.image,
        command=["sh", "-c", "echo last words; exit 3"],
        name=name,
        networks=["host"],
        constraints=["node.labels.role==worker"],
        restart_policy=RestartPolicy(condition="none"),
        labels={LABEL: "1"},
    )
    try:
        ended = until(
            "the one-shot task to end",
            lambda: [
                t
                for t in svc.tasks()
                if t["Status"]["State"] in ("complete", "failed", "rejected", "shutdown")
            ],
            timeout=30,
        )
        task = ended[0]
        assert task["NodeID"] == swarm.worker_id
        assert task["Status"]["State"] == "failed", task["Status"]
        assert task["Status"]["ContainerStatus"]["ExitCode"] == 3, task["Status"]
        assert "3" in task["Status"]["Err"], task["Status"]
        assert (
            until(
                "its output through service logs",
                lambda: b"".join(svc.logs(stdout=True, stderr=True)).decode(),
                timeout=60,
            )
            == "last words\n"
        )
    finally:
        remove_and_wait_gone(swarm, svc)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_published_ports_work_through_the_host_network_only(swarm: Swarm) -> None:
    # No iptables here: the harness removed the routing mesh's ingress network,
    # so an ingress-mode port is refused up front instead of never answering.
    port = free_port()
    with pytest.raises(docker.errors.APIError, match="ingress"):
        swarm.manager.services.create(
            swarm.image,
            command=["sleep", "30"],
            name=service_name(),
            endpoint_spec=EndpointSpec(ports={port: port}),
            labels={LABEL: "1"},
        )
    # A task on the host network listens on the machine's own loopback.
    name = service_name()
    svc = swarm.manager.services.create(
        swarm.image,
        command=[
            "sh",
            "-c",
            f"echo served > /tmp/i; trap 'exit 0' TERM; httpd -f -p 127.0.0.1:{port} -h /tmp & wait",
        ],
        name=name,
        networks=["host"],
        constraints=["node.labels.role==worker"],
        restart_policy=RestartPolicy(condition="none"),
        stop_grace_period=GRACE_NS,
        labels={LABEL: "1"},
    )
    try:
        until("the task to run", lambda: running_tasks(svc, 1), timeout=30)

        def answer() -> bytes | None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/i", timeout=2) as r:
                    return bytes(r.read())
            except OSError:
                return None

        assert until("the host-network task to answer", answer, timeout=15) == b"served\n"
    finally:
        remove_and_wait_gone(swarm, svc)


def test_the_shared_engine_is_not_part_of_the_swarm(swarm: Swarm) -> None:
    shared = docker.DockerClient(
        base_url=os.environ.get("KSTLIB_TEST_DOCKER_URL", "unix:///var/run/docker.sock"),
        timeout=10,
    )
    try:
        info = shared.info()
    except docker.errors.DockerException as err:
        engine_missing("docker", str(err))
    finally:
        shared.close()
    assert info["Swarm"]["LocalNodeState"] == "inactive"
    assert info["Swarm"]["NodeID"] not in (swarm.manager_id, swarm.worker_id)
