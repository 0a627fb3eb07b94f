"""The swarm rows of the benchmark: kstlib's SwarmRunner against the docker SDK doing the same work.

Needs the harness's two-node swarm (``engines.sh swarm-up``; its manager from
``KSTLIB_TEST_SWARM_MANAGER``). Rows, each kstlib vs raw:

* ``status``: ``SwarmRunner.status`` vs ``inspect_service`` + ``tasks`` +
  ``nodes`` (the three calls a status needs to name down nodes);
* ``logs(100)``: ``SwarmRunner.logs(lines=100)`` vs ``service_logs(tail=100)``
  read whole (a service that printed 300 lines);
* ``start-to-running``: ``SwarmRunner.start`` (returns once the task runs) vs
  ``create_service`` and polling ``tasks`` until one runs; the service is
  removed between samples, untimed.
* ``stop-until-gone``: ``SwarmRunner(node_urls=[worker]).stop`` of two spread
  replicas (returns once no node has a task container left) vs
  ``remove_service`` and polling the tasks, then each node's containers, until
  none is left; the services are started untimed.

Everything it creates is named ``kb<pid>-...`` and removed at the end.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from typing import Any

IMAGE_PATH = "kstlib/pulltest:1"
POLL = 0.01


def bench_swarm(bench: Any, variant: Any) -> None:
    """Measure the swarm rows into ``bench`` (``variant`` is bench.Variant)."""
    import docker
    from docker.types import ContainerSpec, RestartPolicy, TaskTemplate

    from kstlib.ops.models import SessionConfig
    from kstlib.ops.swarm import SwarmRunner

    manager = os.environ.get("KSTLIB_TEST_SWARM_MANAGER")
    registry = os.environ.get("KSTLIB_TEST_REGISTRY")
    if not manager or not registry:
        bench.notes.append("swarm: the harness swarm is not up (engines.sh swarm-up), not measured")
        return
    image = f"{registry}/{IMAGE_PATH}"
    api = docker.APIClient(base_url=manager, version="auto", timeout=30)
    runner = SwarmRunner(base_url=manager)
    prefix = f"kb{os.getpid()}"
    counter = itertools.count()
    made: list[str] = []

    def fresh(tag: str) -> str:
        name = f"{prefix}-{tag}-{next(counter)}"
        made.append(name)
        return name

    def raw_running(name: str) -> None:
        while not any(t["Status"]["State"] == "running" for t in api.tasks(filters={"name": name})):
            time.sleep(POLL)

    command = ["sh", "-c", "seq 1 300; while :; do sleep 1; done"]
    try:
        steady = fresh("steady")
        runner.start(SessionConfig(name=steady, backend="swarm", image=image, command=command))
        time.sleep(1.0)  # the 300 lines are written
        bench.facts["swarm_nodes"] = len(api.nodes())

        def raw_status(_: object) -> None:
            api.inspect_service(steady)
            api.tasks(filters={"name": steady})
            api.nodes()

        bench.measure(
            "swarm",
            "status",
            {
                "kstlib": variant(lambda _: runner.status(steady)),
                "raw": variant(raw_status),
            },
            note="raw: inspect_service + tasks + nodes",
        )
        bench.measure(
            "swarm",
            "logs(100)",
            {
                "kstlib": variant(lambda _: runner.logs(steady, 100)),
                "raw": variant(
                    lambda _: b"".join(api.service_logs(steady, stdout=True, stderr=True, tail=100))
                ),
            },
        )
        runner.stop(steady, timeout=1)

        def kstlib_prep() -> str:
            return fresh("k")

        def raw_prep() -> str:
            return fresh("r")

        def kstlib_start(name: str) -> None:
            runner.start(
                SessionConfig(name=name, backend="swarm", image=image, command=["sleep", "300"])
            )
            api.remove_service(name)  # untimed below: removal is the next prep's cost

        def raw_start(name: str) -> None:
            template = TaskTemplate(
                ContainerSpec(image, ["sleep", "300"], init=True),
                restart_policy=RestartPolicy(condition="none"),
                networks=["host"],
            )
            api.create_service(template, name=name)
            raw_running(name)
            api.remove_service(name)

        bench.measure(
            "swarm",
            "start-to-running",
            {
                "kstlib": variant(kstlib_start, kstlib_prep),
                "raw": variant(raw_start, raw_prep),
            },
            heavy=True,
            note="includes one remove_service call each",
        )
        worker = os.environ.get("KSTLIB_TEST_SWARM_WORKER")
        if worker:
            _bench_stop(
                bench, variant, api, manager=manager, worker=worker, image=image, fresh=fresh
            )
    finally:
        for name in made:
            with contextlib.suppress(docker.errors.NotFound):
                api.remove_service(name)
        api.close()


def _bench_stop(
    bench: Any, variant: Any, api: Any, *, manager: str, worker: str, image: str, fresh: Any
) -> None:
    """The stop-until-gone row: kstlib's stop vs the raw calls and polls to the same end."""
    import docker

    from kstlib.ops.models import SessionConfig
    from kstlib.ops.swarm import SwarmRunner

    runner = SwarmRunner(base_url=manager, node_urls=[worker])
    nodes = [api, docker.APIClient(base_url=worker, version="auto", timeout=30)]
    loop = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]

    def started(tag: str) -> str:
        name = fresh(tag)
        config = SessionConfig(
            name=name,
            backend="swarm",
            image=image,
            command=loop,
            replicas=2,
            placement=["spread=node.id"],
            stop_timeout=1,
        )
        runner.start(config)
        return name

    def raw_stop(name: str) -> None:
        service_id = api.inspect_service(name)["ID"]
        api.remove_service(service_id)
        while [t for t in api.tasks(filters={"name": name}) if t["ServiceID"] == service_id]:
            time.sleep(POLL)
        label = {"label": f"com.docker.swarm.service.id={service_id}"}
        while any(node.containers(all=True, filters=label) for node in nodes):
            time.sleep(POLL)

    bench.measure(
        "swarm",
        "stop-until-gone",
        {
            "kstlib": variant(lambda name: runner.stop(name, timeout=1), lambda: started("sk")),
            "raw": variant(raw_stop, lambda: started("sr")),
        },
        heavy=True,
        note="two spread replicas, 1 s grace; until no node has a container of it",
    )
    nodes[1].close()
