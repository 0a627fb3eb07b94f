"""Concurrency: 8 threads per backend start, inspect and stop sessions on every backend at once.

Each thread starts its sessions (25 on tmux, 12 on a container engine, where a
start costs the engine ~0.3 s), inspects them, then stops them; 5 of the
names of every thread are shared by all threads (same-name races: exactly
one winner, the others get SessionExistsError). The three backends run at
the same time. Afterwards no session is lost (every start that won is seen
running) and none is left behind.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kstlib.ops import (
    OpsError,
    SessionConfig,
    SessionExistsError,
    SessionNotFoundError,
    SessionState,
    TmuxRunner,
)
from kstlib.ops.container import ContainerRunner

from ..conftest import ENGINE_URLS, TEST_IMAGE, engine_missing
from .conftest import Report, log_files, shared_runner

pytestmark = pytest.mark.faults

THREADS = int(os.environ.get("KSTLIB_FAULTS_THREADS", "8"))
PER_THREAD = {
    "tmux": int(os.environ.get("KSTLIB_FAULTS_PER_THREAD", "25")),
    "container": int(os.environ.get("KSTLIB_FAULTS_PER_THREAD_CONTAINER", "12")),
}


def per_thread(backend: str) -> int:
    return PER_THREAD["tmux" if backend == "tmux" else "container"]

RACES = 5  # names every thread tries to start


@pytest.fixture
def runners() -> Iterator[dict[str, Any]]:
    import shutil

    if shutil.which("tmux") is None:
        engine_missing("tmux", "tmux is not on PATH")
    tmux = TmuxRunner(socket_name=f"kf-conc-{uuid.uuid4().hex[:6]}")
    shared_runner("docker")
    shared_runner("podman")
    yield {
        "tmux": tmux,
        "docker": ContainerRunner(runtime="docker", base_url=ENGINE_URLS["docker"], timeout=120),
        "podman": ContainerRunner(runtime="podman", base_url=ENGINE_URLS["podman"], timeout=120),
    }
    tmux.kill_server()


class Outcome:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.started: list[str] = []
        self.seen_running: set[str] = set()
        self.stopped: list[str] = []
        self.race_wins: Counter[str] = Counter()
        self.race_losses: Counter[str] = Counter()
        self.unexpected: list[str] = []
        self.ops = 0
        self.finished = 0.0


def _config(backend: str, name: str) -> SessionConfig:
    if backend == "tmux":
        return SessionConfig(name=name, command=["sleep", "300"])
    return SessionConfig(name=name, backend="container", image=TEST_IMAGE,
                         command=["sleep", "300"])


def _worker(backend: str, runner: Any, prefix: str, t: int, out: Outcome,
            barrier: threading.Barrier) -> None:
    mine: list[str] = []
    names = [f"{prefix}-r{i}" if i < RACES else f"{prefix}-t{t}-{i}" for i in range(per_thread(backend))]

    def guard(op: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except OpsError:
            raise
        except BaseException as err:  # escaped the tree
            with out.lock:
                out.unexpected.append(f"{backend} {op}: {type(err).__name__}: {err}")
            raise

    barrier.wait()
    for name in names:
        try:
            st = guard("start", lambda name=name: runner.start(_config(backend, name)))
        except SessionExistsError:
            with out.lock:
                out.race_losses[name] += 1
                if not name.startswith(f"{prefix}-r"):
                    out.unexpected.append(f"{backend}: lost a start of its own name {name}")
            continue
        except OpsError as err:
            with out.lock:
                out.unexpected.append(f"{backend} start {name}: {type(err).__name__}: {err}")
            continue
        with out.lock:
            out.started.append(name)
            out.ops += 1
            if name.startswith(f"{prefix}-r"):
                out.race_wins[name] += 1
        assert st.name == name
        mine.append(name)
    for name in mine:
        try:
            st = guard("status", lambda name=name: runner.status(name))
            exists = guard("exists", lambda name=name: runner.exists(name))
        except OpsError as err:
            with out.lock:
                out.unexpected.append(f"{backend} status {name}: {type(err).__name__}: {err}")
            continue
        with out.lock:
            out.ops += 2
            if st.state is SessionState.RUNNING and exists:
                out.seen_running.add(name)
    for name in mine:
        try:
            guard("stop", lambda name=name: runner.stop(name, graceful=False))
        except OpsError as err:
            with out.lock:
                out.unexpected.append(f"{backend} stop {name}: {type(err).__name__}: {err}")
            continue
        with out.lock:
            out.stopped.append(name)
            out.ops += 1
    with out.lock:
        out.finished = max(out.finished, time.monotonic())


def test_threads_start_inspect_and_stop_on_every_backend_at_once(
    runners: dict[str, Any], state_home: str, report: Report
) -> None:
    run = uuid.uuid4().hex[:6]
    outcomes = {backend: Outcome() for backend in runners}
    barrier = threading.Barrier(THREADS * len(runners))
    threads = []
    for backend, runner in runners.items():
        prefix = f"kf-c{backend[0]}{run}"
        for t in range(THREADS):
            threads.append(threading.Thread(
                target=_worker, args=(backend, runner, prefix, t, outcomes[backend], barrier),
                daemon=True))
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(480)
    elapsed = time.monotonic() - began
    assert not any(t.is_alive() for t in threads), "a worker is stuck"
    try:
        for backend, out in outcomes.items():
            prefix = f"kf-c{backend[0]}{run}"
            assert out.unexpected == [], out.unexpected
            races = [f"{prefix}-r{i}" for i in range(RACES)]
            for name in races:
                assert out.race_wins[name] == 1, f"{backend} {name}: {out.race_wins[name]} winners"
                assert out.race_losses[name] == THREADS - 1
            expected = THREADS * (per_thread(backend) - RACES) + RACES
            assert len(out.started) == len(set(out.started)) == expected
            assert out.seen_running == set(out.started), "a started session was lost"
            assert sorted(out.stopped) == sorted(out.started)
            left = {s.name for s in runners[backend].list_sessions()}
            assert not {n for n in left if n.startswith(prefix)}, f"{backend}: left behind"
            report.count(f"concurrency: {backend} sessions started, inspected, stopped", expected)
            report.count(f"concurrency: {backend} same-name races (1 winner of {THREADS})", RACES)
            report.figure(
                f"concurrency: {backend}",
                f"{THREADS} threads x {per_thread(backend)} names: {expected} sessions, "
                f"{out.ops} calls in {out.finished - began:.1f} s "
                f"(the three backends at once: {elapsed:.1f} s)",
            )
        assert log_files(state_home) == []
    finally:
        for backend, runner in runners.items():
            prefix = f"kf-c{backend[0]}{run}"
            for st in runner.list_sessions():
                if st.name.startswith(prefix):
                    with contextlib.suppress(SessionNotFoundError):
                        runner.stop(st.name, graceful=False)
