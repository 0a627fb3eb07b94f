"""One runner factory: a backend registered once is seen by list, find and the CLI.

A fake runner stands for a backend (registered for ``swarm``, which no test
machine here needs for this) and, separately, is handed to the manager and
the CLI as their ``runner_factory`` (the injection point tests use instead of
patching a private method). The steps of "Adding a backend"
(``docs/architecture.md``) are walked: every ``BackendType`` member has a
builder that passes only what its class takes, and every spelling of
``BackendType.spellings()`` is taken by the config file, the pytest plugin and
the CLI, which reach the registered builder.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest

from kstlib.cli import main
from kstlib.ops import SessionManager
from kstlib.ops.discovery import list_sessions, search
from kstlib.ops.exceptions import SessionAmbiguousError, SessionNotFoundError
from kstlib.ops.models import BackendType, SessionState, SessionStatus, SessionTable
from kstlib.ops.runners import make_runner, register

CREATED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


class FakeRunner:
    """A runner that holds one session, ``fake-bot``, at every place it is built for."""

    built: list[dict[str, Any]] = []

    def __init__(self, backend: BackendType, **where: Any) -> None:
        self.backend = backend
        self.where = where
        FakeRunner.built.append({"backend": backend, **where})

    def _status(self) -> SessionStatus:
        return SessionStatus("fake-bot", SessionState.RUNNING, self.backend, pid=7,
                             created_at=CREATED, managed=True)

    def exists(self, name: str) -> bool:
        return name == "fake-bot"

    def status(self, name: str) -> SessionStatus:
        if name != "fake-bot":
            raise SessionNotFoundError(name, self.backend)
        return self._status()

    def list_sessions(self) -> SessionTable:
        return SessionTable([self._status()])


@pytest.fixture
def fake_swarm() -> Iterator[None]:
    FakeRunner.built.clear()
    undo = register(BackendType.SWARM, FakeRunner)  # type: ignore[arg-type]
    yield
    undo()
    assert type(make_runner(BackendType.SWARM)).__name__ == "SwarmRunner"


def test_a_registered_backend_is_listed_found_and_shown_by_the_cli(
    fake_swarm: None, capsys: pytest.CaptureFixture[str], tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    table = list_sessions(tmux=False, containers=False, swarms=["tcp://manager:2375"])
    assert [(s.name, s.backend) for s in table] == [("fake-bot", BackendType.SWARM)]
    where = search("fake-bot", tmux=False, containers=False, swarms=["tcp://manager:2375"])
    assert where.one("fake-bot").endpoint == "tcp://manager:2375"
    found = SessionManager.find("fake-bot", socket_name="kstlib-none", runtime="docker",
                                base_url="unix:///nonexistent.sock", swarms=["tcp://manager:2375"])
    assert (found.backend, found.status().pid) == (BackendType.SWARM, 7)

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("KSTLIB_CONFIG", raising=False)
    assert main(["ops", "status", "fake-bot", "-b", "swarm", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["name"], shown["backend"], shown["pid"]) == ("fake-bot", "swarm", 7)
    assert {"backend": BackendType.SWARM, "base_url": "tcp://manager:2375"}.items() <= \
        FakeRunner.built[0].items()


def test_the_manager_and_the_cli_take_a_runner_factory(
    capsys: pytest.CaptureFixture[str], tmp_path: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    FakeRunner.built.clear()
    bot = SessionManager("fake-bot", socket_name="kstlib-fake", runner_factory=FakeRunner)
    assert bot.status().pid == 7 and bot.exists()
    assert FakeRunner.built[-1]["socket_name"] == "kstlib-fake"
    # the fake holds it everywhere: the container look-up goes through the factory too
    with pytest.raises(SessionAmbiguousError) as info:
        SessionManager.find("fake-bot", socket_name="kstlib-fake", runtime="docker",
                            base_url="unix:///nonexistent.sock", runner_factory=FakeRunner)
    assert list(info.value.places) == ["tmux", "docker"]

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("KSTLIB_CONFIG", raising=False)
    code = main(["ops", "status", "fake-bot", "-L", "kstlib-fake", "--json"],
                runner_factory=FakeRunner)
    assert code == 0
    assert json.loads(capsys.readouterr().out)["pid"] == 7


def test_the_manager_is_one_class_whose_waits_and_scale_are_its_methods() -> None:
    assert SessionManager.__mro__ == (SessionManager, object)
    for method in ("wait", "wait_for_log", "wait_for_port", "wait_for_http",
                   "wait_until_running", "scale", "restart"):
        assert method in vars(SessionManager), method


def test_every_kind_has_a_builder_that_passes_only_what_its_class_takes() -> None:
    # "Adding a backend" (docs/architecture.md), step 3: a BackendType member and its row.
    import inspect

    from kstlib.ops.runners import BUILDERS, ClassBuilder, RunnerOptions

    assert set(BUILDERS) == set(BackendType)
    for kind, builder in BUILDERS.items():
        assert isinstance(builder, ClassBuilder), kind
        assert set(builder.takes.values()) <= set(RunnerOptions.__annotations__), kind
        params = inspect.signature(builder.load()).parameters
        assert set(builder.takes) <= set(params), kind
    swarm = make_runner(BackendType.SWARM, base_url="unix:///m.sock", node_urls=["tcp://w:2375"],
                        socket_name="ignored-here", engine_timeout=7)
    assert (swarm.node_urls, swarm.timeout) == (("tcp://w:2375",), 7)  # type: ignore[attr-defined]


def test_every_spelling_is_taken_everywhere_a_backend_is_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kstlib.ops.config import parse_config
    from kstlib.ops.config._engines import engine_from
    from kstlib.ops.pytest_plugin import backend_problem
    from kstlib.ops.pytest_plugin.sessions import BACKENDS

    spellings = BackendType.spellings()
    assert set(spellings) >= {b.value for b in BackendType}
    assert spellings == BACKENDS
    for spelling in spellings:
        kind, runtime = BackendType.parse(spelling)
        assert runtime is None or kind is BackendType.CONTAINER
        where = {} if kind is BackendType.TMUX else {"base_url": "tcp://h:2375"}
        assert engine_from("e", {"backend": spelling, **where}).backend == kind.value
        image = "" if kind is BackendType.TMUX else "      image: x\n"
        text = f"ops:\n  sessions:\n    a:\n      backend: {spelling}\n{image}"
        assert parse_config(text).sessions["a"].backend is kind
    refused = "(choose from " + ", ".join(spellings) + ")"
    assert refused in str(backend_problem("lxc"))
    with pytest.raises(ValueError, match=refused.replace("(", r"\(").replace(")", r"\)")):
        BackendType.parse("lxc")

    # The CLI's -b takes each spelling, and the runner it asks for is the registered one.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("KSTLIB_CONFIG", raising=False)
    undo = [register(kind, FakeRunner) for kind in BackendType]  # type: ignore[arg-type]
    try:
        for spelling in spellings:
            FakeRunner.built.clear()
            code = main(["ops", "status", "fake-bot", "-b", spelling, "--json"])
            out, err = capsys.readouterr()
            if spelling == "container":  # the fake answers on both runtimes: which one?
                assert (code, "several backends (podman, docker)" in err) == (1, True), err
                continue
            assert code == 0, (spelling, err)
            assert json.loads(out)["backend"] == BackendType.parse(spelling)[0].value
        assert main(["ops", "status", "fake-bot", "-b", "lxc"]) == 2
        refused_by_cli = capsys.readouterr().err
        assert all(f"'{s}'" in refused_by_cli for s in spellings), refused_by_cli
    finally:
        for each in reversed(undo):
            each()
