"""Container engine faults: unreachable, killed during a long call, hanging.

Every public operation of :class:`ContainerRunner` meets each fault on each
engine (a private dockerd / Podman service this suite may kill) and must raise
an :class:`OpsError` subclass within its timeout plus a small margin, with a
message naming the engine and the endpoint; once the engine is back, the same
runner (same process) works again.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from kstlib.ops import (
    ContainerRuntimeNotFoundError,
    OpsError,
    SessionError,
    SessionState,
)
from kstlib.ops.container import ContainerRunner
from kstlib.ops.exceptions import CONTAINER_INSTALL_HINT, CONTAINER_START_HINT

from .conftest import MARGIN_S, Report, ccfg, timed
from .engines import FaultProxy, HangServer, PrivateEngine

pytestmark = pytest.mark.faults

#: Per-call engine timeout of the runners under test.
CALL_TIMEOUT = 0.5
#: A container that ignores SIGTERM (so a graceful stop runs its whole grace period).
STUBBORN = ["sh", "-c", "trap '' TERM; echo armed; while :; do sleep 1; done"]
TICKER = ["sh", "-c", "while :; do echo tick; sleep 0.2; done"]
HAS_FOLLOW = hasattr(ContainerRunner, "follow_logs")


def operations(runner: ContainerRunner, name: str, fresh: str) -> dict[str, Callable[[], Any]]:
    """Every public operation of the runner, bound to a session name."""
    ops: dict[str, Callable[[], Any]] = {
        "start": lambda: runner.start(ccfg(fresh, ["sleep", "300"])),
        "stop": lambda: runner.stop(name, timeout=1),
        "status": lambda: runner.status(name),
        "logs": lambda: runner.logs(name),
        "exists": lambda: runner.exists(name),
        "list_sessions": runner.list_sessions,
        "exec": lambda: runner.exec(name, ["true"]),
        "wait": lambda: runner.wait(name, timeout=CALL_TIMEOUT),
    }
    if HAS_FOLLOW:
        ops["follow_logs"] = lambda: next(iter(runner.follow_logs(name)))  # type: ignore[attr-defined]
    return ops


def assert_names_engine_and_endpoint(err: BaseException, runtime: str, endpoint: str) -> None:
    text = str(err)
    assert endpoint in text, f"the message does not name the endpoint {endpoint}: {text}"
    # The install/start hints mention both engines: look outside them.
    specific = text.replace(CONTAINER_START_HINT, "").replace(CONTAINER_INSTALL_HINT, "")
    assert runtime in specific.lower(), f"the message does not name {runtime}: {text}"


def assert_sdk_cause(err: BaseException) -> None:
    """The SDK / transport exception that started it all is kept as ``__cause__``."""
    cause = err.__cause__
    while isinstance(cause, OpsError):
        cause = cause.__cause__
    assert cause is not None, f"{type(err).__name__} lost its cause: {err}"
    module = type(cause).__module__.split(".")[0]
    assert module in ("docker", "podman", "requests", "urllib3", "builtins", "http"), (
        f"unexpected cause {type(cause).__module__}.{type(cause).__name__}"
    )


def expect_fault(
    report: Report,
    runtime: str,
    fault: str,
    fn: Callable[[], Any],
    bound: float,
    endpoint: str,
    expected: type[OpsError] = OpsError,
    *,
    sdk_cause: bool = True,
) -> OpsError:
    err, seconds, result = timed(fn)
    assert err is not None, f"{fault}: the call returned {result!r} instead of raising"
    assert isinstance(err, expected), f"{fault}: {type(err).__name__}: {err}"
    assert seconds < bound, f"{fault}: took {seconds:.1f} s (bound {bound:.1f} s)"
    assert_names_engine_and_endpoint(err, runtime, endpoint)
    if sdk_cause:
        assert_sdk_cause(err)
    report.fault(runtime, fault, seconds, err)
    return err


# -- unreachable -------------------------------------------------------------------


def test_engine_down_every_operation_fails_then_recovers(
    private: PrivateEngine, cnames: Callable[[str], str], report: Report
) -> None:
    runtime = private.runtime
    runner = ContainerRunner(runtime=runtime, base_url=private.url, timeout=CALL_TIMEOUT * 5)
    name = cnames("down")
    runner.start(ccfg(name, TICKER))
    private.kill()  # SIGKILL: the socket file stays behind, nothing listens on it
    assert os.path.exists(private.sock)
    for op, fn in operations(runner, name, cnames("down-new")).items():
        expect_fault(
            report, runtime, "down (stale socket)", fn, runner.timeout + MARGIN_S, private.url,
            ContainerRuntimeNotFoundError,
        )
        report.count(f"{runtime}: {op} with the engine down")
    os.unlink(private.sock)  # and with no socket file at all
    for op, fn in operations(runner, name, cnames("down-new")).items():
        err = expect_fault(
            report, runtime, "down (no socket)", fn, runner.timeout + MARGIN_S, private.url,
            ContainerRuntimeNotFoundError, sdk_cause=False,
        )
        assert isinstance(err, FileNotFoundError)
        report.count(f"{runtime}: {op} with no socket")

    private.start()
    # The same runner, in the same process, works again.
    assert runner.exists(name)
    assert runner.status(name).name == name
    assert name in {s.name for s in runner.list_sessions()}
    fresh = cnames("back")
    assert runner.start(ccfg(fresh, TICKER)).state is SessionState.RUNNING
    assert runner.exec(fresh, ["echo", "ok"]) == (0, "ok\n")
    runner.stop(fresh, timeout=2)
    runner.stop(name, graceful=False)
    assert not runner.exists(name) and not runner.exists(fresh)


# -- killed during a long call -----------------------------------------------------


def _in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = fn()
        except BaseException as err:
            box["error"] = err
        box["at"] = time.monotonic()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, box


def test_engine_killed_during_long_calls(
    private: PrivateEngine, cnames: Callable[[str], str], report: Report
) -> None:
    runtime = private.runtime
    runner = ContainerRunner(runtime=runtime, base_url=private.url, timeout=5)
    stubborn, running, ticker = cnames("stub"), cnames("run"), cnames("tick")
    runner.start(ccfg(stubborn, STUBBORN))
    runner.start(ccfg(running, ["sleep", "300"]))
    runner.start(ccfg(ticker, TICKER))
    deadline = time.monotonic() + 15
    while "armed" not in runner.logs(stubborn) and time.monotonic() < deadline:
        time.sleep(0.05)

    long_calls: dict[str, Callable[[], Any]] = {
        # 120 s of grace for a process that ignores SIGTERM: the call is still
        # waiting on the engine when the engine dies.
        "stop (120 s grace)": lambda: runner.stop(stubborn, timeout=120),
        "wait (120 s)": lambda: runner.wait(running, timeout=120),
        "exec (sleep 60)": lambda: runner.exec(running, ["sleep", "60"]),
    }
    if HAS_FOLLOW:
        long_calls["follow_logs"] = lambda: list(runner.follow_logs(ticker))  # type: ignore[attr-defined]
    else:
        report.note("ContainerRunner has no follow_logs yet: not exercised")
    started = {op: _in_thread(fn) for op, fn in long_calls.items()}
    time.sleep(1.5)  # every call is now inside its engine request
    for op, (thread, box) in started.items():
        assert thread.is_alive(), f"{op} finished before the engine was killed: {box}"
    stubborn_pid = runner.status(stubborn).pid
    killed_at = time.monotonic()
    private.kill()
    if runtime == "docker" and stubborn_pid:
        # Only to keep the suite fast: a restarted dockerd would spend 10 s
        # stopping this SIGTERM-proof container before it answers.
        with contextlib.suppress(ProcessLookupError):
            os.kill(stubborn_pid, signal.SIGKILL)
    for op, (thread, box) in started.items():
        thread.join(runner.timeout + MARGIN_S + 5)
        assert not thread.is_alive(), f"{op} still hangs after the engine died"
        err = box.get("error")
        assert isinstance(err, OpsError), f"{op}: {box}"
        seconds = box["at"] - killed_at
        assert seconds < runner.timeout + MARGIN_S, f"{op}: {seconds:.1f} s after the kill"
        assert_names_engine_and_endpoint(err, runtime, private.url)
        assert_sdk_cause(err)
        report.fault(runtime, "killed during a long call", seconds, err)
        report.count(f"{runtime}: {op} with the engine killed mid-call")

    private.start()
    # Back: the same runner sees the sessions (Docker without live-restore
    # stops them on restart; Podman's conmon keeps them running).
    for name in (stubborn, running, ticker):
        assert runner.status(name).name == name
    runner.stop(stubborn, graceful=False)
    assert not runner.exists(stubborn)


# -- hanging -----------------------------------------------------------------------


def test_hanging_socket_every_operation_times_out(
    runtime: str, hang_server: HangServer, report: Report
) -> None:
    runner = ContainerRunner(runtime=runtime, base_url=hang_server.url, timeout=CALL_TIMEOUT)
    for op, fn in operations(runner, "kf-hang", "kf-hang-new").items():
        expect_fault(
            report, runtime, "hang (never answers)", fn, CALL_TIMEOUT + MARGIN_S, hang_server.url,
            ContainerRuntimeNotFoundError,
        )
        report.count(f"{runtime}: {op} against a socket that never answers")


def test_engine_hanging_after_connect_then_answering_again(
    private: PrivateEngine, cnames: Callable[[str], str], report: Report
) -> None:
    runtime = private.runtime
    proxy = FaultProxy(private.sock, private.root)
    try:
        runner = ContainerRunner(runtime=runtime, base_url=proxy.url, timeout=CALL_TIMEOUT)
        name = cnames("hang")
        direct = ContainerRunner(runtime=runtime, base_url=private.url, timeout=30)
        direct.start(ccfg(name, TICKER))
        assert runner.status(name).is_running  # connected, pooled connection open
        proxy.hang()
        for op, fn in operations(runner, name, cnames("hang-new")).items():
            err = expect_fault(
                report, runtime, "hang (after connect)", fn,
                CALL_TIMEOUT + 1 + MARGIN_S,  # stop(timeout=1) adds its grace period
                proxy.url, SessionError,
            )
            assert "timed out" in str(err), err
            report.count(f"{runtime}: {op} with the engine hanging mid-use")
        proxy.resume()
        assert runner.status(name).is_running
        assert runner.exec(name, ["echo", "back"]) == (0, "back\n")
        runner.stop(name, graceful=False)
        assert not direct.exists(name)
    finally:
        proxy.close()



def test_unreachable_error_names_the_engine_and_keeps_the_cause(
    runtime: str, hang_server: HangServer
) -> None:
    runner = ContainerRunner(runtime=runtime, base_url=hang_server.url, timeout=CALL_TIMEOUT)
    err, _, _ = timed(runner.list_sessions)
    assert isinstance(err, ContainerRuntimeNotFoundError)
    assert err.endpoints == (hang_server.url,)
    assert_names_engine_and_endpoint(err, runtime, hang_server.url)
    assert_sdk_cause(err)
