"""The CLI has no search of its own: it asks the places :mod:`kstlib.ops.discovery` asks.

A runner factory handed to ``main`` (and to ``SessionManager.find``) records
every runner the search builds and every look-up made on it; the CLI's
``status NAME`` and the library's ``find`` must make the same look-ups. A
place the user names (``--runtime docker``) that does not answer is an error
with the engine's own message; the same engine, not named, is skipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kstlib.cli import main
from kstlib.cli.context import Context
from kstlib.ops import SessionManager
from kstlib.ops.discovery import Location, search, search_at
from kstlib.ops.exceptions import ContainerRuntimeNotFoundError, SessionNotFoundError
from kstlib.ops.models import BackendType, SessionTable


class Recorder:
    """A runner factory whose runners hold nothing; ``down`` runtimes do not answer."""

    def __init__(self, down: tuple[str, ...] = ()) -> None:
        self.down = down
        self.asked: list[tuple[str, str | None, str | None, str | None, str]] = []

    def __call__(self, backend: BackendType, **where: Any) -> Any:
        recorder = self

        class Runner:
            def exists(self, name: str) -> bool:
                runtime = where.get("runtime")
                recorder.asked.append((backend.value, where.get("socket_name"), runtime,
                                       where.get("base_url"), name))
                if runtime in recorder.down:
                    raise ContainerRuntimeNotFoundError(
                        f"No {runtime} engine API answered (tried: unix:///gone.sock).",
                        endpoints=["unix:///gone.sock"])
                return False

            def list_sessions(self) -> SessionTable:
                return SessionTable([])

        return Runner()


@pytest.fixture
def no_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("KSTLIB_CONFIG", raising=False)


def test_cli_status_makes_the_look_ups_of_session_manager_find(
    no_config: None, capsys: pytest.CaptureFixture[str],
) -> None:
    library = Recorder()
    with pytest.raises(SessionNotFoundError):
        SessionManager.find("ghost-bot", runner_factory=library)
    cli = Recorder()
    assert main(["ops", "status", "ghost-bot"], runner_factory=cli) == 3
    assert "ghost-bot" in capsys.readouterr().err
    assert cli.asked == library.asked
    # tmux's default server first, then each container engine
    assert library.asked[0] == ("tmux", None, None, None, "ghost-bot")
    assert [a[2] for a in library.asked if a[0] == "container"] == ["podman", "docker"]
    assert not hasattr(Context, "_probe")  # the CLI's own copy of the search is gone


def test_a_named_place_that_does_not_answer_gives_its_error(
    no_config: None, capsys: pytest.CaptureFixture[str],
) -> None:
    factory = Recorder(down=("docker",))
    assert main(["ops", "status", "ghost-bot", "--runtime", "docker"], runner_factory=factory) == 1
    assert "No docker engine API answered (tried: unix:///gone.sock)" in capsys.readouterr().err
    # not named: the engine is skipped and the session is simply not found
    assert main(["ops", "status", "ghost-bot"], runner_factory=factory) == 3
    assert "not found" in capsys.readouterr().err
    # the library's strict mode is the same rule
    with pytest.raises(ContainerRuntimeNotFoundError):
        search("ghost-bot", tmux=False, runtime="docker", strict=True, runner_factory=factory)
    lenient = search("ghost-bot", tmux=False, runtime="docker", runner_factory=factory)
    assert lenient.unreachable == ["docker at unix:///gone.sock"]
    assert [place.runtime for place, _ in lenient.failed] == ["docker"]


def test_first_stops_at_the_first_place_that_holds_the_name() -> None:
    asked: list[str | None] = []

    def factory(backend: BackendType, **where: Any) -> Any:
        class Runner:
            def exists(self, name: str) -> bool:
                asked.append(where.get("socket_name"))
                return where.get("socket_name") in ("one", "two")

        return Runner()

    places = [Location(BackendType.TMUX, socket_name=s) for s in ("zero", "one", "two")]
    found = search_at("bot", places, first=True, runner_factory=factory)
    assert ([p.socket_name for p in found.found], asked) == (["one"], ["zero", "one"])
    found = search_at("bot", places, runner_factory=factory)
    assert [p.socket_name for p in found.found] == ["one", "two"]
