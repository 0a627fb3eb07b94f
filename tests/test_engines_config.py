"""Named engines (``ops.engines``): the schema, the names, the ssh settings; no engine needed."""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import pytest

from kstlib.cli.context import Context
from kstlib.ops import SessionManager
from kstlib.ops.config import parse_config
from kstlib.ops.config import EngineConfig
from kstlib.ops.engines import ssh
from kstlib.ops.exceptions import SessionConfigError
from kstlib.ops.fleet import engine_options, gather, list_engines
from kstlib.ops.discovery import EngineUnavailableWarning, list_sessions
from kstlib.ops.models import BackendType

FLEET = """
ops:
  engines:
    local: {backend: tmux, socket_name: work}
    edge: {backend: docker, base_url: "ssh://deploy@edge:2200", identity: /keys/edge,
           known_hosts: /keys/known_hosts, timeout: 7}
    lab: {runtime: podman, base_url: "ssh://lab/run/podman/podman.sock", verify_host_key: false}
    cluster: {backend: swarm, base_url: "tcp://manager:2375"}
  sessions:
    web: {engine: edge, image: "app:1"}
    bot: {engine: local, command: "python bot.py"}
"""


def test_every_kind_of_named_engine_is_read() -> None:
    cfg = parse_config(FLEET, source="fleet.yml")
    local, edge, lab, cluster = (cfg.engines[n] for n in ("local", "edge", "lab", "cluster"))
    assert (local.backend, local.socket_name, local.base_url) == ("tmux", "work", None)
    assert (edge.backend, edge.runtime, edge.timeout) == ("container", "docker", 7.0)
    assert edge.endpoint == (
        "ssh://deploy@edge:2200?identity=%2Fkeys%2Fedge&known_hosts=%2Fkeys%2Fknown_hosts"
    )
    assert lab.endpoint == "ssh://lab/run/podman/podman.sock?verify_host_key=no"
    assert (cluster.backend, cluster.base_url) == ("swarm", "tcp://manager:2375")


def test_a_session_runs_where_its_engine_is() -> None:
    cfg = parse_config(FLEET, source="fleet.yml")
    web, bot = cfg.session("web"), cfg.session("bot")
    assert web.backend is BackendType.CONTAINER and web.runtime == "docker"
    assert web.base_url == cfg.engines["edge"].endpoint  # the ssh settings travel with it
    assert bot.backend is BackendType.TMUX and bot.socket_name == "work"


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("{local: {backend: tmux, base_url: 'unix:///x'}}", "does not apply to a tmux engine"),
        ("{e: {base_url: 'tcp://h:2375', identity: /k}}", "applies to an ssh:// base_url only"),
        ("{e: {base_url: 'ssh://h', identity: keys/k}}", "must be an absolute path"),
        ("{e: {base_url: 'ssh://h', verify_host_key: 'no'}}", "expected true or false"),
        ("{e: {base_url: 'ssh://h', timeout: 0}}", "is not a number of seconds"),
        ("{e: {backend: kubernetes, base_url: 'ssh://h'}}", "is not a backend"),
        ("{e: {backend: docker}}", "base_url: is required"),
        ("{e: {backend: docker, runtime: podman, base_url: 'ssh://h'}}", "contradicts"),
        ("{e: {base_url: 'ftp://h'}}", "must start with unix://"),
    ],
)
def test_a_bad_engine_names_its_key_and_line(body: str, words: str) -> None:
    with pytest.raises(SessionConfigError) as info:
        parse_config(f"ops:\n  engines: {body}\n", source="bad.yml")
    assert words in str(info.value) and str(info.value).startswith("bad.yml:2: ops.engines.")


def test_an_unknown_engine_lists_the_known_ones_everywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(
        SessionConfigError,
        match=r"'mars' is not an engine \(known: cluster, "
        r"edge, lab, local\)",
    ):
        parse_config(FLEET.replace("engine: edge", "engine: mars"), source="fleet.yml")
    path = tmp_path / "kstlib.conf.yml"
    path.write_text(FLEET)
    ctx = Context(argparse.Namespace(config=str(path), engine="mars", name="web"))
    with pytest.raises(SessionConfigError, match=r"known: cluster, edge, lab, local"):
        ctx.explicit_place("web")
    monkeypatch.setenv("KSTLIB_CONFIG", str(path))
    with pytest.raises(SessionConfigError, match=r"'mars' is not an engine \(known: cluster"):
        list_sessions(engines=["mars"])
    with pytest.raises(SessionConfigError, match=r"'mars' is not an engine \(known: cluster"):
        engine_options("mars", "auto", {})


def test_session_manager_takes_a_named_engine(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "kstlib.conf.yml"
    path.write_text(FLEET)
    monkeypatch.setenv("KSTLIB_CONFIG", str(path))
    web = SessionManager("web2", engine="edge", image="app:1")
    assert web.backend is BackendType.CONTAINER
    assert web.config.runtime == "docker" and "identity=%2Fkeys%2Fedge" in str(web.config.base_url)
    assert SessionManager("bot2", engine="local").config.socket_name == "work"
    with pytest.raises(SessionConfigError, match=r"'nope' is not an engine \(known: "):
        SessionManager("x", engine="nope")
    with pytest.raises(SessionConfigError, match="already says where the session runs"):
        SessionManager("x", engine="edge", base_url="unix:///other.sock")


def test_ssh_targets_read_the_users_ssh_config(tmp_path: Path) -> None:
    key = tmp_path / "id_edge"
    key.write_text("not a real key")
    known = tmp_path / "known"
    known.write_text("")
    config = tmp_path / "config"
    config.write_text(
        f"Host edge\n  HostName 10.1.2.3\n  Port 2200\n  User deploy\n  IdentityFile {key}\n"
        f"  UserKnownHostsFile {known}\n"
    )
    target = ssh.parse_target("ssh://edge/run/podman/podman.sock", ssh_config=str(config))
    assert (target.hostname, target.port, target.user) == ("10.1.2.3", 2200, "deploy")
    assert target.identity == str(key) and target.known_hosts == (str(known),)
    assert target.sdk_url == "ssh://deploy@10.1.2.3:2200/run/podman/podman.sock"
    explicit = ssh.parse_target("ssh://ops@edge:22?identity=/k", ssh_config=str(config))
    assert (explicit.user, explicit.port, explicit.identity) == ("ops", 22, "/k")


def test_parallel_tasks_are_each_bounded_and_keep_their_errors() -> None:
    import time

    began = time.monotonic()
    out = gather(
        {"ok": lambda: 1, "boom": lambda: 1 / 0, "hang": lambda: time.sleep(30)},
        {"ok": 5, "boom": 5, "hang": 0.2},
        lambda key, seconds: TimeoutError(key),
    )
    assert out["ok"].value == 1
    assert isinstance(out["boom"].error, ZeroDivisionError)
    assert isinstance(out["hang"].error, TimeoutError)
    assert time.monotonic() - began < 30  # the hung task was not waited for


def test_an_engine_that_is_down_is_one_warning_and_the_others_still_list() -> None:
    engines = [
        EngineConfig("gone", "unix:///nonexistent-kstlib.sock", "docker"),
        EngineConfig("tmux-here", backend="tmux", socket_name="kstlib-test-engines-empty"),
    ]
    table, down = list_engines(engines, timeout=2)
    assert list(down) == ["gone"] and type(table).__name__ == "SessionTable"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        list_sessions(engines={e.name: e for e in engines}, timeout=2)
    lines = [str(w.message) for w in caught if issubclass(w.category, EngineUnavailableWarning)]
    assert len(lines) == 1 and lines[0].startswith("engine gone skipped:")


def test_without_paramiko_an_ssh_engine_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "paramiko", None)  # import paramiko -> ImportError
    target = ssh.parse_target("ssh://ops@edge:22", ssh_config="/nonexistent")
    with pytest.raises(Exception) as info:
        ssh.login(target, 5, "docker")
    assert info.value.ssh_problem == "no-paramiko"  # type: ignore[attr-defined]
    assert "pip install 'kstlib[ssh]'" in str(info.value)
