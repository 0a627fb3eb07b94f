"""doctor asks the engines through the engine registry, not SDK clients of its own."""

from __future__ import annotations

import pytest

from kstlib.cli.commands import doctor
from kstlib.ops.engines import endpoints


class _Adapter:
    def __init__(self, runtime: str) -> None:
        self.runtime = runtime

    def version(self) -> str:
        return f"{self.runtime} 9.9 (API 1.99)"


def test_probes_use_connect_and_the_adapters_version(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[str, str, float]] = []

    def fake_connect(runtime: str, base_url: str, timeout: float) -> _Adapter:
        asked.append((runtime, base_url, timeout))
        return _Adapter(runtime)

    monkeypatch.setattr(endpoints, "connect", fake_connect)
    docker = doctor.probe_docker("tcp://engine.invalid:2375", timeout=3)
    podman = doctor.probe_podman("tcp://engine.invalid:8888", timeout=3)
    assert (docker.available, docker.version) == (True, "docker 9.9 (API 1.99)")
    assert (podman.available, podman.version) == (True, "podman 9.9 (API 1.99)")
    assert asked == [("docker", "tcp://engine.invalid:2375", 3), ("podman", "tcp://engine.invalid:8888", 3)]


def test_a_missing_socket_says_so_through_the_registry_error() -> None:
    check = doctor.probe_podman("unix:///nonexistent.sock", timeout=1)
    assert (check.available, check.detail) == (False, "No such file or directory")
