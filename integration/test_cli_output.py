"""The console script's output contract against real tmux and containers: logs on a
terminal, wait's exit codes, list with a partly invalid config file (issue 16)."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from kstlib.ops import TmuxRunner
from kstlib.ops.exceptions import OpsError

from .conftest import TEST_IMAGE, unique
from .test_cli import KSTLIB, RUNTIMES, Cli, container_runner

pytestmark = pytest.mark.tmux

#: What the session prints: a cursor-position query, a colour, a title and a clipboard write.
HOSTILE = r"a\033[6nb \033[31mred\033[0m \033]0;pwned\007 \033]52;c;ZWNobyBoaQ==\007 end\n"


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    runner = Cli(tmp_path)
    yield runner
    if runner.socket_dir.is_dir():
        for sock in runner.socket_dir.iterdir():
            with contextlib.suppress(OpsError):
                TmuxRunner(socket_path=str(sock)).kill_server()
    shutil.rmtree(runner.tmux_tmpdir, ignore_errors=True)


def on_terminal(cli: Cli, *args: str) -> tuple[int, bytes]:
    """Run the console script with its stdout on a pseudo-terminal; return (code, output)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([*KSTLIB, *args], cwd=cli.cwd, env=cli.env, stdin=subprocess.DEVNULL,
                            stdout=slave, stderr=subprocess.PIPE)
    os.close(slave)
    out = bytearray()
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    proc.wait(timeout=60)
    assert proc.stderr is not None
    assert proc.stderr.read() == b""
    proc.stderr.close()
    return proc.returncode, bytes(out)


def test_logs_on_a_terminal_pass_colours_only_and_a_pipe_gets_the_bytes(cli: Cli) -> None:
    # it exits at once, so that 'logs -f' ends too
    cli("ops", "start", "hostile", "-L", "w", "-q", "-c", f"printf '{HOSTILE}'")
    cli("ops", "wait", "hostile", "-L", "w", "-t", "20")
    piped = cli("ops", "logs", "hostile", "-L", "w").stdout.splitlines()[0]
    assert piped == "a\x1b[6nb \x1b[31mred\x1b[0m \x1b]0;pwned\x07 \x1b]52;c;ZWNobyBoaQ==\x07 end"
    code, shown = on_terminal(cli, "ops", "logs", "hostile", "-L", "w")
    assert code == 0
    first = shown.split(b"\r\n")[0]
    assert first == b"a^[[6nb \x1b[31mred\x1b[0m ^[]0;pwned^G ^[]52;c;ZWNobyBoaQ==^G end"
    # the only escape sequences left on the terminal are the two colours
    assert shown.count(b"\x1b") == 2 and b"\x07" not in shown
    # -f on a terminal too
    code, followed = on_terminal(cli, "ops", "logs", "hostile", "-L", "w", "-f", "--since", "0")
    assert code == 0
    assert followed.split(b"\r\n")[0] == first
    # the line 'wait --for' prints is session output too (matched without escapes)
    code, matched = on_terminal(cli, "ops", "wait", "hostile", "-L", "w", "--for", "end$")
    assert (code, matched) == (0, b"ab red   end\r\n")
    cli("ops", "stop", "hostile", "-L", "w", "-q")


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_container_logs_on_a_terminal_are_escaped(cli: Cli, runtime: str) -> None:
    container_runner(runtime)
    name = unique("hostile")
    cli("ops", "start", name, "-b", runtime, "-i", TEST_IMAGE, "-q", "--",
        "sh", "-c", f"printf '{HOSTILE}'; sleep 60")
    try:
        cli("ops", "wait", name, "-b", runtime, "--for", "end", "-t", "30", "-q")
        code, shown = on_terminal(cli, "ops", "logs", name, "-b", runtime)
        assert code == 0
        assert b"a^[[6nb \x1b[31mred\x1b[0m ^[]0;pwned^G" in shown
        assert shown.count(b"\x1b") == 2
        assert "\x1b[6n" in cli("ops", "logs", name, "-b", runtime).stdout
    finally:
        cli("ops", "stop", name, "-b", runtime, "-f", "-q", code=None)


def test_wait_tells_the_session_exit_code_from_kstlib_errors(cli: Cli) -> None:
    # the session's own code is 3, the code kstlib uses for "not found"
    cli("ops", "start", "three", "-L", "w", "-q", "--", "sh", "-c", "echo done; exit 3")
    cli("ops", "wait", "three", "-L", "w", "-t", "20", code=3)  # unchanged default
    proc = cli("ops", "wait", "three", "-L", "w", "-t", "20", "--print-code")
    assert proc.stdout == "3\n"
    assert cli.json("ops", "wait", "three", "-L", "w", "-t", "20") == {"name": "three",
                                                                        "exit_code": 3}
    # kstlib's own failures keep their codes, with nothing on stdout
    cli.error("ops", "wait", "nosuch", "-L", "w", "--print-code", code=3)
    cli.error("ops", "wait", "nosuch", "-L", "w", "--json", code=3)
    cli.error("ops", "wait", "my.bad", "-L", "w", "--print-code", code=2)
    assert json.loads(cli("ops", "wait", "three", "-L", "w", "--for", "^done$", "--json").stdout) == {
        "name": "three", "line": "done"}
    cli("ops", "stop", "three", "-L", "w", "-q")


def test_wait_for_timeout_names_the_pattern(cli: Cli) -> None:
    cli("ops", "start", "quiet", "-L", "w", "-q", "--", "sleep", "60")
    message = cli.error("ops", "wait", "quiet", "-L", "w", "--for", r"ready on \d+", "-t", "0.5",
                        code=1)
    assert "'quiet'" in message
    assert "ready on \\\\d+" in message and "0.5 s" in message
    assert "still running" not in message
    cli.error("ops", "wait", "quiet", "-L", "w", "--for", "x", "-t", "0.2", "--print-code", code=1)
    cli("ops", "stop", "quiet", "-L", "w", "-f", "-q")


def test_list_shows_the_valid_entries_and_warns_once_per_invalid_one(cli: Cli) -> None:
    (cli.cwd / "kstlib.conf.yml").write_text(
        "ops:\n"
        "  tmux_socket: w\n"
        "  sessions:\n"
        "    good:\n"
        "      command: sleep 60\n"
        "    typo:\n"
        "      comand: sleep 60\n"
        "    bad-port:\n"
        "      backend: docker\n"
        "      image: busybox\n"
        "      ports: ['99999:80']\n"
        "    other:\n"
        "      command: [sleep, '60']\n"
    )
    proc = cli("ops", "list", "-b", "tmux")
    assert [line.split()[0] for line in proc.stdout.splitlines()[1:]] == ["good", "other"]
    warnings = proc.stderr.splitlines()
    assert len(warnings) == 2, proc.stderr
    assert all(w.startswith("kstlib: warning: ") for w in warnings)
    assert "kstlib.conf.yml:7: ops.sessions.typo.comand" in warnings[0]
    assert "ops.sessions.bad-port.ports" in warnings[1]
    assert [s["name"] for s in cli.json("ops", "list", "-b", "tmux")] == ["good", "other"]
    # the valid ones work; the invalid one fails the command that needs it
    cli("ops", "start", "good", "-q")
    names = cli("ops", "list", "-b", "tmux", "-q").stdout.split()
    assert names == ["good", "other"]
    message = cli.error("ops", "start", "typo", code=2)
    assert "ops.sessions.typo.comand" in message
    cli.error("ops", "status", "bad-port", code=2)
    cli("ops", "stop", "good", "-q")
