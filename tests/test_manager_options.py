"""Issue 16, library points that need no engine: options, backends, tables, statuses.

Each test asserts what the old code got wrong (noted per test).
"""

from __future__ import annotations

import json
import os
import pickle
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from kstlib.ops import (
    BackendType,
    SessionConfig,
    SessionConfigError,
    SessionError,
    SessionManager,
    SessionNotFoundError,
    SessionState,
    SessionStatus,
    SessionTable,
)
from kstlib.ops.container.states import to_status
from kstlib.ops.engines import docker as docker_engine
from kstlib.ops.engines import podman as podman_engine
from kstlib.ops.engines.adapter import ContainerInfo, PortBinding, spec_from_config
from kstlib.ops.discovery import EngineUnavailableWarning, Search, list_sessions

NOWHERE = "unix:///nonexistent-kstlib.sock"

# -- 2. an image means a container; what a backend cannot honour is refused -----------


def test_an_image_without_backend_means_a_container() -> None:
    # old: backend defaulted to tmux and the image was silently ignored (ran on the host)
    mgr = SessionManager("web", image="localhost/kstlib-test:latest", command=["sleep", "5"])
    assert mgr.backend is BackendType.CONTAINER
    assert SessionManager("job").backend is BackendType.TMUX
    assert SessionManager("job", runtime="docker").backend is BackendType.CONTAINER


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("image", "busybox"),
        ("volumes", ["/srv:/srv"]),
        ("ports", ["8080:80"]),
        ("runtime", "docker"),
        ("base_url", "unix:///var/run/docker.sock"),
        ("labels", {"team": "ops"}),
        ("memory", "64m"),
        ("cpus", 1.5),
        ("log_volume", "/var/log/app:/logs"),
    ],
)
def test_a_container_option_on_tmux_is_a_config_error(option: str, value: object) -> None:
    with pytest.raises(SessionConfigError) as info:
        SessionManager("job", backend="tmux", **{option: value})
    assert info.value.field == option
    assert "tmux" in str(info.value)
    with pytest.raises(SessionConfigError):
        SessionConfig(name="job", **{option: value})  # type: ignore[arg-type]


def test_an_image_given_at_start_on_tmux_is_refused_before_anything_runs() -> None:
    mgr = SessionManager("job", socket_name="kstlib-never-started")
    with pytest.raises(SessionConfigError, match="image"):
        mgr.start(["sleep", "5"], image="busybox")
    assert mgr.config.image is None


# -- 3. backend="docker" / "podman" ---------------------------------------------------


@pytest.mark.parametrize("spelling", ["docker", "podman", "Docker"])
def test_runtime_backends_mean_a_container_there(spelling: str) -> None:
    # old: SessionConfigError "'docker' is not a backend"
    mgr = SessionManager("web", backend=spelling, image="localhost/app:1")
    assert mgr.backend is BackendType.CONTAINER
    assert mgr.config.runtime == spelling.lower()
    assert BackendType.parse(spelling) == (BackendType.CONTAINER, spelling.lower())


def test_runtime_backend_contradicted_by_runtime_is_refused() -> None:
    with pytest.raises(SessionConfigError, match="contradicts"):
        SessionManager("web", backend="docker", runtime="podman", image="localhost/app:1")
    with pytest.raises(SessionConfigError, match=r"choose from tmux, container, docker, podman, swarm"):
        SessionManager("web", backend="dokcer")


# -- 4 / 28. what a failed search says --------------------------------------------------


def test_not_found_after_a_search_names_what_was_searched_and_pickles() -> None:
    search = Search(
        searched=["tmux (default server)", "podman at unix:///run/podman/podman.sock"],
        unreachable=["docker at unix:///var/run/docker.sock"],
    )
    with pytest.raises(SessionNotFoundError) as info:
        search.one("bot")
    text = str(info.value)
    assert "tmux (default server)" in text
    assert "podman at unix:///run/podman/podman.sock" in text
    assert "docker at unix:///var/run/docker.sock (not reachable)" in text
    again = pickle.loads(pickle.dumps(info.value))
    assert str(again) == text
    assert again.searched == info.value.searched  # type: ignore[attr-defined]


# -- 5. one table type -------------------------------------------------------------------


def _rows() -> SessionTable:
    aware = datetime(2026, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    return SessionTable(
        [
            SessionStatus("a", SessionState.RUNNING, BackendType.TMUX, managed=True),
            SessionStatus(
                "b",
                SessionState.EXITED,
                BackendType.CONTAINER,
                runtime="docker",
                restart_count=3,
                created_at=aware,
            ),
        ]
    )


def test_filtering_and_slicing_a_table_keeps_a_table() -> None:
    # old: SessionTable had no filter and a slice was a plain list (no HTML in Jupyter)
    rows = _rows()
    assert type(rows[:1]) is SessionTable
    assert type(rows.filter(state="exited")) is SessionTable
    assert [s.name for s in rows.filter(state="exited")] == ["b"]
    assert [s.name for s in rows.filter(lambda s: s.managed)] == ["a"]
    assert type(rows + rows) is SessionTable
    assert type(rows.copy()) is SessionTable
    with pytest.raises(SessionConfigError, match="colour"):
        rows.filter(colour="red")


def test_table_shows_restart_count_and_the_time_zone_of_created() -> None:
    html = _rows()._repr_html_()
    assert "<th>restart_count</th>" in html
    assert "<td>3</td>" in html
    assert "2026-01-01 12:00:00+02:00" in html


def test_container_listing_is_a_table() -> None:
    from kstlib.ops.container import ContainerRunner

    class Engine:
        runtime = "docker"
        endpoint = NOWHERE

        def list_containers(self) -> list[ContainerInfo]:
            return [ContainerInfo(id="1", name="bot", state="running")]

    runner = ContainerRunner(runtime="docker")
    runner._engine = Engine()  # type: ignore[assignment]
    listed = runner.list_sessions()
    assert type(listed) is SessionTable
    assert "<td>bot</td>" in listed._repr_html_()


# -- 12. exec / send_keys on the manager ----------------------------------------------


def test_exec_on_tmux_and_send_keys_on_a_container_say_what_to_use() -> None:
    with pytest.raises(SessionError, match=r"send_keys\(\)"):
        SessionManager("job", socket_name="kstlib-never-started").exec(["true"])
    web = SessionManager("web", backend="docker", image="localhost/app:1", base_url=NOWHERE)
    with pytest.raises(SessionError, match=r"exec\(\)"):
        web.send_keys("hello")


# -- 13. list across backends: an engine that is down is a warning --------------------


def test_list_sessions_skips_an_unreachable_engine_with_a_warning() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = list_sessions(tmux=False, runtime="docker", base_url=NOWHERE)
    assert type(table) is SessionTable
    assert list(table) == []
    assert [w.category for w in caught] == [EngineUnavailableWarning]
    assert NOWHERE in str(caught[0].message)


# -- 14. why a container ended ----------------------------------------------------------


def test_docker_reports_oom_killed_and_podman_only_when_true() -> None:
    state = {"Status": "exited", "ExitCode": 137, "OOMKilled": True, "Error": ""}
    docker_info = docker_engine.info_from_inspect({"Id": "1", "Name": "/a", "State": state})
    assert docker_info.oom_killed is True
    st = to_status(docker_info, "docker")
    assert (st.oom_killed, st.reason) == (True, "oom-killed")
    quiet = {"Status": "exited", "ExitCode": 137, "OOMKilled": False, "Error": ""}
    podman_info = podman_engine.info_from_inspect({"Id": "1", "Name": "a", "State": quiet})
    assert podman_info.oom_killed is None  # Podman 4.3 never says True: False means nothing
    st = to_status(podman_info, "podman")
    assert (st.oom_killed, st.reason) == (None, "killed by SIGKILL")
    failed = {"Status": "exited", "ExitCode": 127, "Error": "exec: nope: not found"}
    st = to_status(
        docker_engine.info_from_inspect({"Id": "1", "Name": "/a", "State": failed}), "d"
    )
    assert st.reason == "exec: nope: not found"


def test_status_to_dict_has_the_new_keys_and_stays_json() -> None:
    st = SessionStatus(
        "a", SessionState.EXITED, BackendType.CONTAINER, oom_killed=True, reason="oom-killed"
    )
    data = json.loads(json.dumps(st.to_dict()))
    assert (data["oom_killed"], data["reason"]) == (True, "oom-killed")


# -- 15. KstlibError at the package root ---------------------------------------------------


def test_kstlib_error_is_exported_at_the_root() -> None:
    from kstlib import KstlibError
    from kstlib.ops import OpsError

    assert issubclass(OpsError, KstlibError)


# -- 17. relative volumes, container-only ports ----------------------------------------


def test_relative_volume_is_resolved_against_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # old: "host side must be an absolute path or a volume name"
    monkeypatch.chdir(tmp_path)
    cfg = SessionConfig(
        name="web",
        backend=BackendType.CONTAINER,
        image="app:1",
        volumes=["./data:/app/data:ro", "../up:/up", "cache:/cache"],
        log_volume="./logs:/logs",
    )
    assert cfg.volumes == (
        f"{tmp_path}/data:/app/data:ro",
        f"{tmp_path.parent}/up:/up",
        "cache:/cache",
    )
    assert cfg.log_volume == f"{tmp_path}/logs:/logs"
    assert os.path.isabs(spec_from_config(cfg).binds[-1].source)


def test_a_container_port_alone_lets_the_engine_pick_the_host_port() -> None:
    # old: "'80' must be [ip:]host:container[/tcp|udp]"
    cfg = SessionConfig(
        name="web",
        backend=BackendType.CONTAINER,
        image="app:1",
        ports=["80", "127.0.0.1::9000/udp"],
    )
    assert spec_from_config(cfg).ports == (
        PortBinding(None, None, 80, "tcp"),
        PortBinding("127.0.0.1", None, 9000, "udp"),
    )


# -- 19. upstream names ---------------------------------------------------------------------


def test_abstract_runner_and_log_volume_are_kept() -> None:
    import kstlib.ops
    from kstlib.ops.runner import Runner

    assert kstlib.ops.AbstractRunner is Runner
    assert "AbstractRunner" in kstlib.ops.__all__
    mgr = SessionManager("web", image="app:1", log_volume="/var/log/web:/logs")
    # old: folded into volumes, the attribute did not exist
    assert mgr.config.log_volume == "/var/log/web:/logs"
    assert [b.target for b in spec_from_config(mgr.config).binds] == ["/logs"]


# -- 27. from_config merges env ---------------------------------------------------------------


def test_from_config_env_is_merged_into_the_definition(tmp_path: Path) -> None:
    # old: env= replaced the definition's env (the CLI's -e merged)
    path = tmp_path / "kstlib.conf.yml"
    path.write_text("ops: {sessions: {bot: {command: 'sleep 5', env: {A: '1', B: '2'}}}}\n")
    bot = SessionManager.from_config("bot", path=path, env={"B": "3", "C": "4"})
    assert dict(bot.config.env) == {"A": "1", "B": "3", "C": "4"}
    assert dict(SessionManager.from_config("bot", path=path).config.env) == {"A": "1", "B": "2"}


def test_podman_create_asks_for_a_free_host_port_for_a_container_port_alone() -> None:
    from podman.domain.containers_create import CreateMixin

    from kstlib.ops.engines.podman import PodmanEngine

    asked: dict[str, object] = {}

    class Containers:
        def create(self, image: str, command: object, **kwargs: object) -> object:
            asked.update(kwargs, image=image)
            return type("Created", (), {"id": "abc"})()

    client = type("Client", (), {"containers": Containers()})()
    engine = PodmanEngine(client, NOWHERE, 5)
    cfg = SessionConfig(
        name="web",
        backend=BackendType.CONTAINER,
        image="app:1",
        ports=["80", "127.0.0.1::81", "8082:82/udp"],
    )
    assert engine.create(spec_from_config(cfg)) == "abc"
    # podman-py's own rendering of the request: no host_port means "pick one"
    mappings = CreateMixin._render_payload(dict(asked))["portmappings"]
    assert mappings == [
        {"container_port": 80, "protocol": "tcp"},
        {"container_port": 81, "protocol": "tcp", "host_ip": "127.0.0.1"},
        {"container_port": 82, "protocol": "udp", "host_port": 8082},
    ]
