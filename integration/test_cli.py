"""The installed ``kstlib`` console script against real tmux, Docker and Podman.

Every command runs as a child process with an isolated environment: HOME,
XDG_CONFIG_HOME and XDG_STATE_HOME in a temporary directory, TMUX unset and
TMUX_TMPDIR private (so "tmux's default server" is a throwaway one, never the
user's), the current directory empty unless a test writes a kstlib.conf.yml.
Every session or container a test makes is removed in a finalizer.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from kstlib.ops import TmuxRunner
from kstlib.ops.exceptions import BackendNotFoundError, OpsError, SessionNotFoundError

from .conftest import DOCKER_URL, PODMAN_URL, TEST_IMAGE, engine_missing, unique
from .waiting import wait_until

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(sys.executable).with_name("kstlib")
KSTLIB = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "kstlib"]
#: The documented --json schema of one session (docs/cli.md).
STATUS_KEYS = {"name", "state", "backend", "pid", "created_at", "window_count", "socket_name",
               "image", "exit_code", "runtime", "managed", "restart_count",
               "oom_killed", "reason", "log_degraded", "engine", "last_exit_code",
               "last_exited_at"}
RUNTIMES = [
    pytest.param("docker", marks=pytest.mark.docker, id="docker"),
    pytest.param("podman", marks=pytest.mark.podman, id="podman"),
]
WAIT_S = 15.0


class Cli:
    """Runs the console script in one isolated environment."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cwd = root / "cwd"
        self.cwd.mkdir()
        # A short path: tmux sockets live under it and unix socket paths are limited.
        self.tmux_tmpdir = Path(tempfile.mkdtemp(prefix="kc-", dir="/tmp"))
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("TMUX", "KSTLIB_CONFIG", "XDG_"))}
        self.env.pop("KSTLIB_DEBUG", None)
        self.env.update(
            HOME=str(root / "home"),
            XDG_CONFIG_HOME=str(root / "config"),
            XDG_STATE_HOME=str(root / "state"),
            TMUX_TMPDIR=str(self.tmux_tmpdir),
            DOCKER_HOST=DOCKER_URL,
            CONTAINER_HOST=PODMAN_URL,
        )

    def __call__(self, *args: str, code: int | None = 0, env: dict[str, str] | None = None,
                 timeout: float = 120) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [*KSTLIB, *args], cwd=self.cwd, env={**self.env, **(env or {})},
            capture_output=True, text=True, timeout=timeout, check=False,
        )
        assert "Traceback" not in proc.stderr, proc.stderr
        if code is not None:
            assert proc.returncode == code, (args, proc.returncode, proc.stdout, proc.stderr)
        return proc

    def json(self, *args: str) -> Any:
        """Run with --json (before any '--') and parse stdout, which must be JSON only."""
        at = args.index("--") if "--" in args else len(args)
        proc = self(*args[:at], "--json", *args[at:])
        return json.loads(proc.stdout)

    def error(self, *args: str, code: int, env: dict[str, str] | None = None) -> str:
        """Run a failing command; return its one stderr line (checked)."""
        proc = self(*args, code=code, env=env)
        assert proc.stdout == "", proc.stdout
        assert proc.stderr.startswith("kstlib: error: "), proc.stderr
        assert proc.stderr.count("\n") == 1 and proc.stderr.endswith("\n"), proc.stderr
        return proc.stderr

    @property
    def socket_dir(self) -> Path:
        return self.tmux_tmpdir / f"tmux-{os.getuid()}"

    def tmux(self, socket: str | None = None) -> TmuxRunner:
        """The test process's view of a tmux server the children use (-L socket or default)."""
        return TmuxRunner(socket_path=str(self.socket_dir / (socket or "default")))

    def default_tmux(self) -> TmuxRunner:
        return self.tmux(None)


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    runner = Cli(tmp_path)
    yield runner
    # Every tmux server the children started lives in the private TMUX_TMPDIR.
    if runner.socket_dir.is_dir():
        for sock in runner.socket_dir.iterdir():
            with contextlib.suppress(OpsError):
                TmuxRunner(socket_path=str(sock)).kill_server()
    shutil.rmtree(runner.tmux_tmpdir, ignore_errors=True)


@pytest.fixture
def cleanup() -> Iterator[Callable[[Callable[[], None]], None]]:
    """Register cleanups that run after the test, pass or fail."""
    actions: list[Callable[[], None]] = []
    yield actions.append
    for action in reversed(actions):
        with contextlib.suppress(SessionNotFoundError, BackendNotFoundError):
            action()


def container_runner(runtime: str) -> Any:
    """A ContainerRunner on the test engine, or a skip/fail when it does not answer."""
    try:
        from kstlib.ops.container import ContainerRunner
    except ImportError as err:  # the container backend has not landed
        engine_missing(runtime, f"kstlib.ops.container is missing ({err})")
    runner = ContainerRunner(runtime=runtime, base_url={"docker": DOCKER_URL,
                                                        "podman": PODMAN_URL}[runtime])
    try:
        _ = runner.engine
    except BackendNotFoundError as err:
        engine_missing(runtime, str(err))
    return runner


wait_for = partial(wait_until, timeout=WAIT_S, interval=0.1)


def check_status_json(data: dict[str, Any], **expected: Any) -> None:
    """The --json schema, field by field."""
    assert set(data) == STATUS_KEYS
    for key, value in expected.items():
        assert data[key] == value, (key, data)
    assert isinstance(data["pid"], int) and data["pid"] > 0
    created = datetime.fromisoformat(data["created_at"])
    assert created.tzinfo is not None
    assert abs(time.time() - created.timestamp()) < 300
    assert data["exit_code"] is None
    assert isinstance(data["restart_count"], int)


# -- tmux --------------------------------------------------------------------------------


@pytest.mark.tmux
def test_tmux_start_status_logs_stop(cli: Cli, tmux_socket: str,
                                     cleanup: Callable[[Callable[[], None]], None]) -> None:
    name = unique("cli")
    cleanup(lambda: cli.tmux(tmux_socket).stop(name, graceful=False))
    started = cli.json("ops", "start", name, "-L", tmux_socket,
                       "-c", "echo hello-from-cli; sleep 60")
    assert (started["name"], started["state"], started["backend"]) == (name, "running", "tmux")

    status = cli.json("ops", "status", name, "-L", tmux_socket)
    check_status_json(status, name=name, state="running", backend="tmux",
                      socket_name=tmux_socket, image=None, runtime=None, managed=True,
                      window_count=1)
    assert status["pid"] == started["pid"]
    # The CLI prints exactly what the library reports.
    library = cli.tmux(tmux_socket).status(name).to_dict()
    assert status == {**library, "socket_name": tmux_socket}

    wait_for(lambda: "hello-from-cli" in cli("ops", "logs", name, "-L", tmux_socket).stdout,
             "the session's output")
    assert cli("ops", "logs", name, "-L", tmux_socket, "-n", "1").stdout == "hello-from-cli\n"
    panel = cli("ops", "status", name, "-L", tmux_socket).stdout
    assert panel.startswith(f"Session '{name}': running\n")
    assert f"tmux (socket {tmux_socket})" in panel

    stopped = cli("ops", "stop", name, "-L", tmux_socket, "-t", "5")
    assert stopped.stdout == f"Stopped session '{name}' on tmux (socket {tmux_socket}).\n"
    err = cli.error("ops", "status", name, "-L", tmux_socket, code=3)
    assert f"Session '{name}' was not found" in err


@pytest.mark.tmux
def test_several_names_and_stop_all_on_tmux(cli: Cli) -> None:
    import libtmux

    socket = unique("all")  # a server of this test alone: stop --all empties it
    a, b, c = unique("a"), unique("b"), unique("c")
    for name in (a, b, c):
        cli("ops", "start", name, "-q", "-L", socket, "-c", f"echo out-{name}; sleep 60")
    foreign = libtmux.Server(socket_path=str(cli.socket_dir / socket))
    foreign.new_session("foreign", detach=True)  # not kstlib's: stop --all leaves it
    for name in (a, b):
        wait_for(lambda name=name: f"out-{name}" in cli("ops", "logs", name, "-L", socket).stdout,
                 f"{name}'s output")

    assert cli("ops", "status", a, b, "-L", socket, "-q").stdout == "running\nrunning\n"
    logs = cli("ops", "logs", a, b, "-L", socket, "-n", "1").stdout
    assert logs == f"{a} | out-{a}\n{b} | out-{b}\n"

    missing = unique("missing")
    proc = cli("ops", "stop", a, missing, b, "-L", socket, "-f", code=3)
    assert proc.stdout == (f"Stopped session '{a}' on tmux (socket {socket}).\n"
                           f"Stopped session '{b}' on tmux (socket {socket}).\n")
    assert f"Session '{missing}' was not found" in proc.stderr
    assert not cli.tmux(socket).exists(a) and not cli.tmux(socket).exists(b)

    proc = cli("ops", "stop", "--all", "--yes", "-b", "tmux", "-L", socket, "-f")
    assert proc.stdout == f"Stopped session '{c}' on tmux (socket {socket}).\n"
    assert not cli.tmux(socket).exists(c)
    assert foreign.has_session("foreign")  # only managed sessions are stopped


@pytest.mark.tmux
def test_tmux_exit_code_survives_for_status(cli: Cli, tmux_socket: str,
                                            cleanup: Callable[[Callable[[], None]], None]
                                            ) -> None:
    name = unique("cli")
    cleanup(lambda: cli.tmux(tmux_socket).stop(name, graceful=False))
    cli("ops", "start", name, "-L", tmux_socket, "-q", "--", "sh", "-c", "echo bye; exit 4")
    wait_for(lambda: cli("ops", "status", name, "-L", tmux_socket, "-q").stdout == "exited\n",
             "the session to exit")
    data = cli.json("ops", "status", name, "-L", tmux_socket)
    assert (data["state"], data["exit_code"]) == ("exited", 4)
    assert "bye" in cli("ops", "logs", name, "-L", tmux_socket).stdout


@pytest.mark.tmux
def test_status_finds_default_server_session_without_backend_and_loads_no_sdk(
        cli: Cli, tmux_socket: str) -> None:
    # tmux_socket only makes sure tmux is installed; this test uses the default server
    # of its private TMUX_TMPDIR, as a plain `tmux` would.
    name = unique("cli")
    cli("ops", "start", name, "-q", "-c", "sleep 60")
    assert cli.default_tmux().exists(name)
    data = cli.json("ops", "status", name)
    check_status_json(data, name=name, state="running", backend="tmux", socket_name=None)
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "kstlib", "ops", "status", name, "-q"],
        cwd=cli.cwd, env=cli.env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 0 and proc.stdout == "running\n", proc.stderr[-2000:]
    imported = {line.split("|")[-1].strip().split(".")[0]
                for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "libtmux" in imported
    assert not imported & {"docker", "podman", "requests"}, imported & {"docker", "podman"}
    listed = {d["name"]: d for d in cli.json("ops", "list", "-b", "tmux")}
    assert listed[name]["socket_name"] is None and listed[name]["managed"] is True
    cli("ops", "stop", name, "-q")
    assert not cli.default_tmux().exists(name)


@pytest.mark.tmux
def test_unknown_session_exits_3(cli: Cli, tmux_socket: str) -> None:
    ghost = unique("ghost")
    for args in (["status", ghost], ["stop", ghost], ["logs", ghost], ["attach", ghost],
                 ["status", ghost, "-L", tmux_socket], ["send-keys", ghost, "x"],
                 ["stop", ghost, "-b", "tmux", "-f"]):
        err = cli.error("ops", *args, code=3)
        assert f"Session '{ghost}' was not found" in err
        assert "kstlib ops list" in err


@pytest.mark.tmux
def test_usage_and_config_errors_exit_2_with_one_line(cli: Cli, tmux_socket: str) -> None:
    name = unique("cli")
    cases = [
        (["start", name, "-L", tmux_socket, "-e", "NOVALUE"], "--env: item 1 names a variable that is not set"),
        (["start", name, "-L", tmux_socket, "-e", "9X=1"], "--env: item 1: the name before '=' must match"),
        (["start", "9-bad-name", "-L", tmux_socket], "session name: '9-bad-name' must start"),
        (["start", name, "-b", "lxc"], "invalid choice: 'lxc'"),
        (["status", name, "--backend", "kubernetes"], "invalid choice: 'kubernetes'"),
        (["start", name, "-b", "container", "-i", "UPPER:case"], "--image: 'UPPER:case'"),
        (["start", name, "-L", tmux_socket, "-w", "/nonexistent/dir"],
         "'/nonexistent/dir' is not an existing directory"),
    ]
    for args, needle in cases:
        err = cli.error("ops", *args, code=2)
        assert needle in err, (args, err)
    assert not cli.tmux(tmux_socket).exists(name)

    broken = cli.cwd / "kstlib.conf.yml"
    broken.write_text("ops:\n  sessions:\n    web:\n      image: [unclosed\n")
    err = cli.error("ops", "status", name, code=2)
    assert f"{broken}:5: invalid YAML: while parsing a flow sequence" in err
    broken.write_text("ops:\n  sessions:\n    web:\n      backend: docker\n      imgae: x\n")
    # list shows the valid entries and warns about the invalid one (issue 16, point 18)
    err = cli("ops", "list", "-b", "tmux", "-L", tmux_socket).stderr
    assert err.startswith("kstlib: warning: ") and err.count("\n") == 1, err
    assert f"{broken}:5: ops.sessions.web.imgae: unknown key (did you mean 'image'?" in err
    err = cli.error("ops", "start", "web", "--config", str(broken), code=2)
    assert "ops.sessions.web.imgae" in err


@pytest.mark.tmux
def test_config_defined_session_is_listed_defined_then_started(
        cli: Cli, tmux_socket: str, cleanup: Callable[[Callable[[], None]], None]) -> None:
    name = unique("cfg")
    cleanup(lambda: cli.tmux(tmux_socket).stop(name, graceful=False))
    (cli.cwd / "kstlib.conf.yml").write_text(
        f"ops:\n  tmux_socket: {tmux_socket}\n  sessions:\n    {name}:\n"
        "      command: \"echo config-says-$GREETING; sleep 60\"\n"
        "      env: {GREETING: hi}\n      working_dir: .\n"
    )
    listed = {d["name"]: d for d in cli.json("ops", "list", "-b", "tmux")}
    assert listed[name]["state"] == "defined"
    assert (listed[name]["backend"], listed[name]["socket_name"]) == ("tmux", tmux_socket)
    table = cli("ops", "list", "-b", "tmux").stdout
    row = next(line for line in table.splitlines() if line.startswith(name))
    assert "defined" in row.split()
    assert cli("ops", "status", name, "-q").stdout == "defined\n"

    started = cli.json("ops", "start", name)
    assert started["state"] == "running"
    assert cli.tmux(tmux_socket).exists(name)
    listed = {d["name"]: d for d in cli.json("ops", "list", "-b", "tmux")}
    assert listed[name]["state"] == "running"
    wait_for(lambda: "config-says-hi" in cli("ops", "logs", name).stdout, "the output")

    before = cli.json("ops", "status", name)["pid"]
    restarted = cli.json("ops", "restart", name, "-t", "5")
    assert restarted["state"] == "running" and restarted["pid"] != before
    cli("ops", "stop", name, "-q")
    assert cli("ops", "status", name, "-q").stdout == "defined\n"


@pytest.mark.tmux
def test_send_keys_and_restart_from_last_start(cli: Cli, tmux_socket: str,
                                               cleanup: Callable[[Callable[[], None]], None]
                                               ) -> None:
    name = unique("keys")
    cleanup(lambda: cli.tmux(tmux_socket).stop(name, graceful=False))
    cli("ops", "start", name, "-L", tmux_socket, "-q", "--", "cat")
    cli("ops", "send-keys", name, "-L", tmux_socket, "typed by kstlib")
    wait_for(lambda: "typed by kstlib" in cli("ops", "logs", name, "-L", tmux_socket).stdout,
             "the typed text")
    pid = cli.json("ops", "status", name, "-L", tmux_socket)["pid"]
    # No config file defines it: restart reuses the last `kstlib ops start`, socket included.
    again = cli.json("ops", "restart", name, "-t", "5")
    assert (again["state"], again["socket_name"]) == ("running", tmux_socket)
    assert again["pid"] != pid


@pytest.mark.tmux
def test_upstream_script_runs_unchanged(cli: Cli, tmux_socket: str) -> None:
    # An upstream-style config: keys and spellings of the upstream kstlib, plus a
    # section for another upstream tool that kstlib.ops must leave alone.
    (cli.cwd / "kstlib.conf.yml").write_text(
        "logger:\n  defaults:\n    level: INFO\n"
        "ops:\n"
        "  default_backend: tmux\n"
        "  tmux_binary: tmux\n"
        "  container_runtime: podman\n"
        "  sessions:\n"
        "    upstream-bot:\n"
        "      backend: tmux\n"
        "      command: \"echo bot-up; sleep 30\"\n"
        "      working_dir: \"/tmp\"\n"
        "      env:\n"
        "        APP_ENV: \"production\"\n"
        "    upstream-web:\n"
        "      backend: container\n"
        "      image: \"localhost/kstlib-test:latest\"\n"
        "      runtime: podman\n"
        "      volumes:\n"
        "        - \"./data:/app/data\"\n"
        "      ports:\n"
        "        - \"8080:80\"\n"
        "      log_volume: \"./logs:/app/logs\"\n"
    )
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "upstream_script.py")],
        cwd=cli.cwd, env=cli.env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    lines = proc.stdout.splitlines()
    assert lines[0] == "started upstream-demo state=running backend=tmux"
    assert "from_config upstream-bot backend=tmux command=echo bot-up; sleep 30" in lines
    assert "web backend=container image=localhost/kstlib-test:latest volumes=2" in lines
    assert lines[-1] == "all upstream steps passed"
    # It used tmux's default server (of this test's TMUX_TMPDIR) and left nothing there.
    assert cli.default_tmux().list_sessions() == []
    # The same upstream config through the CLI: both sessions listed as defined.
    listed = {d["name"]: d["state"] for d in cli.json("ops", "list", "-b", "tmux")}
    assert listed["upstream-bot"] == "defined"


# -- containers ---------------------------------------------------------------------------


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_container_start_status_logs_exec_stop(
        cli: Cli, runtime: str, cleanup: Callable[[Callable[[], None]], None]) -> None:
    runner = container_runner(runtime)
    name = unique(f"cli-{runtime}")
    cleanup(lambda: runner.stop(name, graceful=False))
    started = cli.json("ops", "start", name, "-b", "container", "--runtime", runtime,
                       "-i", TEST_IMAGE, "-e", "GREETING=hello-ctr",
                       "--", "sh", "-c", "echo $GREETING; sleep 300")
    assert (started["name"], started["state"], started["backend"], started["runtime"]) == (
        name, "running", "container", runtime)

    status = cli.json("ops", "status", name, "-b", runtime)
    check_status_json(status, name=name, state="running", backend="container",
                      runtime=runtime, image=TEST_IMAGE, managed=True, socket_name=None)
    # Without -b the CLI finds it on the right engine.
    assert cli.json("ops", "status", name)["runtime"] == runtime

    wait_for(lambda: "hello-ctr" in cli("ops", "logs", name, "-b", runtime).stdout,
             "the container's output")
    proc = cli("ops", "exec", name, "--", "sh", "-c", "echo from-exec; exit 7", code=7)
    assert proc.stdout == "from-exec\n"

    listed = {(d["name"], d["runtime"]): d for d in cli.json("ops", "list", "--managed")}
    assert listed[(name, runtime)]["state"] == "running"

    stopped = cli("ops", "stop", name, "-t", "5")
    assert stopped.stdout == f"Stopped session '{name}' on {runtime}.\n"
    err = cli.error("ops", "status", name, "-b", runtime, code=3)
    assert f"Session '{name}' was not found on the {runtime} backend" in err
    cli.error("ops", "logs", name, code=3)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_container_defined_in_config_is_started_by_name(
        cli: Cli, runtime: str, cleanup: Callable[[Callable[[], None]], None]) -> None:
    runner = container_runner(runtime)
    name = unique(f"cfg-{runtime}")
    cleanup(lambda: runner.stop(name, graceful=False))
    (cli.cwd / "kstlib.conf.yml").write_text(
        f"ops:\n  sessions:\n    {name}:\n      backend: {runtime}\n"
        f"      image: \"{TEST_IMAGE}\"\n      command: [sh, -c, 'echo defined-$MODE; sleep 300']\n"
        "      env: {MODE: ok}\n"
    )
    data = cli.json("ops", "status", name)
    assert (data["state"], data["backend"], data["runtime"], data["image"]) == (
        "defined", "container", runtime, TEST_IMAGE)
    cli("ops", "start", name, "-q")
    data = cli.json("ops", "status", name)
    assert (data["state"], data["runtime"]) == ("running", runtime)
    wait_for(lambda: "defined-ok" in cli("ops", "logs", name).stdout, "the output")
    cli("ops", "stop", name, "-q", "-f")
    assert cli("ops", "status", name, "-q").stdout == "defined\n"


def test_list_shows_every_backend(cli: Cli, tmux_socket: str,
                                  cleanup: Callable[[Callable[[], None]], None]) -> None:
    docker, podman = container_runner("docker"), container_runner("podman")
    names = {"tmux": unique("l-tmux"), "docker": unique("l-docker"), "podman": unique("l-pod")}
    cleanup(lambda: cli.tmux(tmux_socket).stop(names["tmux"], graceful=False))
    cleanup(lambda: docker.stop(names["docker"], graceful=False))
    cleanup(lambda: podman.stop(names["podman"], graceful=False))
    cli("ops", "start", names["tmux"], "-L", tmux_socket, "-q", "-c", "sleep 60")
    for runtime in ("docker", "podman"):
        cli("ops", "start", names[runtime], "-b", runtime, "-i", TEST_IMAGE, "-q",
            "--", "sleep", "300")
    data = cli.json("ops", "list", "-L", tmux_socket)
    rows = {d["name"]: d for d in data}
    assert (rows[names["tmux"]]["backend"], rows[names["tmux"]]["socket_name"]) == (
        "tmux", tmux_socket)
    for runtime in ("docker", "podman"):
        row = rows[names[runtime]]
        assert (row["backend"], row["runtime"], row["image"], row["state"], row["managed"]) == (
            "container", runtime, TEST_IMAGE, "running", True)
    table = cli("ops", "list", "-L", tmux_socket).stdout.splitlines()
    assert table[0].split() == ["NAME", "BACKEND", "RUNTIME", "SOCKET", "STATE", "PID",
                                "IMAGE", "CREATED", "MANAGED"]
    assert {line.split()[0] for line in table[1:]} >= set(names.values())
    only_docker = {d["name"] for d in cli.json("ops", "list", "-b", "docker")}
    assert names["docker"] in only_docker and names["podman"] not in only_docker


# -- doctor -------------------------------------------------------------------------------


def test_doctor_with_engines_up(cli: Cli, tmux_socket: str) -> None:
    container_runner("docker")
    container_runner("podman")
    data = cli.json("ops", "doctor")
    backends = {b["backend"]: b for b in data["backends"]}
    assert set(backends) == {"tmux", "docker", "podman"}
    assert all(b["available"] for b in backends.values()), backends
    assert backends["tmux"]["version"].startswith("tmux 3.")
    assert backends["docker"]["version"].startswith("Docker ")
    assert backends["podman"]["version"].startswith("Podman ")
    assert backends["docker"]["endpoint"] == DOCKER_URL
    assert backends["podman"]["endpoint"] == PODMAN_URL
    assert backends["tmux"]["endpoint"].startswith(str(cli.tmux_tmpdir))
    table = cli("ops", "doctor").stdout
    assert "3 of 3 backends usable." in table
    assert cli("ops", "doctor", "-q").stdout == ""


def test_doctor_with_engines_down(cli: Cli, tmp_path: Path) -> None:
    empty_bin = tmp_path / "no-tmux-here"
    empty_bin.mkdir()
    down = {"DOCKER_HOST": "unix:///nonexistent/docker.sock",
            "CONTAINER_HOST": "unix:///nonexistent/podman.sock",
            "PATH": str(empty_bin)}
    proc = cli("ops", "doctor", code=1, env=down)
    out = proc.stdout
    assert "0 of 3 backends usable. Install or start one of them" in out
    rows = {line.split()[0]: line for line in out.splitlines()[1:4]}
    assert all("unavailable" in rows[b] for b in ("tmux", "docker", "podman")), out
    assert "tmux was not found on PATH" in rows["tmux"]
    assert "unix:///nonexistent/docker.sock" in rows["docker"]
    assert "No such file or directory" in rows["podman"]
    assert "To use tmux: Install tmux" in out and "apt install tmux" in out
    assert "To use docker: Start Docker" in out
    assert "To use podman: Start the Podman API service" in out
    data = json.loads(cli("ops", "doctor", "--json", code=1, env=down).stdout)
    assert [b["available"] for b in data["backends"]] == [False, False, False]
    assert all(b["hint"] for b in data["backends"])
    # One backend is enough: tmux alone makes doctor succeed.
    if shutil.which("tmux"):
        tmux_dir = str(Path(shutil.which("tmux") or "").parent)
        proc = cli("ops", "doctor", code=0, env={**down, "PATH": tmux_dir})
        assert "1 of 3 backends usable." in proc.stdout
    # And with engines down, commands that need them fail in one line, exit 1.
    err = cli.error("ops", "start", unique("x"), "-b", "docker", "-i", TEST_IMAGE, code=1,
                    env=down)
    assert "unix:///nonexistent/docker.sock" in err


def test_python_m_kstlib_is_the_same_program(cli: Cli) -> None:
    proc = subprocess.run([sys.executable, "-m", "kstlib", "--version"], cwd=cli.cwd,
                          env=cli.env, capture_output=True, text=True, timeout=60, check=False)
    assert (proc.returncode, proc.stdout) == (0, "kstlib 0.1.0\n")


def test_wait_for_a_line_then_for_the_exit_code(cli: Cli) -> None:
    cli("ops", "start", "waiter", "-L", "w", "-q", "--",
        "sh", "-c", "echo booting; sleep 0.5; echo 'ready on 8080'; sleep 0.5; exit 7")
    proc = cli("ops", "wait", "waiter", "-L", "w", "--for", r"ready on \d+", "-t", "20")
    assert proc.stdout == "ready on 8080\n"
    cli("ops", "wait", "waiter", "-L", "w", "-t", "20", code=7)
    stamped = cli("ops", "logs", "waiter", "-L", "w", "--timestamps").stdout.splitlines()
    assert [line.split(" ", 1)[1] for line in stamped] == ["booting", "ready on 8080"]
    assert cli("ops", "logs", "waiter", "-L", "w", "--since", "1h").stdout == "booting\nready on 8080\n"
    cli("ops", "stop", "waiter", "-L", "w", "-q")


def test_wait_times_out_with_exit_1_and_one_line(cli: Cli) -> None:
    cli("ops", "start", "sleeper", "-L", "w", "-q", "--", "sleep", "30")
    message = cli.error("ops", "wait", "sleeper", "-L", "w", "--for", "never", "-t", "0.5", code=1)
    assert "sleeper" in message
    cli.error("ops", "wait", "sleeper", "-L", "w", "-t", "0.3", code=1)
    cli.error("ops", "wait", "sleeper", "-L", "w", "--for", "(", code=2)
    cli("ops", "stop", "sleeper", "-L", "w", "-f", "-q")


def test_restart_policy_option(cli: Cli) -> None:
    cli("ops", "start", "crashy", "-L", "w", "-q", "--restart", "on-failure:2", "--", "sh", "-c", "exit 3")
    cli("ops", "wait", "crashy", "-L", "w", "-t", "20", code=3)
    data = cli.json("ops", "status", "crashy", "-L", "w")
    assert (data["state"], data["exit_code"], data["restart_count"]) == ("exited", 3, 2)
    cli.error("ops", "start", "bad", "-L", "w", "--restart", "sometimes", "--", "true", code=2)
    cli("ops", "stop", "crashy", "-L", "w", "-q")


@pytest.mark.tmux
def test_start_prints_upstreams_first_line_then_the_status(
        cli: Cli, tmux_socket: str, cleanup: Callable[[Callable[[], None]], None]) -> None:
    name = unique("cli")
    cleanup(lambda: cli.tmux(tmux_socket).stop(name, graceful=False))
    out = cli("ops", "start", name, "-L", tmux_socket, "-c", "sleep 60").stdout
    first, rest = out.split("\n", 1)
    assert first == f"Session '{name}' started (tmux backend)."
    assert rest.startswith(f"Session '{name}': running\n")
    # --quiet and --json print no such line.
    cli("ops", "stop", name, "-L", tmux_socket, "-t", "5")
    assert cli("ops", "start", name, "-L", tmux_socket, "-q", "-c", "sleep 60").stdout == ""
