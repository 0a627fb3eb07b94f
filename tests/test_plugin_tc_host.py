"""Where testcontainers starts containers: its ``tc.host`` setting, read without a broad except.

testcontainers-python keeps ``tc.host`` (``~/.testcontainers.properties``) in
``testcontainers.core.config.testcontainers_config``; a version without that
setting is the one thing that can go wrong (an ``AttributeError``), and then
``DOCKER_HOST`` decides, as testcontainers itself does.
"""

from __future__ import annotations

import sys
from types import ModuleType, SimpleNamespace

import pytest

from kstlib.ops.pytest_plugin.tc_owner import tc_engines


def _config(settings: object) -> ModuleType:
    module = ModuleType("testcontainers.core.config")
    module.testcontainers_config = settings  # type: ignore[attr-defined]
    return module


def test_tc_host_wins_over_docker_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///from-env.sock")
    settings = SimpleNamespace(tc_properties_get_tc_host=lambda: "tcp://tc-host:2375")
    monkeypatch.setitem(sys.modules, "testcontainers.core.config", _config(settings))
    assert tc_engines() == [["docker", "tcp://tc-host:2375"]]


def test_a_version_without_the_setting_falls_back_to_docker_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///from-env.sock")
    monkeypatch.setitem(sys.modules, "testcontainers.core.config", _config(SimpleNamespace()))
    assert tc_engines() == [["docker", "unix:///from-env.sock"]]


def test_anything_else_is_a_bug_and_is_not_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> str:
        raise RuntimeError("a bug in the settings reader")

    settings = SimpleNamespace(tc_properties_get_tc_host=broken)
    monkeypatch.setitem(sys.modules, "testcontainers.core.config", _config(settings))
    with pytest.raises(RuntimeError, match="a bug in the settings reader"):
        tc_engines()
