"""Hostile config files and values: bounded work, bounded messages (issue 10 point 9).

A few hundred bytes of YAML aliases expand to billions of values; a value
may be megabytes long. Either must end in one short ``SessionConfigError``,
never in a ``MemoryError``, minutes of CPU or a megabyte-long message.
"""

from __future__ import annotations

import pytest

from kstlib.ops import validators
from kstlib.ops import config
from kstlib.ops.config import parse_config
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
