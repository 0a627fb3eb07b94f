"""Podman 4.3's start race: a command that ends at once makes the start answer 500
"read /proc/N/cgroup: no such process" although the container ran. The engine
cannot be made to lose this race on demand, so its answer is played here."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from podman import errors

from kstlib.ops.engines.adapter import ContainerInfo
from kstlib.ops.engines.podman import PodmanEngine
from kstlib.ops.exceptions import SessionStartError
from kstlib.ops.translate import Op


class _Container:
    def start(self) -> None:
        answer = requests.Response()
        answer.status_code, answer.reason = 500, "Internal Server Error"
        raise errors.APIError(
            "read /proc/23549/cgroup: no such process",
            response=answer,
            explanation="read /proc/23549/cgroup: no such process",
        )


def _engine(state: str, monkeypatch: pytest.MonkeyPatch) -> PodmanEngine:
    engine = PodmanEngine(client=None, endpoint="unix:///run/podman/podman.sock", timeout=5)
    monkeypatch.setattr(engine, "_container", lambda ref: _Container())

    def inspect(name: str, op: Op = Op.READ) -> Any:
        return ContainerInfo(id="abc", name="job", state=state)

    monkeypatch.setattr(engine, "inspect", inspect)
    return engine


@pytest.mark.parametrize("state", ["exited", "running"])
def test_a_container_that_ran_counts_as_started(state: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _engine(state, monkeypatch).start("abc", "job")  # no error


def test_a_container_that_never_ran_is_a_start_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SessionStartError) as info:
        _engine("created", monkeypatch).start("abc", "job")
    assert "no such process" in str(info.value)
    assert isinstance(info.value.__cause__, errors.APIError)
