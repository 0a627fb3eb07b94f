"""@pytest.mark.ops_backend("swarm"): available when DOCKER_HOST is a swarm manager."""

from __future__ import annotations

import pytest

from kstlib.ops.pytest_plugin import backend_problem

from .conftest import harness

pytestmark = pytest.mark.docker


def test_swarm_is_available_at_a_manager_and_said_missing_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = harness("swarm-up", "swarm")
    monkeypatch.setenv("DOCKER_HOST", env["KSTLIB_TEST_SWARM_MANAGER"])
    assert backend_problem("swarm") is None
    monkeypatch.setenv("DOCKER_HOST", env["KSTLIB_TEST_SWARM_WORKER"])  # a worker: no manager
    problem = backend_problem("swarm")
    assert problem is not None and "manager" in problem, problem
