"""Containers under concurrent hands: stops that race, follows that lose their container.

Also what a status tells of a container its restart policy runs again (the
last run's exit code and end time) and that a container has no windows.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from kstlib.ops import SessionNotFoundError, SessionState
from kstlib.ops.container import ContainerRunner

from . import test_containers as base

runtime, runner, names = base.runtime, base.runner, base.names
cfg, wait_for = base.cfg, base.wait_for

# A hang guard only: a join that never returns fails the test instead of blocking the run.
HANG_S = 60.0
TICKING = ["sh", "-c", "while true; do echo tick; sleep 0.02; done"]


def _in_threads(count: int, target: Callable[[], object]) -> list[object]:
    results: list[object] = []
    lock = threading.Lock()
    barrier = threading.Barrier(count)

    def run() -> None:
        barrier.wait(HANG_S)
        try:
            value: object = target()
        except Exception as err:  # the test reports every thread's outcome
            value = err
        with lock:
            results.append(value)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(HANG_S)
        assert not thread.is_alive(), "a thread hung"
    return results


@pytest.mark.parametrize("graceful", [False, True], ids=["kill", "graceful"])
def test_five_threads_stopping_one_container_all_return_true(
    runner: ContainerRunner, names: Callable[..., str], graceful: bool
) -> None:
    for _ in range(3):  # the race is in the engine: give it several chances
        name = names()
        runner.start(cfg(name, ["sleep", "300"]))
        results = _in_threads(
            5, lambda name=name: runner.stop(name, graceful=graceful, timeout=2)
        )
        # A stop that began after another one had removed the container finds no
        # such session (as on every backend); one that ran while it was being
        # removed got what it wanted: True. Nothing else.
        assert True in results
        assert all(r is True or isinstance(r, SessionNotFoundError) for r in results), results
        # "Returns once the container is gone": the name is free for everyone.
        assert not runner.exists(name)


def test_follow_ends_cleanly_when_the_container_is_removed_elsewhere(
    runner: ContainerRunner, names: Callable[..., str]
) -> None:
    # Docker answered a follow that reconnects to a container being removed
    # with HTTP 409 "dead or marked for removal" (about one try in two here).
    rounds = 12 if runner.runtime == "docker" else 4
    for _ in range(rounds):
        name = names()
        runner.start(cfg(name, TICKING))
        first = threading.Event()
        outcome: list[object] = []

        def follow(
            name: str = name, first: threading.Event = first, outcome: list[object] = outcome
        ) -> None:
            try:
                for _line in runner.follow_logs(name):
                    first.set()
                outcome.append("ended")
            except Exception as err:  # reported by the assertion below
                outcome.append(err)
            finally:
                first.set()

        thread = threading.Thread(target=follow)
        thread.start()
        assert first.wait(HANG_S)
        stopper = ContainerRunner(runtime=runner.runtime, base_url=runner.base_url, timeout=20)
        assert stopper.stop(name, graceful=False) is True
        thread.join(HANG_S)
        assert not thread.is_alive(), "the follow did not end"
        assert outcome == ["ended"]


def test_restarting_container_tells_its_last_exit(
    runner: ContainerRunner, names: Callable[..., str]
) -> None:
    name = names()
    st = runner.start(cfg(name, ["sh", "-c", "sleep 0.3; exit 5"], restart="on-failure:3"))
    assert st.window_count == 0 and st.last_exit_code is None and st.last_exited_at is None
    seen: list[tuple[SessionState, int, int | None, bool]] = []

    def settled() -> bool:
        st = runner.status(name)
        seen.append((st.state, st.restart_count, st.last_exit_code, st.last_exited_at is not None))
        return st.state is SessionState.EXITED and st.restart_count == 3

    wait_for(settled, timeout=60, what="three restarts")
    final = runner.status(name)
    assert (final.exit_code, final.last_exit_code, final.window_count) == (5, 5, 0)
    assert final.last_exited_at is not None and final.created_at is not None
    assert final.last_exited_at > final.created_at
    for state, restarts, code, has_time in seen:
        if restarts or code is not None:
            # Once a run has ended its time is known; its code, unless the next run started
            # (the engines reset it to 0 then): never a made-up 0.
            assert has_time and code in (5, None), seen
        if state is SessionState.EXITED:
            assert code == 5, seen
    listed = [s for s in runner.list_sessions() if s.name == name]
    assert [s.window_count for s in listed] == [0]
