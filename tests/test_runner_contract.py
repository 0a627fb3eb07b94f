"""The runners inherit logs() and follow_logs() from the Runner protocol, and nothing else from it.

An explicit subclass of a protocol inherits its stubs too: a method a backend forgot
would silently return ``None``. Only the two methods with a real body may come from it.
"""

from __future__ import annotations

import inspect

import pytest

from kstlib.ops import ContainerRunner, SwarmRunner, TmuxRunner
from kstlib.ops.runner import Runner


@pytest.mark.parametrize("cls", [TmuxRunner, ContainerRunner, SwarmRunner])
def test_only_logs_and_follow_logs_come_from_the_protocol(cls: type) -> None:
    inherited = sorted(
        name
        for name in dir(Runner)
        if not name.startswith("_")
        and inspect.isfunction(getattr(cls, name, None))
        and getattr(cls, name).__qualname__.startswith("Runner.")
    )
    assert inherited == ["follow_logs", "logs"]


def test_a_subclass_without_a_log_source_is_told_so() -> None:
    class Bare(Runner):
        pass

    with pytest.raises(TypeError, match="Bare implements neither logs"):
        Bare().logs("bot")
