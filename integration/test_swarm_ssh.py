"""A swarm manager over ssh:// goes through kstlib's own ssh login, host key checked.

The swarm adapter used to build its client with the docker SDK's
``use_ssh_client`` (the ``ssh`` binary with the user's own settings), so an
unknown host was not refused the way Docker and Podman engines refuse it. It
now connects as the Docker adapter does (:func:`kstlib.ops.engines.http.docker_api`).
The harness's sshd reaches this machine's own Docker, which is no swarm
manager: that answer proves the login, the tunnel and the API all worked.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kstlib.ops import SessionManager
from kstlib.ops.engines.swarm import SwarmEngine
from kstlib.ops.exceptions import ContainerRuntimeNotFoundError

from .test_remote import TIMEOUT, edge, sshd

__all__ = ["sshd"]  # the module-scoped fixture, shared with test_remote


def _open(endpoint: str | None) -> ContainerRuntimeNotFoundError:
    assert endpoint is not None
    with pytest.raises(ContainerRuntimeNotFoundError) as info:
        SwarmEngine.open(endpoint, TIMEOUT)
    return info.value


def test_an_unknown_host_key_is_refused_for_a_swarm_manager(
    sshd: dict[str, str], tmp_path: Path
) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    err = _open(edge(sshd, known_hosts=str(empty)).endpoint)
    assert err.ssh_problem == "unknown-host-key"  # type: ignore[attr-defined]
    assert str(err).startswith("The swarm engine at ssh://")
    assert "not in " + str(empty) in str(err)


def test_a_wrong_key_is_refused_for_a_swarm_manager(sshd: dict[str, str], tmp_path: Path) -> None:
    import subprocess

    other = tmp_path / "other_key"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True, timeout=30
    )
    err = _open(edge(sshd, identity=str(other)).endpoint)
    assert err.ssh_problem == "auth-failed"  # type: ignore[attr-defined]


def test_the_engine_behind_the_login_is_asked_whether_it_manages_a_swarm(
    sshd: dict[str, str],
) -> None:
    engine = edge(sshd, name="cluster", runtime=None, backend="swarm")
    err = _open(engine.endpoint)
    assert getattr(err, "ssh_problem", None) is None  # the login and the API answered
    assert "not a swarm manager" in str(err) or "swarm state is 'inactive'" in str(err)
    # The same through the session API: one clear error, never an SDK one.
    with pytest.raises(ContainerRuntimeNotFoundError, match="swarm state is 'inactive'"):
        SessionManager("kstlib-swarm-ssh", engine=engine).status()
