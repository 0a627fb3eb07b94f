"""testcontainers-python under kstlib's plugin, without Ryuk (issue 22, point 10b).

Real pytest processes drive real testcontainers against Docker and against Podman
(through its Docker API socket, as testcontainers users do): a run killed with
SIGKILL leaves its containers; the next run removes them, and leaves a live run's
alone. A run that ends normally removes what its tests left, as Ryuk would. And the
``ops_container`` fixture hands a testcontainers container to kstlib by name.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from kstlib.ops.exceptions import SessionNotFoundError

from .conftest import ENGINE_URLS, TEST_IMAGE
from .waiting import wait_until

pytestmark = [pytest.mark.docker, pytest.mark.podman]

WAIT_S = 60.0
TC_LABEL = "org.testcontainers.session-id"

INNER = """
import pathlib, time
import pytest
from testcontainers.core.container import DockerContainer

@pytest.fixture(autouse=True)
def engine(monkeypatch):  # imported above, pointed at its engine only now
    monkeypatch.setenv("DOCKER_HOST", {url!r})

def test_holds_containers():
    kept = DockerContainer({image!r}).with_command("sleep 600").start()
    left = DockerContainer({image!r}).with_command("sleep 600").start()
    names = [c.get_wrapped_container().name for c in (kept, left)]
    ready = pathlib.Path({ready!r})
    ready.with_suffix(".tmp").write_text(" ".join(names))
    ready.with_suffix(".tmp").rename(ready)
    release = pathlib.Path({release!r})
    while not release.exists():  # until the run is killed, or released
        time.sleep(0.05)
    kept.stop()  # 'left' is left behind: the end of the run removes it
"""


wait_for = partial(wait_until, timeout=WAIT_S, interval=0.05)


class Run:
    """One pytest process whose test starts two testcontainers containers and blocks."""

    def __init__(self, where: Path, env: dict[str, str], url: str) -> None:
        tag = uuid.uuid4().hex[:8]
        self.ready = where / f"ready-{tag}"
        self.release = where / f"release-{tag}"
        test = where / f"test_tc_{tag}.py"
        test.write_text(INNER.format(image=TEST_IMAGE, ready=str(self.ready),
                                     release=str(self.release), url=url))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test)],
            cwd=where, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def names(self) -> list[str]:
        def ready() -> bool:
            if self.proc.poll() is not None:
                out = self.proc.stdout.read().decode() if self.proc.stdout else ""
                raise AssertionError(f"the inner run ended early: {out}")
            return self.ready.exists()

        wait_for(ready, "the inner test to start its containers")
        return self.ready.read_text().split()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)  # no cleanup of any kind can run
        self.proc.wait(timeout=30)

    def finish(self) -> None:
        self.release.touch()
        out, _ = self.proc.communicate(timeout=120)
        assert self.proc.returncode == 0, out.decode()


@pytest.fixture(params=["docker", "podman"])
def engine(request: pytest.FixtureRequest) -> Iterator[Any]:
    import docker

    client = docker.DockerClient(base_url=ENGINE_URLS[request.param])
    yield request.param, client
    client.close()


def test_a_killed_runs_testcontainers_are_reaped_without_ryuk(
    tmp_path: Path, engine: Any
) -> None:
    runtime, client = engine
    # The engine under another path: the record must name what the test pointed at.
    alias = tmp_path / f"{runtime}.sock"
    alias.symlink_to(ENGINE_URLS[runtime].removeprefix("unix://"))
    url = f"unix://{alias}"
    base = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    env = {**base, "XDG_STATE_HOME": str(tmp_path / "state"),
           "TESTCONTAINERS_RYUK_DISABLED": "true",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parent.parent),
                                          os.environ.get("PYTHONPATH", "")])}
    killed = live = None
    made: list[str] = []

    def exists(name: str) -> bool:
        return bool(client.containers.list(all=True, filters={"name": f"^/?{name}$"}))

    try:
        killed = Run(tmp_path, env, url)
        killed_names = killed.names()
        made += killed_names
        live = Run(tmp_path, env, url)
        live_names = live.names()
        made += live_names
        killed.kill()
        assert all(exists(n) for n in killed_names)  # SIGKILL: nothing cleaned up
        session_ids = {client.containers.get(n).labels[TC_LABEL] for n in made}
        assert len(session_ids) == 2  # one testcontainers session per run
        folder = tmp_path / "state" / "kstlib" / "ops" / "pytest-owners"
        records = [json.loads(p.read_text()) for p in folder.glob("tc-*.json")]
        assert {r["session_id"] for r in records} == session_ids
        assert all(r["kind"] == "testcontainers" for r in records)
        assert all(["docker", url] in r["engines"] for r in records)  # seen before the test

        # The next run (no testcontainers in it, no DOCKER_HOST) reaps the killed run's.
        (tmp_path / "test_next.py").write_text("def test_nothing():\n    pass\n")
        nxt = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             str(tmp_path / "test_next.py")],
            cwd=tmp_path, env=env,
            capture_output=True, text=True, timeout=300, check=False)
        assert nxt.returncode == 0, nxt.stdout + nxt.stderr
        assert [exists(n) for n in killed_names] == [False, False]
        assert [exists(n) for n in live_names] == [True, True]  # a live run: untouched

        # The live run ends normally: the container its test left behind is removed too.
        live.finish()
        live = None
        assert [exists(n) for n in live_names] == [False, False]
        assert list(folder.glob("tc-*.json")) == []
    finally:
        for run in (killed, live):
            if run is not None and run.proc.poll() is None:
                run.proc.kill()
                run.proc.wait()
        for name in made:  # whatever a failed assertion left: the engines are shared
            with contextlib.suppress(Exception):
                client.containers.get(name).remove(force=True)


def test_ops_container_hands_a_testcontainers_container_to_kstlib(
    engine: Any, monkeypatch: pytest.MonkeyPatch, ops_container: Any
) -> None:
    from testcontainers.core.container import DockerContainer

    runtime, _ = engine
    monkeypatch.setenv("DOCKER_HOST", ENGINE_URLS[runtime])
    monkeypatch.setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
    tc = DockerContainer(TEST_IMAGE).with_command(
        ["sh", "-c", "echo first; sleep 1; echo ready; sleep 600"]
    )
    with tc:
        session = ops_container(tc, runtime=runtime, base_url=ENGINE_URLS[runtime])
        assert session.name == tc.get_wrapped_container().name
        assert session.wait_for_log("ready", timeout=30) == "ready"
        status = session.status()
        assert status.is_running and not status.managed  # testcontainers', not kstlib's
        assert session.logs().splitlines()[:2] == ["first", "ready"]
        by_name = ops_container(session.name, runtime=runtime, base_url=ENGINE_URLS[runtime])
        assert by_name.status().pid == status.pid
        found = ops_container(tc)  # no runtime: kstlib finds it on the engines it knows
        assert found.status().runtime == runtime and found.status().pid == status.pid
    with pytest.raises(SessionNotFoundError) as caught:  # testcontainers removed it
        session.status()
    assert caught.value.name == session.name
