"""Env values stay secret: no repr, message, record at rest or CLI output shows them.

Issue 10 point 2. Every test plants a recognisable secret and looks for it
where a user, a log or another local user could see it.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from kstlib.cli import state
from kstlib.ops.config import parse_config
from kstlib.ops.exceptions import SessionConfigError
from kstlib.ops.models import SessionConfig
from tests.test_cli_unit import FakeWorld, assert_one_line_error, run_cli, world

__all__ = ["world"]  # the fixture, imported for the CLI tests below

SECRET = "s3cr3t-Tok3n"


def test_repr_masks_env_values_and_keeps_keys() -> None:
    cfg = SessionConfig(name="bot", command="run", env={"API_TOKEN": SECRET, "MODE": "fast"})
    text = repr(cfg)
    assert SECRET not in text and "fast" not in text
    assert "env={'API_TOKEN': '***', 'MODE': '***'}" in text
    assert "name='bot'" in text and "command='run'" in text
    assert SECRET not in str(cfg) and SECRET not in f"{cfg!r}"
    assert cfg.env["API_TOKEN"] == SECRET  # masked in the repr only


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (SECRET + "\x00", "value contains a NUL character"),
        (SECRET + "\udcff", "value is not valid Unicode text"),
    ],
)
def test_validation_errors_name_the_key_never_the_value(value: str, problem: str) -> None:
    with pytest.raises(SessionConfigError) as info:
        SessionConfig(name="bot", env={"API_TOKEN": value})
    assert str(info.value) == f"env[API_TOKEN]: {problem}"
    assert SECRET not in repr(info.value)


def test_config_file_errors_never_echo_an_env_value() -> None:
    text = f'ops:\n  sessions:\n    bot:\n      env:\n        API_TOKEN: "{SECRET}\\0"\n'
    with pytest.raises(SessionConfigError) as info:
        parse_config(text, source="/p/kstlib.conf.yml")
    assert str(info.value) == (
        "/p/kstlib.conf.yml:5: ops.sessions.bot.env[API_TOKEN]: value contains a NUL character"
    )


@pytest.mark.parametrize(
    "item",
    [
        SECRET,  # the value pasted without its name
        f"{SECRET}/x+y==",  # a base64 secret: its '=' padding makes a "key" of the secret
        f"9{SECRET}=1",
    ],
)
def test_cli_env_errors_never_echo_the_item(
    world: FakeWorld, capsys: pytest.CaptureFixture[str], item: str
) -> None:
    code, out, err = run_cli(
        capsys, "ops", "start", "bot", "-e", "MODE=x", "-e", item, "--", "sleep", "9"
    )
    assert code == 2 and out == ""
    assert_one_line_error(err, "--env: item 2")
    assert SECRET not in err
    assert world.started == []


def test_cli_env_value_with_nul_is_refused_without_echo(
    world: FakeWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(
        capsys, "ops", "start", "bot", "-e", f"API_TOKEN={SECRET}\x00", "--", "sleep", "9"
    )
    assert code == 2
    assert_one_line_error(err, "--env[API_TOKEN]: value contains a NUL character")
    assert SECRET not in err


def _record(tmp_path: Path, name: str) -> Path:
    return tmp_path / "state" / "kstlib" / "ops" / "last-start" / f"{name}.json"


def test_last_start_keeps_env_names_only_private_and_stop_removes_it(
    world: FakeWorld, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    old_umask = os.umask(0o022)
    try:
        code, out, _ = run_cli(
            capsys, "ops", "start", "bot", "--json", "-e", f"API_TOKEN={SECRET}", "--", "sleep", "9"
        )
    finally:
        os.umask(old_umask)
    assert code == 0 and SECRET not in out
    record = _record(tmp_path, "bot")
    raw = record.read_text()
    assert SECRET not in raw
    assert json.loads(raw)["env_keys"] == ["API_TOKEN"] and "env" not in json.loads(raw)
    assert stat.S_IMODE(record.stat().st_mode) == 0o600
    assert stat.S_IMODE(record.parent.stat().st_mode) == 0o700
    assert [p.name for p in record.parent.iterdir()] == ["bot.json"]  # no temporary left

    # restart cannot invent the value: it asks for it, naming the key only
    code, _, err = run_cli(capsys, "ops", "restart", "bot")
    assert code == 2
    assert_one_line_error(err, "give them again with -e (API_TOKEN=...)")
    assert world.stopped == []  # nothing stopped when it cannot start again
    assert run_cli(capsys, "ops", "restart", "bot", "-q", "-e", "API_TOKEN=new")[0] == 0
    assert world.started[-1].env == {"API_TOKEN": "new"}
    assert SECRET not in record.read_text() and "new" not in record.read_text()

    assert run_cli(capsys, "ops", "stop", "bot", "-q")[0] == 0
    assert not record.exists()


def test_an_old_record_with_env_values_is_used_without_them_and_scrubbed(
    world: FakeWorld, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    record = _record(tmp_path, "bot")
    record.parent.mkdir(parents=True, mode=0o700)
    record.write_text(
        json.dumps(
            {"name": "bot", "backend": "tmux", "command": "sleep 9", "env": {"API_TOKEN": SECRET}}
        )
    )
    last = state.load("bot")
    assert last is not None and last.env_keys == ("API_TOKEN",) and last.config.env == {}
    assert SECRET not in record.read_text()


def test_last_start_is_never_written_through_a_planted_symlink(
    world: FakeWorld, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = _record(tmp_path, "bot").parent
    folder.mkdir(parents=True, mode=0o700)
    victim = tmp_path / "victim"
    victim.write_text("untouched")
    os.symlink(victim, folder / "bot.json")
    assert run_cli(capsys, "ops", "start", "bot", "-q", "--", "sleep", "9")[0] == 0
    assert victim.read_text() == "untouched"
    assert not (folder / "bot.json").is_symlink()  # replaced by the rename, not followed


def test_last_start_refuses_a_folder_others_can_write(
    world: FakeWorld, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = _record(tmp_path, "bot").parent
    folder.mkdir(parents=True)
    folder.chmod(0o777)
    planted = folder / "bot.json"
    planted.write_text(json.dumps({"name": "bot", "backend": "tmux", "command": "touch /tmp/x"}))
    code, _, err = run_cli(capsys, "ops", "restart", "bot")
    assert code == 2  # the planted record is not used: restart asks for a command
    assert_one_line_error(err, "cannot restart 'bot'")
    assert world.started == []


def test_json_and_error_output_never_show_env_values(
    world: FakeWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    # Through the fake world's runners (run_cli): never the user's own tmux server.
    said = [
        run_cli(
            capsys, "ops", "start", "bot", "--json", "-e", f"API_TOKEN={SECRET}", "--", "sleep", "9"
        ),
        run_cli(capsys, "ops", "status", "bot", "--json"),
        run_cli(capsys, "ops", "list", "--json", "-b", "tmux"),
        run_cli(capsys, "ops", "start", "bot", "-e", f"API_TOKEN={SECRET}", "--", "sleep", "9"),
    ]
    assert [code for code, _, _ in said] == [0, 0, 0, 1]
    assert world.started[0].env == {"API_TOKEN": SECRET}  # the value did reach the runner
    assert '"bot"' in said[1][1] and '"bot"' in said[2][1]
    assert "already" in said[3][2]
    assert not [text for _, out, err in said for text in (out, err) if SECRET in text]


def test_the_container_spec_repr_shows_no_env_value() -> None:
    from kstlib.ops.engines.adapter import spec_from_config

    spec = spec_from_config(
        SessionConfig(name="w", backend="container", image="alpine:3.20", env={"API_TOKEN": SECRET})
    )
    assert SECRET not in repr(spec)
    assert spec.env["API_TOKEN"] == SECRET
