"""``kstlib ops doctor`` says when an engine's default network cannot publish ports.

These machines run Docker with ``--bridge=none`` and Podman with ``netns =
"none"`` (see integration/engines): the engines accept ``ports`` and the
published ports lead nowhere. Doctor finds it out through the engines' APIs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kstlib.ops import doctor as doctor_network

from . import test_containers as base
from .conftest import DOCKER_URL, PODMAN_URL, TEST_IMAGE

runtime, runner = base.runtime, base.runner


def test_doctor_reports_a_default_network_that_cannot_publish_ports(
    runner: Any, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KSTLIB_CONFIG", "XDG_"))}
    env.update(XDG_CONFIG_HOME=str(tmp_path / "config"), DOCKER_HOST=DOCKER_URL,
               CONTAINER_HOST=PODMAN_URL)
    (tmp_path / "kstlib.conf.yml").write_text(
        f"ops:\n  sessions:\n    web:\n      backend: {runner.runtime}\n"
        f"      image: {TEST_IMAGE}\n      ports: ['127.0.0.1:8080:80']\n"
    )
    done = subprocess.run([sys.executable, "-m", "kstlib", "ops", "doctor", "--json"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    data = json.loads(done.stdout)
    note = data["network"][runner.runtime]
    assert "published ports" in note and "network: host" in note
    text = subprocess.run([sys.executable, "-m", "kstlib", "ops", "doctor"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120,
                          check=False).stdout
    assert f"Network: {note}." in text
    # the probe's container (Podman) is gone
    assert not [s for s in runner.list_sessions() if s.name.startswith("kstlib-doctor-")]


@pytest.mark.parametrize("has_bridge", [True, False])
def test_probe_asks_the_engine_for_its_bridge(monkeypatch: pytest.MonkeyPatch,
                                               has_bridge: bool) -> None:
    class Engine:
        runtime = "docker"

        def has_network(self, network: str) -> bool:
            assert network == "bridge"
            return has_bridge

    from kstlib.ops.engines import endpoints

    monkeypatch.setattr(endpoints, "connect", lambda *a, **k: Engine())
    note = doctor_network.probe_bridge("docker", "unix:///x.sock")
    assert (note is None) is has_bridge
