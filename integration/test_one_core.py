"""The library and the CLI find and list sessions the same way (one discovery).

Each test here is a case where two ways of finding a session once disagreed:

* inside a tmux pane (``$TMUX`` names the pane's server), a session on the
  user's default server is still found, by ``SessionManager.find`` and by
  ``status``/``logs``/``stop``/``attach``, and ``list`` shows the pane's
  server once;
* ``list --engine NAME`` shows only the config file's sessions of that engine;
* ``send-keys`` on a container session says why not (as the Python API does),
  it does not claim the session is missing;
* ``list_sessions()`` lists the services of a swarm manager.

The tmux servers live in a private ``TMUX_TMPDIR``: the "pane" server is a
second server there, never the user's own.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from kstlib.ops import SessionConfig, SessionManager
from kstlib.ops.discovery import list_sessions

from .conftest import unique
from .test_cli import Cli, cli, container_runner  # noqa: F401  (cli is a fixture)
from .swarm_support import Swarm, swarm_name


def _pane_server(cli: Cli) -> tuple[str, str]:
    """A second tmux server ("pane"), and the ``$TMUX`` value of a pane on it."""
    pane_session = unique("pane")
    env = {**cli.env, "TMUX_TMPDIR": str(cli.tmux_tmpdir)}
    subprocess.run(["tmux", "-L", "pane", "new-session", "-d", "-s", pane_session, "sleep 300"],
                   env=env, check=True, timeout=30)
    pid = subprocess.run(["tmux", "-L", "pane", "display-message", "-p", "#{pid}"], env=env,
                         check=True, timeout=30, capture_output=True, text=True).stdout.strip()
    return pane_session, f"{cli.socket_dir / 'pane'},{pid},0"


def test_inside_a_pane_a_session_on_the_default_server_is_found(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = unique()
    cli("ops", "start", name, "-q", "--", "sh", "-c", "echo from-default; sleep 300")
    assert cli.default_tmux().exists(name)
    pane_session, tmux_env = _pane_server(cli)
    pane = {"TMUX": tmux_env}

    status = json.loads(cli("ops", "status", name, "--json", env=pane).stdout)
    assert (status["name"], status["state"], status["socket_name"]) == (name, "running", None)
    assert "from-default" in cli("ops", "logs", name, env=pane).stdout

    listed = json.loads(cli("ops", "list", "-b", "tmux", "--json", env=pane).stdout)
    names = [row["name"] for row in listed]
    assert names.count(pane_session) == 1, listed  # the pane's server once, by its name
    assert names.count(name) == 1, listed
    assert [r["socket_name"] for r in listed if r["name"] == pane_session] == ["pane"]

    # The library, in a process whose $TMUX names the pane's server.
    monkeypatch.setenv("TMUX_TMPDIR", str(cli.tmux_tmpdir))
    monkeypatch.setenv("TMUX", tmux_env)
    found = SessionManager.find(name, runtime="docker", base_url="unix:///nonexistent.sock")
    assert found.status().socket_name is None
    assert "from-default" in found.logs()

    # attach runs tmux attach (no terminal here, so tmux refuses): the session was found.
    attach = cli("ops", "attach", name, env=pane, code=None)
    assert attach.returncode != 3 and "not found" not in attach.stderr, attach.stderr

    cli("ops", "stop", name, "-q", env=pane)
    assert not cli.default_tmux().exists(name)
    assert cli.tmux("pane").exists(pane_session)


def test_list_engine_shows_only_that_engines_definitions(cli: Cli) -> None:
    alpha, beta = unique("a"), unique("b")
    config = cli.root / "ops.yml"
    config.write_text(
        "ops:\n"
        "  engines:\n"
        f"    alpha: {{backend: tmux, socket_name: {alpha}}}\n"
        f"    beta: {{backend: tmux, socket_name: {beta}}}\n"
        "  sessions:\n"
        "    on-alpha: {engine: alpha, command: 'sleep 300'}\n"
        "    on-beta: {engine: beta, command: 'sleep 300'}\n"
    )
    rows = json.loads(cli("ops", "list", "--engine", "alpha", "--config", str(config),
                          "--json").stdout)
    assert [(r["name"], r["state"]) for r in rows] == [("on-alpha", "defined")]
    rows = json.loads(cli("ops", "list", "--engine", "beta", "--config", str(config),
                          "--json").stdout)
    assert [(r["name"], r["state"]) for r in rows] == [("on-beta", "defined")]


@pytest.mark.docker
def test_send_keys_on_a_container_session_says_why_not(cli: Cli) -> None:
    runner = container_runner("docker")
    name = unique()
    runner.start(SessionConfig(name=name, backend="container", runtime="docker",
                               image="localhost/kstlib-test:latest", command="sleep 300"))
    try:
        err = cli.error("ops", "send-keys", name, "ls", code=2)
        assert "container session" in err and "exec" in err, err
        with pytest.raises(Exception, match="exec"):
            SessionManager(name, backend="docker").send_keys("ls")
    finally:
        runner.stop(name, graceful=False)


@pytest.mark.docker
def test_list_sessions_lists_the_services_of_a_swarm(swarm: Swarm) -> None:
    name = swarm_name()
    swarm.runner.start(swarm.config(name, ["sleep", "300"]))
    manager = swarm.env["KSTLIB_TEST_SWARM_MANAGER"]
    table = list_sessions(tmux=False, containers=False, swarms=[manager])
    assert [(s.name, s.backend.value) for s in table if s.name == name] == [(name, "swarm")]
    found = SessionManager.find(name, swarms=[manager], runtime="docker",
                                base_url="unix:///nonexistent.sock")
    assert found.backend.value == "swarm"
    assert found.stop(graceful=False)
    assert name not in {s.name for s in list_sessions(tmux=False, containers=False,
                                                      swarms=[manager])}

