"""``kstlib ops attach`` to a container, driven in a real terminal (issue 16, points 20-22).

The terminal is a tmux pane on a private server (``tmux -L <unique>``): the test
types with ``send-keys``, resizes with ``resize-window`` and reads the screen with
``capture-pane``, as a person at a terminal would see it. The containers run on
the real Docker daemon and Podman service.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kstlib.ops.models import SessionConfig

from .conftest import ENGINE_URLS, TEST_IMAGE, unique
from .test_cli import RUNTIMES, container_runner

pytestmark = pytest.mark.tmux

ROOT = Path(__file__).resolve().parent.parent
WAIT_S = 30.0


class Terminal:
    """A 120x40 terminal (a tmux pane) running one shell command line."""

    def __init__(self) -> None:
        self.socket = f"kstlib-term-{uuid.uuid4().hex[:8]}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TMUX")}
        self.env.update(
            PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
            DOCKER_HOST=ENGINE_URLS["docker"],
            CONTAINER_HOST=ENGINE_URLS["podman"],
        )

    def tmux(self, *args: str) -> str:
        proc = subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", *args],
                              env=self.env, capture_output=True, text=True, timeout=30,
                              check=False)
        assert proc.returncode == 0, (args, proc.stderr)
        return proc.stdout

    def run(self, *argv: str) -> None:
        """Run argv in the terminal; its exit status is printed after it as kstlib-rc=N."""
        line = f"{shlex.join(argv)}; echo kstlib-rc=$?; sleep 600"
        self.tmux("new-session", "-d", "-x", "120", "-y", "40", "-s", "term", line)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "term")

    def lines(self) -> list[str]:
        return [line for line in self.screen().splitlines() if line.strip()]

    def wait(self, predicate: Callable[[str], bool], what: str) -> str:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            text = self.screen()
            if predicate(text):
                return text
            time.sleep(0.05)
        raise AssertionError(f"the screen never showed {what}:\n{self.screen()}")

    def wait_for(self, text: str) -> str:
        return self.wait(lambda screen: text in screen, repr(text))

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "term", *keys)

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-t", "term", "-l", text)
        self.keys("Enter")

    def exit_status(self) -> int:
        screen = self.wait(lambda s: "kstlib-rc=" in s, "the exit status")
        return int(screen.split("kstlib-rc=", 1)[1].split()[0])

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], env=self.env,
                       capture_output=True, timeout=30, check=False)
        folder = Path(os.environ.get("TMUX_TMPDIR", "/tmp")) / f"tmux-{os.getuid()}"
        with contextlib.suppress(OSError):
            (folder / self.socket).unlink()  # tmux leaves the socket file behind


@pytest.fixture
def term() -> Iterator[Terminal]:
    terminal = Terminal()
    yield terminal
    terminal.close()


def attach_argv(name: str, runtime: str) -> list[str]:
    return [sys.executable, "-m", "kstlib", "ops", "attach", name, "-b", runtime]


@pytest.fixture
def shell(request: pytest.FixtureRequest) -> Iterator[Callable[[str], tuple[str, Any]]]:
    """Start kstlib container sessions running an interactive shell (with a TTY)."""
    made: list[tuple[Any, str]] = []

    def start(runtime: str) -> tuple[str, Any]:
        runner = container_runner(runtime)
        name = unique("term")
        runner.start(SessionConfig(name=name, backend="container", runtime=runtime,
                                   base_url=ENGINE_URLS[runtime], image=TEST_IMAGE,
                                   command=["sh"]))
        made.append((runner, name))
        return name, runner

    yield start
    for runner, name in made:
        with contextlib.suppress(Exception):
            runner.stop(name, graceful=False)


def prompt_ready(term: Terminal) -> None:
    """Wait until the shell in the container answers.

    An attach replays nothing, and keys typed before kstlib has the terminal in
    raw mode are discarded: press Enter until the shell prints its prompt.
    """
    shell_do(term, "", lambda screen: "/ #" in screen, "Enter")


def shell_do(term: Terminal, text: str, done: Callable[[str], bool], what: str) -> str:
    """Type a command line into busybox sh until its effect shows.

    busybox's line editor asks the terminal for the cursor position at each
    prompt and drops keys that arrive before the answer, so a line typed at once
    may be lost: type it again (only idempotent commands are given here).
    """
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if text:
            term.tmux("send-keys", "-t", "term", "-l", text)
        term.keys("Enter")
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            screen = term.screen()
            if done(screen):
                return screen
            time.sleep(0.05)
    raise AssertionError(f"the screen never showed {what}:\n{term.screen()}")


def size_is(term: Terminal, rows: int, columns: int) -> None:
    shown = f"size={rows}x{columns}."
    shell_do(term, "echo size=$(stty size | tr ' ' x).", lambda s: shown in s, shown)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_the_container_terminal_follows_a_resize(
    term: Terminal, shell: Callable[[str], tuple[str, Any]], runtime: str
) -> None:
    name, _ = shell(runtime)
    term.run(*attach_argv(name, runtime))
    prompt_ready(term)
    size_is(term, 40, 120)
    term.tmux("resize-window", "-t", "term", "-x", "100", "-y", "30")
    size_is(term, 30, 100)
    term.tmux("resize-window", "-t", "term", "-x", "132", "-y", "43")
    size_is(term, 43, 132)
    term.keys("C-p", "C-q")
    assert term.exit_status() == 0


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_the_container_exit_code_is_the_exit_status_with_one_line(
    term: Terminal, shell: Callable[[str], tuple[str, Any]], runtime: str
) -> None:
    name, runner = shell(runtime)
    term.run(*attach_argv(name, runtime))
    prompt_ready(term)
    shell_do(term, "exit 5", lambda s: "kstlib-rc=" in s, "the end of the attach")
    assert term.exit_status() == 5
    said = [line for line in term.lines() if line.startswith("kstlib:")]
    assert said == [f"kstlib: session {name!r} ({runtime}) ended with exit code 5."]
    assert runner.status(name).exit_code == 5


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_kill_from_elsewhere_ends_the_attach_with_the_container_code(
    term: Terminal, shell: Callable[[str], tuple[str, Any]], runtime: str
) -> None:
    import docker

    name, _ = shell(runtime)
    term.run(*attach_argv(name, runtime))
    prompt_ready(term)
    # as 'docker kill NAME' in another terminal: the container ends and stays
    docker.DockerClient(base_url=ENGINE_URLS[runtime]).containers.get(name).kill()
    assert term.exit_status() == 137
    said = [line for line in term.lines() if line.startswith("kstlib:")]
    assert said == [f"kstlib: session {name!r} ({runtime}) ended with exit code 137."]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_kstlib_stop_from_elsewhere_ends_the_attach_with_the_container_code(
    term: Terminal, shell: Callable[[str], tuple[str, Any]], runtime: str
) -> None:
    name, runner = shell(runtime)
    term.run(*attach_argv(name, runtime))
    prompt_ready(term)
    # kstlib's stop: SIGTERM (an interactive sh ignores it), a kill, then the removal
    runner.stop(name, graceful=True, timeout=0.5)
    code = term.exit_status()
    said = [line for line in term.lines() if line.startswith("kstlib:")]
    if runtime == "podman" and code == 1:
        # Podman's wait polls (every 250 ms): a removal right after the exit can
        # beat it, and the code is gone with the container (docs/containers.md)
        assert said == [f"kstlib: session {name!r} ({runtime}) ended and was removed; "
                        "its exit code is unknown."]
        return
    assert code == 137
    assert said == [f"kstlib: session {name!r} ({runtime}) ended with exit code 137."]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_detach_prints_a_newline_and_one_line(
    term: Terminal, shell: Callable[[str], tuple[str, Any]], runtime: str
) -> None:
    name, runner = shell(runtime)
    term.run(*attach_argv(name, runtime))
    prompt_ready(term)
    term.tmux("send-keys", "-t", "term", "-l", "half-typed")
    term.keys("C-p", "C-q")
    assert term.exit_status() == 0
    lines = term.lines()
    at = lines.index(f"kstlib: detached from session {name!r} ({runtime}); it runs on.")
    assert lines[at - 1].startswith("/ #")  # the newline: the line is not glued to the prompt
    assert lines[at + 1] == "kstlib-rc=0"
    assert runner.status(name).is_running


@pytest.fixture
def foreign() -> Iterator[Callable[[str, list[str]], str]]:
    """Containers started without kstlib and without a TTY (docker SDK, on either engine)."""
    import docker

    made: list[Any] = []

    def start(runtime: str, command: list[str]) -> str:
        container_runner(runtime)  # skip or fail when the engine is missing
        client = docker.DockerClient(base_url=ENGINE_URLS[runtime])
        container = client.containers.run(TEST_IMAGE, command, detach=True, tty=False,
                                          stdin_open=True, name=unique("notty"))
        made.append(container)
        return str(container.name)

    yield start
    for container in made:
        with contextlib.suppress(Exception):
            container.remove(force=True)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_container_without_a_tty_keeps_the_terminal_cooked(
    term: Terminal, foreign: Callable[[str, list[str]], str], runtime: str
) -> None:
    name = foreign(runtime, ["sh", "-c",
                             'while read line; do echo "got $line"; echo "second line"; done'])
    term.run(*attach_argv(name, runtime))
    term.type("hello")  # the terminal keeps it until kstlib reads it
    term.wait_for("second line")
    lines = term.lines()
    # the terminal echoes what is typed, and every line starts at the left margin
    at = lines.index("got hello")
    assert lines[at - 1] == "hello"
    assert lines[at + 1] == "second line"
    term.type("again")
    term.wait(lambda s: s.count("second line") == 2, "the second answer")
    assert term.lines()[at + 2:at + 5] == ["again", "got again", "second line"]
    # Ctrl-C detaches (without a TTY it is not a key for the container)
    term.keys("C-c")
    assert term.exit_status() == 0
    assert any(line.startswith(f"kstlib: detached from session {name!r}")
               for line in term.lines())
    status = container_runner(runtime).status(name)
    if runtime == "docker":
        assert status.is_running
    else:
        # Podman closes the container's standard input when the attach ends (its
        # 'read' sees end of file), documented in docs/containers.md
        assert (status.state.value, status.exit_code) == ("exited", 0)
