"""SessionManager's **options are typed (SessionOptions): the list follows SessionConfig."""

from __future__ import annotations

from dataclasses import fields

import pytest

from kstlib.ops import SessionConfigError, SessionManager
from kstlib.ops.manager import SessionOptions
from kstlib.ops.models import SessionConfig


def test_the_typed_options_are_the_config_fields_and_the_runner_options() -> None:
    config_fields = {f.name for f in fields(SessionConfig)} - {"name", "backend"}
    runner_options = {"tmux_bin", "tmux_binary", "engine_timeout"}
    assert set(SessionOptions.__annotations__) == config_fields | runner_options


def test_a_typo_is_still_refused_at_run_time() -> None:
    with pytest.raises(SessionConfigError) as info:
        SessionManager("bot", backend="tmux", comand="top")  # type: ignore[call-arg]
    assert info.value.field == "comand"
