"""``kstlib ops doctor`` says which sessions publish a port on every interface (issue 10 point 14).

``"8080:80"`` binds 0.0.0.0 and ::, as ``docker run -p`` does; kstlib keeps the
meaning and says it. No engine is probed: the probes are replaced.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kstlib.cli import main
from kstlib.cli.commands import doctor


@pytest.fixture(autouse=True)
def no_probes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    up = doctor.Check("x", True, "1.0", "e", "")
    for name in ("probe_tmux", "probe_docker", "probe_podman"):
        monkeypatch.setattr(doctor, name, lambda *a, **k: up)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("KSTLIB_CONFIG", raising=False)


def test_doctor_names_each_session_publishing_on_every_interface(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "ops.yml"
    config.write_text(
        "ops:\n  sessions:\n"
        "    web: {backend: docker, image: nginx, ports: ['0.0.0.0:8080:80', '127.0.0.1:1:1']}\n"
        "    dns: {backend: podman, image: dns, ports: ['[::]:5353:53/udp']}\n"
        "    safe: {backend: docker, image: nginx, ports: ['127.0.0.1:9090:90', '[::1]:2:2']}\n"
        "    bot: {command: 'sleep 9'}\n"
    )
    assert main(["ops", "doctor", "--config", str(config)]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "every network" in ln]
    assert lines == [
        "Session 'web' publishes 0.0.0.0:8080:80 on every network interface: any host that "
        "can reach this machine can connect. Write 127.0.0.1:8080:80 to keep it on this machine.",
        "Session 'dns' publishes [::]:5353:53/udp on every network interface: any host that "
        "can reach this machine can connect. Write 127.0.0.1:5353:53/udp to keep it on this "
        "machine.",
    ]
    assert main(["ops", "doctor", "--json", "--config", str(config)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["config"]["public_ports"] == {
        "web": ["0.0.0.0:8080:80"], "dns": ["[::]:5353:53/udp"]}


def test_doctor_is_silent_when_every_port_is_bound_to_an_address(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "ops.yml"
    config.write_text("ops: {sessions: {w: {backend: docker, image: n, ports: ['127.0.0.1:1:1']}}}")
    assert main(["ops", "doctor", "--config", str(config)]) == 0
    assert "every network interface" not in capsys.readouterr().out
