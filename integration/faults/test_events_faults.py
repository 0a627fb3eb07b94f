"""Events across engine faults: a private engine is killed and restarted under a live stream."""

from __future__ import annotations

import contextlib
import threading
import time

from kstlib.ops import BackendType, SessionConfig, SessionEvent, events
from kstlib.ops.container import ContainerRunner

from ..conftest import TEST_IMAGE, unique
from .engines import PrivateEngine


def _wait_for(seen: list[SessionEvent], lock: threading.Lock, check: object, bound: float) -> None:
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        with lock:
            if check(list(seen)):  # type: ignore[operator]
                return
        time.sleep(0.05)
    raise AssertionError(f"not seen in {bound}s: {seen[-20:]}")


def test_engine_restart_resyncs_and_goes_on(runtime: str, private: PrivateEngine) -> None:
    runner = ContainerRunner(runtime=runtime, base_url=private.url)
    before, after = unique("evf"), unique("evg")
    if hasattr(private, "made"):
        private.made.update({before, after})
    runner.start(SessionConfig(before, BackendType.CONTAINER, ("sleep", "300"), image=TEST_IMAGE))
    stream = events([before, after], engine=runtime, base_url=private.url)
    seen: list[SessionEvent] = []
    lock = threading.Lock()

    def read() -> None:
        for event in stream:
            with lock:
                seen.append(event)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        _wait_for(seen, lock, lambda s: any(e.snapshot and e.name == before for e in s), 30)
        private.kill()
        private.start()
        _wait_for(seen, lock, lambda s: any(e.kind == "resync" for e in s), 60)
        # The fresh snapshot after the marker names the session again.
        _wait_for(
            seen,
            lock,
            lambda s: any(
                e.snapshot and e.name == before for e in s[[x.kind for x in s].index("resync") :]
            ),
            30,
        )
        runner.start(
            SessionConfig(after, BackendType.CONTAINER, ("sh", "-c", "exit 7"), image=TEST_IMAGE)
        )
        _wait_for(
            seen,
            lock,
            lambda s: any(e.name == after and e.kind == "exited" and not e.snapshot for e in s),
            60,
        )
    finally:
        stream.close()
        reader.join(5)
        for name in (before, after):
            with contextlib.suppress(Exception):
                runner.stop(name, timeout=1)
    assert not reader.is_alive()
    exits = [e for e in seen if e.name == after and e.kind == "exited" and not e.snapshot]
    assert [e.exit_code for e in exits] == [7]
