"""The kstlib CLI without engines: parsing, exit codes, one-line errors, output, config merge.

Runners are replaced by an in-memory fake, so every command's logic runs for
real while no tmux, Docker or Podman is contacted.
"""

from __future__ import annotations

import json
import os
import argparse
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from collections.abc import Iterator

import pytest

from kstlib.cli import commands, main, output, state
from kstlib.cli.commands import Context, Location, label
from kstlib.cli.commands.doctor import probe_docker, probe_podman, probe_tmux, reason
from kstlib.cli.parser import UsageError, build_parser, parse_args, split_argv
from kstlib.ops.exceptions import (
    ContainerRuntimeNotFoundError,
    SessionAmbiguousError,
    SessionConfigError,
    SessionExistsError,
    SessionNotFoundError,
    SessionStopError,
    TmuxNotFoundError,
)
from kstlib.ops.models import BackendType, SessionConfig, SessionState, SessionStatus

CREATED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
#: The documented --json schema (docs/cli.md): a new field must be documented there too.
STATUS_KEYS = {"name", "state", "backend", "pid", "created_at", "window_count", "socket_name",
               "image", "exit_code", "runtime", "managed", "restart_count",
               "oom_killed", "reason", "log_degraded", "engine", "last_exit_code",
               "last_exited_at"}


class FakeRunner:
    """An in-memory runner: sessions keyed by place, errors injected per operation."""

    def __init__(self, world: FakeWorld, place: Location) -> None:
        self.world, self.place = world, place
        self.backend = place.backend

    @property
    def sessions(self) -> dict[str, SessionStatus]:
        return self.world.sessions.setdefault(self.world.key(self.place), {})

    def _fail(self, op: str) -> None:
        err = self.world.errors.get(op)
        if err is not None:
            raise err

    def start(self, config: SessionConfig) -> SessionStatus:
        self._fail("start")
        if config.name in self.sessions and self.sessions[config.name].is_running:
            raise SessionExistsError(config.name, config.backend)
        st = SessionStatus(config.name, SessionState.RUNNING, config.backend, pid=4242,
                           created_at=CREATED, socket_name=config.socket_name,
                           image=config.image, runtime=config.runtime, managed=True)
        self.sessions[config.name] = st
        self.world.started.append(config)
        return st

    def stop(self, name: str, graceful: bool = True, timeout: float = 10) -> None:
        self._fail("stop")
        if name not in self.sessions:
            raise SessionNotFoundError(name, self.backend)
        del self.sessions[name]
        self.world.stopped.append((name, graceful, timeout))

    def status(self, name: str) -> SessionStatus:
        self._fail("status")
        if name not in self.sessions:
            raise SessionNotFoundError(name, self.backend)
        return self.sessions[name]

    def exists(self, name: str) -> bool:
        self._fail("exists")
        return name in self.sessions

    def list_sessions(self) -> list[SessionStatus]:
        self._fail(f"list:{label(self.place)}")
        return list(self.sessions.values())

    def logs(self, name: str, lines: int | None = 100, since: object = None,
             timestamps: bool = False, ansi: bool = True) -> str:
        self.status(name)
        text = [f"line {i}" for i in range(1, 6)]
        return "\n".join(text if lines is None else text[-lines:] if lines else [])

    def exec(self, name: str, command: list[str]) -> tuple[int, str]:
        self.status(name)
        self.world.execs.append(command)
        return 7, "exec output"

    def send_keys(self, name: str, keys: str, enter: bool = True, *, literal: bool | None = None) -> None:
        self.status(name)
        self.world.keys.append((keys, enter))

    def attach(self, name: str) -> None:
        self.status(name)


class FakeWorld:
    def __init__(self) -> None:
        self.sessions: dict[tuple[Any, ...], dict[str, SessionStatus]] = {}
        self.errors: dict[str, BaseException] = {}
        self.started: list[SessionConfig] = []
        self.stopped: list[tuple[str, bool, float]] = []
        self.execs: list[list[str]] = []
        self.keys: list[tuple[str, bool]] = []

    @staticmethod
    def key(place: Location) -> tuple[Any, ...]:
        if place.backend is BackendType.TMUX:
            return ("tmux", place.socket_name)
        return ("container", place.runtime or "podman", place.endpoint)

    def add(self, place: Location, name: str, **fields: Any) -> SessionStatus:
        base = {"pid": 99, "created_at": CREATED, "managed": True,
                "socket_name": place.socket_name,
                "runtime": place.runtime if place.backend is BackendType.CONTAINER else None}
        values = {"state": SessionState.RUNNING, **base, **fields}
        st = SessionStatus(name=name, backend=place.backend, **values)
        self.sessions.setdefault(self.key(place), {})[name] = st
        return st

    def locate_check(self) -> None:
        """A container engine is asked: fail if the test said it must not be."""
        err = self.errors.get("locate")
        if err is not None:
            raise err


_FACTORY: list[Any] = []  # the world's runner factory, handed to main() by run_cli


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeWorld]:
    fake = FakeWorld()

    def factory(backend: BackendType, *, runtime: str | None = None,
                base_url: str | None = None, socket_name: str | None = None,
                socket_path: str | None = None, **timeouts: Any) -> FakeRunner:
        if backend is BackendType.CONTAINER and runtime is not None:
            fake.locate_check()
        return FakeRunner(fake, Location(backend, runtime=runtime, endpoint=base_url,
                                      socket_name=socket_name, socket_path=socket_path))

    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("KSTLIB_CONFIG", raising=False)
    _FACTORY.append(factory)
    yield fake
    _FACTORY.clear()


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv), runner_factory=_FACTORY[0] if _FACTORY else None)
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def assert_one_line_error(err: str, *needles: str) -> None:
    assert err.startswith("kstlib: error: "), err
    assert err.count("\n") == 1 and err.endswith("\n"), err
    for needle in needles:
        assert needle in err, (needle, err)


def write_config(text: str) -> Path:
    path = Path.cwd() / "kstlib.conf.yml"
    path.write_text(text)
    return path


TMUX_DEFAULT = Location(BackendType.TMUX)
DOCKER = Location(BackendType.CONTAINER, runtime="docker")
PODMAN = Location(BackendType.CONTAINER, runtime="podman")


# -- parsing -----------------------------------------------------------------------------


def test_split_argv_keeps_everything_after_the_first_double_dash() -> None:
    assert split_argv(["ops", "exec", "a", "--", "sh", "-c", "x -- y"]) == (
        ["ops", "exec", "a"], ["sh", "-c", "x -- y"])
    assert split_argv(["ops", "list"]) == (["ops", "list"], None)


def test_parse_start_with_every_option() -> None:
    args = parse_args(["ops", "start", "bot", "-b", "podman", "-i", "alpine:3.20", "-e", "A=1",
                       "-e", "B=2", "-v", "/a:/a", "-p", "80:80", "-w", "/srv", "--json",
                       "--config", "c.yml", "--", "sleep", "9"])
    assert (args.backend, args.image, args.env, args.volume, args.port, args.workdir) == (
        "podman", "alpine:3.20", ["A=1", "B=2"], ["/a:/a"], ["80:80"], "/srv")
    assert args.json and args.config == "c.yml" and args.argv == ["sleep", "9"]


def test_send_keys_words_after_double_dash_are_the_keys_even_with_dashes() -> None:
    args = parse_args(["ops", "send-keys", "bot", "--no-enter", "--", "-x", "y"])
    assert (args.keys, args.no_enter) == ("-x y", True)


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["ops", "start", "a", "-b", "lxc"], "invalid choice: 'lxc'"),
        (["ops", "stop"], "required: NAME"),
        (["ops", "frobnicate"], "invalid choice: 'frobnicate'"),
        (["ops", "logs", "a", "-n", "ten"], "'ten' is not a number of lines"),
        (["ops", "stop", "a", "-t", "-1"], "must be between 0 and 86400"),
        (["ops", "status", "a", "--", "ls"], "'kstlib ops status' takes no command after '--'"),
        (["ops", "start", "a", "--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_usage_errors_are_one_line_exit_2(capsys: pytest.CaptureFixture[str],
                                          argv: list[str], needle: str) -> None:
    code, out, err = run_cli(capsys, *argv)
    assert code == 2
    assert out == ""
    assert_one_line_error(err, needle, "--help")


def test_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "ops", "start", "--help")
    assert code == 0 and "--command" in out and "--image" in out and "--socket" in out
    code, out, _ = run_cli(capsys, "--version")
    assert (code, out.strip()) == (0, "kstlib 0.1.0")
    code, out, _ = run_cli(capsys)
    assert code == 0 and "ops" in out
    code, out, _ = run_cli(capsys, "ops")
    assert code == 0 and "send-keys" in out and "doctor" in out


# -- exit codes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (SessionNotFoundError("bot", "tmux"), 3),
        (SessionConfigError("ports: bad"), 2),
        (SessionStopError("bot", "tmux", "it would not die"), 1),
        (TmuxNotFoundError(), 1),
        (ContainerRuntimeNotFoundError(endpoints=["unix:///x.sock"]), 1),
        (SessionAmbiguousError("bot", ["tmux", "podman"]), 1),
        (KeyboardInterrupt(), 130),
        (RuntimeError("boom"), 1),
    ],
)
def test_exit_code_mapping(world: FakeWorld, capsys: pytest.CaptureFixture[str],
                           error: BaseException, code: int) -> None:
    world.add(TMUX_DEFAULT, "bot")
    world.errors["stop"] = error
    got, out, err = run_cli(capsys, "ops", "stop", "bot", "-b", "tmux")
    assert got == code
    assert out == ""
    expected = {130: "interrupted", 1: str(error) if not isinstance(error, RuntimeError)
                else "unexpected RuntimeError: boom (this is a bug in kstlib"}.get(code, str(error))
    assert_one_line_error(err, expected)


def test_debug_env_shows_the_traceback_of_a_bug(world: FakeWorld,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    world.add(TMUX_DEFAULT, "bot")
    world.errors["stop"] = RuntimeError("boom")
    monkeypatch.setenv("KSTLIB_DEBUG", "1")
    with pytest.raises(RuntimeError, match="boom"):
        main(["ops", "stop", "bot", "-b", "tmux"], runner_factory=_FACTORY[0])


def test_unknown_session_is_exit_3_everywhere(world: FakeWorld,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["status", "ghost"], ["stop", "ghost"], ["logs", "ghost"],
                 ["attach", "ghost"], ["send-keys", "ghost", "x"],
                 ["exec", "ghost", "--", "ls"], ["status", "ghost", "-b", "docker"]):
        code, out, err = run_cli(capsys, "ops", *argv)
        assert code == 3, argv
        assert out == ""
        assert_one_line_error(err, "Session 'ghost' was not found", "kstlib ops list")


def test_bad_input_is_exit_2(world: FakeWorld, capsys: pytest.CaptureFixture[str]) -> None:
    cases = [
        (["start", "9lives"], "session name: '9lives' must start with a letter"),
        (["start", "ok", "-e", "NOEQUALS"], "--env: item 1 names a variable that is not set"),
        (["start", "ok", "-e", "1X=y"], "--env: item 1: the name before '=' must match"),
        (["start", "ok", "-b", "docker", "-i", "Bad:Image"], "--image: 'Bad:Image'"),
        (["start", "ok", "-b", "docker", "-i", "alpine", "-p", "99999:1"], "--port:"),
        (["start", "ok", "-b", "docker", "-i", "alpine", "-v", "rel"], "--volume: 'rel'"),
        (["start", "ok", "-b", "docker"], "--image: an image is required"),
        (["start", "ok", "-c", "x", "--", "y"], "either with -c/--command or after '--'"),
        (["start", "ok", "--"], "no command after '--'"),
        (["start", "ok", "-b", "docker", "--runtime", "podman"], "contradicts --backend docker"),
        (["start", "ok", "-b", "tmux", "--runtime", "podman"], "is for containers"),
        (["start", "ok", "-b", "container", "-L", "s"], "--socket/-L names a tmux server"),
        (["start", "ok", "-L", "a/b"], "--socket: 'a/b'"),
        (["status", "bad:name"], "name: 'bad:name' is not a session name"),
        (["exec", "bot"], "give the command after '--'"),
        (["exec", "bot", "-b", "tmux", "--", "ls"], "for tmux sessions use"),
        (["restart", "never"], "cannot restart 'never'"),
    ]
    for argv, needle in cases:
        code, out, err = run_cli(capsys, "ops", *argv)
        assert code == 2, (argv, err)
        assert out == ""
        assert_one_line_error(err, needle)
    assert world.started == []


def test_broken_config_file_is_exit_2_naming_file_and_key(
        world: FakeWorld, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config("ops:\n  sessions:\n    bot:\n      comand: x\n")
    code, out, err = run_cli(capsys, "ops", "status", "bot")
    assert code == 2 and out == ""
    assert_one_line_error(err, f"{path}:4: ops.sessions.bot.comand: unknown key "
                          "(did you mean 'command'?")
    code, _, err = run_cli(capsys, "ops", "list", "--config", str(path.parent / "nope.yml"))
    assert code == 2
    assert_one_line_error(err, "nope.yml' does not exist")


# -- start / status / stop ------------------------------------------------------------------


def test_start_json_is_exactly_to_dict(world: FakeWorld, capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    code, out, err = run_cli(capsys, "ops", "start", "bot", "-c", "sleep 9", "--json")
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert set(data) == STATUS_KEYS
    assert data == world.sessions[("tmux", None)]["bot"].to_dict()
    assert data["state"] == "running" and data["created_at"] == "2026-01-02T03:04:05+00:00"
    assert world.started[0].command == "sleep 9"


def test_start_command_after_double_dash_is_an_argv(world: FakeWorld,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "ops", "start", "bot", "-q", "--", "echo", "a;b")
    assert (code, out) == (0, "")
    assert world.started[0].command == ("echo", "a;b")


def test_start_running_session_is_exit_1(world: FakeWorld,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    world.add(TMUX_DEFAULT, "bot")
    code, _, err = run_cli(capsys, "ops", "start", "bot", "-c", "x")
    assert code == 1
    assert_one_line_error(err, "already exists", "stop it first")


def test_status_panel_quiet_and_json(world: FakeWorld, capsys: pytest.CaptureFixture[str]
                                     ) -> None:
    world.add(DOCKER, "web", image="nginx:1", state=SessionState.EXITED, exit_code=3)
    code, out, _ = run_cli(capsys, "ops", "status", "web")
    assert code == 0
    assert out.splitlines()[0] == "Session 'web': exited (3)"
    assert "  backend    container (docker)" in out and "  image      nginx:1" in out
    assert run_cli(capsys, "ops", "status", "web", "-q")[1] == "exited\n"
    data = json.loads(run_cli(capsys, "ops", "status", "web", "--json")[1])
    assert (data["state"], data["exit_code"], data["runtime"], data["backend"]) == (
        "exited", 3, "docker", "container")


def test_status_prefers_tmux_and_stops_there(world: FakeWorld,
                                             capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    world.add(TMUX_DEFAULT, "bot")
    world.errors["locate"] = AssertionError("containers must not be searched")
    assert run_cli(capsys, "ops", "status", "bot", "-q") == (0, "running\n", "")


def test_stop_refuses_an_ambiguous_name(world: FakeWorld,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    world.add(TMUX_DEFAULT, "bot")
    world.add(PODMAN, "bot")
    code, _, err = run_cli(capsys, "ops", "stop", "bot")
    assert code == 1
    assert_one_line_error(err, "exists on several backends (tmux, podman)", "--backend")
    assert world.stopped == []
    assert run_cli(capsys, "ops", "stop", "bot", "-b", "podman", "-q", "-f", "-t", "3")[0] == 0
    assert world.stopped == [("bot", False, 3.0)]


def test_stop_default_is_graceful_with_timeout(world: FakeWorld,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    world.add(DOCKER, "web")
    code, out, _ = run_cli(capsys, "ops", "stop", "web")
    assert (code, out) == (0, "Stopped session 'web' on docker.\n")
    assert world.stopped == [("web", True, 10.0)]


def test_config_definition_is_used_and_overridden(world: FakeWorld,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    write_config("ops:\n  sessions:\n    web:\n      backend: podman\n      image: nginx:1\n"
                 "      env: {A: '1', B: '2'}\n      ports: ['8080:80']\n"
                 "      command: [nginx]\n")
    code, _, err = run_cli(capsys, "ops", "start", "web", "-q", "-e", "B=3", "-p", "9090:90",
                           "-v", "./data:/data")
    assert (code, err) == (0, "")
    cfg = world.started[-1]
    assert (cfg.backend, cfg.runtime, cfg.image, cfg.command) == (
        BackendType.CONTAINER, "podman", "nginx:1", ("nginx",))
    assert cfg.env == {"A": "1", "B": "3"}
    assert cfg.ports == ("8080:80", "9090:90")
    assert cfg.volumes == (f"{Path.cwd()}/data:/data",)


def test_image_without_backend_selects_containers(world: FakeWorld,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    write_config("ops: {container_runtime: docker}\n")
    assert run_cli(capsys, "ops", "start", "web", "-q", "-i", "alpine:3.20")[0] == 0
    cfg = world.started[-1]
    assert (cfg.backend, cfg.runtime) == (BackendType.CONTAINER, "docker")


def test_tmux_workdir_is_made_absolute(world: FakeWorld,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(capsys, "ops", "start", "bot", "-q", "-w", "sub")[0] == 0
    assert world.started[-1].working_dir == str(Path.cwd() / "sub")
    assert run_cli(capsys, "ops", "start", "web", "-q", "-b", "docker", "-i", "x", "-w",
                   "app")[0] == 0
    assert world.started[-1].working_dir == "app"


def test_status_of_a_config_only_session_is_defined(world: FakeWorld,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    write_config("ops:\n  tmux_socket: work\n  sessions:\n    bot: {command: 'sleep 9'}\n")
    data = json.loads(run_cli(capsys, "ops", "status", "bot", "--json")[1])
    assert (data["state"], data["backend"], data["socket_name"], data["pid"]) == (
        "defined", "tmux", "work", None)
    assert run_cli(capsys, "ops", "start", "bot", "-q")[0] == 0
    assert world.started[-1].socket_name == "work"
    assert run_cli(capsys, "ops", "status", "bot", "-q")[1] == "running\n"


def test_restart_uses_the_last_start_when_there_is_no_definition(
        world: FakeWorld, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(capsys, "ops", "start", "bot", "-q", "-L", "s", "-e", "A=1", "--",
                   "sleep", "9")[0] == 0
    code, out, _ = run_cli(capsys, "ops", "restart", "bot", "--json", "-t", "2", "-e", "A=1")
    assert code == 0
    assert world.stopped == [("bot", True, 2.0)]
    again = world.started[-1]
    assert (again.command, again.env, again.socket_name) == (("sleep", "9"), {"A": "1"}, "s")
    assert json.loads(out)["state"] == "running"


def test_logs_exec_send_keys(world: FakeWorld, capsys: pytest.CaptureFixture[str]) -> None:
    world.add(TMUX_DEFAULT, "bot")
    world.add(DOCKER, "web")
    assert run_cli(capsys, "ops", "logs", "bot", "-n", "2") == (0, "line 4\nline 5\n", "")
    assert run_cli(capsys, "ops", "logs", "bot", "-n", "all")[1].count("\n") == 5
    assert run_cli(capsys, "ops", "exec", "web", "--", "sh", "-c", "exit 7") == (
        7, "exec output\n", "")
    assert world.execs == [["sh", "-c", "exit 7"]]
    assert run_cli(capsys, "ops", "send-keys", "bot", "hello world", "--no-enter")[0] == 0
    assert world.keys == [("hello world", False)]
    code, _, err = run_cli(capsys, "ops", "exec", "bot", "--", "ls")
    assert code == 2
    assert_one_line_error(err, "'bot' is a tmux session")


# -- list ---------------------------------------------------------------------------------


def test_list_every_backend_plus_defined(world: FakeWorld,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    write_config("ops:\n  sessions:\n    bot: {}\n    idle: {backend: docker, image: x}\n")
    world.add(TMUX_DEFAULT, "bot")
    world.add(DOCKER, "web", image="nginx:1")
    world.add(PODMAN, "foreign", managed=False)
    data = json.loads(run_cli(capsys, "ops", "list", "--json")[1])
    by_name = {d["name"]: d for d in data}
    assert set(by_name) == {"bot", "web", "foreign", "idle"}
    assert all(set(d) == STATUS_KEYS for d in data)
    assert by_name["bot"]["state"] == "running"  # running wins over its definition
    assert (by_name["idle"]["state"], by_name["idle"]["runtime"]) == ("defined", "docker")
    assert by_name["web"]["runtime"] == "docker" and by_name["foreign"]["runtime"] == "podman"
    managed = json.loads(run_cli(capsys, "ops", "list", "--managed", "--json")[1])
    assert {d["name"] for d in managed} == {"bot", "web", "idle"}
    assert run_cli(capsys, "ops", "list", "-b", "tmux", "-q")[1] == "bot\n"


def test_list_table_is_aligned(world: FakeWorld, capsys: pytest.CaptureFixture[str]) -> None:
    world.add(TMUX_DEFAULT, "bot")
    world.add(DOCKER, "a-longer-name", image="nginx:1")
    code, out, _ = run_cli(capsys, "ops", "list")
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == [
        "NAME", "BACKEND", "RUNTIME", "STATE", "PID", "IMAGE", "CREATED", "MANAGED"]
    columns = [line.index(word) for line, word in zip(lines, ["NAME", "bot", "a-longer-name"], strict=True)]
    assert columns == [0, 0, 0]
    state_col = lines[0].index("STATE")
    assert all(line[state_col:].startswith("running") for line in lines[1:])


def test_list_notes_unreachable_backends_on_stderr(world: FakeWorld,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    world.errors["list:docker"] = ContainerRuntimeNotFoundError(endpoints=["unix:///x"])
    code, out, err = run_cli(capsys, "ops", "list", "--json")
    assert code == 0 and json.loads(out) == []
    assert err == "kstlib: note: not reachable: docker at unix:///x (run 'kstlib ops doctor')\n"
    code, out, err = run_cli(capsys, "ops", "list", "-b", "docker")
    assert code == 1 and out == ""
    assert_one_line_error(err, "docker at unix:///x did not answer", "kstlib ops doctor")


def test_list_of_a_backend_that_does_not_answer_still_lists_its_definitions(
        world: FakeWorld, capsys: pytest.CaptureFixture[str]) -> None:
    down = ContainerRuntimeNotFoundError(endpoints=["unix:///x"])
    world.errors["list:docker"] = world.errors["list:podman"] = down
    write_config("ops:\n  sessions:\n    web: {backend: docker, image: nginx}\n"
                 "    bot: {command: 'sleep 9'}\n")
    code, out, err = run_cli(capsys, "ops", "list", "-b", "container", "--json")
    assert code == 0 and [(r["name"], r["state"]) for r in json.loads(out)] == [("web", "defined")]
    assert "not reachable: docker at unix:///x" in err and "not reachable: podman" in err


# -- output, state, doctor ----------------------------------------------------------------


def test_render_table_and_panel() -> None:
    assert output.render_table(["A", "B"], [["long-value", "x"], ["y", ""]]) == (
        "A           B\nlong-value  x\ny")
    assert output.render_panel("T", [("k", "v"), ("key", "w")]) == "T\n  k    v\n  key  w"


def test_state_roundtrip_and_corruption(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    cfg = SessionConfig(name="web", backend="container", image="alpine:3.20",
                        command=["sleep", "9"], env={"A": "1"}, ports=["80:80"])
    state.save(cfg)
    assert state.load("web") == (cfg.with_overrides(env={}), ("A",))
    (tmp_path / "kstlib" / "ops" / "last-start" / "web.json").write_text("{not json")
    assert state.load("web") is None
    assert state.load("../etc/passwd") is None


def test_state_save_is_best_effort(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_STATE_HOME", str(blocker))  # a file, so mkdir fails
    state.save(SessionConfig(name="bot"))
    assert state.load("bot") is None


def test_doctor_probes_report_instead_of_raising() -> None:
    tmux = probe_tmux(tmux_bin="/nonexistent/tmux")
    assert (tmux.available, tmux.detail) == (False, "/nonexistent/tmux was not found")
    assert "apt install tmux" in (tmux.hint or "")
    docker = probe_docker("unix:///nonexistent/docker.sock")
    assert (docker.available, docker.detail) == (False, "No such file or directory")
    assert "systemctl start docker" in (docker.hint or "")
    podman = probe_podman("unix:///nonexistent/podman.sock")
    assert not podman.available and "podman system service" in (podman.hint or "")
    assert reason(ValueError("")) == "ValueError"


def test_doctor_exit_code_follows_usability(world: FakeWorld, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from kstlib.cli.commands import doctor

    down = doctor.Check("x", False, None, "e", "down", "fix it")
    up = doctor.Check("y", True, "1.0", "e", "")
    for name in ("probe_tmux", "probe_docker", "probe_podman"):
        monkeypatch.setattr(doctor, name, lambda *a, **k: down)
    code, out, _ = run_cli(capsys, "ops", "doctor")
    assert code == 1 and "0 of 3 backends usable" in out and "To use x: fix it" in out
    monkeypatch.setattr(doctor, "probe_podman", lambda *a, **k: up)
    code, out, _ = run_cli(capsys, "ops", "doctor", "--json")
    data = json.loads(out)
    assert code == 0 and [b["available"] for b in data["backends"]] == [False, False, True]
    assert data["config"] == {"path": None, "valid": True, "error": None, "sessions": 0,
                              "public_ports": {}}
    write_config("ops: [broken]\n")
    data = json.loads(run_cli(capsys, "ops", "doctor", "--json")[1])
    assert data["config"]["valid"] is False and "expected a mapping" in data["config"]["error"]


# -- start-up cost -------------------------------------------------------------------------


def test_help_imports_no_container_sdk() -> None:
    code = ("import sys\nfrom kstlib.cli import main\nrc = main(['ops', 'start', '--help'])\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('docker', 'podman', 'libtmux', 'yaml', 'requests'))\n"
            "print(rc, bad)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": os.getcwd()}, check=False)
    assert proc.stdout.strip().splitlines()[-1] == "0 []", proc.stderr


def test_commands_module_imports_no_container_sdk() -> None:
    modules = ", ".join(f"kstlib.cli.commands.{m}" for m in (
        "doctor", "lifecycle", "listing", "interactive", "pull", "events"))
    code = (f"import sys, kstlib.cli.commands, {modules}\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('docker', 'podman')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.stdout.strip() == "[]", proc.stderr


def test_every_command_is_declared_with_its_handler() -> None:
    names = {"start", "stop", "restart", "attach", "status", "logs",
             "list", "exec", "send-keys", "doctor", "wait", "pull", "events"}
    ops = next(a for a in build_parser()._subparsers._group_actions  # type: ignore[union-attr]
               if a.dest == "area").choices["ops"]
    declared = next(a for a in ops._subparsers._group_actions if a.dest == "command_name")
    assert set(declared.choices) == names
    for name, parser in declared.choices.items():
        handler = commands.handler_of(argparse.Namespace(handler=parser.get_default("handler")))
        assert callable(handler) and handler.__name__ == "cmd_" + name.replace("-", "_")
        assert handler.__module__.startswith("kstlib.cli.commands."), handler.__module__
    with pytest.raises(UsageError):
        parse_args(["ops", "list", "--", "x"])


def test_a_name_not_found_suggests_a_close_one(world: FakeWorld,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    world.add(TMUX_DEFAULT, "worker")
    code, _, err = run_cli(capsys, "ops", "status", "wroker")
    assert code == 3
    assert_one_line_error(err, "'wroker' was not found", "Did you mean 'worker'?")
    code, _, err = run_cli(capsys, "ops", "stop", "zzz-unrelated")
    assert code == 3 and "Did you mean" not in err


# -- several names, stop --all ------------------------------------------------------------


def test_stop_several_names_stops_each_and_reports_the_missing(
        world: FakeWorld, capsys: pytest.CaptureFixture[str]) -> None:
    world.add(TMUX_DEFAULT, "a")
    world.add(DOCKER, "b")
    code, out, err = run_cli(capsys, "ops", "stop", "a", "nope", "b")
    assert code == 3  # the worst: one name was not found
    assert out == "Stopped session 'a' on tmux.\nStopped session 'b' on docker.\n"
    assert_one_line_error(err, "'nope' was not found")
    assert [s[0] for s in world.stopped] == ["a", "b"]


def test_status_and_logs_of_several_names(world: FakeWorld,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    world.add(TMUX_DEFAULT, "a")
    world.add(DOCKER, "b", state=SessionState.EXITED, exit_code=0)
    assert run_cli(capsys, "ops", "status", "a", "b", "-q") == (0, "running\nexited\n", "")
    code, out, err = run_cli(capsys, "ops", "status", "a", "ghost", "b", "--json")
    assert code == 3 and [d["name"] for d in json.loads(out)] == ["a", "b"]  # one document
    assert_one_line_error(err, "'ghost' was not found")
    code, out, _ = run_cli(capsys, "ops", "logs", "a", "b", "-n", "2")
    assert (code, out) == (0, "a | line 4\na | line 5\nb | line 4\nb | line 5\n")
    # one name: lines as they are
    assert run_cli(capsys, "ops", "logs", "a", "-n", "1") == (0, "line 5\n", "")
    code, _, err = run_cli(capsys, "ops", "logs", "a", "b", "-f")
    assert code == 2
    assert_one_line_error(err, "--follow follows one session")


def test_stop_all_stops_managed_sessions_only(world: FakeWorld,
                                              capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    write_config("ops:\n  sessions:\n    idle: {backend: docker, image: x}\n")
    world.add(TMUX_DEFAULT, "mine")
    world.add(DOCKER, "web")
    world.add(PODMAN, "foreign", managed=False)
    monkeypatch.setattr(sys, "stdin", _Stdin("", tty=False))  # not a terminal: no question
    code, out, _ = run_cli(capsys, "ops", "stop", "--all", "-f")
    assert code == 0
    assert sorted(s[0] for s in world.stopped) == ["mine", "web"]  # never "foreign", "idle"
    assert "foreign" not in out and "idle" not in out
    assert run_cli(capsys, "ops", "stop", "--all") == (0, "No managed sessions to stop.\n", "")


def test_stop_all_asks_on_a_terminal_unless_yes(world: FakeWorld,
                                                capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    world.add(TMUX_DEFAULT, "mine")
    monkeypatch.setattr(sys, "stdin", _Stdin("n\n", tty=True))
    code, _, err = run_cli(capsys, "ops", "stop", "--all")
    assert code == 1 and "Stop 1 session(s): mine? [y/N]" in err
    assert world.stopped == []
    monkeypatch.setattr(sys, "stdin", _Stdin("y\n", tty=True))
    assert run_cli(capsys, "ops", "stop", "--all")[0] == 0
    assert [s[0] for s in world.stopped] == ["mine"]
    world.add(TMUX_DEFAULT, "again")
    monkeypatch.setattr(sys, "stdin", _Stdin("", tty=True))  # --yes: never read
    code, _, err = run_cli(capsys, "ops", "stop", "--all", "--yes")
    assert code == 0 and "[y/N]" not in err
    assert [s[0] for s in world.stopped] == ["mine", "again"]


@pytest.mark.parametrize(("argv", "needle"), [
    (["ops", "stop", "a", "--all"], "give no NAME with it"),
    (["ops", "stop", "a", "--yes"], "--yes only applies to --all"),
])
def test_stop_all_usage(world: FakeWorld, capsys: pytest.CaptureFixture[str],
                        argv: list[str], needle: str) -> None:
    code, _, err = run_cli(capsys, *argv)
    assert code == 2
    assert_one_line_error(err, needle)


class _Stdin:
    def __init__(self, text: str, *, tty: bool) -> None:
        self.text, self.tty = text, tty

    def isatty(self) -> bool:
        return self.tty

    def readline(self) -> str:
        if not self.tty:
            raise AssertionError("stdin read although it is not a terminal")
        return self.text


def test_the_cli_names_places_with_discoverys_location() -> None:
    """One place type: the CLI's look-ups answer with kstlib.ops.discovery.Location."""
    from kstlib.cli import places
    from kstlib.ops import discovery

    assert not hasattr(places, "Place")
    ctx = Context(argparse.Namespace(config=None, backend="tmux", socket="w", runtime=None))
    place = ctx.explicit_place("bot")
    assert type(place) is discovery.Location
    assert label(place) == "tmux (socket w)"
    assert [label(p) for p in ctx.search_places("bot")] == ["tmux (socket w)"]
