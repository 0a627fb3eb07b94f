"""Containers that die from outside: SIGKILL through the engine, and out of memory."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import pytest

from kstlib.ops import SessionNotFoundError, SessionState
from kstlib.ops.container import ContainerRunner

from ..conftest import unique
from .conftest import Report, ccfg, shared_runner

pytestmark = pytest.mark.faults

# A shell variable of 64 MB in a container allowed 8 MB.
HOG = ["sh", "-c", 'x=$(head -c 64000000 /dev/zero | tr "\\0" a); echo ${#x}']


@pytest.fixture
def runner(runtime: str) -> Iterator[ContainerRunner]:
    r = shared_runner(runtime)
    yield r


def _wait_exited(runner: ContainerRunner, name: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = runner.status(name)
        if st.state is SessionState.EXITED:
            return st
        time.sleep(0.05)
    raise AssertionError(f"{name} did not exit within {timeout} s: {runner.status(name)}")


def _engine_state(runner: ContainerRunner, name: str) -> dict[str, Any]:
    """The engine's own State record (the SDK call; kstlib's status has no 'reason' field)."""
    engine: Any = runner.engine
    if runner.runtime == "docker":
        return dict(engine.api.inspect_container(name)["State"])
    return dict(engine.client.containers.get(name).attrs["State"])


def test_killed_from_outside_is_exited_137(runner: ContainerRunner, report: Report) -> None:
    name = unique("sigkill")
    try:
        runner.start(ccfg(name, ["sleep", "300"]))
        engine: Any = runner.engine
        if runner.runtime == "docker":
            engine.api.kill(name, signal="SIGKILL")
        else:
            engine.client.containers.get(name).kill(signal=9)
        st = _wait_exited(runner, name)
        assert st.exit_code == 137
        assert st.pid is None
        assert runner.wait(name, timeout=5) == 137
        report.count(f"{runner.runtime}: container SIGKILLed from outside -> EXITED 137")
    finally:
        with contextlib.suppress(SessionNotFoundError):
            runner.stop(name, graceful=False)


def test_out_of_memory_is_exited_137_and_the_engine_says_why(
    runner: ContainerRunner, report: Report
) -> None:
    name = unique("oom")
    try:
        runner.start(ccfg(name, HOG, memory="8m"))
        st = _wait_exited(runner, name, timeout=60)
        assert st.exit_code == 137, f"exit code {st.exit_code}: {runner.logs(name)!r}"
        assert "64000000" not in runner.logs(name)
        state = _engine_state(runner, name)
        oom = state.get("OOMKilled")
        report.figure(
            f"{runner.runtime}: out of memory (memory='8m')",
            f"EXITED {st.exit_code}; engine State.OOMKilled={oom!r}; "
            f"SessionStatus oom_killed={st.oom_killed!r} reason={st.reason!r}",
        )
        report.count(f"{runner.runtime}: container out of memory -> EXITED 137")
    finally:
        with contextlib.suppress(SessionNotFoundError):
            runner.stop(name, graceful=False)
