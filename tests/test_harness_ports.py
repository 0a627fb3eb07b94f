"""The engines harness works around ports that something else holds, or says what holds them.

The port helpers of ``integration/engines/lib.sh`` and ``swarm.sh`` run in a
bash of their own against a listener this test opens (nothing of the running
engines is touched; the state folder is a temporary one).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parent.parent / "integration" / "engines"


def _bash(script: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    prelude = (
        f"set -euo pipefail; STATE={tmp_path}; HERE={HARNESS}; "
        f"source {HARNESS}/lib.sh; source {HARNESS}/swarm.sh; "
    )
    return subprocess.run(
        ["bash", "-c", prelude + script], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture
def taken() -> Iterator[int]:
    """A TCP port on 127.0.0.1 that this process listens on."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def test_a_taken_port_is_replaced_by_a_free_one_and_the_holder_named(
    taken: int, tmp_path: Path
) -> None:
    done = _bash(f"port=$(free_port {taken} 'the test sshd'); echo \"port=$port\"", tmp_path)
    assert done.returncode == 0, done.stderr
    chosen = int(done.stdout.strip().removeprefix("port="))  # nothing but the port is captured
    assert chosen > taken
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", chosen)) != 0
    assert f"port {taken} (for the test sshd) is taken by" in done.stderr
    assert f"using {chosen}" in done.stderr
    if shutil.which("ss"):
        assert "python" in done.stderr  # ss names the process that holds it


def test_a_taken_gossip_port_stops_swarm_up_with_what_holds_it(taken: int, tmp_path: Path) -> None:
    done = _bash(f"SWARM_GOSSIP_PORT={taken}; gossip_free 127.0.0.1", tmp_path)
    assert done.returncode == 1
    assert f"port {taken} on 127.0.0.1 (swarm gossip, fixed by Docker) is taken by" in done.stderr
    assert "KSTLIB_ENGINES_SWARM=0" in done.stderr
    assert _bash("SWARM_GOSSIP_PORT=1; gossip_free 127.0.0.1", tmp_path).returncode == 0


def test_the_swarm_control_port_is_chosen_free_on_both_addresses_and_kept(
    tmp_path: Path,
) -> None:
    (tmp_path / "swarm").mkdir()
    done = _bash("swarm_ports; echo chosen=$SWARM_PORT", tmp_path)
    assert done.returncode == 0, done.stderr
    chosen = int(done.stdout.split("chosen=")[1])
    for addr in ("127.0.0.1", "127.0.0.2"):
        with socket.socket() as probe:
            assert probe.connect_ex((addr, chosen)) != 0, f"{addr}:{chosen} is taken"
    assert (tmp_path / "swarm" / "port").read_text().strip() == str(chosen)
