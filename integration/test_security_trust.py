"""Config files and engines as an attacker would use them (issue 21 points 3, 4, 5, 13).

A ``./kstlib.conf.yml`` comes with a cloned repository: it may not replace the
user's engines, nor send anything to a remote engine it alone names, until the
user trusts it. An engine may answer with names that carry terminal escape
sequences: the CLI prints them as visible text. Env values never need to be on
kstlib's command line.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import DOCKER_URL, TEST_IMAGE, unique
from .fake_docker_api import HostileDockerApi, hostile_container
from .test_cli import Cli, cli, wait_for

__all__ = ["cli"]  # the fixture, imported for the tests below

#: A byte of terminal control: C0 but newline, DEL, C1 (what must never reach a terminal raw).
RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202e]")


class Listener:
    """A TCP listener on loopback that counts the connections it gets (and closes them)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.connections = 0
        self._stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if self._stop:
                conn.close()
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop = True
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    served = Listener()
    yield served
    served.close()


def user_config(cli: Cli, text: str) -> Path:
    """The user's own config file ($XDG_CONFIG_HOME/kstlib/kstlib.conf.yml of the child)."""
    path = cli.root / "config" / "kstlib" / "kstlib.conf.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# -- point 4: a project-local engine gets nothing --------------------------------------------


def test_a_project_local_prod_engine_receives_no_connection(cli: Cli, listener: Listener) -> None:
    (cli.cwd / "kstlib.conf.yml").write_text(
        "ops:\n  engines:\n"
        f"    prod: {{base_url: '{listener.url}', runtime: docker}}\n"
        "  sessions:\n"
        f"    app: {{image: '{TEST_IMAGE}', engine: prod, command: [sleep, '60']}}\n"
    )
    env = {"API_TOKEN": "tok-3f9a1c", "KSTLIB_OPS_ENGINE_TIMEOUT": "5"}
    # The commands that send data are refused, saying how to trust the file.
    for args in (
        ("ops", "start", "app", "--engine", "prod", "-e", "API_TOKEN", "-i", TEST_IMAGE),
        ("ops", "start", "app", "-e", "API_TOKEN"),
        ("ops", "exec", "app", "--engine", "prod", "--", "true"),
    ):
        err = cli.error(*args, env=env, code=2)
        assert "reaches no remote engine that only a project-local config file names" in err
        assert "--config" in err and "ops.trusted_projects" in err
        assert "tok-3f9a1c" not in err
    # Read-only commands do not contact it either.
    for args in (("ops", "list"), ("ops", "status", "app"), ("ops", "logs", "app"),
                 ("ops", "list", "--engine", "prod"), ("ops", "doctor")):
        proc = cli(*args, env=env, code=None)
        assert proc.returncode != 0 or args[1] in ("list", "doctor"), proc
    assert listener.connections == 0

    # The user's own 'prod' wins over the project's: it is the one reached.
    user_config(cli, f"ops:\n  engines:\n    prod: {{base_url: '{DOCKER_URL}', runtime: docker}}\n")
    cli("ops", "list", "--engine", "prod", "-q", env=env)
    assert listener.connections == 0

    # Trusted (named with --config), the file's engine is reached: the test can fail.
    cli("ops", "list", "--engine", "prod", "--config", "kstlib.conf.yml", env=env, code=None)
    assert listener.connections > 0


def test_a_trusted_project_folder_reaches_its_engine(cli: Cli, listener: Listener) -> None:
    (cli.cwd / "kstlib.conf.yml").write_text(
        f"ops:\n  engines:\n    prod: {{base_url: '{listener.url}', runtime: docker}}\n"
    )
    env = {"KSTLIB_OPS_ENGINE_TIMEOUT": "5"}
    cli("ops", "list", "--engine", "prod", env=env, code=None)
    assert listener.connections == 0
    user_config(cli, f"ops:\n  trusted_projects: ['{cli.cwd}']\n")
    cli("ops", "list", "--engine", "prod", env=env, code=None)
    assert listener.connections > 0


# -- point 3: registry settings of a project-local file ---------------------------------------


def test_project_local_insecure_registries_are_skipped_with_one_note(cli: Cli) -> None:
    (cli.cwd / "kstlib.conf.yml").write_text(
        "ops:\n  insecure_registries: ['10.20.30.40:5000']\n  sessions:\n"
        "    web: {backend: docker, image: '10.20.30.40:5000/app:1',"
        " insecure_registries: ['10.20.30.41:5000']}\n"
    )
    proc = cli("ops", "list", "-b", "tmux", "-q")
    notes = [line for line in proc.stderr.splitlines() if "skipped" in line]
    assert len(notes) == 1, proc.stderr
    assert "ops.insecure_registries" in notes[0]
    assert "ops.sessions.web.insecure_registries" in notes[0]
    assert "--config" in notes[0] and "ops.trusted_projects" in notes[0]
    # Named by the user, the file is theirs: nothing skipped.
    proc = cli("ops", "list", "-b", "tmux", "-q", "--config", "kstlib.conf.yml")
    assert "skipped" not in proc.stderr


# -- point 5: a hostile engine's strings ---------------------------------------------------------


def test_a_hostile_engines_names_reach_the_terminal_escaped(cli: Cli) -> None:
    with HostileDockerApi([hostile_container("web", "nginx:1")]) as api:
        user_config(cli, f"ops:\n  engines:\n    evil: {{base_url: '{api.url}', runtime: docker}}\n")
        outputs = []
        for args in (("ops", "list", "--engine", "evil"), ("ops", "list", "-b", "docker"),
                     ("ops", "list", "--engine", "evil", "--json"),
                     ("ops", "status", "web", "--engine", "evil")):
            proc = cli(*args, code=None)
            outputs.append((args, proc.stdout + proc.stderr))
        assert api.requests  # it was asked
    for args, text in outputs:
        raw = RAW_CONTROL.findall(text)
        assert not raw, (args, raw, text)
    table = outputs[0][1]
    assert "web\\x1b]52;c;" in table and "nginx:1\\x1b]52;c;" in table
    assert "engine trouble\\x1b]52" in outputs[3][1]  # an error line from the engine, too


def test_a_project_local_tcp_engine_is_not_contacted_by_list(cli: Cli) -> None:
    with HostileDockerApi([hostile_container("web", "nginx:1")]) as api:
        (cli.cwd / "kstlib.conf.yml").write_text(
            f"ops:\n  engines:\n    evil: {{base_url: '{api.url}', runtime: docker}}\n"
        )
        proc = cli("ops", "list", "-b", "tmux", code=None)
        proc = cli("ops", "list", code=None)
        assert "evil" in proc.stderr and "project-local" in proc.stderr
        assert api.requests == []


# -- point 13: env values off the command line --------------------------------------------------


@pytest.mark.parametrize("where", ["tmux", "docker"])
def test_env_values_come_from_kstlibs_environment_and_an_env_file(
    cli: Cli, where: str
) -> None:
    name = unique("env")
    env_file = cli.root / "app.env"
    env_file.write_text("# settings of the app\nFROM_FILE=file-v41\n\n  SHARED=from-file\nPASSED\n")
    env = {"TOKEN_X": "env-v42", "SHARED": "env-wins", "PASSED": "bare-v43"}
    place = ["-L", unique("sec")] if where == "tmux" else ["-b", "docker", "-i", TEST_IMAGE]
    argv = ["ops", "start", name, "-q", *place, "-e", "TOKEN_X", "-e", "SHARED",
            "--env-file", str(env_file), "--",
            "sh", "-c", 'echo "v=$TOKEN_X,$FROM_FILE,$SHARED,$PASSED"; sleep 60']
    try:
        cli(*argv, env=env)
        expected = "v=env-v42,file-v41,env-wins,bare-v43"
        wait_for(lambda: expected in cli("ops", "logs", name, *place[:2]).stdout,
                 "the session's env")
    finally:
        cli("ops", "stop", name, "-q", "-f", *place[:2], code=None)
    assert not any(v in " ".join(argv) for v in ("env-v42", "file-v41", "env-wins", "bare-v43"))


def test_a_variable_missing_from_kstlibs_environment_is_a_config_error(cli: Cli) -> None:
    err = cli.error("ops", "start", unique("env"), "-L", unique("sec"), "-e", "KSTLIB_NOT_SET_X",
                    "-c", "true", code=2)
    assert "--env: item 1 names a variable that is not set in kstlib's environment" in err
    assert "KSTLIB_NOT_SET_X" not in err  # an item without '=' may be a pasted secret
