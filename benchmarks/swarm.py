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

Everything it creates is named ``kb<pid>-...`` and removed at the end.
"""

from __future__ import annotations

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
    finally:
        for name in made:
            try:
                api.remove_service(name)
            except docker.errors.NotFound:
                pass
        api.close()
