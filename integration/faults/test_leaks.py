"""No leaks: many start/status/logs/stop cycles leave no fd, thread, session, server or log.

tmux runs 1 000 cycles beside a session that keeps its server up (as a
supervisor's server lives on while its workers come and go), then 100 in which
each stop ends the server and each start makes a new one (with its collector);
containers fewer (each container start costs the engine far more than a tmux
session: the report says how many ran).
"""

from __future__ import annotations

import gc
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from kstlib.ops import SessionConfig, SessionState, TmuxRunner
from kstlib.ops.container import ContainerRunner

from ..conftest import ENGINE_URLS, TEST_IMAGE, engine_missing
from .conftest import Report, log_files, shared_runner

pytestmark = pytest.mark.faults

CYCLES = {
    "tmux": int(os.environ.get("KSTLIB_FAULTS_CYCLES_TMUX", "1000")),
    "docker": int(os.environ.get("KSTLIB_FAULTS_CYCLES_DOCKER", "30")),
    "podman": int(os.environ.get("KSTLIB_FAULTS_CYCLES_PODMAN", "20")),
    # Cycles in which each stop ends the tmux server (a new server and collector each).
    "tmux-server": int(os.environ.get("KSTLIB_FAULTS_CYCLES_TMUX_SERVER", "100")),
}
WARMUP = 5


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def native_threads() -> int:
    return len(os.listdir("/proc/self/task"))


def settle(baseline: tuple[int, int, int], timeout: float = 10) -> tuple[int, int, int]:
    """Counts of (fds, Python threads, native threads), given time to drop to the baseline."""
    deadline = time.monotonic() + timeout
    while True:
        gc.collect()
        now = (fds(), threading.active_count(), native_threads())
        if all(n <= b for n, b in zip(now, baseline, strict=True)) or time.monotonic() > deadline:
            return now
        time.sleep(0.1)


def cycles(runner: Any, make: Callable[[str], SessionConfig], prefix: str, n: int) -> None:
    for i in range(n):
        name = f"{prefix}-{i}"
        st = runner.start(make(name))
        assert st.state is SessionState.RUNNING
        assert runner.status(name).name == name
        assert runner.logs(name) == ""
        # Every 10th stop is graceful (SIGTERM, wait): both paths, at a cost.
        runner.stop(name, graceful=i % 10 == 0, timeout=5)


def measured(
    backend: str, runner: Any, make: Callable[[str], SessionConfig], report: Report
) -> None:
    """``CYCLES[backend]`` cycles of ``runner``: nothing they opened is left open."""
    prefix = f"kf-leak-{uuid.uuid4().hex[:6]}"
    cycles(runner, make, f"{prefix}-w", WARMUP)  # connection pools, imports, caches
    gc.collect()
    before = (fds(), threading.active_count(), native_threads())
    began = time.monotonic()
    cycles(runner, make, prefix, CYCLES[backend])
    elapsed = time.monotonic() - began
    after = settle(before)
    assert after[0] <= before[0], f"{backend}: fds {before[0]} -> {after[0]}"
    assert after[1] <= before[1], f"{backend}: threads {before[1]} -> {after[1]}"
    assert after[2] <= before[2], f"{backend}: native threads {before[2]} -> {after[2]}"
    left = [s.name for s in runner.list_sessions() if s.name.startswith(prefix)]
    assert left == [], f"{backend}: left behind {left[:5]}"
    report.count(f"leaks: {backend} start/status/logs/stop cycles", CYCLES[backend])
    report.figure(
        f"leaks: {backend}",
        f"{CYCLES[backend]} cycles in {elapsed:.1f} s "
        f"({1000 * elapsed / max(CYCLES[backend], 1):.0f} ms each); "
        f"fds {before[0]} -> {after[0]}, threads {before[1]} -> {after[1]}, "
        f"native threads {before[2]} -> {after[2]}",
    )


def _tmux_processes(socket_name: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if argv and argv[0].endswith(b"tmux") and socket_name.encode() in b" ".join(argv):
                found.append(int(entry))
    return found


def test_tmux_cycles_leak_nothing(state_home: str, report: Report) -> None:
    import shutil

    if shutil.which("tmux") is None:
        engine_missing("tmux", "tmux is not on PATH")
    socket_name = f"kf-leak-{uuid.uuid4().hex[:6]}"
    runner = TmuxRunner(socket_name=socket_name)

    def sleeper(name: str) -> SessionConfig:
        return SessionConfig(name=name, command=["sleep", "300"])

    try:
        runner.start(sleeper("keeper"))
        measured("tmux", runner, sleeper, report)
        runner.stop("keeper", graceful=False)
        # Now each stop ends the server, and the next start makes a new one.
        measured("tmux-server", runner, sleeper, report)
        # Stopping the last session ends the server: no tmux process stays.
        assert runner.list_sessions() == []
        deadline = time.monotonic() + 5
        while _tmux_processes(socket_name) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _tmux_processes(socket_name) == [], "the tmux server outlived its last session"
        probe = subprocess.run(["tmux", "-L", socket_name, "has-session"], capture_output=True)
        assert probe.returncode != 0
        assert log_files(state_home) == [], "log files left behind"
    finally:
        runner.kill_server()


@pytest.mark.parametrize("runtime", ["docker", "podman"])
def test_container_cycles_leak_nothing(runtime: str, state_home: str, report: Report) -> None:
    shared_runner(runtime)
    runner = ContainerRunner(runtime=runtime, base_url=ENGINE_URLS[runtime], timeout=60)
    measured(
        runtime,
        runner,
        lambda name: SessionConfig(name=name, backend="container", image=TEST_IMAGE,
                                   command=["sleep", "300"]),
        report,
    )
    assert log_files(state_home) == []
    if CYCLES[runtime] < CYCLES["tmux"]:
        report.note(
            f"leaks: {runtime} ran {CYCLES[runtime]} cycles, not 1 000, to keep the suite "
            "within its time budget (a container start costs the engine ~0.2-0.5 s)"
        )
