"""Over ssh, the connection whose host key was checked is the one that carries the data.

An on-path attacker that answers the first ssh connection with the right host
key and any later one with its own must get nothing: no HTTP request, no
``X-Registry-Auth``, no env value. The fake server (:mod:`integration.fake_sshd`)
relays its channels to the harness's real Podman service and records what
the client sent on each connection. And no ``ssh`` program is ever started,
so none can outlive a failed connect.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest

from kstlib.ops import SessionManager
from kstlib.ops.config import EngineConfig
from kstlib.ops.engines.endpoints import connect
from kstlib.ops.engines.podman import PodmanEngine
from kstlib.ops.exceptions import ContainerRuntimeNotFoundError, OpsError
from kstlib.ops.images import pull_image

from .conftest import TEST_IMAGE, engine_missing, harness, unique
from .fake_sshd import FakeSshd

PODMAN_SOCK = os.environ.get("KSTLIB_TEST_PODMAN_SOCK", "/run/podman/podman.sock")
TIMEOUT = 10.0
SECRET = "kstlib-env-secret-" + os.urandom(6).hex()


@pytest.fixture(scope="module")
def client_key() -> str:
    env = harness("sshd-up", "the test sshd")
    if not env.get("KSTLIB_TEST_SSH_KEY"):
        engine_missing("the test sshd", "'engines.sh env' lacks KSTLIB_TEST_SSH_KEY")
    if not os.path.exists(PODMAN_SOCK):
        engine_missing("podman", f"no {PODMAN_SOCK}")
    return env["KSTLIB_TEST_SSH_KEY"]


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[tuple[FakeSshd, Path]]:
    """The fake sshd (right key, then another) and a known_hosts file that trusts the right one."""
    right, other = paramiko.ECDSAKey.generate(), paramiko.ECDSAKey.generate()
    with FakeSshd([right, other], PODMAN_SOCK) as server:
        known = tmp_path / "known_hosts"
        known.write_text(f"[127.0.0.1]:{server.port} {right.get_name()} {right.get_base64()}\n")
        yield server, known


def _engine(server: FakeSshd, known: Path, key: str) -> EngineConfig:
    return EngineConfig(
        name="mitm",
        base_url=f"ssh://root@127.0.0.1:{server.port}{PODMAN_SOCK}",
        runtime="podman",
        identity=key,
        known_hosts=str(known),
        timeout=TIMEOUT,
    )


def _local_has(name: str) -> bool:
    return PodmanEngine.open(f"unix://{PODMAN_SOCK}", TIMEOUT).exists(name)


def _wait_logged_out(opened: object) -> None:
    """Wait (bounded) until the client has seen its ssh login end, so the next call logs in again."""
    import time

    login = opened.client.api.adapters["http://"].ssh_client  # type: ignore[attr-defined]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        transport = login.get_transport()
        if transport is None or not transport.is_active():
            return
        time.sleep(0.01)
    raise AssertionError("the client never saw its ssh login end")


def test_a_whole_session_travels_on_the_one_checked_connection(
    client_key: str, fake: tuple[FakeSshd, Path]
) -> None:
    server, known = fake
    engine = _engine(server, known, client_key)
    name = unique("checked")
    bot = SessionManager(
        name, engine=engine, image=TEST_IMAGE, env={"API_TOKEN": SECRET}, command=["sleep", "60"]
    )
    try:
        assert bot.start().is_running
        assert bot.status().state.value == "running"
    finally:
        assert bot.stop(graceful=False)
    # One ssh connection, the one with the key in known_hosts, carried everything.
    assert [c.host_key for c in server.connections] == [server.host_keys[0].get_base64()]
    assert server.connections[0].channels >= 1
    assert SECRET.encode() in server.connections[0].received


def test_a_different_key_on_the_next_connection_gets_nothing(
    client_key: str, fake: tuple[FakeSshd, Path]
) -> None:
    server, known = fake
    engine = _engine(server, known, client_key)
    assert engine.endpoint is not None
    opened = connect("podman", engine.endpoint, TIMEOUT)  # the checked login, cached
    assert opened.list_containers() is not None
    assert b"GET /" in server.connections[0].received  # the fake is on the data path
    server.drop()  # the attacker ends that connection: the next one shows its own key
    _wait_logged_out(opened)

    name = unique("mitm")
    bot = SessionManager(
        name, engine=engine, image=TEST_IMAGE, env={"API_TOKEN": SECRET}, command=["sleep", "60"]
    )
    with pytest.raises(ContainerRuntimeNotFoundError) as started:
        bot.start()
    assert started.value.ssh_problem == "changed-host-key", str(started.value)  # type: ignore[attr-defined]

    registry = os.environ.get("KSTLIB_TEST_AUTH_REGISTRY")
    creds = os.environ.get("KSTLIB_TEST_REGISTRY_CREDENTIALS")
    if not (registry and creds):
        engine_missing("the test registries", "KSTLIB_TEST_AUTH_REGISTRY is not set")
    assert registry and creds
    user, password = Path(creds).read_text().split("\n")[:2]
    with pytest.raises(OpsError) as pulled:
        pull_image(
            f"{registry}/kstlib/pulltest:1",
            runtime="podman",
            base_url=engine.endpoint,
            registry_auth={"username": user, "password": password},
            insecure_registries=[registry],
        )
    assert "does not match the one in" in str(pulled.value), str(pulled.value)

    later = server.connections[1:]
    assert later, "the client never came back"
    assert all(c.channels == 0 and not c.received for c in later)
    sent = server.received()
    assert SECRET.encode() not in sent and password.encode() not in sent
    assert b"x-registry-auth" not in sent.lower()
    assert not _local_has(name)


def test_a_dropped_login_is_made_again_and_checked_again(client_key: str, tmp_path: Path) -> None:
    right = paramiko.ECDSAKey.generate()
    with FakeSshd([right], PODMAN_SOCK) as server:  # the right key every time
        known = tmp_path / "known_hosts"
        known.write_text(f"[127.0.0.1]:{server.port} {right.get_name()} {right.get_base64()}\n")
        engine = _engine(server, known, client_key)
        assert engine.endpoint is not None
        opened = connect("podman", engine.endpoint, TIMEOUT)
        assert opened.list_containers() is not None
        server.drop()
        _wait_logged_out(opened)
        name = unique("again")
        bot = SessionManager(name, engine=engine, image=TEST_IMAGE, command=["sleep", "60"])
        try:
            assert bot.start().is_running
        finally:
            assert bot.stop(graceful=False)
        assert len(server.connections) == 2  # one login again, and it carried the rest
        assert b"/containers/create" in server.connections[1].received


def _children() -> set[int]:
    me = os.getpid()
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == me:
                found.add(int(entry.name))
    return found


def test_no_process_is_started_nor_left_by_a_failed_connect(
    client_key: str, fake: tuple[FakeSshd, Path], tmp_path: Path
) -> None:
    server, known = fake
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    other = paramiko.ECDSAKey.generate()
    wrong = tmp_path / "wrong_known_hosts"
    wrong.write_text(f"[127.0.0.1]:{server.port} {other.get_name()} {other.get_base64()}\n")
    before = _children()
    seen: set[int] = set()
    watching = threading.Event()

    def watch() -> None:  # any child that exists even for a moment
        while not watching.wait(0.01):
            seen.update(_children() - before)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    problems = []
    with FakeSshd([server.host_keys[0]], PODMAN_SOCK, hang=True) as hung:
        hung_known = tmp_path / "hung_known_hosts"
        hung_known.write_text(known.read_text().replace(f"]:{server.port} ", f"]:{hung.port} "))
        endpoints = [
            _engine(server, empty, client_key).endpoint,  # unknown host key
            _engine(server, wrong, client_key).endpoint,  # changed host key
            "ssh://root@127.0.0.1:1" + PODMAN_SOCK,  # nothing listens
            # logged in, then the service never answers (the tunnel that hung before)
            _engine(hung, hung_known, client_key).endpoint,
        ]
        for endpoint in endpoints:
            assert endpoint is not None
            with pytest.raises(ContainerRuntimeNotFoundError) as info:
                PodmanEngine.open(endpoint, 2)
            problems.append(info.value.ssh_problem)  # type: ignore[attr-defined]
        assert hung.connections and all(not c.received for c in hung.connections)
    watching.set()
    watcher.join()
    assert problems == ["unknown-host-key", "changed-host-key", "refused", "timeout"]
    # No child at all, not even for a moment (podman-py started one ssh per
    # connection, which could outlive a failed connect).
    assert seen == set() and _children() - before == set()
    assert all(c.channels == 0 and not c.received for c in server.connections)


@pytest.mark.parametrize("runtime", ["podman", "docker"])
def test_debug_logging_of_every_library_shows_no_secret(
    runtime: str,
    client_key: str,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """DEBUG on for everything (podman-py's ssh adapter printed each request, headers and body).

    A start with an env value and a pull with credentials, over ssh.
    """
    import logging

    env = harness("sshd-up", "the test sshd")
    registry = os.environ.get("KSTLIB_TEST_AUTH_REGISTRY")
    creds = os.environ.get("KSTLIB_TEST_REGISTRY_CREDENTIALS")
    if not (registry and creds):
        engine_missing("the test registries", "KSTLIB_TEST_AUTH_REGISTRY is not set")
    assert registry and creds
    user, password = Path(creds).read_text().split("\n")[:2]
    engine = EngineConfig(
        name="lab",
        base_url=f"ssh://root@127.0.0.1:{env['KSTLIB_TEST_SSH_PORT']}"
        + (PODMAN_SOCK if runtime == "podman" else ""),
        runtime=runtime,
        identity=client_key,
        known_hosts=env["KSTLIB_TEST_SSH_KNOWN_HOSTS"],
        timeout=TIMEOUT + 0.5,  # an engine of its own, not one cached by another test
    )
    root = logging.getLogger()
    saved = root.level, list(root.handlers)
    logging.basicConfig(level=logging.DEBUG, force=True)  # a handler on stderr, as users do
    caplog.set_level(logging.DEBUG)
    name = unique("debug")
    try:
        bot = SessionManager(
            name,
            engine=engine,
            image=f"{registry}/kstlib/pulltest:1",
            pull="always",
            registry_auth={"username": user, "password": password},
            insecure_registries=[registry],
            env={"API_TOKEN": SECRET},
            command=["sleep", "60"],
        )
        try:
            assert bot.start().is_running
        finally:
            assert bot.stop(graceful=False)
    finally:
        root.setLevel(saved[0])
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[1]:
            root.addHandler(handler)
    out, err = capfd.readouterr()
    shown = out + err + caplog.text
    assert "DEBUG" in shown and "urllib3" in shown  # DEBUG really was on, requests logged
    for secret in (SECRET, password, "X-Registry-Auth", "API_TOKEN="):
        assert secret not in shown, secret
