"""Replacing an exited container from many threads at once: one winner, every loser "exists".

Issue 10 point 12 (containers): the name of an exited container is taken by
N concurrent ``start()`` calls, from threads and from processes. Exactly one must win; each of the others must
get ``SessionExistsError`` -- not a ``SessionStartError`` from the engine's
half-removed container (Podman answered HTTP 500 "does not exist in database"
in 31 of 70 losing starts before the fix).
"""

from __future__ import annotations

import collections
import multiprocessing
import threading
from collections.abc import Callable
from typing import Any

from kstlib.ops.container import ContainerRunner
from kstlib.ops.exceptions import SessionExistsError
from kstlib.ops.models import SessionConfig

from .test_containers import cfg, names, runner, runtime

__all__ = ["names", "runner", "runtime"]  # fixtures

ROUNDS = 6
CONTENDERS = 8


def test_concurrent_replacement_of_an_exited_container_has_one_winner(
    runner: ContainerRunner, names: Callable[..., str]
) -> None:
    outcomes: collections.Counter[str] = collections.Counter()
    surprises: list[str] = []
    for _ in range(ROUNDS):
        name = names("race")
        runner.start(cfg(name, ["true"]))
        assert runner.wait(name, timeout=30) == 0  # exited: the name is free to replace
        config: SessionConfig = cfg(name, ["sleep", "60"])
        barrier = threading.Barrier(CONTENDERS)
        results: list[str] = []

        def contend(
            config: SessionConfig, barrier: threading.Barrier, results: list[str]
        ) -> None:
            mine = ContainerRunner(runtime=runner.runtime, base_url=runner.base_url, timeout=30)
            barrier.wait()
            try:
                mine.start(config)
                results.append("won")
            except SessionExistsError:
                results.append("exists")
            except Exception as err:  # what the test is about: no other outcome
                results.append(type(err).__name__)
                surprises.append(f"{type(err).__name__}: {err}")

        threads = [
            threading.Thread(target=contend, args=(config, barrier, results))
            for _ in range(CONTENDERS)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        outcomes.update(results)
        assert results.count("won") == 1, (results, surprises)
        assert runner.status(name).is_running
    assert outcomes == {"won": ROUNDS, "exists": ROUNDS * (CONTENDERS - 1)}, surprises


def _contend_in_process(runtime: str, base_url: str, config: SessionConfig, barrier: Any,
                        results: Any) -> None:
    try:  # every contender reports, whatever happens to it
        runner = ContainerRunner(runtime=runtime, base_url=base_url, timeout=30)
        barrier.wait(timeout=60)
        runner.start(config)
        results.put("won")
    except SessionExistsError:
        results.put("exists")
    except Exception as err:
        results.put(f"{type(err).__name__}: {err}")


def test_concurrent_replacement_from_many_processes_has_one_winner(
    runner: ContainerRunner, names: Callable[..., str]
) -> None:
    # forkserver, not fork: a fork of this threaded test process can inherit a lock
    # that another thread held at that moment, and hang the child for good.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    for _ in range(3):
        name = names("race")
        runner.start(cfg(name, ["true"]))
        assert runner.wait(name, timeout=30) == 0
        config: SessionConfig = cfg(name, ["sleep", "60"])
        barrier = context.Barrier(CONTENDERS)
        results = context.Queue()
        procs = [
            context.Process(
                target=_contend_in_process,
                args=(runner.runtime, runner.base_url, config, barrier, results),
            )
            for _ in range(CONTENDERS)
        ]
        for p in procs:
            p.start()
        outcomes = sorted(results.get(timeout=120) for _ in procs)
        for p in procs:
            p.join(timeout=60)
        assert [p.exitcode for p in procs] == [0] * CONTENDERS
        assert outcomes == ["exists"] * (CONTENDERS - 1) + ["won"], outcomes
