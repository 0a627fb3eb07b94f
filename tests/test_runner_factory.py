"""One runner factory: a backend registered once is seen by list, find and the CLI.

A fake runner stands for a backend (registered for ``swarm``, which no test
machine here needs for this) and, separately, is handed to the manager and
the CLI as their ``runner_factory`` (the injection point tests use instead of
patching a private method).
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
