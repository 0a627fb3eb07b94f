"""``kstlib ops start/status/logs/list/stop -b swarm`` on the two-node swarm, as a user types them.

Each command runs as a child process with an isolated HOME and config
folder; the manager is named by ``DOCKER_HOST`` (with ``-b swarm``) or by a
config file's ``backend: swarm`` entry with its ``base_url``.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kstlib.ops import TmuxRunner

from .swarm_support import RUN, RUN_LABEL, Swarm, auth_image, lab_config, swarm_name, until

pytestmark = pytest.mark.docker

SCRIPT = Path(sys.executable).with_name("kstlib")
KSTLIB = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "kstlib"]


class Cli:
    def __init__(self, root: Path, manager: str) -> None:
        self.cwd = root
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith(("KSTLIB_CONFIG", "XDG_"))
        }
        self.env.update(
            HOME=str(root / "home"),
            XDG_CONFIG_HOME=str(root / "config"),
            XDG_STATE_HOME=str(root / "state"),
            DOCKER_HOST=manager,
        )

    def __call__(self, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [*KSTLIB, *args],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert "Traceback" not in proc.stderr, proc.stderr
        assert proc.returncode == code, (args, proc.returncode, proc.stdout, proc.stderr)
        return proc

    def json(self, *args: str) -> Any:
        at = args.index("--") if "--" in args else len(args)
        return json.loads(self(*args[:at], "--json", *args[at:]).stdout)


def test_start_status_logs_list_stop_with_dash_b_swarm(swarm: Swarm, tmp_path: Path) -> None:
    cli = Cli(tmp_path, swarm.env["KSTLIB_TEST_SWARM_MANAGER"])
    name = swarm_name("cli")
    # A longer name that shares the prefix: never touched by commands on NAME.
    other = f"{name}-2"
    loop = "trap 'exit 0' TERM; echo hello from $NODE; while :; do sleep 1; done"
    common = ["-b", "swarm", "-i", swarm.image, "-e", "NODE={{.Node.ID}}"]
    cli("ops", "start", other, *common, "--", "sh", "-c", loop)
    try:
        started = cli.json(
            "ops", "start", name, *common, "--replicas", "2",
            "--placement", "spread=node.id", "--", "sh", "-c", loop,
        )  # fmt: skip
        assert started["backend"] == "swarm" and started["state"] == "running"
        assert sorted(started["nodes"]) == sorted([swarm.manager_id, swarm.worker_id])
        status = cli.json("ops", "status", name, "-b", "swarm")
        assert (status["name"], status["managed"], status["state"]) == (name, True, "running")
        assert sorted(status["nodes"]) == sorted([swarm.manager_id, swarm.worker_id])

        def both() -> str | None:
            out = cli("ops", "logs", name, "-b", "swarm").stdout
            want = [f"hello from {swarm.manager_id}", f"hello from {swarm.worker_id}"]
            return out if all(w in out for w in want) else None

        until("lines from both nodes through 'kstlib ops logs'", both)
        # --prefix names each line's task and node (TASK.SLOT@NODE | line).
        prefixed = cli("ops", "logs", name, "-b", "swarm", "--prefix").stdout.splitlines()
        nodes = {line.split(" | ", 1)[0].rsplit("@", 1)[1] for line in prefixed if " | " in line}
        assert nodes == {swarm.manager_id[:12], swarm.worker_id[:12]}, prefixed
        assert all(line.startswith(f"{name}.") for line in prefixed), prefixed
        rows = {r["name"]: r for r in cli.json("ops", "list", "-b", "swarm")}
        assert rows[name]["state"] == "running" and rows[other]["state"] == "running"
        assert all(r["backend"] == "swarm" for r in rows.values())
        # What a manager cannot do: a clear error, exit 1, never a traceback.
        refused = cli("ops", "attach", name, "-b", "swarm", code=1).stderr
        assert "a swarm manager cannot attach a terminal to a task" in refused
        refused = cli("ops", "exec", name, "-b", "swarm", "--", "true", code=1).stderr
        assert "cannot run a command in a task" in refused
        cli("ops", "stop", name, "-b", "swarm", "-t", "2")
        missing = cli("ops", "status", name, "-b", "swarm", code=3)
        assert "was not found on the swarm backend" in missing.stderr
        assert cli.json("ops", "status", other, "-b", "swarm")["state"] == "running"
    finally:
        for each in (name, other):
            if swarm.runner.exists(each):
                swarm.runner.stop(each, timeout=2)
    swarm.gone_everywhere(name)


def test_a_config_file_entry_with_backend_swarm(swarm: Swarm, tmp_path: Path) -> None:
    cli = Cli(tmp_path, "unix:///nonexistent-docker.sock")  # only the file names the manager
    name = swarm_name("cfg")
    config = tmp_path / "kstlib.conf.yml"
    config.write_text(
        "ops:\n"
        "  sessions:\n"
        f"    {name}:\n"
        "      backend: swarm\n"
        f"      base_url: {swarm.env['KSTLIB_TEST_SWARM_MANAGER']}\n"
        f"      image: {swarm.image}\n"
        "      command: [sh, -c, 'echo one-shot; exit 3']\n"
        "      placement: [node.labels.role==worker]\n"
        "      stop_timeout: 1\n"
        f"      labels: {{{RUN_LABEL}: '{RUN}'}}\n",
        encoding="utf-8",
    )
    started = cli.json("ops", "start", name)
    try:
        assert started["nodes"] == [swarm.worker_id]
        until(
            "the one-shot to end",
            lambda: cli.json("ops", "status", name)["state"] == "exited",
        )
        status = cli.json("ops", "status", name)
        assert (status["exit_code"], status["backend"]) == (3, "swarm")
        assert cli("ops", "logs", name).stdout == "one-shot\n"
        assert name in cli("ops", "list", "-q").stdout.split()
    finally:
        cli("ops", "stop", name)
    assert not swarm.runner.exists(name)


def test_logs_prefix_is_for_swarm_sessions_only(tmp_path: Path) -> None:
    cli = Cli(tmp_path, "unix:///nonexistent-docker.sock")
    socket, name = swarm_name("sock"), swarm_name("tm")
    cli("ops", "start", name, "-L", socket, "-c", "echo hi; sleep 30")
    try:
        refused = cli("ops", "logs", name, "-L", socket, "--prefix", code=2).stderr
        assert "--prefix" in refused and "only swarm sessions" in refused
    finally:
        cli("ops", "stop", name, "-L", socket, "-f")
        TmuxRunner(socket_name=socket).kill_server()  # and its socket file


def test_with_registry_auth_flag_and_config_key_send_the_config_files_credentials(
    swarm: Swarm, tmp_path: Path
) -> None:
    image = auth_image(swarm)
    existing = swarm.manager.secrets.create(name=swarm_name("kstlib-ref"), data=b"from-ref")
    cli = Cli(tmp_path, swarm.env["KSTLIB_TEST_SWARM_MANAGER"])
    cli.env["DOCKER_CONFIG"] = swarm.env["KSTLIB_TEST_REGISTRY_DOCKER_CONFIG"]
    flagged, filed = swarm_name("flag"), swarm_name("cfg")
    (tmp_path / "kstlib.conf.yml").write_text(
        "ops:\n"
        "  sessions:\n"
        f"    {filed}:\n"
        "      backend: swarm\n"
        f"      image: {image}\n"
        "      command: [sh, -c, 'cat /run/secrets/*; echo; sleep 300']\n"
        "      placement: [node.labels.role==worker]\n"
        "      with_registry_auth: true\n"
        f"      secret_refs: [{existing.name}]\n"
        "      stop_timeout: 1\n"
        f"      labels: {{{RUN_LABEL}: '{RUN}'}}\n",
        encoding="utf-8",
    )
    try:
        started = cli.json(
            "ops", "start", flagged, "-b", "swarm", "-i", image, "--with-registry-auth",
            "--placement", "node.labels.role==worker", "--", "sleep", "300",
        )  # fmt: skip
        assert (started["state"], started["nodes"]) == ("running", [swarm.worker_id])
        from_file = cli.json("ops", "start", filed)
        assert (from_file["state"], from_file["nodes"]) == ("running", [swarm.worker_id])
        until(
            "the referenced secret in the task",
            lambda: "from-ref" in cli("ops", "logs", filed).stdout,
        )
    finally:
        for each in (flagged, filed):
            if swarm.runner.exists(each):
                swarm.runner.stop(each, timeout=1)
        existing.remove()
        with contextlib.suppress(Exception):
            swarm.worker.images.remove(image)


def test_stop_dash_b_swarm_returns_once_the_managers_node_has_no_container_of_it(
    swarm: Swarm, tmp_path: Path
) -> None:
    cli = Cli(tmp_path, swarm.env["KSTLIB_TEST_SWARM_MANAGER"])
    name = swarm_name("clistop")
    cli(
        "ops", "start", name, "-b", "swarm", "-i", swarm.image,
        "--placement", "node.role==manager", "--", "sleep", "300",
    )  # fmt: skip
    try:
        assert len(swarm.containers(name)["manager"]) == 1
        cli("ops", "stop", name, "-b", "swarm", "-t", "1")
        # Asked of the manager node's own engine right after the command returned.
        assert swarm.containers(name)["manager"] == []
    finally:
        if swarm.runner.exists(name):
            swarm.runner.stop(name, timeout=1)


def test_stop_waits_for_the_nodes_a_swarm_engine_lists(swarm: Swarm, tmp_path: Path) -> None:
    # The config's swarm engine names the manager (DOCKER_HOST here too) and, in
    # nodes:, the worker: 'stop -b swarm' returns once the worker's own engine
    # keeps no container of the service.
    manager = swarm.env["KSTLIB_TEST_SWARM_MANAGER"]
    cli = Cli(tmp_path, manager)
    lab_config(tmp_path, manager, swarm.env["KSTLIB_TEST_SWARM_WORKER"])
    name = swarm_name("nodes")
    loop = "trap 'exit 0' TERM; echo up; while :; do sleep 1; done"
    # Its one task on the worker: waiting for the manager's node alone would not wait for it.
    worker_only = ["node.labels.role==worker"]
    swarm.runner.start(swarm.config(name, ["sh", "-c", loop], placement=worker_only))
    try:
        until("a container of the service on the worker", lambda: swarm.containers(name)["worker"])
        cli("ops", "stop", name, "-b", "swarm", "-t", "2")
        assert swarm.containers(name) == {"manager": [], "worker": []}
    finally:
        if swarm.runner.exists(name):
            swarm.runner.stop(name, timeout=2)
