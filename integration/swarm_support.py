"""What the swarm backend's tests share: the two-node harness swarm, seen from both nodes.

``engines.sh swarm-up`` (idempotent) runs a manager (127.0.0.1) and a worker
(127.0.0.2, labelled ``role=worker``); the tests drive the swarm through
kstlib's :class:`~kstlib.ops.swarm.SwarmRunner` on the manager and look at
each node's own engine (docker SDK) to check what really runs where.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from kstlib.ops.models import SessionConfig
from kstlib.ops.swarm import SwarmRunner

from .conftest import engine_missing, harness

T = TypeVar("T")
#: Every service these tests start carries this label, so the fixture removes leftovers.
RUN_LABEL = "kstlib.test.swarm"
RUN = uuid.uuid4().hex[:8]


def until(what: str, probe: Callable[[], T | None], timeout: float = 30.0) -> T:
    """Poll PROBE until it returns something truthy; fail with WHAT after TIMEOUT."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(0.1)
    pytest.fail(f"{what} within {timeout:.0f} s (last: {last!r})")


def swarm_name(prefix: str = "sw") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class Swarm:
    env: dict[str, str]
    runner: SwarmRunner
    manager: Any  # docker.DockerClient on the manager's engine
    worker: Any  # docker.DockerClient on the worker's own engine
    manager_id: str
    worker_id: str
    image: str

    def config(self, name: str, command: list[str], **options: Any) -> SessionConfig:
        labels = {RUN_LABEL: RUN, **options.pop("labels", {})}
        options.setdefault("stop_timeout", 2)
        return SessionConfig(
            name=name,
            backend="swarm",
            image=self.image,
            command=command,
            labels=labels,
            **options,
        )

    def containers(self, service: str) -> dict[str, list[Any]]:
        """The service's containers on each node's own engine (stopped ones too)."""
        flt = {"label": f"com.docker.swarm.service.name={service}"}
        return {
            "manager": self.manager.containers.list(all=True, sparse=True, filters=flt),
            "worker": self.worker.containers.list(all=True, sparse=True, filters=flt),
        }

    def gone_everywhere(self, service: str) -> None:
        """The swarm has no such service, and neither node any container of it."""
        assert service not in {s.name for s in self.manager.services.list()}
        until(
            f"no container of {service} on either node",
            lambda: not any(self.containers(service).values()),
            timeout=20,
        )


def auth_image(swarm: Swarm) -> str:
    """The test image pushed to the login registry under a new name: no node has it."""
    registry = swarm.env["KSTLIB_TEST_AUTH_REGISTRY"]
    with open(swarm.env["KSTLIB_TEST_REGISTRY_CREDENTIALS"], encoding="utf-8") as f:
        user, password = f.read().split()[:2]
    repository = f"{registry}/kstlib/{swarm_name('wra')}"
    swarm.manager.images.get(swarm.image).tag(repository, "1")
    pushed = swarm.manager.images.push(
        repository, "1", auth_config={"username": user, "password": password}
    )
    assert '"error"' not in pushed, pushed
    swarm.manager.images.remove(f"{repository}:1")
    return f"{repository}:1"


def swarm_up() -> tuple[dict[str, str], str, Any, Any]:
    """Bring the harness swarm up (or fail/skip): its env, registry, manager and worker clients."""
    docker = pytest.importorskip("docker", reason="the docker SDK is not installed")
    env = harness("swarm-up", "the two-node test swarm")
    registry = env.get("KSTLIB_TEST_REGISTRY")
    manager_url = env.get("KSTLIB_TEST_SWARM_MANAGER")
    worker_url = env.get("KSTLIB_TEST_SWARM_WORKER")
    if not (registry and manager_url and worker_url):
        engine_missing("the two-node test swarm", f"'engines.sh env' lacks its endpoints: {env}")
    assert registry and manager_url and worker_url
    manager = docker.DockerClient(base_url=manager_url, timeout=30)
    worker = docker.DockerClient(base_url=worker_url, timeout=30)
    return env, registry, manager, worker


def open_swarm() -> Iterator[Swarm]:
    """Bring the harness swarm up (or fail/skip), yield it, remove this run's services."""
    env, registry, manager, worker = swarm_up()
    manager_url = env["KSTLIB_TEST_SWARM_MANAGER"]
    swarm = Swarm(
        env=env,
        runner=SwarmRunner(base_url=manager_url, timeout=30),
        manager=manager,
        worker=worker,
        manager_id=manager.info()["Swarm"]["NodeID"],
        worker_id=worker.info()["Swarm"]["NodeID"],
        image=f"{registry}/kstlib/pulltest:1",
    )
    try:
        yield swarm
    finally:
        for service in manager.services.list(filters={"label": f"{RUN_LABEL}={RUN}"}):
            service.remove()
        manager.close()
        worker.close()


def restore_worker(env: dict[str, str]) -> None:
    """Bring the worker back after a test killed it (``engines.sh swarm-up``, ~11 s)."""
    harness("swarm-up", "the two-node test swarm")


def lab_config(home: Path, manager: str, worker: str) -> None:
    """A config file under ``home/config`` whose swarm engine ``lab`` lists the worker in nodes:."""
    (home / "config" / "kstlib").mkdir(parents=True)
    (home / "config" / "kstlib" / "kstlib.conf.yml").write_text(
        "ops:\n"
        "  engines:\n"
        "    lab:\n"
        "      backend: swarm\n"
        f"      base_url: {manager}\n"
        f"      nodes: [{worker}]\n",
        encoding="utf-8",
    )
