"""``nodes:`` of a swarm engine (``ops.engines``): checked, matched to its manager, handed to stops.

The swarm itself is in ``integration/test_swarm_cli.py``; here: what the file
accepts, which manager a list belongs to, and that the CLI hands the list to
the runner factory as ``node_urls``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kstlib.cli import main
from kstlib.ops.config import OpsConfig, load_config, parse_config
from kstlib.ops.exceptions import SessionConfigError
from kstlib.ops.models import BackendType, SessionTable

MANAGER = "tcp://manager:2375"
WORKER = "tcp://worker:2375"

LAB = (
    "ops:\n"
    "  engines:\n"
    "    lab:\n"
    "      backend: swarm\n"
    f"      base_url: {MANAGER}\n"
    f"      nodes: [{WORKER}, unix:///run/node-b.sock]\n"
)


def test_a_swarm_engine_lists_its_nodes() -> None:
    config = parse_config(LAB, "/etc/kstlib/kstlib.conf.yml")
    assert config.engines["lab"].nodes == (WORKER, "unix:///run/node-b.sock")
    assert config.swarm_nodes(MANAGER) == (WORKER, "unix:///run/node-b.sock")
    assert config.swarm_nodes("tcp://another-manager:2375") == ()
    assert parse_config(LAB.replace("      nodes:", "      #")).engines["lab"].nodes == ()


def test_the_default_manager_is_docker_host(monkeypatch: pytest.MonkeyPatch) -> None:
    config = parse_config(LAB)
    monkeypatch.setenv("DOCKER_HOST", MANAGER)
    assert config.swarm_nodes(None) == (WORKER, "unix:///run/node-b.sock")
    monkeypatch.setenv("DOCKER_HOST", "tcp://elsewhere:2375")
    assert config.swarm_nodes(None) == ()


@pytest.mark.parametrize(
    ("nodes", "problem"),
    [
        ("tcp://w:2375", "expected a list of engine URLs, got str"),
        ("[ftp://w]", "'ftp://w' must start with unix://, tcp://, ssh://, http:// or https://"),
        ("[null]", "expected engine URLs, got null"),
    ],
)
def test_a_bad_nodes_entry_names_the_file_line_and_key(nodes: str, problem: str) -> None:
    text = LAB.replace(f"[{WORKER}, unix:///run/node-b.sock]", nodes)
    with pytest.raises(SessionConfigError) as info:
        parse_config(text, "/etc/kstlib/kstlib.conf.yml")
    assert str(info.value) == f"/etc/kstlib/kstlib.conf.yml:6: ops.engines.lab.nodes: {problem}"


def test_nodes_belong_to_swarm_engines_only() -> None:
    text = LAB.replace("backend: swarm", "backend: docker")
    with pytest.raises(SessionConfigError, match=r"nodes: lists a swarm's nodes; this engine's "
                       r"backend is container"):
        parse_config(text)


def test_a_project_file_the_user_does_not_trust_gives_no_remote_node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("KSTLIB_CONFIG", raising=False)
    (tmp_path / "kstlib.conf.yml").write_text(LAB, encoding="utf-8")
    config = load_config()
    assert config.project_local
    assert config.swarm_nodes(MANAGER) == ("unix:///run/node-b.sock",)
    assert OpsConfig().swarm_nodes(MANAGER) == ()


def test_the_cli_hands_the_nodes_to_the_runner_factory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("DOCKER_HOST", MANAGER)
    monkeypatch.delenv("KSTLIB_CONFIG", raising=False)
    (tmp_path / "xdg" / "kstlib").mkdir(parents=True)
    (tmp_path / "xdg" / "kstlib" / "kstlib.conf.yml").write_text(LAB, encoding="utf-8")

    stopped: list[dict[str, Any]] = []

    class Holder:
        """A swarm that holds ``svc``: found by the look-up, then stopped."""

        def __init__(self, backend: BackendType, **options: Any) -> None:
            self.options = {"backend": backend, **options}
            self.backend = backend

        def exists(self, name: str) -> bool:
            return self.backend is BackendType.SWARM

        def list_sessions(self) -> SessionTable:
            return SessionTable([])

        def stop(self, name: str, graceful: bool = True, timeout: float = 10) -> bool:
            stopped.append(self.options)
            return True

    assert main(["ops", "stop", "svc", "-b", "swarm", "-q"], runner_factory=Holder) == 0
    capsys.readouterr()
    # The runner that stops is built with every node the config names for that manager.
    assert [s["backend"] for s in stopped] == [BackendType.SWARM]
    assert tuple(stopped[0]["node_urls"]) == (WORKER, "unix:///run/node-b.sock")
