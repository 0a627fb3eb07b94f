"""ContainerRunner against a real Docker daemon and a real Podman service.

Every test runs on both engines. Names are unique per test and everything a
test creates is removed by name in a finalizer, even when the test fails.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import pty
import secrets
import select
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from kstlib.ops import (
    BackendType,
    ContainerRuntimeNotFoundError,
    ExecResult,
    SessionAttachError,
    SessionConfig,
    SessionError,
    SessionExistsError,
    SessionNotFoundError,
    SessionStartError,
    SessionState,
    SessionStopError,
    SessionTimeoutError,
)
from kstlib.ops.container import ContainerRunner
from kstlib.ops.discovery import locate_container
from kstlib.ops.engines.adapter import MANAGED_LABEL
from kstlib.ops.manager import SessionManager

from .conftest import DOCKER_URL, ENGINE_URLS, PODMAN_URL, TEST_IMAGE, engine_missing, unique
from .waiting import wait_until

RUNTIMES = [
    pytest.param("docker", marks=pytest.mark.docker, id="docker"),
    pytest.param("podman", marks=pytest.mark.podman, id="podman"),
]
# Generous bounds: they catch a hang, never a slow machine.
WAIT_S = 15.0


wait_for = partial(wait_until, timeout=WAIT_S, interval=0.05)


def cfg(name: str, command: Any = None, **kw: Any) -> SessionConfig:
    return SessionConfig(name=name, backend="container", image=TEST_IMAGE, command=command, **kw)


def _has_image(runner: ContainerRunner) -> bool:
    engine: Any = runner.engine
    if runner.runtime == "docker":
        return any(TEST_IMAGE in (img.get("RepoTags") or []) for img in engine.api.images())
    return bool(engine.client.images.exists(TEST_IMAGE))


@pytest.fixture(params=RUNTIMES)
def runtime(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def runner(runtime: str) -> ContainerRunner:
    r = ContainerRunner(runtime=runtime, base_url=ENGINE_URLS[runtime], timeout=20)
    try:
        r.list_sessions()
    except ContainerRuntimeNotFoundError as err:
        engine_missing(runtime, str(err))
    if not _has_image(r):
        engine_missing(runtime, f"the test image {TEST_IMAGE} is missing")
    return r


@pytest.fixture
def names(runner: ContainerRunner) -> Iterator[Callable[..., str]]:
    """Make unique names; every container with one of them is removed afterwards."""
    made: list[str] = []

    def make(prefix: str = "ct") -> str:
        made.append(unique(prefix))
        return made[-1]

    yield make
    cleanup = ContainerRunner(runtime=runner.runtime, base_url=runner.base_url, timeout=30)
    for name in made:
        with contextlib.suppress(SessionNotFoundError):
            cleanup.stop(name, graceful=False)


def logs_contain(runner: ContainerRunner, name: str, text: str) -> Callable[[], bool]:
    return lambda: text in runner.logs(name, lines=None)


class RequestCounter:
    """Counts the HTTP requests an SDK client sends (a requests response hook)."""

    def __init__(self, runner: ContainerRunner) -> None:
        engine: Any = runner.engine
        self.session = engine.api if runner.runtime == "docker" else engine.client.api
        self.count = 0

    def _hook(self, response: Any, *args: Any, **kwargs: Any) -> Any:
        self.count += 1
        return response

    def __enter__(self) -> RequestCounter:
        self.session.hooks["response"].append(self._hook)
        return self

    def __exit__(self, *exc: object) -> None:
        self.session.hooks["response"].remove(self._hook)


# -- lifecycle -----------------------------------------------------------------------


def test_start_status_logs_stop(runner: ContainerRunner, names: Callable[..., str]) -> None:
    name = names()
    before = datetime.now(timezone.utc)
    st = runner.start(
        cfg(
            name,
            ["sh", "-c", "echo hello; echo oops >&2; echo world; sleep 300"],
            working_dir="/tmp",
            labels={"team": "ops"},
        )
    )
    assert st.name == name
    assert st.state is SessionState.RUNNING
    assert st.backend is BackendType.CONTAINER
    assert st.runtime == runner.runtime
    assert st.managed is True
    assert st.image == TEST_IMAGE
    assert st.pid is not None and st.pid > 0
    assert st.exit_code is None
    assert st.created_at is not None and st.created_at.tzinfo is not None
    assert abs(st.created_at - before) < timedelta(minutes=5)

    wait_for(logs_contain(runner, name, "world"), what="output")
    # One terminal: stderr stays between the two stdout lines, as written.
    assert runner.logs(name) == "hello\noops\nworld"
    assert runner.logs(name, lines=1) == "world"
    assert runner.logs(name, lines=0) == ""
    assert runner.exists(name)
    assert runner.exec(name, ["pwd"]) == (0, "/tmp\n")
    assert runner.status(name).state is SessionState.RUNNING

    runner.stop(name, timeout=5)
    assert not runner.exists(name)
    with pytest.raises(SessionNotFoundError):
        runner.status(name)
    with pytest.raises(SessionNotFoundError):
        runner.stop(name)


def test_one_engine_call_per_status_logs_and_list(
    runner: ContainerRunner, names: Callable[..., str]
) -> None:
    for _ in range(3):
        runner.start(cfg(names(), ["sh", "-c", "echo hi; sleep 300"]))
    name = names()
    runner.start(cfg(name, ["sh", "-c", "echo hi; sleep 300"]))
    with RequestCounter(runner) as counter:
        sessions = runner.list_sessions()
    assert counter.count == 1
    assert len(sessions) >= 4
    with RequestCounter(runner) as counter:
        runner.status(name)
    assert counter.count == 1
    with RequestCounter(runner) as counter:
        runner.logs(name, lines=100)
    # Podman reads a log shorter than asked again from the start: its tail read
    # loses the parts the first line began with (docs/containers.md, Podman notes).
    assert counter.count == (2 if runner.runtime == "podman" else 1)


def test_sigterm_trap_finishes_cleanup_well_under_timeout(
    runner: ContainerRunner, names: Callable[..., str]
) -> None:
    name = names()
    with tempfile.TemporaryDirectory(prefix="kstlib-trap-") as tmp:
        marker = Path(tmp) / "marker"
        script = "trap 'echo cleaned > /out/marker; exit 0' TERM; echo armed; sleep 300 & wait $!"
        runner.start(cfg(name, ["sh", "-c", script], volumes=[f"{tmp}:/out"]))
        wait_for(logs_contain(runner, name, "armed"), what="the trap to be set")
        began = time.monotonic()
        runner.stop(name, graceful=True, timeout=10)
        elapsed = time.monotonic() - began
        assert elapsed < 5, f"graceful stop took {elapsed:.1f} s"
        assert marker.read_text() == "cleaned\n"
        assert not runner.exists(name)


def test_stop_not_graceful_kills_without_cleanup(
    runner: ContainerRunner, names: Callable[..., str]
) -> None:
    name = names()
    with tempfile.TemporaryDirectory(prefix="kstlib-kill-") as tmp:
        script = "trap 'echo cleaned > /out/marker; exit 0' TERM; echo armed; sleep 300 & wait $!"
        runner.start(cfg(name, ["sh", "-c", script], volumes=[f"{tmp}:/out"]))
        wait_for(logs_contain(runner, name, "armed"), what="the trap to be set")
        began = time.monotonic()
        runner.stop(name, graceful=False)
        assert time.monotonic() - began < 5
        assert not (Path(tmp) / "marker").exists()
        assert not runner.exists(name)


def test_command_that_exits_keeps_code_and_output_then_name_is_reusable(
    runner: ContainerRunner, names: Callable[..., str]
) -> None:
    name = names()
    runner.start(cfg(name, "sh -c 'echo bye; exit 3'"))
    wait_for(lambda: runner.status(name).state is SessionState.EXITED, what="the exit")
    st = runner.status(name)
    assert st.exit_code == 3
    assert st.pid is None
    assert runner.logs(name) == "bye"
    # Stopping an already stopped container is fine (Podman answers 304).
    engine: Any = runner.engine
    engine.stop(name, name, 1)

    # start() on an exited name replaces it with the new config.
    st2 = runner.start(cfg(name, ["sh", "-c", "echo second; sleep 300"]))
    assert st2.state is SessionState.RUNNING
    wait_for(logs_contain(runner, name, "second"), what="the new output")
    assert "bye" not in runner.logs(name)


def test_restart_on_failure_reruns_and_counts(
    runner: ContainerRunner, names: Callable[..., str]
) -> None:
    name = names()
    runner.start(cfg(name, ["sh", "-c", "echo run; exit 1"], restart="on-failure:2"))

    def settled() -> bool:
        st = runner.status(name)
        return st.state is SessionState.EXITED and st.restart_count == 2

    wait_for(settled, what="two restarts")
    st = runner.status(name)
    assert st.exit_code == 1
    assert runner.logs(name) == "run\nrun\nrun"


def test_wait_returns_the_exit_code_or_times_out(
    runner: ContainerRunner, names: Callable[..., str]
) -> None:
    name = names()
    runner.start(cfg(name, ["sh", "-c", "sleep 1; exit 5"]))
    began = time.monotonic()
    with pytest.raises(SessionTimeoutError) as info:
        runner.wait(name, timeout=0.2)
    assert info.value.name == name and info.value.backend == runner.runtime
    assert time.monotonic() - began < 5
    assert runner.wait(name, timeout=WAIT_S) == 5
    assert runner.wait(name, timeout=0) == 5  # already exited: no waiting
    with pytest.raises(SessionNotFoundError):
        runner.wait(unique("missing"))


def test_start_on_running_name_raises_exists(
    runner: ContainerRunner, names: Callable[..., str]
) -> None:
    name = names()
    first = runner.start(cfg(name, ["sleep", "300"]))
    with pytest.raises(SessionExistsError) as info:
        runner.start(cfg(name, ["sleep", "1"]))
    assert info.value.name == name
    assert info.value.backend == runner.runtime
    again = runner.status(name)
    assert again.state is SessionState.RUNNING
    assert again.created_at == first.created_at


@pytest.mark.parametrize("missing", ["plain", "x?all=1", "../containers/json", "a b"])
def test_missing_session_raises_not_found_with_attributes(
    runner: ContainerRunner, missing: str
) -> None:
    name = unique("missing") if missing == "plain" else missing
    for call in (
        lambda: runner.status(name),
        lambda: runner.stop(name),
        lambda: runner.logs(name),
        lambda: runner.exec(name, ["true"]),
        lambda: runner.attach(name),
    ):
        with pytest.raises(SessionNotFoundError) as info:
            call()
        assert info.value.name == name
        assert info.value.backend == runner.runtime
        assert name in str(info.value)
        copy = pickle.loads(pickle.dumps(info.value))
        assert (copy.name, copy.backend) == (name, runner.runtime)
    assert runner.exists(name) is False


def test_missing_image_raises_start_error_naming_it(
    runner: ContainerRunner, names: Callable[..., str]
) -> None:
    name = names()
    image = "localhost/kstlib-no-such-image:latest"
    with pytest.raises(SessionStartError) as info:
        runner.start(SessionConfig(name=name, backend="container", image=image))
    assert image in info.value.reason
    assert info.value.backend == runner.runtime
    assert not runner.exists(name)


def test_failed_start_leaves_nothing_behind(
    runner: ContainerRunner, names: Callable[..., str]
) -> None:
    name = names()
    # Without an init process the runtime itself must exec the program: it fails at start.
    with pytest.raises(SessionStartError) as info:
        runner.start(cfg(name, ["/no/such/program"], init=False))
    assert info.value.name == name
    assert not runner.exists(name)


def test_env_values_with_spaces_and_quotes_arrive_intact(
    runner: ContainerRunner, names: Callable[..., str]
) -> None:
    name = names()
    env = {
        "SPACED": "a b  c ",
        "QUOTED": 'it\'s "quoted" $HOME `id` \\n ;|&',
        "EMPTY": "",
    }
    runner.start(
        cfg(
            name,
            ["sh", "-c", 'printf "[%s]\\n" "$SPACED" "$QUOTED" "$EMPTY"; sleep 300'],
            env=env,
        )
    )
    wait_for(logs_contain(runner, name, "[]"), what="output")
    assert runner.logs(name) == "\n".join(f"[{v}]" for v in env.values())
    code, out = runner.exec(name, ["env"])
    assert code == 0
    assert f"QUOTED={env['QUOTED']}" in out.splitlines()


def test_argv_metacharacters_stay_literal_and_strings_are_shlex_split(
    runner: ContainerRunner, names: Callable[..., str]
) -> None:
    argv_name, str_name = names(), names()
    runner.start(cfg(argv_name, ["echo", "a;b", "$(id)", "*", "|", "&&", "x > y"]))
    runner.start(cfg(str_name, "echo 'hello   world' \"$HOME\"  x"))
    wait_for(lambda: runner.status(argv_name).state is SessionState.EXITED, what="echo")
    wait_for(lambda: runner.status(str_name).state is SessionState.EXITED, what="echo")
    assert runner.logs(argv_name) == "a;b $(id) * | && x > y"
    # shlex, not a shell: the quotes group, "$HOME" stays as written.
    assert runner.logs(str_name) == "hello   world $HOME x"


def test_exec_returns_exit_code_and_output(
    runner: ContainerRunner, names: Callable[..., str]
) -> None:
    name = names()
    runner.start(cfg(name, ["sleep", "300"]))
    assert runner.exec(name, "sh -c 'echo out; exit 7'") == (7, "out\n")
    code, out = runner.exec(name, ["sh", "-c", "echo err >&2"])
    assert (code, out) == (0, "err\n")
    # Upstream's attributes: each stream apart, beside the pair.
    result = runner.exec(name, ["sh", "-c", "echo one; echo two >&2; exit 3"])
    assert isinstance(result, ExecResult)
    assert (result.returncode, result.stdout, result.stderr) == (3, "one\n", "two\n")
    assert sorted(result.output.splitlines()) == ["one", "two"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_limits_restart_policy_labels_and_init_reach_the_engine(
    runner: ContainerRunner, names: Callable[..., str]
) -> None:
    name = names()
    port = free_port()
    runner.start(
        cfg(
            name,
            ["sleep", "300"],
            restart="on-failure:2",
            memory="64m",
            cpus=0.5,
            labels={"team": "ops"},
            ports=[f"127.0.0.1:{port}:80"],
        )
    )
    engine: Any = runner.engine
    if runner.runtime == "docker":
        attrs = engine.api.inspect_container(name)
    else:
        attrs = engine.client.containers.get(name).attrs
    host = attrs["HostConfig"]
    assert host["Memory"] == 64 * 1024 * 1024
    assert host["RestartPolicy"]["Name"] == "on-failure"
    assert host["RestartPolicy"]["MaximumRetryCount"] == 2
    if runner.runtime == "docker":
        # (The test Podman runs containers with netns=none, which drops published ports.)
        assert host["PortBindings"]["80/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": str(port)}]
        assert host["NanoCpus"] == 500_000_000
        assert host["Init"] is True
    else:
        assert host["CpuQuota"] == 50_000 and host["CpuPeriod"] == 100_000
    assert attrs["Config"]["Labels"]["team"] == "ops"
    assert attrs["Config"]["Labels"][MANAGED_LABEL] == "true"
    # The init process is PID 1; the command is its child.
    code, out = runner.exec(name, ["cat", "/proc/1/cmdline"])
    assert code == 0 and "sleep" not in out.split("\0")[0]


@pytest.fixture
def volume(runner: ContainerRunner) -> Iterator[str]:
    """A unique named volume, removed afterwards."""
    name = unique("vol")
    yield name
    engine: Any = runner.engine
    if runner.runtime == "docker":
        import docker.errors

        with contextlib.suppress(docker.errors.NotFound):
            engine.api.remove_volume(name)
    else:
        import podman.errors

        with contextlib.suppress(podman.errors.NotFound):
            engine.client.volumes.remove(name)


def test_named_volumes_and_read_only_binds(
    runner: ContainerRunner, names: Callable[..., str], volume: str
) -> None:
    writer, reader = names(), names()
    try:
        with tempfile.TemporaryDirectory(prefix="kstlib-ro-") as tmp:
            (Path(tmp) / "hello.txt").write_text("from the host\n")
            runner.start(
                cfg(writer, ["sh", "-c", "echo kept > /cache/v"], volumes=[f"{volume}:/cache"])
            )
            wait_for(lambda: runner.status(writer).state is SessionState.EXITED, what="writer")
            script = "cat /cache/v /host/hello.txt; touch /host/new 2>/dev/null || echo read-only"
            runner.start(
                cfg(reader, ["sh", "-c", script], volumes=[f"{volume}:/cache", f"{tmp}:/host:ro"])
            )
            wait_for(lambda: runner.status(reader).state is SessionState.EXITED, what="reader")
            assert runner.logs(reader) == "kept\nfrom the host\nread-only"
            assert not (Path(tmp) / "new").exists()
    finally:
        # Before the volume fixture removes the volume: it must not be in use.
        for name in (writer, reader):
            with contextlib.suppress(SessionNotFoundError):
                runner.stop(name, graceful=False)


# -- foreign containers ----------------------------------------------------------------


@pytest.fixture
def foreign(
    runner: ContainerRunner, names: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A container started by testcontainers-python, not by kstlib."""
    from testcontainers.core.config import testcontainers_config
    from testcontainers.core.container import DockerContainer

    monkeypatch.setenv("DOCKER_HOST", ENGINE_URLS[runner.runtime])
    monkeypatch.setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
    monkeypatch.setattr(testcontainers_config, "ryuk_disabled", True)
    name = names("foreign")
    container = (
        DockerContainer(TEST_IMAGE)
        .with_command("sh -c 'echo foreign-hello; sleep 300'")
        .with_name(name)
    )
    container.start()
    try:
        yield name
    finally:
        container.get_docker_client().client.close()


def test_list_marks_managed_and_foreign_containers_work(
    runner: ContainerRunner, names: Callable[..., str], foreign: str
) -> None:
    ours = names()
    runner.start(cfg(ours, ["sleep", "300"]))
    by_name = {s.name: s for s in runner.list_sessions()}
    assert by_name[ours].managed is True
    assert by_name[ours].state is SessionState.RUNNING
    assert by_name[foreign].managed is False
    assert by_name[foreign].runtime == runner.runtime
    assert by_name[foreign].state is SessionState.RUNNING

    st = runner.status(foreign)
    assert st.managed is False and st.state is SessionState.RUNNING
    wait_for(logs_contain(runner, foreign, "foreign-hello"), what="foreign output")
    assert runner.logs(foreign) == "foreign-hello"
    # No init in this container: its shell (PID 1) ignores SIGTERM and is killed after 1 s.
    runner.stop(foreign, timeout=1)
    assert not runner.exists(foreign)


# -- engines that do not answer --------------------------------------------------------


class EngineProxy:
    """A socket in front of an engine's unix socket: it can freeze (stop forwarding) or go away.

    ``path=None`` listens on TCP 127.0.0.1 instead: a "remote" engine.
    """

    def __init__(self, target: str, path: str | None) -> None:
        self.target, self.path = target, path
        self.frozen = threading.Event()
        self.closed = threading.Event()
        self.sockets: list[socket.socket] = []
        if path is None:
            self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.listener.bind(("127.0.0.1", 0))
        else:
            self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.listener.bind(path)
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1] if path is None else None
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"unix://{self.path}" if self.path else f"tcp://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self.target)
            self.sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peer = {a: b, b: a}
        while not self.closed.is_set():
            if self.frozen.is_set():
                time.sleep(0.05)
                continue
            try:
                readable, _, _ = select.select([a, b], [], [], 0.05)
                for s in readable:
                    data = s.recv(65536)
                    if not data:
                        a.close()
                        b.close()
                        return
                    peer[s].sendall(data)
            except OSError:
                return

    def close(self) -> None:
        self.closed.set()
        self.listener.close()
        if self.path and os.path.exists(self.path):
            os.unlink(self.path)
        for s in self.sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


@pytest.fixture
def proxy(runner: ContainerRunner) -> Iterator[EngineProxy]:
    target = ENGINE_URLS[runner.runtime]
    if not target.startswith("unix://"):
        pytest.skip("the proxy only fronts unix sockets")
    with tempfile.TemporaryDirectory(prefix="kstlib-proxy-") as tmp:
        p = EngineProxy(target[len("unix://") :], os.path.join(tmp, "engine.sock"))
        yield p
        p.close()


@pytest.fixture
def tcp_proxy(runner: ContainerRunner) -> Iterator[EngineProxy]:
    target = ENGINE_URLS[runner.runtime]
    if not target.startswith("unix://"):
        pytest.skip("the proxy only fronts unix sockets")
    p = EngineProxy(target[len("unix://") :], None)
    yield p
    p.close()


def test_remote_engine_over_tcp(
    runner: ContainerRunner, names: Callable[..., str], tcp_proxy: EngineProxy
) -> None:
    remote = ContainerRunner(runtime=runner.runtime, base_url=tcp_proxy.url, timeout=10)
    name = names()
    st = remote.start(cfg(name, ["sh", "-c", "echo remote; sleep 300"]))
    assert st.runtime == runner.runtime and st.state is SessionState.RUNNING
    assert remote.endpoint == tcp_proxy.url
    wait_for(logs_contain(remote, name, "remote"), what="output over tcp")
    assert runner.status(name).created_at == st.created_at  # the same engine
    remote.stop(name, timeout=5)
    assert not runner.exists(name)


def test_unreachable_engine_raises_runtime_not_found(runtime: str) -> None:
    url = f"unix:///tmp/kstlib-{unique('nosock')}.sock"
    runner = ContainerRunner(runtime=runtime, base_url=url, timeout=2)
    with pytest.raises(ContainerRuntimeNotFoundError) as info:
        runner.status("anything")
    assert info.value.endpoints == (url,)
    assert url in str(info.value) and "Start an engine" in str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert locate_container("anything", runtime, url) == []


def test_hung_engine_is_reported_in_bounded_time(runtime: str) -> None:
    with tempfile.TemporaryDirectory(prefix="kstlib-hung-") as tmp:
        path = os.path.join(tmp, "hung.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(8)  # accepts connections (backlog), never answers
        try:
            runner = ContainerRunner(runtime=runtime, base_url=f"unix://{path}", timeout=1)
            began = time.monotonic()
            with pytest.raises(ContainerRuntimeNotFoundError) as info:
                runner.list_sessions()
            assert time.monotonic() - began < 10
            assert info.value.endpoints == (f"unix://{path}",)
        finally:
            listener.close()


def test_engine_going_away_mid_use_raises_runtime_not_found(
    runner: ContainerRunner, names: Callable[..., str], proxy: EngineProxy
) -> None:
    name = names()
    runner.start(cfg(name, ["sleep", "300"]))
    via = ContainerRunner(runtime=runner.runtime, base_url=proxy.url, timeout=5)
    assert via.status(name).state is SessionState.RUNNING
    proxy.close()
    with pytest.raises(ContainerRuntimeNotFoundError) as info:
        via.status(name)
    assert info.value.endpoints == (proxy.url,)


def test_engine_hanging_mid_operation_times_out_as_the_operation_error(
    runner: ContainerRunner, names: Callable[..., str], proxy: EngineProxy
) -> None:
    name = names()
    runner.start(cfg(name, ["sleep", "300"]))
    via = ContainerRunner(runtime=runner.runtime, base_url=proxy.url, timeout=1)
    assert via.exists(name)
    proxy.frozen.set()
    began = time.monotonic()
    with pytest.raises(SessionError) as info:
        via.status(name)
    assert not isinstance(info.value, ContainerRuntimeNotFoundError)
    assert "timed out after 1 s" in str(info.value)
    with pytest.raises(SessionStopError) as stop_info:
        via.stop(name, timeout=0)
    assert "timed out" in stop_info.value.reason
    assert time.monotonic() - began < 15
    assert runner.status(name).state is SessionState.RUNNING


# -- concurrency ---------------------------------------------------------------------


def test_ten_threads_starting_one_name_exactly_one_wins(
    runner: ContainerRunner, names: Callable[..., str]
) -> None:
    name = names()
    barrier = threading.Barrier(10)
    results: list[object] = []
    lock = threading.Lock()

    def start() -> None:
        barrier.wait()
        try:
            outcome: object = runner.start(cfg(name, ["sleep", "300"]))
        except Exception as err:
            outcome = err
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=start) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    wins = [r for r in results if not isinstance(r, Exception)]
    losses = [r for r in results if isinstance(r, Exception)]
    assert len(results) == 10
    assert len(wins) == 1, results
    assert all(isinstance(r, SessionExistsError) for r in losses), losses
    assert runner.status(name).state is SessionState.RUNNING


# -- attach --------------------------------------------------------------------------


def _read_until(fd: int, needle: bytes, timeout: float) -> bytes:
    buf = b""
    deadline = time.monotonic() + timeout
    while needle not in buf and time.monotonic() < deadline:
        readable, _, _ = select.select([fd], [], [], 0.1)
        if readable:
            try:
                buf += os.read(fd, 4096)
            except OSError:
                break
    return buf


def test_attach_in_a_pty_detaches_with_ctrl_p_ctrl_q(
    runner: ContainerRunner, names: Callable[..., str]
) -> None:
    name = names()
    runner.start(cfg(name, ["sh", "-c", "while true; do echo tick; sleep 0.2; done"]))
    runtime, url = runner.runtime, runner.base_url
    pid, fd = pty.fork()
    if pid == 0:  # the child: a process whose terminal is the pty
        code = 1
        try:
            import termios

            sys.stdin = os.fdopen(0, "r", closefd=False)
            sys.stdout = os.fdopen(1, "w", closefd=False)
            before = termios.tcgetattr(0)
            ContainerRunner(runtime=runtime, base_url=url, timeout=10).attach(name)
            code = 0 if termios.tcgetattr(0) == before else 5
        except BaseException as err:
            os.write(2, f"attach failed: {err!r}\n".encode())
            code = 3
        finally:
            os._exit(code)
    try:
        seen = _read_until(fd, b"tick", WAIT_S)
        assert b"tick" in seen, seen
        os.write(fd, b"\x10\x11")  # Ctrl-P Ctrl-Q
        deadline = time.monotonic() + WAIT_S
        status = None
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            _read_until(fd, b"\0", 0.1)
        else:
            raise AssertionError("attach did not return after Ctrl-P Ctrl-Q")
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    finally:
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)
    assert runner.status(name).state is SessionState.RUNNING


def test_attach_refuses_without_terminal_or_when_not_running(
    runner: ContainerRunner, names: Callable[..., str]
) -> None:
    running, exited = names(), names()
    runner.start(cfg(running, ["sleep", "300"]))
    runner.start(cfg(exited, ["true"]))
    wait_for(lambda: runner.status(exited).state is SessionState.EXITED, what="exit")
    with pytest.raises(SessionAttachError, match="not running"):
        runner.attach(exited)
    with pytest.raises(SessionAttachError, match="not a terminal"):
        runner.attach(running)  # pytest's stdin is no terminal


# -- selection and the manager ----------------------------------------------------------


def test_session_manager_end_to_end(runtime: str, runner: ContainerRunner) -> None:
    name = unique("mgr")
    mgr = SessionManager(
        name,
        backend="container",
        image=TEST_IMAGE,
        runtime=runtime,
        base_url=ENGINE_URLS[runtime],
        command="sh -c 'echo managed; sleep 300'",
    )
    try:
        st = mgr.start()
        assert st.state is SessionState.RUNNING and st.runtime == runtime
        assert mgr.is_running()
        wait_for(lambda: mgr.logs() == "managed", what="manager logs")
        assert mgr.status().managed
        mgr.stop(timeout=5)
        assert not mgr.exists()
        assert not mgr.is_running()
    finally:
        if runner.exists(name):
            runner.stop(name, graceful=False)


def test_runtime_none_picks_podman_then_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    missing = f"unix:///tmp/kstlib-{unique('nosock')}.sock"
    monkeypatch.setenv("CONTAINER_HOST", PODMAN_URL)
    monkeypatch.setenv("DOCKER_HOST", DOCKER_URL)
    try:
        assert ContainerRunner(timeout=5).runtime == "podman"
    except ContainerRuntimeNotFoundError as err:
        engine_missing("podman", str(err))
    monkeypatch.setenv("CONTAINER_HOST", missing)
    try:
        assert ContainerRunner(timeout=5).runtime == "docker"
    except ContainerRuntimeNotFoundError as err:
        engine_missing("docker", str(err))
    monkeypatch.setenv("DOCKER_HOST", missing + "2")
    with pytest.raises(ContainerRuntimeNotFoundError) as info:
        ContainerRunner(timeout=5).list_sessions()
    assert info.value.endpoints == (f"podman at {missing}", f"docker at {missing}2")


def test_exists_matches_exact_names_only(
    runner: ContainerRunner, names: Callable[..., str]
) -> None:
    # Podman answers a name with a character outside 0-9a-f through libpod's
    # /exists endpoint (it cannot be an id prefix); an all-hex name is inspected.
    plain = names("ex")  # has '-' and letters past f: the /exists path on Podman
    runner.start(cfg(plain, ["sleep", "60"]))
    assert runner.exists(plain)
    assert not runner.exists(plain[:-2])  # a prefix of the name is another name
    assert not runner.exists(plain + "x")
    hexname = "fade" + secrets.token_hex(5)  # all hex: could be an id prefix
    runner.start(cfg(hexname, ["sleep", "60"]))
    try:
        assert runner.exists(hexname)
        assert not runner.exists(hexname[:-2])
    finally:
        runner.stop(hexname, graceful=False)
    assert not runner.exists(hexname)
    assert not runner.exists("9-not-a-container-name")  # no engine can hold it: False, no call
