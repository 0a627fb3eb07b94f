"""The swarm backend without a swarm: options, task reading, log lines, spec, error translation.

Translation is tested with genuine docker SDK exception instances carrying
the swarm's own words (measured on the harness swarm); everything a swarm can
do is tested for real in integration/test_swarm*.py.
"""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from kstlib.ops.exceptions import (
    ContainerRuntimeNotFoundError,
    SessionConfigError,
    SessionError,
    SessionExistsError,
    SessionNotFoundError,
    SessionStartError,
)
from kstlib.ops.models import BackendType, SessionConfig, SessionState, SessionStatus
from kstlib.ops.swarm.logs import render, split_line
from kstlib.ops.swarm.tasks import read_tasks
from kstlib.ops.translate import Op

docker_errors = pytest.importorskip("docker.errors")

READY = {"Status": {"State": "ready"}}
DOWN = {"Status": {"State": "down", "Message": "heartbeat failure"}}


def task(
    ident: str,
    slot: int,
    state: str,
    *,
    node: str = "n1",
    desired: str = "running",
    created: str = "2026-01-01T00:00:00Z",
    code: int | None = None,
    err: str | None = None,
) -> dict[str, Any]:
    status: dict[str, Any] = {"State": state}
    if code is not None:
        status["ContainerStatus"] = {"ExitCode": code}
    if err is not None:
        status["Err"] = err
    return {
        "ID": ident,
        "Slot": slot,
        "NodeID": node,
        "DesiredState": desired,
        "CreatedAt": created,
        "Status": status,
    }


# -- options ---------------------------------------------------------------------------------


def test_swarm_options_are_checked_before_anything_is_created() -> None:
    cfg = SessionConfig(
        name="w",
        backend="swarm",
        image="app:1",
        replicas=3,
        placement=["node.labels.role==worker", "spread=node.id"],
        stop_timeout=2,
    )
    assert (cfg.backend, cfg.replicas, cfg.placement, cfg.stop_timeout) == (
        BackendType.SWARM,
        3,
        ("node.labels.role==worker", "spread=node.id"),
        2.0,
    )
    for bad, field in [
        ({"replicas": 0}, "replicas"),
        ({"replicas": True}, "replicas"),
        ({"placement": ["role=worker"]}, "placement"),
        ({"mode": "everywhere"}, "mode"),
        ({"mode": "global", "replicas": 2}, "replicas"),
        ({"stop_timeout": -1}, "stop_timeout"),
        ({"runtime": "podman"}, "runtime"),
        ({"socket_name": "work"}, "socket_name"),
        ({"name": "ends-with-dash-"}, "name"),
        ({"name": "x" * 64}, "name"),
    ]:
        with pytest.raises(SessionConfigError) as caught:
            SessionConfig(**{"name": "w", "backend": "swarm", "image": "app:1", **bad})
        assert caught.value.field == field, bad


@pytest.mark.parametrize("backend", ["tmux", "container"])
def test_swarm_only_options_are_refused_elsewhere(backend: str) -> None:
    image = {"image": "app:1"} if backend == "container" else {}
    with pytest.raises(SessionConfigError, match="needs a swarm service") as caught:
        SessionConfig(name="w", backend=backend, replicas=2, **image)
    assert caught.value.field == "replicas"


def test_backend_swarm_is_spelt_everywhere_a_backend_is_named() -> None:
    assert BackendType.parse("Swarm") == (BackendType.SWARM, None)
    from kstlib.cli.parser import parse_args

    args = parse_args(
        ["ops", "start", "w", "-b", "swarm", "--replicas", "2", "--placement", "spread=node.id"]
    )
    assert (args.backend, args.replicas, args.placement) == ("swarm", 2, ["spread=node.id"])


def test_status_to_dict_adds_nodes_only_for_a_swarm_service() -> None:
    plain = SessionStatus("a", SessionState.RUNNING, BackendType.CONTAINER)
    assert "nodes" not in plain.to_dict()
    swarm = SessionStatus("a", SessionState.RUNNING, BackendType.SWARM, nodes=("n1", "n2"))
    assert swarm.to_dict()["nodes"] == ["n1", "n2"]
    assert SessionStatus("a", SessionState.UNKNOWN, BackendType.SWARM).to_dict()["nodes"] == []


# -- tasks -> status --------------------------------------------------------------------------


def test_a_running_task_is_running_on_its_node() -> None:
    view = read_tasks([task("a", 1, "running", node="n1")], {"n1": READY})
    assert (view.state, view.nodes, view.running, view.restart_count) == (
        SessionState.RUNNING,
        ("n1",),
        1,
        0,
    )


def test_a_failed_slot_the_swarm_gave_up_on_is_exited_with_its_code() -> None:
    view = read_tasks(
        [task("a", 1, "failed", desired="shutdown", code=3, err="task: non-zero exit (3)")],
        {"n1": READY},
    )
    assert (view.state, view.exit_code, view.reason) == (
        SessionState.EXITED,
        3,
        "task: non-zero exit (3)",
    )


def test_a_failed_task_still_wanted_is_not_settled_yet() -> None:
    # The agent reported the failure; the orchestrator has not decided yet.
    view = read_tasks([task("a", 1, "failed", code=3)], {"n1": READY})
    assert view.state is not SessionState.EXITED


def test_restarts_are_the_tasks_of_a_slot_beyond_its_first() -> None:
    history = [
        task("a", 1, "failed", desired="shutdown", code=4, created="2026-01-01T00:00:01Z"),
        task("b", 1, "failed", desired="shutdown", code=4, created="2026-01-01T00:00:02Z"),
        task("c", 1, "failed", desired="shutdown", code=4, created="2026-01-01T00:00:03Z"),
    ]
    view = read_tasks(history, {"n1": READY})
    assert (view.state, view.exit_code, view.restart_count) == (SessionState.EXITED, 4, 2)


def test_between_a_failure_and_its_restart_the_session_is_running() -> None:
    history = [
        task("a", 1, "failed", desired="shutdown", code=4, created="2026-01-01T00:00:01Z"),
        task("b", 1, "ready", desired="ready", created="2026-01-01T00:00:02Z"),
    ]
    assert read_tasks(history, {"n1": READY}).state is SessionState.RUNNING


def test_a_task_on_a_down_node_is_lost_not_running() -> None:
    nodes = {"n1": READY, "n2": DOWN}
    only = read_tasks([task("a", 1, "running", node="n2")], nodes)
    assert (only.state, only.nodes, only.lost) == (SessionState.UNKNOWN, ("n2",), 1)
    assert only.reason == "task of slot 1 on node n2 is unreachable (node down: heartbeat failure)"
    mixed = read_tasks(
        [task("a", 1, "running", node="n2"), task("b", 2, "running", node="n1")], nodes
    )
    assert (mixed.state, mixed.nodes, mixed.lost) == (SessionState.RUNNING, ("n1",), 1)


def test_a_rejected_or_unschedulable_task_says_why() -> None:
    rejected = read_tasks(
        [task("a", 1, "rejected", err="No such image: app:1", desired="shutdown")],
        {"n1": READY},
    )
    assert rejected.rejected == "No such image: app:1"
    pending = read_tasks(
        [task("a", 1, "pending", node="", err="no suitable node (constraints not satisfied)")],
        {},
    )
    assert pending.state is SessionState.UNKNOWN
    assert pending.reason is not None and "no suitable node" in pending.reason


# -- log lines ---------------------------------------------------------------------------------


def test_a_log_entry_is_split_into_time_task_and_text() -> None:
    entry = (
        b"2026-11-26T04:49:14.833929736Z com.docker.swarm.node.id=zk9,"
        b"com.docker.swarm.service.id=s1,com.docker.swarm.task.id=t1 hello\r\n"
    )
    stamp, details, text = split_line(entry)
    assert stamp == (1795668554, 833929736)
    assert details == {"node": "zk9", "service": "s1", "task": "t1"} and text == "hello"
    assert render(entry, timestamps=True, ansi=True, names={"t1": "web.1@zk9"}) == (
        "2026-11-26T04:49:14.833929Z web.1@zk9 | hello"
    )


def test_the_managers_own_line_about_a_down_node_is_kept() -> None:
    entry = b"Error grabbing logs: rpc error: node n2 is not available\n"
    assert render(entry, timestamps=False, ansi=True, names={}) == entry.decode().rstrip("\n")


# -- the service spec ---------------------------------------------------------------------------


def test_a_config_becomes_a_service_spec() -> None:
    from kstlib.ops.engines.swarm import _restart_policy, service_spec

    spec = service_spec(
        SessionConfig(
            name="w",
            backend="swarm",
            image="app:1",
            command=["sh", "-c", "exit 3"],
            restart="on-failure:2",
            ports=["8080:80"],
            mode="global",
        )
    )
    assert spec.replicas is None and spec.grace == 10.0
    assert _restart_policy(spec.container) == {
        "Condition": "on-failure",
        "Delay": 500_000_000,
        "MaxAttempts": 2,
        "Window": 0,
    }
    default = service_spec(SessionConfig(name="w", backend="swarm", image="app:1"))
    assert _restart_policy(default.container) == {
        "Condition": "none",
        "Delay": 0,
        "MaxAttempts": 0,
        "Window": 0,
    }
    with pytest.raises(SessionConfigError) as caught:
        service_spec(SessionConfig(name="w", backend="swarm", image="a:1", ports=["127.0.0.1:1:1"]))
    assert caught.value.field == "ports"


# -- error translation (genuine SDK exceptions, the swarm's own words) ---------------------------


def translated(err: Exception, op: Op = Op.READ, name: str | None = "bot") -> BaseException:
    from kstlib.ops.engines.swarm import translate

    with pytest.raises(Exception) as caught:
        with translate(op, name, "unix:///m.sock", 5):
            raise err
    assert caught.value.__cause__ is err
    pickle.loads(pickle.dumps(caught.value))
    return caught.value


def api_error(status: int, words: str, cls: type = docker_errors.APIError) -> Exception:
    import requests

    response = requests.Response()
    response.status_code = status
    return cls(f"{status} Server Error", response=response, explanation=words)


def test_a_worker_node_is_not_a_manager() -> None:
    err = translated(
        api_error(503, "This node is not a swarm manager. Worker nodes can't be used to view "
                  "or modify cluster state.")
    )  # fmt: skip
    assert isinstance(err, ContainerRuntimeNotFoundError)
    assert "give the base_url of a manager node" in str(err)


def test_a_taken_name_is_session_exists() -> None:
    err = translated(
        api_error(409, "rpc error: code = AlreadyExists desc = name conflicts with an existing "
                  "object"), Op.START
    )  # fmt: skip
    assert isinstance(err, SessionExistsError) and (err.name, err.backend) == ("bot", "swarm")


def test_a_missing_service_is_not_found() -> None:
    err = translated(api_error(404, "service bot not found", docker_errors.NotFound))
    assert isinstance(err, SessionNotFoundError) and err.backend == "swarm"


def test_an_ingress_port_says_to_use_host_mode() -> None:
    err = translated(
        api_error(400, "rpc error: code = FailedPrecondition desc = service needs ingress "
                  "network, but no ingress network is present"), Op.START
    )  # fmt: skip
    assert isinstance(err, SessionStartError) and "host mode" in err.reason


def test_any_other_sdk_error_stays_in_the_tree() -> None:
    err = translated(docker_errors.DockerException("boom"))
    assert isinstance(err, SessionError)
