"""CLI pieces that need no engine: terminal-safe output, look-up names, wait's options,
and a config file with invalid session entries."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from kstlib.cli import main
from kstlib.cli.commands import Context
from kstlib.cli.parser import UsageError, parse_args
from kstlib.ops.config import load_config, parse_config
from kstlib.ops.exceptions import SessionConfigError

# -- logs on a terminal: colours pass, nothing else does (issue 16, point 23) ------------


@pytest.mark.parametrize(
    "text",
    [
        "plain text",
        "\x1b[31mred\x1b[0m and \x1b[1;38;5;196mbold\x1b[m",
        "tabs\tand a carriage return\r",
        "unicode: é ✓ 😀",
    ],
)
def test_colours_and_plain_text_pass_unchanged(text: str) -> None:
    from kstlib.cli.output import terminal_safe

    assert terminal_safe(text) == text


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("prompt\x1b[6n$ ", "prompt^[[6n$ "),  # cursor position query: the terminal answers
        ("\x1b[c", "^[[c"),  # device attributes query
        ("\x1b[>0q", "^[[>0q"),  # XTVERSION query
        ("\x1b]0;owned\x07", "^[]0;owned^G"),  # window title
        ("\x1b]52;c;ZWNobyBoaQ==\x1b\\", "^[]52;c;ZWNobyBoaQ==^[\\"),  # clipboard
        ("\x1bP$qm\x1b\\", "^[P$qm^[\\"),  # DECRQSS: the terminal answers
        ("\x1b[2J\x1b[H", "^[[2J^[[H"),  # clear screen, cursor home
        ("\x1b[?1049h", "^[[?1049h"),  # alternate screen
        ("\x9b6n", "<U+009B>6n"),  # 8-bit CSI
        ("bell\x07 back\x08 del\x7f", "bell^G back^H del^?"),
        ("cut\x1b", "cut^["),  # a sequence cut at the end of the text
        ("\x1b]0;no terminator", "^[]0;no terminator"),
    ],
)
def test_every_other_control_sequence_is_shown_escaped(text: str, shown: str) -> None:
    from kstlib.cli.output import terminal_safe

    safe = terminal_safe(text)
    assert safe == shown
    assert "\x1b" not in safe and "\x07" not in safe


def test_a_colour_next_to_a_query_keeps_the_colour_only() -> None:
    from kstlib.cli.output import terminal_safe

    assert terminal_safe("\x1b[32mok\x1b[0m\x1b[6n") == "\x1b[32mok\x1b[0m^[[6n"


# -- an invalid name on a look-up command is a usage error (point 24) ---------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["ops", "attach", "my.bot", "-b", "tmux"],
        ["ops", "attach", "my.bot", "-L", "kstlib-test-none"],
        ["ops", "attach", "my bot", "-b", "docker"],
        ["ops", "attach", "my bot", "--runtime", "podman"],
        ["ops", "attach", "a b.c"],  # neither a tmux nor a container name
        ["ops", "status", "a b.c"],
        ["ops", "stop", "x.y", "-b", "tmux"],
        ["ops", "logs", "x y", "-b", "container"],
        ["ops", "wait", "x y", "-b", "podman"],
        ["ops", "exec", "x y", "--", "ls"],  # exec: containers only
        ["ops", "send-keys", "x.y", "ls"],  # send-keys: tmux only
    ],
)
def test_a_name_no_backend_in_scope_can_hold_exits_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("kstlib: error: name: ") and err.count("\n") == 1, err
    assert "cannot be a" in err


def test_lookup_name_keeps_names_some_backend_can_hold() -> None:
    for name, backend in [("0", None), ("my.bot", None), ("my.bot", "docker"),
                          ("my bot", "tmux"), ("my bot", None), ("é", "tmux")]:
        ns = argparse.Namespace(name=name, backend=backend, runtime=None, socket=None)
        assert Context(ns).lookup_name() == name


# -- wait: the session's exit code apart from kstlib's (point 7) -------------------------


def test_wait_report_options_parse_and_exclude_each_other() -> None:
    args = parse_args(["ops", "wait", "bot", "--print-code"])
    assert (args.print_code, args.json) == (True, False)
    assert parse_args(["ops", "wait", "bot", "--json"]).json is True
    with pytest.raises(UsageError, match="not allowed with"):
        parse_args(["ops", "wait", "bot", "--json", "--print-code"])


# -- one invalid session entry does not hide the others (point 18) -----------------------

CONFIG = """\
ops:
  tmux_socket: kstlib-test-none
  sessions:
    good:
      command: sleep 1
    typo:
      comand: sleep 1
    worse:
      backend: lxc
    also-good:
      command: [echo, hi]
"""


def test_parse_config_collects_invalid_entries_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "kstlib.conf.yml"
    path.write_text(CONFIG)
    with pytest.raises(SessionConfigError, match="typo"):
        load_config(path)  # strict by default: one bad entry fails the file
    invalid: dict[str, SessionConfigError] = {}
    config = load_config(path, invalid=invalid)
    assert sorted(config.sessions) == ["also-good", "good"]
    assert sorted(invalid) == ["typo", "worse"]
    assert f"{path}:7: ops.sessions.typo.comand" in str(invalid["typo"])
    assert f"{path}:9: ops.sessions.worse.backend" in str(invalid["worse"])


def test_a_broken_top_level_still_fails_whole() -> None:
    with pytest.raises(SessionConfigError, match="lxc"):
        parse_config("ops: {default_backend: lxc, sessions: {a: {}}}", invalid={})


def test_commands_fail_on_the_invalid_entry_they_need(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "kstlib.conf.yml"
    path.write_text(CONFIG)
    assert main(["ops", "status", "typo", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "ops.sessions.typo.comand" in err
    assert main(["ops", "status", "good", "--config", str(path), "-q"]) == 0
    assert capsys.readouterr().out == "defined\n"
