"""The plugin's reaper on the two-node swarm: a dead run's services go, nothing else does.

The SIGKILL itself is proven on tmux, Docker and Podman by test_plugin_reaper;
here the swarm's part: ``ops_session(backend="swarm")`` labels its service with
the test process as owner, and :func:`~kstlib.ops.pytest_plugin.reap_orphans`
removes a service whose record names a dead owner and which carries that mark,
and leaves a live owner's service, a service with another owner's mark and a
service kstlib did not start.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kstlib.ops.pytest_plugin import OWNER_LABEL, owner_token, reap_orphans

from .swarm_support import RUN, RUN_LABEL, Swarm, swarm_name, until

pytestmark = pytest.mark.docker

# no such pid in this pid namespace, boot and host: an owner that is gone
DEAD = ":".join(["999999999", "1", *owner_token().split(":")[2:]])


def test_the_fixture_labels_its_service_with_the_test_process(
    swarm: Swarm, ops_session: object
) -> None:
    name = swarm_name("own")
    session = ops_session(  # type: ignore[operator]
        ["sleep", "600"],
        backend="swarm",
        name=name,
        image=swarm.image,
        base_url=swarm.env["KSTLIB_TEST_SWARM_MANAGER"],
        labels={RUN_LABEL: RUN},
        stop_timeout=2,
    )
    assert session.status().is_running
    labels = swarm.manager.services.get(name).attrs["Spec"]["Labels"]
    assert labels[OWNER_LABEL] == owner_token()


def test_a_dead_owners_service_is_reaped_and_nothing_else(
    swarm: Swarm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    folder = tmp_path / "state" / "kstlib" / "ops" / "pytest-owners"
    folder.mkdir(parents=True, mode=0o700)
    folder.parent.chmod(0o700)
    manager_url = swarm.env["KSTLIB_TEST_SWARM_MANAGER"]
    owners = {"orphan": DEAD, "live": owner_token(), "other": DEAD.replace("999999999", "999999998")}
    names = {kind: swarm_name(kind) for kind in (*owners, "foreign")}
    for kind, owner in owners.items():
        swarm.runner.start(
            swarm.config(names[kind], ["sleep", "600"], labels={OWNER_LABEL: owner})
        )
    # A service kstlib did not start, with the dead owner's label copied onto it.
    swarm.manager.services.create(
        swarm.image,
        ["sleep", "600"],
        name=names["foreign"],
        labels={RUN_LABEL: RUN, OWNER_LABEL: DEAD},
    )
    for kind in names:  # every record names the dead owner but one
        owner = owners["live"] if kind == "live" else DEAD
        record = {"owner": owner, "name": names[kind], "backend": "swarm", "base_url": manager_url}
        path = folder / f"{kind}.json"
        path.write_text(json.dumps(record))
        os.chmod(path, 0o600)

    reaped = reap_orphans()

    assert reaped == [names["orphan"]]
    until(
        f"{names['orphan']} gone from the swarm",
        lambda: names["orphan"] not in {s.name for s in swarm.manager.services.list()},
    )
    left = {s.name for s in swarm.manager.services.list()}
    assert {names["live"], names["other"], names["foreign"]} <= left
    # The dead owner's records are done with; the live run's stays.
    assert sorted(p.stem for p in folder.glob("*.json")) == ["live"]
