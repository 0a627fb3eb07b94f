"""An engine that is down or hung is an engine error (exit 1), never "not found" (exit 3).

Issue 10 point 13. Scripts read exit 3 as "not running"; when the chosen
engine does not answer, kstlib cannot know that. Two endpoints stand in for
a broken engine: a unix socket that accepts connections and never answers (a
hung daemon) and a socket path with nothing behind it (an engine that is
down). ``KSTLIB_OPS_ENGINE_TIMEOUT=1`` keeps every wait at one second.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kstlib.cli import main


@pytest.fixture
def hung_socket(tmp_path: Path) -> Iterator[str]:
    """A listening unix socket that accepts every connection and never replies."""
    path = tmp_path / "hung.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            held.append(conn)  # keep it open, say nothing

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"unix://{path}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KSTLIB_OPS_ENGINE_TIMEOUT", "1")
    monkeypatch.setenv("TMUX_TMPDIR", str(tmp_path))  # no tmux server holds the name
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("KSTLIB_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)


def with_options(command: list[str], *options: str) -> list[str]:
    """``command`` with ``options`` placed before a ``--`` (after it they are the argv)."""
    cut = command.index("--") if "--" in command else len(command)
    return ["ops", *command[:cut], *options, *command[cut:]]


def point_engines_at(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("DOCKER_HOST", url)
    monkeypatch.setenv("CONTAINER_HOST", url)


COMMANDS = [
    ["status", "sec-x"],
    ["logs", "sec-x"],
    ["stop", "sec-x"],
    ["wait", "sec-x"],
    ["exec", "sec-x", "--", "true"],
]


@pytest.mark.parametrize("runtime", ["docker", "podman"])
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_hung_engine_is_exit_1_and_says_it_did_not_answer(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    hung_socket: str,
    runtime: str,
    command: list[str],
) -> None:
    point_engines_at(monkeypatch, hung_socket)
    code = main(with_options(command, "-b", runtime))
    err = capsys.readouterr().err
    assert code == 1, err
    assert f"The {runtime} engine at {hung_socket} did not answer within 1 s" in err
    assert "not found" not in err
    assert "Start an engine" not in err and "Install" not in err  # the wrong advice for a hang


@pytest.mark.parametrize("runtime", ["docker", "podman"])
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_down_engine_is_exit_1_naming_engine_and_endpoint(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    runtime: str,
    command: list[str],
) -> None:
    url = f"unix://{tmp_path}/down.sock"
    point_engines_at(monkeypatch, url)
    code = main(with_options(command, "--runtime", runtime))
    err = capsys.readouterr().err
    assert code == 1, err
    assert f"No {runtime} engine API answered (tried: {url})" in err
    assert "was not found" not in err


def test_a_hung_engine_is_an_error_even_when_no_engine_was_chosen(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], hung_socket: str
) -> None:
    point_engines_at(monkeypatch, hung_socket)
    code = main(["ops", "status", "sec-x"])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "did not answer within 1 s" in err


def test_without_a_chosen_engine_an_absent_one_holds_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Documented: with no -b/--runtime, engines that are not there are skipped
    # (nothing can run on them); the session is then not found anywhere.
    point_engines_at(monkeypatch, f"unix://{tmp_path}/down.sock")
    assert main(["ops", "status", "sec-x"]) == 3
    assert "was not found on the tmux or container backend" in capsys.readouterr().err


def test_a_defined_container_session_on_a_hung_engine_is_an_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path,
    hung_socket: str,
) -> None:
    (tmp_path / "kstlib.conf.yml").write_text(
        f"ops:\n  sessions:\n    web: {{backend: docker, image: nginx, base_url: '{hung_socket}'}}\n"
    )
    code = main(["ops", "logs", "web"])
    err = capsys.readouterr().err
    assert code == 1, err
    assert f"The docker engine at {hung_socket} did not answer" in err


def test_list_names_the_endpoint_that_did_not_answer(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], hung_socket: str
) -> None:
    point_engines_at(monkeypatch, hung_socket)
    assert main(["ops", "list", "-b", "docker"]) == 1
    assert f"docker at {hung_socket} did not answer" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["abc", "0", "-5", "1.5"])
def test_a_bad_engine_timeout_setting_is_exit_2_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    monkeypatch.setenv("KSTLIB_OPS_ENGINE_TIMEOUT", value)
    assert main(["ops", "status", "sec-x", "-b", "docker"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kstlib: error: KSTLIB_OPS_ENGINE_TIMEOUT: ") and err.count("\n") == 1
    assert "unexpected" not in err


@pytest.mark.parametrize("runtime", ["docker", "podman"])
def test_doctor_says_a_hung_engine_did_not_answer_instead_of_start_or_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], hung_socket: str,
    runtime: str,
) -> None:
    point_engines_at(monkeypatch, hung_socket)
    main(["ops", "doctor", "--json", "-L", "sec-doctor"])
    checks = {c["backend"]: c for c in json.loads(capsys.readouterr().out)["backends"]}
    check = checks[runtime]
    assert check["available"] is False and check["endpoint"] == hung_socket
    assert "did not answer within 1 s" in check["hint"]
    assert "Start" not in check["hint"] and "Install" not in check["hint"]
