"""send_keys: one tmux key name is a key (Ctrl-C interrupts), anything else is text."""

from __future__ import annotations

import pytest

from kstlib.cli import main
from kstlib.ops import SessionConfig, SessionConfigError, SessionManager, TmuxRunner

from .waiting import wait_until

pytestmark = pytest.mark.tmux



def test_ctrl_c_interrupts_a_sleep(tmux: TmuxRunner, name: str) -> None:
    # Once the command runs (a C-c that lands while the wrapper is still
    # setting up ends its restart loop, not the command: see docs/lifecycle.md).
    tmux.start(SessionConfig(name=name, command=["sh", "-c", "echo ready; exec sleep 60"]))
    wait_until(lambda: "ready" in tmux.logs(name))
    tmux.send_keys(name, "C-c", enter=False)
    assert tmux.wait(name, timeout=10) == 130  # SIGINT, from the terminal


def test_ctrl_c_with_literal_arrives_as_three_characters(tmux: TmuxRunner, name: str) -> None:
    tmux.start(SessionConfig(name=name, command="cat"))
    tmux.send_keys(name, "C-c", literal=True)
    wait_until(lambda: tmux.logs(name).count("C-c") == 2)  # the echo and cat's copy
    assert tmux.status(name).is_running
    tmux.send_keys(name, "ls -l", literal=False)  # not a key name: tmux types it
    wait_until(lambda: tmux.logs(name).count("ls -l") == 2)
    tmux.stop(name, graceful=False)


def test_a_key_name_inside_text_is_text(tmux: TmuxRunner, name: str) -> None:
    tmux.start(SessionConfig(name=name, command="cat"))
    tmux.send_keys(name, "C-c Enter")
    wait_until(lambda: tmux.logs(name).count("C-c Enter") == 2)
    tmux.send_keys(name, "Escape", enter=False)  # a key: nothing typed
    tmux.send_keys(name, "end")
    wait_until(lambda: tmux.logs(name).count("end") == 2)
    assert "Escape" not in tmux.logs(name)
    tmux.stop(name, graceful=False)


def test_manager_passes_literal_and_checks_it(tmux_socket: str, name: str) -> None:
    bot = SessionManager(name, socket_name=tmux_socket)
    bot.start("echo ready; exec sleep 60")
    bot.wait_for_log("^ready$", timeout=10)  # a C-c before the command runs may be lost
    with pytest.raises(SessionConfigError):
        bot.send_keys("C-c", literal="yes")  # type: ignore[arg-type]
    bot.send_keys("C-c", enter=False)
    assert bot.wait(timeout=10) == 130
    bot.stop()


def test_cli_key_and_literal(tmux: TmuxRunner, tmux_socket: str, name: str) -> None:
    tmux.start(SessionConfig(name=name, command="cat"))
    assert main(["ops", "send-keys", name, "C-c", "--literal", "-L", tmux_socket]) == 0
    wait_until(lambda: tmux.logs(name).count("C-c") == 2)
    assert main(["ops", "send-keys", name, "C-c", "--key", "--no-enter", "-L", tmux_socket]) == 0
    assert tmux.wait(name, timeout=10) == 130

