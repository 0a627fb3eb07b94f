"""Podman's 500 "no such container" is a container that vanished, not a failed start.

Issue 10 point 12 (Podman part): when concurrent starts replace an exited
container, the losers' inspect or remove can meet it half-removed; Podman
answers HTTP 500 "... does not exist in database: no such container" where
Docker answers 404. The translation must read it as "not found", so the
loser goes on to meet the winner's container and gets ``SessionExistsError``.
"""

from __future__ import annotations

import pytest

from kstlib.ops.engines import podman as podman_engine
from kstlib.ops.exceptions import SessionNotFoundError, SessionStopError
from kstlib.ops.translate import Op
from tests.test_container_translation import podman_api_error, translated

VANISHED = (
    "container 651a6f2c63ccac8e9841842862271ef1d6d4f3ba60374497d120eb4e14192a82 does not "
    "exist in database: no such container"
)


@pytest.mark.parametrize("op", [Op.START, Op.READ, Op.STOP])
def test_a_500_no_such_container_is_not_found(op: Op) -> None:
    err = podman_api_error(500, "no such container", VANISHED)
    out = translated(podman_engine.translate, err, op)
    assert isinstance(out, SessionNotFoundError)


def test_other_500s_stay_the_operations_error() -> None:
    err = podman_api_error(500, "something broke", "container state improper")
    assert isinstance(translated(podman_engine.translate, err, Op.STOP), SessionStopError)
