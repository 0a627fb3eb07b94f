"""No exception escapes the tree.

Every public method and property of SessionManager, TmuxRunner and
ContainerRunner is driven through the faults (engine down, engine hanging,
tmux server killed, stale tmux socket) and through bad input. Only OpsError
subclasses may come out (SessionConfigError for bad input), each keeping the
SDK exception as ``__cause__`` where there was one. A public method that is
not in the tables below fails the test until it is added.
"""

from __future__ import annotations

import inspect
import itertools
import os
import signal
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kstlib.ops import (
    OpsError,
    SessionConfig,
    SessionConfigError,
    SessionManager,
    TmuxRunner,
)
from kstlib.ops.container import ContainerRunner

from ..conftest import ENGINE_URLS, TEST_IMAGE, engine_missing
from .conftest import Report, shared_runner
from .engines import HangServer, PrivateEngine

pytestmark = pytest.mark.faults

Call = Callable[[Any, str], Any]


def _drain(iterable: Any) -> Any:
    return list(itertools.islice(iter(iterable), 3))


def _running(mgr: SessionManager) -> None:
    with mgr.running(["sleep", "300"], stop_timeout=1):
        pass


def ccfg(name: str) -> SessionConfig:
    return SessionConfig(name=name, backend="container", image=TEST_IMAGE, command=["sleep", "300"])


CONTAINER_CALLS: dict[str, Call] = {
    "start": lambda r, n: r.start(ccfg(n)),
    "stop": lambda r, n: r.stop(n, timeout=1),
    "status": lambda r, n: r.status(n),
    "logs": lambda r, n: r.logs(n),
    "exists": lambda r, n: r.exists(n),
    "list_sessions": lambda r, n: r.list_sessions(),
    "exec": lambda r, n: r.exec(n, ["true"]),
    "wait": lambda r, n: r.wait(n, timeout=1),
    "follow_logs": lambda r, n: _drain(r.follow_logs(n, timeout=1)),
    "attach": lambda r, n: r.attach(n),
    "attach_terminal": lambda r, n: r.attach_terminal(n),
    "engine": lambda r, n: r.engine,
    "endpoint": lambda r, n: r.endpoint,
    "runtime": lambda r, n: r.runtime,
    "backend": lambda r, n: r.backend,
}
CONTAINER_BAD: dict[str, Call] = {
    "start": lambda r, n: r.start({"name": n}),
    "stop": lambda r, n: r.stop(n, timeout=-1),
    "status": lambda r, n: r.status(""),
    "logs": lambda r, n: r.logs(n, lines=-1),
    "exists": lambda r, n: r.exists(None),
    "exec": lambda r, n: r.exec(n, []),
    "wait": lambda r, n: r.wait(n, timeout="soon"),
    "follow_logs": lambda r, n: _drain(r.follow_logs("a\nb")),
    "attach": lambda r, n: r.attach(42),
    "attach_terminal": lambda r, n: r.attach_terminal(42),
}
TMUX_CALLS: dict[str, Call] = {
    "start": lambda r, n: r.start(SessionConfig(name=n, command=["sleep", "300"])),
    "stop": lambda r, n: r.stop(n, timeout=1),
    "status": lambda r, n: r.status(n),
    "logs": lambda r, n: r.logs(n),
    "exists": lambda r, n: r.exists(n),
    "list_sessions": lambda r, n: r.list_sessions(),
    "wait": lambda r, n: r.wait(n, timeout=1),
    "follow_logs": lambda r, n: _drain(r.follow_logs(n, timeout=1)),
    "send_keys": lambda r, n: r.send_keys(n, "echo hi"),
    "attach": lambda r, n: r.attach(n),
    "attach_argv": lambda r, n: r.attach_argv(n),
    "kill_server": lambda r, n: r.kill_server(),
    "close": lambda r, n: r.close(),
    "server": lambda r, n: r.server,
    "binary": lambda r, n: r.binary,
    "backend": lambda r, n: r.backend,
}
TMUX_BAD: dict[str, Call] = {
    "start": lambda r, n: r.start("not a config"),
    "stop": lambda r, n: r.stop(n, timeout="soon"),
    "status": lambda r, n: r.status("a:b"),
    "logs": lambda r, n: r.logs(n, lines="all"),
    "logs(since)": lambda r, n: r.logs(n, since="yesterday"),
    "exists": lambda r, n: r.exists(b"bytes"),
    "wait": lambda r, n: r.wait(n, timeout="soon"),
    "wait(-1)": lambda r, n: r.wait(n, timeout=-1),
    "follow_logs": lambda r, n: _drain(r.follow_logs(None)),
    "follow_logs(since)": lambda r, n: _drain(r.follow_logs(n, since=float("inf"))),
    "follow_logs(timeout)": lambda r, n: _drain(r.follow_logs(n, timeout=float("nan"))),
    "send_keys": lambda r, n: r.send_keys(n, 42),
    "attach": lambda r, n: r.attach("\t"),
}
MANAGER_CALLS: dict[str, Call] = {
    "events": lambda m, n: m.events().close(),
    "start": lambda m, n: m.start(),
    "stop": lambda m, n: m.stop(timeout=1),
    "status": lambda m, n: m.status(),
    "logs": lambda m, n: m.logs(),
    "exists": lambda m, n: m.exists(),
    "is_running": lambda m, n: m.is_running(),
    "wait": lambda m, n: m.wait(timeout=1),
    "wait_for_log": lambda m, n: m.wait_for_log("never", timeout=1),
    "wait_until_running": lambda m, n: m.wait_until_running(timeout=1),
    "follow_logs": lambda m, n: _drain(m.follow_logs(timeout=1)),
    "running": lambda m, n: _running(m),
    "restart": lambda m, n: m.restart(timeout=1),
    "attach": lambda m, n: m.attach(),
    "from_config": lambda m, n: SessionManager.from_config(n, path="/nonexistent/kstlib.conf.yml"),
    "name": lambda m, n: m.name,
    "backend": lambda m, n: m.backend,
    "config": lambda m, n: m.config,
    "runner": lambda m, n: m.runner,
    "exec": lambda m, n: m.exec(["true"]),
    "send_keys": lambda m, n: m.send_keys("x"),
    "wait_for_port": lambda m, n: m.wait_for_port(1, timeout=1),
    "wait_for_http": lambda m, n: m.wait_for_http("http://127.0.0.1:1/", timeout=1),
    "find": lambda m, n: SessionManager.find(
        n,
        socket_name=m.config.socket_name,
        runtime=m.config.runtime,
        base_url=m.config.base_url,
        engine_timeout=1,  # a hung engine costs 1 s here, not the default 30 s
    ),
    "scale": lambda m, n: m.scale(2),  # swarm only: the others say so (SessionError)
}
MANAGER_BAD: dict[str, Call] = {
    "start": lambda m, n: m.start(command=42),
    "stop": lambda m, n: m.stop(timeout=-1),
    "logs": lambda m, n: m.logs(lines=-5),
    "logs(since)": lambda m, n: m.logs(since=object()),
    "wait": lambda m, n: m.wait(timeout="soon"),
    "running": lambda m, n: m.running(env={"1BAD": "x"}).__enter__(),
    "restart": lambda m, n: m.restart(colour="blue"),
    "from_config": lambda m, n: SessionManager.from_config("9bad", path="/dev/null"),
    "wait_for_port": lambda m, n: m.wait_for_port(0),
    "wait_for_http": lambda m, n: m.wait_for_http("ftp://example.org/"),
    "find": lambda m, n: SessionManager.find("9bad"),
    "scale": lambda m, n: m.scale(-1),
}


def public_members(cls: type) -> set[str]:
    return {m for m in dir(cls) if not m.startswith("_")}


@pytest.mark.parametrize(
    ("cls", "table"),
    [(ContainerRunner, CONTAINER_CALLS), (TmuxRunner, TMUX_CALLS), (SessionManager, MANAGER_CALLS)],
    ids=["ContainerRunner", "TmuxRunner", "SessionManager"],
)
def test_every_public_member_is_driven(cls: type, table: dict[str, Call]) -> None:
    missing = public_members(cls) - set(table)
    assert not missing, f"{cls.__name__}: add {sorted(missing)} to the fault tables"


SDK_MODULES = ("docker", "podman", "requests", "urllib3", "libtmux", "builtins", "http")


def check(
    report: Report,
    where: str,
    calls: dict[str, Call],
    target: Any,
    name: str,
    *,
    expect: type[BaseException] = OpsError,
    need_cause: bool = False,
) -> None:
    """Every call returns or raises ``expect``; a translated SDK error keeps its cause."""
    for member, call in calls.items():
        try:
            call(target, name)
        except OpsError as err:
            assert isinstance(err, expect), f"{where} {member}: {type(err).__name__}: {err}"
            cause = err.__cause__
            while isinstance(cause, OpsError):
                cause = cause.__cause__
            if cause is not None:
                module = type(cause).__module__.split(".")[0]
                assert module in SDK_MODULES, f"{where} {member}: cause {type(cause)!r}"
            elif need_cause and not isinstance(err, SessionConfigError):
                raise AssertionError(f"{where} {member}: {type(err).__name__} lost its cause") from err
            report.count(f"tree: {where}: raised {type(err).__name__}")
        except BaseException as err:
            raise AssertionError(
                f"{where} {member}: {type(err).__module__}.{type(err).__name__} escaped: {err}"
            ) from err
        else:
            assert expect is OpsError, f"{where} {member}: bad input was accepted"
            report.count(f"tree: {where}: returned")


@pytest.fixture(autouse=True)
def no_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """attach() must never take over the test's terminal or replace the process."""
    monkeypatch.setattr(os, "isatty", lambda fd: False)

    def refuse(*args: Any) -> None:
        raise AssertionError("attach() tried to exec")

    monkeypatch.setattr(os, "execvpe", refuse)


def test_container_runner_and_manager_through_engine_faults(
    private_engines: Callable[[str], PrivateEngine], report: Report
) -> None:
    for runtime in ("docker", "podman"):
        engine = private_engines(runtime)
        name = f"kf-tree-{uuid.uuid4().hex[:8]}"
        down = ContainerRunner(runtime=runtime, base_url=engine.url, timeout=2)
        mgr = SessionManager(name, backend="container", runtime=runtime, base_url=engine.url,
                             image=TEST_IMAGE, command=["sleep", "300"])
        engine.kill()
        try:
            check(report, f"ContainerRunner/{runtime}/engine down", CONTAINER_CALLS, down, name,
                  need_cause=True)
            check(report, f"SessionManager/{runtime}/engine down", MANAGER_CALLS, mgr, name)
        finally:
            engine.start()
        root = f"/tmp/kf-t-{uuid.uuid4().hex[:6]}"
        os.mkdir(root)
        hang = HangServer(root)
        try:
            hung = ContainerRunner(runtime=runtime, base_url=hang.url, timeout=0.3)
            check(report, f"ContainerRunner/{runtime}/hang", CONTAINER_CALLS, hung, name,
                  need_cause=True)
            # A short engine timeout, so that a hang costs 0.3 s per call here (default: 30 s).
            mgr = SessionManager(name, backend="container", runtime=runtime, base_url=hang.url,
                                 image=TEST_IMAGE, command=["sleep", "300"], engine_timeout=0.3)
            check(report, f"SessionManager/{runtime}/hang", MANAGER_CALLS, mgr, name)
        finally:
            hang.close()
            os.rmdir(root)
        shared = shared_runner(runtime)
        check(report, f"ContainerRunner/{runtime}/bad input", CONTAINER_BAD, shared, name,
              expect=SessionConfigError)
        mgr = SessionManager(name, backend="container", runtime=runtime,
                             base_url=ENGINE_URLS[runtime], image=TEST_IMAGE)
        check(report, f"SessionManager/{runtime}/bad input", MANAGER_BAD, mgr, name,
              expect=SessionConfigError)


@pytest.fixture
def killed_tmux() -> Iterator[TmuxRunner]:
    import shutil

    if shutil.which("tmux") is None:
        engine_missing("tmux", "tmux is not on PATH")
    runner = TmuxRunner(socket_name=f"kf-tree-{uuid.uuid4().hex[:6]}")
    yield runner
    runner.kill_server()


def test_tmux_runner_and_manager_through_faults(
    killed_tmux: TmuxRunner, tmp_path: Any, report: Report
) -> None:
    import socket

    name = f"kf-tree-{uuid.uuid4().hex[:8]}"
    runner = killed_tmux
    mgr = SessionManager(name, socket_name=runner.socket_name, command=["sleep", "300"])
    for round_ in range(2):  # the server killed under a running session, twice
        runner.start(SessionConfig(name=name, command=["sleep", "300"]))
        pid = int(runner.server.cmd("display-message", "-p", "#{pid}").stdout[0])
        os.kill(pid, signal.SIGKILL)
        target: Any = runner if round_ == 0 else mgr
        calls = TMUX_CALLS if round_ == 0 else MANAGER_CALLS
        check(report, f"{type(target).__name__}/tmux/server killed", calls, target, name)
        runner.kill_server()
    stale = tmp_path / "stale.sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(stale))
    on_stale = TmuxRunner(socket_path=str(stale))
    try:
        check(report, "TmuxRunner/tmux/stale socket", TMUX_CALLS, on_stale, name)
    finally:
        on_stale.kill_server()
    # Bad input reaches deeper checks when the session exists.
    runner.start(SessionConfig(name=name, command=["sleep", "300"]))
    check(report, "TmuxRunner/tmux/bad input", TMUX_BAD, runner, name, expect=SessionConfigError)
    check(report, "SessionManager/tmux/bad input", MANAGER_BAD, mgr, name,
          expect=SessionConfigError)
    assert inspect.isfunction(SessionManager.stop)


def test_manager_checks_pattern_and_timeout(killed_tmux: TmuxRunner, report: Report) -> None:
    name = f"kf-tree-{uuid.uuid4().hex[:8]}"
    mgr = SessionManager(name, socket_name=killed_tmux.socket_name,
                         command="echo ready; sleep 300")
    mgr.start()
    calls: dict[str, Call] = {
        "wait_for_log(42)": lambda m, n: m.wait_for_log(42, timeout=2),
        "wait_for_log(None)": lambda m, n: m.wait_for_log(None, timeout=2),
        "wait_for_log('(')": lambda m, n: m.wait_for_log("(", timeout=2),
        "wait_until_running('soon')": lambda m, n: m.wait_until_running(timeout="soon"),
    }
    check(report, "SessionManager/tmux/bad input", calls, mgr, name, expect=SessionConfigError)
