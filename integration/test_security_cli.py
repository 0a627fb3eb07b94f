"""The CLI on a shared machine and in a hostile folder (issue 10 points 8, 10, 14).

A ``./kstlib.conf.yml`` comes with the folder (a cloned repository): commands
that only read must run no program it names, and a program a config file
names must be an absolute path or a name on PATH. Each test plants a program
that leaves a mark when it runs.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest

from .conftest import unique
from .test_cli import Cli, cli

__all__ = ["cli"]  # the fixture, imported for the tests below

TMUX = shutil.which("tmux") or "tmux"


def planted(folder: Path, name: str, real: str | None) -> tuple[Path, Path]:
    """An executable ``folder/name`` that leaves a mark, then runs ``real`` (or fails)."""
    folder.mkdir(parents=True, exist_ok=True)
    mark = folder / f"{name}.ran"
    program = folder / name
    tail = f'exec {real} "$@"' if real else "exit 1"
    program.write_text(f"#!/bin/sh\necho \"$@\" >> {mark}\n{tail}\n")
    program.chmod(0o755)
    return program, mark


def test_read_only_commands_never_run_a_project_local_tmux_binary(cli: Cli) -> None:
    program, mark = planted(cli.cwd / "tools", "tmux", TMUX)
    socket, name = unique("sec"), unique("s")
    (cli.cwd / "kstlib.conf.yml").write_text(
        f"ops:\n  tmux_binary: {program}\n  tmux_socket: {socket}\n"
        f"  sessions:\n    {name}: {{command: 'sleep 60'}}\n"
    )
    proc = cli("ops", "list", "-b", "tmux")
    assert "not running ops.tmux_binary" in proc.stderr and "--config" in proc.stderr
    cli("ops", "status", name)  # 'defined'
    cli("ops", "logs", name, code=3)
    cli("ops", "wait", name, code=3)
    cli("ops", "stop", name, code=3)
    cli("ops", "doctor", "-q", code=None)
    assert not mark.exists(), mark.read_text()

    # start runs what the file defines anyway (its command): it may use its tmux
    cli("ops", "start", name, "-q")
    assert mark.exists()
    mark.unlink()
    cli("ops", "status", name, "-q")
    assert not mark.exists()
    # naming the file makes it the user's: then every command uses its tmux
    cli("ops", "status", name, "-q", "--config", "kstlib.conf.yml")
    assert mark.exists()
    cli("ops", "stop", name, "-q", "--config", "kstlib.conf.yml")


def test_a_relative_tmux_binary_is_refused_naming_key_file_and_line(cli: Cli) -> None:
    _, mark = planted(cli.cwd / "tools", "tmux", TMUX)
    (cli.cwd / "kstlib.conf.yml").write_text("ops:\n  tmux_binary: ./tools/tmux\n")
    err = cli.error("ops", "list", "-b", "tmux", "-L", unique("sec"), code=2)
    assert f"{cli.cwd / 'kstlib.conf.yml'}:2: ops.tmux_binary: './tools/tmux' must be an " \
           "absolute path or a program name looked up on PATH" in err
    assert not mark.exists()


@pytest.mark.parametrize("runtime", ["docker", "podman"])
def test_read_only_commands_never_run_ssh_for_a_project_local_engine(
    cli: Cli, runtime: str
) -> None:
    bin_dir = cli.root / "bin"
    _, mark = planted(bin_dir, "ssh", None)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    (cli.cwd / "kstlib.conf.yml").write_text(
        "ops:\n  engines:\n"
        f"    far: {{base_url: 'ssh://attacker@far.invalid:22', runtime: {runtime}}}\n"
        "  sessions:\n"
        f"    web: {{backend: {runtime}, image: 'nginx', engine: far}}\n"
    )
    cli("ops", "list", env=env, code=None)
    cli("ops", "doctor", env=env, code=None)
    err = cli.error("ops", "logs", "web", env=env, code=2)
    assert "'logs' reaches no remote engine that only a project-local config file names" in err
    # start would send the session's env there: refused as well, saying how to trust the file
    err = cli.error("ops", "start", "web", env=env, code=2)
    assert "'start' reaches no remote engine" in err and "ops.trusted_projects" in err
    assert not mark.exists(), mark.read_text()


def test_doctor_says_which_sessions_publish_on_every_interface(cli: Cli) -> None:
    config = cli.root / "config.yml"
    config.write_text(
        "ops:\n  sessions:\n"
        "    web: {backend: docker, image: nginx, ports: ['8080:80', '127.0.0.1:8443:443']}\n"
        "    local: {backend: docker, image: nginx, ports: ['127.0.0.1:9090:90']}\n"
    )
    out = cli("ops", "doctor", "--config", str(config), code=None).stdout
    lines = [line for line in out.splitlines() if "every network interface" in line]
    assert lines == [
        "Session 'web' publishes 8080:80 on every network interface: any host that can "
        "reach this machine can connect. Write 127.0.0.1:8080:80 to keep it on this machine."
    ]
    data = json.loads(cli("ops", "doctor", "--json", "--config", str(config), code=None).stdout)
    assert data["config"]["public_ports"] == {"web": ["8080:80"]}


def test_a_bad_max_log_bytes_setting_is_exit_2_naming_the_variable(cli: Cli) -> None:
    err = cli.error("ops", "start", unique("s"), "-L", unique("sec"), "-c", "true",
                    env={"KSTLIB_OPS_MAX_LOG_BYTES": "abc"}, code=2)
    assert "KSTLIB_OPS_MAX_LOG_BYTES" in err and "unexpected" not in err


def test_a_bad_engine_timeout_setting_is_exit_2_naming_the_variable(cli: Cli) -> None:
    err = cli.error("ops", "status", "x", "-b", "docker",
                    env={"KSTLIB_OPS_ENGINE_TIMEOUT": "soon"}, code=2)
    assert err.startswith("kstlib: error: KSTLIB_OPS_ENGINE_TIMEOUT: 'soon' is not")


def test_the_state_tree_of_the_cli_is_private_under_umask_022(cli: Cli) -> None:
    name = unique("s")
    old = os.umask(0o022)  # the child inherits it
    try:
        cli("ops", "start", name, "-q", "-L", unique("sec"), "-e", "API_TOKEN=s3cr3t", "-c",
            "sleep 60")
    finally:
        os.umask(old)
    record = cli.root / "state" / "kstlib" / "ops" / "last-start" / f"{name}.json"
    assert stat.S_IMODE(record.stat().st_mode) == 0o600
    assert "s3cr3t" not in record.read_text()
    for folder in (record.parent, record.parent.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_one_engine_reached_through_both_sdks_is_searched_once(cli: Cli) -> None:
    # The stricter lookup (point 13) must not find a Podman container twice when
    # DOCKER_HOST points at Podman's socket (its Docker-compatible API).
    from .conftest import PODMAN_URL, TEST_IMAGE

    env = {"DOCKER_HOST": PODMAN_URL}
    name = unique("sec")
    cli("ops", "start", name, "-q", "--runtime", "podman", "-i", TEST_IMAGE, "--", "sleep", "60")
    try:
        assert cli("ops", "status", name, "-q", env=env).stdout == "running\n"
    finally:
        cli("ops", "stop", name, "-q", "-f", env=env)
