"""Hostile config files and values: bounded work, bounded messages (issue 10 point 9).

A few hundred bytes of YAML aliases expand to billions of values; a value
may be megabytes long. Either must end in one short ``SessionConfigError``,
never in a ``MemoryError``, minutes of CPU or a megabyte-long message.

A program a config file names (``tmux_binary``, point 8) must be an absolute
path or a name on PATH that no one else can replace.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kstlib.ops import config, validators
from kstlib.ops.config import load_config, parse_config
from kstlib.ops.exceptions import SessionConfigError
from kstlib.ops.models import SessionConfig

#: The longest message a bounded error may have (a file path, a key path and a sentence).
MAX_MESSAGE = 400


def alias_bomb(levels: int, key: str, width: int = 10) -> str:
    """A YAML document of ``width ** levels`` values in a few hundred bytes, under ``key``."""
    lines = ["a0: &a0 [x]"]
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    lines.append(f"ops: {{sessions: {{bot: {{{key}: *a{levels}}}}}}}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("key", ["backend", "command", "env", "ports"])
def test_an_alias_bomb_is_one_short_error(key: str) -> None:
    text = alias_bomb(6, key)  # 10**6 values in about 400 bytes
    assert len(text) < 500
    with pytest.raises(SessionConfigError) as info:
        parse_config(text, source="bomb.yml")
    message = str(info.value)
    assert len(message) < MAX_MESSAGE
    assert message.startswith("bomb.yml:")
    assert f"expand to more than {config.MAX_CONFIG_VALUES} values" in message


def test_a_self_referencing_alias_is_refused() -> None:
    with pytest.raises(SessionConfigError, match=r"x\.yml:1: a YAML alias"):
        parse_config("a: &a [*a]\nops: {sessions: {bot: {command: *a}}}\n", source="x.yml")


def test_aliases_within_the_bound_still_work() -> None:
    text = (
        "common: &env {MODE: fast, LEVEL: '2'}\n"
        "ops:\n  sessions:\n"
        "    a: {command: run, env: *env}\n"
        "    b: {command: run, env: *env}\n"
    )
    cfg = parse_config(text, source="x.yml")
    assert cfg.session("a").env == cfg.session("b").env == {"MODE": "fast", "LEVEL": "2"}


@pytest.mark.parametrize(
    "yaml_value",
    [
        "backend: '{big}'",
        "{{engine: '{big}'}}",
        "{{'{big}': 1}}",
        "restart: '{big}'",
        "ports: ['{big}']",
        "ports: ['1:{big}']",
        "ports: ['{big}:1:2']",
        "image: '{big}'",
    ],
)
def test_a_huge_value_is_echoed_short(yaml_value: str) -> None:
    big = "y" * 200_000
    body = yaml_value.format(big=big)
    if not body.startswith("{"):
        body = "{" + body + "}"
    text = f"ops: {{sessions: {{bot: {body}}}}}\n"
    with pytest.raises(SessionConfigError) as info:
        parse_config(text, source="x.yml")
    assert len(str(info.value)) < MAX_MESSAGE, str(info.value)[:200]


def test_a_huge_session_name_and_tag_are_echoed_short() -> None:
    for text in (
        "ops: {sessions: {'" + "n" * 200_000 + "': {}}}\n",
        "ops: {sessions: {bot: {command: !" + "t" * 200_000 + " x}}}\n",
    ):
        with pytest.raises(SessionConfigError) as info:
            parse_config(text, source="x.yml")
        assert len(str(info.value)) < MAX_MESSAGE, str(info.value)[:200]


def test_shown_is_bounded_and_cheap_on_huge_nesting() -> None:
    value: list[object] = ["x"]
    for _ in range(200):  # 2**200 items once expanded: only a bounded repr can show it
        value = [value, value]
    assert len(validators.shown(value)) <= validators.MAX_SHOWN
    assert len(validators.shown("z" * 10**6)) <= validators.MAX_SHOWN


def test_validators_echo_huge_values_short() -> None:
    big = "q" * 100_000
    for kwargs in (
        {"image": big},
        {"backend": big},
        {"restart": big},
        {"memory": big},
        {"ports": [f"1:{big}"]},
        {"ports": [f"{big}:1:2"]},
        {"volumes": [big]},
        {"socket_name": big},
        {"labels": {big: "x"}},
    ):
        with pytest.raises(SessionConfigError) as info:
            SessionConfig(name="bot", **kwargs)  # type: ignore[arg-type]
        assert len(str(info.value)) < MAX_MESSAGE, (kwargs.keys(), str(info.value)[:200])


# -- programs a config file names (issue 10 point 8) ----------------------------------------

def _program(folder: Path, mode: int = 0o755) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)
    program = folder / "tmux"
    program.write_text("#!/bin/sh\nexit 0\n")
    program.chmod(mode)
    return program


def _load(tmp_path: Path, value: str) -> object:
    path = tmp_path / "cfg" / "kstlib.conf.yml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(f"ops:\n  tmux_socket: s\n  tmux_binary: '{value}'\n")
    return load_config(path)


@pytest.mark.parametrize("value", ["./tools/tmux", "tools/tmux", "../tmux", "~/bin/tmux"])
def test_a_relative_program_path_is_refused_naming_key_file_and_line(
    tmp_path: Path, value: str
) -> None:
    with pytest.raises(SessionConfigError) as info:
        _load(tmp_path, value)
    assert str(info.value).startswith(
        f"{tmp_path / 'cfg' / 'kstlib.conf.yml'}:3: ops.tmux_binary: {value!r} must be an "
        "absolute path"
    )
    assert info.value.field == "ops.tmux_binary"


def test_a_program_others_can_write_is_refused(tmp_path: Path) -> None:
    program = _program(tmp_path / "bin", 0o757)
    with pytest.raises(SessionConfigError, match=rf":3: ops.tmux_binary: .*{program} is "
                                                 "writable by other users"):
        _load(tmp_path, str(program))


def test_a_program_in_a_folder_others_can_write_is_refused(tmp_path: Path) -> None:
    program = _program(tmp_path / "open" / "bin")
    (tmp_path / "open").chmod(0o777)  # not sticky: anyone may rename bin/ and plant another
    with pytest.raises(SessionConfigError, match=r"open is writable by other users"):
        _load(tmp_path, str(program))


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file away needs root")
def test_a_program_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    program = _program(tmp_path / "bin")
    os.chown(program, 65534, 65534)
    with pytest.raises(SessionConfigError, match=r"owned by uid 65534, not by root or you"):
        _load(tmp_path, str(program))


def test_a_program_of_ours_on_path_or_absolute_is_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    program = _program(tmp_path / "bin")
    assert _load(tmp_path, str(program)).tmux_binary == str(program)  # type: ignore[attr-defined]
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert _load(tmp_path, "tmux").tmux_binary == "tmux"  # type: ignore[attr-defined]
    program.chmod(0o777)  # the PATH lookup is checked like an absolute path
    with pytest.raises(SessionConfigError, match="writable by other users"):
        _load(tmp_path, "tmux")


def test_only_the_current_folders_file_is_project_local(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KSTLIB_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    (tmp_path / "xdg" / "kstlib").mkdir(parents=True)
    (tmp_path / "xdg" / "kstlib" / "kstlib.conf.yml").write_text("ops: {}\n")
    assert load_config().project_local is False  # the user's own file
    (tmp_path / "kstlib.conf.yml").write_text("ops: {}\n")
    assert load_config().project_local is True  # came with the folder
    assert load_config("kstlib.conf.yml").project_local is False  # named by the user
    monkeypatch.setenv("KSTLIB_CONFIG", str(tmp_path / "kstlib.conf.yml"))
    assert load_config().project_local is False


def test_a_huge_base_url_is_echoed_short(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from kstlib.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "ops.yml").write_text(
        "ops: {sessions: {web: {backend: docker, image: n, base_url: 'x" + "u" * 200_000 + "'}}}\n"
    )
    assert main(["ops", "logs", "web", "--config", "ops.yml"]) == 2
    err = capsys.readouterr().err
    assert "base_url" in err and len(err) < MAX_MESSAGE
