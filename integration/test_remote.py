"""Remote engines for real: Docker and Podman over ssh:// through the harness's private sshd.

``engines.sh sshd-up`` runs a second sshd on 127.0.0.1 (its own host key, a
throw-away client key for root, a known_hosts file); ssh:// engines here reach
this machine's Docker (/var/run/docker.sock) and Podman (/run/podman/podman.sock)
through it, exactly as they would reach another machine. Every ssh failure is
provoked for real: a wrong key, an unknown host key, nothing listening, a
missing remote socket, a host that does not resolve.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kstlib.ops import SessionManager
from kstlib.ops.config import EngineConfig
from kstlib.ops.engines.docker import DockerEngine
from kstlib.ops.engines.podman import PodmanEngine
from kstlib.ops.exceptions import ContainerRuntimeNotFoundError

from .conftest import TEST_IMAGE, engine_missing, harness, unique

ROOT = Path(__file__).resolve().parent.parent
PODMAN_SOCK = os.environ.get("KSTLIB_TEST_PODMAN_SOCK", "/run/podman/podman.sock")
TIMEOUT = 10.0


@pytest.fixture(scope="module")
def sshd() -> dict[str, str]:
    env = harness("sshd-up", "the test sshd")
    for key in ("KSTLIB_TEST_SSH_PORT", "KSTLIB_TEST_SSH_KEY", "KSTLIB_TEST_SSH_KNOWN_HOSTS"):
        if not env.get(key):
            engine_missing("the test sshd", f"'engines.sh env' lacks {key}")
    return env


def ssh_url(env: dict[str, str], path: str = "", port: str | None = None) -> str:
    return f"ssh://root@127.0.0.1:{port or env['KSTLIB_TEST_SSH_PORT']}{path}"


def edge(env: dict[str, str], **changes: object) -> EngineConfig:
    """Docker over ssh://, with the harness's key and known_hosts."""
    values: dict[str, object] = {
        "name": "edge",
        "base_url": ssh_url(env),
        "runtime": "docker",
        "identity": env["KSTLIB_TEST_SSH_KEY"],
        "known_hosts": env["KSTLIB_TEST_SSH_KNOWN_HOSTS"],
        "timeout": TIMEOUT,
    }
    values.update(changes)
    return EngineConfig(**values)  # type: ignore[arg-type]


def lab(env: dict[str, str], **changes: object) -> EngineConfig:
    """Podman over ssh:// to its root socket."""
    values: dict[str, object] = {
        "name": "lab",
        "base_url": ssh_url(env, PODMAN_SOCK),
        "runtime": "podman",
        **changes,
    }
    return edge(env, **values)


@pytest.mark.parametrize("make", [edge, lab], ids=["docker-over-ssh", "podman-over-ssh"])
def test_a_session_lives_its_whole_life_on_an_ssh_engine(
    sshd: dict[str, str], make: object
) -> None:
    engine = make(sshd)  # type: ignore[operator]
    name = unique("remote")
    bot = SessionManager(
        name, engine=engine, image=TEST_IMAGE, command=["sh", "-c", "echo ready-$((6*7)); sleep 60"]
    )
    try:
        started = bot.start()
        assert started.runtime == engine.runtime and started.is_running
        # A followed log over ssh (its answer read chunk by chunk from the channel).
        assert bot.wait_for_log("ready-42", timeout=TIMEOUT) == "ready-42"
        assert "ready-42" in bot.logs()
        assert bot.status().state.value == "running"
        # It really runs on that engine (the same daemon, seen through its local socket).
        local = (
            DockerEngine.open("unix:///var/run/docker.sock", TIMEOUT)
            if engine.runtime == "docker"
            else PodmanEngine.open(f"unix://{PODMAN_SOCK}", TIMEOUT)
        )
        assert local.inspect(name).state == "running"
    finally:
        assert bot.stop(graceful=False)
    assert not bot.exists()


def _open(engine: EngineConfig, timeout: float = TIMEOUT) -> ContainerRuntimeNotFoundError:
    opener = DockerEngine if engine.runtime == "docker" else PodmanEngine
    assert engine.endpoint is not None
    with pytest.raises(ContainerRuntimeNotFoundError) as info:
        opener.open(engine.endpoint, timeout)
    return info.value


@pytest.mark.parametrize("make", [edge, lab], ids=["docker", "podman"])
def test_each_ssh_failure_is_its_own_sentence(
    sshd: dict[str, str], make: object, tmp_path: Path
) -> None:
    other = tmp_path / "other_key"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True, timeout=30
    )
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    # The host's name and port, with another key: a changed host key.
    changed = tmp_path / "changed_known_hosts"
    kind_, key_ = Path(f"{other}.pub").read_text().split()[:2]
    changed.write_text(f"[127.0.0.1]:{sshd['KSTLIB_TEST_SSH_PORT']} {kind_} {key_}\n")
    # Something that accepts connections and never says a word (no sshd behind the port).
    import socket
    import threading

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    held: list[socket.socket] = []

    def hold() -> None:
        with contextlib.suppress(OSError):  # the listener is closed when the test ends
            for _ in range(8):
                held.append(silent.accept()[0])

    threading.Thread(target=hold, daemon=True).start()
    path = PODMAN_SOCK if make is lab else ""
    seen: dict[str, str] = {}
    cases = {
        "changed-host-key": {"known_hosts": str(changed)},
        "timeout": {"base_url": ssh_url(sshd, path, port=str(silent.getsockname()[1]))},
        "auth-failed": {"identity": str(other)},
        "unknown-host-key": {"known_hosts": str(empty)},
        "refused": {"base_url": ssh_url(sshd, PODMAN_SOCK if make is lab else "", port="1")},
        "unresolvable": {
            "base_url": "ssh://root@kstlib-no-such-host.invalid:2222"
            + (PODMAN_SOCK if make is lab else "")
        },
    }
    messages: dict[str, str] = {}
    for kind, changes in cases.items():
        began = time.monotonic()
        err = _open(make(sshd, **changes), 2)  # type: ignore[operator]
        seen[kind] = f"{time.monotonic() - began:.2f}s"
        assert err.ssh_problem == kind, (kind, str(err))  # type: ignore[attr-defined]
        assert str(err).count(". ") <= 1 and "\n" not in str(err)  # one sentence
        # The engine named once, without kstlib's query (identity=%2F...).
        assert "?" not in str(err).split(" cannot be reached")[0], str(err)
        assert "identity=" not in str(err) and "no known_hosts file" not in str(err)
        messages[kind] = str(err)
    silent.close()
    assert "does not match the one in " + str(changed) in messages["changed-host-key"]
    assert "did not answer within 2 s" in messages["timeout"]
    assert "refused with key" in messages["auth-failed"] and str(other) in messages["auth-failed"]
    assert "not in " + str(empty) in messages["unknown-host-key"]
    assert "verify_host_key" in messages["unknown-host-key"]
    assert "no sshd listens there" in messages["refused"]
    assert "cannot be resolved" in messages["unresolvable"]
    print("time to each error:", seen)


def test_a_missing_remote_socket_says_the_login_worked(sshd: dict[str, str]) -> None:
    err = _open(lab(sshd, base_url=ssh_url(sshd, "/run/kstlib-no-such.sock")))
    assert err.ssh_problem == "no-engine"  # type: ignore[attr-defined]
    assert "works, but no Podman service answered at /run/kstlib-no-such.sock" in str(err)


def test_the_host_key_check_can_be_turned_off_explicitly(
    sshd: dict[str, str], tmp_path: Path
) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    engine = edge(sshd, known_hosts=str(empty), verify_host_key=False)
    assert engine.endpoint is not None and "verify_host_key=no" in engine.endpoint
    assert DockerEngine.open(engine.endpoint, TIMEOUT).list_containers() is not None


# -- the fleet: four engines in one list -------------------------------------------------


@pytest.fixture
def own_podman(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A Podman API service of this test's own on a private socket (the engine it stops)."""
    sock = Path(f"/tmp/kstlib-remote-{uuid.uuid4().hex[:8]}.sock")
    proc = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{sock}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # CONTAINER_HOST (the harness's service) would make this podman a remote client.
        env={k: v for k, v in os.environ.items() if k not in ("CONTAINER_HOST", "CONTAINER_CONNECTION")},
    )
    deadline = time.monotonic() + 30
    while not sock.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    if not sock.exists():
        proc.kill()
        engine_missing("a private podman service", "it did not create its socket")
    yield f"unix://{sock}", proc
    if proc.poll() is None:
        proc.terminate()
        proc.wait(timeout=30)
    sock.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def tcp_dockerd() -> Iterator[str]:
    """A dockerd of this module's own on tcp://127.0.0.1 (the "remote over tcp" Docker).

    Its own data, exec root and containerd (as ENGINES.md describes), the vfs
    storage driver (no mounts to leave behind), the test image loaded from the
    shared daemon. Docker 20.10 waits about 15 s before serving a tcp socket
    without TLS (its deprecation notice): hence one per module.
    """
    import shutil
    import tempfile

    if shutil.which("dockerd") is None or shutil.which("docker") is None:
        engine_missing("a tcp dockerd", "dockerd or docker is not installed")
    root = Path(tempfile.mkdtemp(prefix="kstlib-tcpd-", dir="/tmp"))
    url = f"tcp://127.0.0.1:{_free_port()}"
    log = (root / "dockerd.log").open("wb")
    proc = subprocess.Popen(
        [
            "dockerd",
            "--host",
            url,
            "--data-root",
            str(root / "data"),
            "--exec-root",
            str(root / "exec"),
            "--pidfile",
            str(root / "dockerd.pid"),
            "--bridge=none",
            "--iptables=false",
            "--ip6tables=false",
            "--storage-driver=vfs",
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            up = subprocess.run(
                ["docker", "-H", url, "version"], capture_output=True, timeout=30, check=False
            )
            if up.returncode == 0:
                break
            time.sleep(0.5)
        else:
            tail = (root / "dockerd.log").read_text(errors="replace")[-800:]
            engine_missing("a tcp dockerd", f"it did not come up:\n{tail}")
        saved = subprocess.run(
            ["docker", "save", TEST_IMAGE], capture_output=True, timeout=120, check=True
        ).stdout
        subprocess.run(
            ["docker", "-H", url, "load"], input=saved, capture_output=True, timeout=120, check=True
        )
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
        log.close()
        shutil.rmtree(root, ignore_errors=True)


def _cli(config: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "KSTLIB_CONFIG": str(config),
        "PYTHONPATH": str(ROOT),
        "KSTLIB_OPS_ENGINE_TIMEOUT": str(int(TIMEOUT)),
    }
    return subprocess.run(
        [sys.executable, "-m", "kstlib", "ops", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def _write(path: Path, engines: dict[str, dict[str, object]]) -> Path:
    path.write_text(json.dumps({"ops": {"engines": engines}}))  # JSON is YAML
    return path


def test_four_engines_in_one_list_and_one_line_for_the_one_that_stopped(
    sshd: dict[str, str],
    own_podman: tuple[str, subprocess.Popen[bytes]],
    tmux_socket: str,
    tcp_dockerd: str,
    tmp_path: Path,
) -> None:
    """Local tmux, Docker over ssh, a Podman (this test's own service, stopped midway), tcp Docker."""
    podman_url, podman_proc = own_podman
    e = edge(sshd)
    config = _write(
        tmp_path / "fleet.yml",
        {
            "local": {"backend": "tmux", "socket_name": tmux_socket},
            "edge": {
                "backend": "docker",
                "base_url": e.base_url,
                "identity": e.identity,
                "known_hosts": e.known_hosts,
            },
            "lab": {"backend": "podman", "base_url": podman_url},
            "second": {"backend": "docker", "base_url": tcp_dockerd},
        },
    )
    names = {k: unique(k) for k in ("local", "edge", "lab", "second")}
    managers = [
        SessionManager(names["local"], socket_name=tmux_socket, command="sleep 60"),
        SessionManager(names["edge"], engine=e, image=TEST_IMAGE, command="sleep 60"),
        SessionManager(
            names["lab"],
            backend="podman",
            base_url=podman_url,
            image=TEST_IMAGE,
            command="sleep 60",
        ),
        SessionManager(
            names["second"],
            backend="docker",
            base_url=tcp_dockerd,
            image=TEST_IMAGE,
            command="sleep 60",
            pull="never",
        ),
    ]
    try:
        for m in managers:
            m.start()
        done = _cli(config, "list", "--json")
        assert done.returncode == 0, done.stderr
        rows = {r["name"]: r for r in json.loads(done.stdout)}
        for engine_name, session in names.items():
            assert rows[session]["engine"] == engine_name, (engine_name, rows.get(session))
        table = _cli(config, "list")
        assert table.stdout.splitlines()[0].split()[:2] == ["NAME", "ENGINE"]
        assert table.stderr == ""

        podman_proc.terminate()  # the lab engine stops
        podman_proc.wait(timeout=30)
        began = time.monotonic()
        done = _cli(config, "list", "--json")
        took = time.monotonic() - began
        assert done.returncode == 0, done.stderr
        listed = {r["name"]: r["engine"] for r in json.loads(done.stdout)}
        for engine_name in ("local", "edge", "second"):
            assert listed.get(names[engine_name]) == engine_name
        assert names["lab"] not in listed or listed[names["lab"]] != "lab"
        warnings = [line for line in done.stderr.splitlines() if line]
        assert len(warnings) == 1 and "engine lab" in warnings[0], done.stderr
        print(f"list with one engine down took {took:.2f}s")
    finally:
        for m in managers[:2] + managers[3:]:
            m.stop(graceful=False)
        # the lab container outlives its private service: remove it through the root socket
        SessionManager(names["lab"], backend="podman", base_url=f"unix://{PODMAN_SOCK}").stop(
            graceful=False
        )


def test_status_finds_a_session_on_any_engine_and_refuses_to_guess(
    sshd: dict[str, str], tmp_path: Path
) -> None:
    e, p = edge(sshd), lab(sshd)
    config = _write(
        tmp_path / "two.yml",
        {
            name: {
                "backend": c.runtime,
                "base_url": c.base_url,
                "identity": c.identity,
                "known_hosts": c.known_hosts,
            }
            for name, c in (("edge", e), ("lab", p))
        },
    )
    name = unique("where")
    on_edge = SessionManager(name, engine=e, image=TEST_IMAGE, command="sleep 60")
    on_lab = SessionManager(name, engine=p, image=TEST_IMAGE, command="sleep 60")
    try:
        on_edge.start()
        done = _cli(config, "status", name, "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["runtime"] == "docker"
        on_lab.start()
        done = _cli(config, "status", name)
        assert done.returncode != 0
        # Here both engines are this machine's daemons, so the local search sees them too.
        assert "exists on several backends" in done.stderr, done.stderr
        assert ("engine edge" in done.stderr and "engine lab" in done.stderr) or (
            "podman" in done.stderr and "docker" in done.stderr
        )
        one = _cli(config, "status", name, "--engine", "lab", "--json")
        assert json.loads(one.stdout)["runtime"] == "podman", one.stderr
        assert json.loads(one.stdout)["engine"] == "lab"
        logs = _cli(config, "logs", name, "--engine", "edge")
        assert logs.returncode == 0, logs.stderr
        unknown = _cli(config, "status", name, "--engine", "nope")
        assert "'nope' is not an engine (known: edge, lab)" in unknown.stderr
    finally:
        on_edge.stop(graceful=False)
        if on_lab.exists():
            on_lab.stop(graceful=False)


def test_an_unresolvable_ssh_host_does_not_hold_up_the_list(
    tmux_socket: str, tmp_path: Path
) -> None:
    config = _write(
        tmp_path / "bad.yml",
        {
            "local": {"backend": "tmux", "socket_name": tmux_socket},
            "ghost": {
                "backend": "podman",
                "base_url": "ssh://root@kstlib-no-such-host.invalid/run/podman/podman.sock",
                "timeout": 3,
            },
        },
    )
    began = time.monotonic()
    done = _cli(config, "list", "--engine", "ghost")
    took = time.monotonic() - began
    assert done.returncode != 0 and "cannot be resolved" in done.stderr, done.stderr
    done = _cli(config, "list")
    assert done.returncode == 0
    assert [line for line in done.stderr.splitlines() if "ghost" in line] != []
    print(f"list with an unresolvable ssh engine took {took:.2f}s")


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (this test's own sshd's connections)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("make", [edge, lab], ids=["docker", "podman"])
def test_an_sshd_that_stops_is_refused_at_once_and_said_so(
    sshd: dict[str, str], make: object, tmp_path: Path
) -> None:
    """A second sshd of this test's own (the harness's config on another port), used, then stopped."""
    port = _free_port()
    harness_config = Path(sshd["KSTLIB_TEST_SSH_CONFIG"]).parent / "sshd_config"
    lines = []
    for line in harness_config.read_text().splitlines():
        word = line.split(" ", 1)[0]
        if word == "ListenAddress":
            line = f"ListenAddress 127.0.0.1:{port}"
        elif word == "PidFile":
            line = f"PidFile {tmp_path / 'sshd.pid'}"
        lines.append(line)
    config = tmp_path / "sshd_config"
    config.write_text("\n".join(lines) + "\n")
    proc = subprocess.Popen(
        ["/usr/sbin/sshd", "-D", "-f", str(config), "-E", str(tmp_path / "sshd.log")]
    )
    try:
        import socket

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        # The harness's known_hosts names the host by its port: record this one too.
        known = tmp_path / "known_hosts"
        entries = Path(sshd["KSTLIB_TEST_SSH_KNOWN_HOSTS"]).read_text().split()
        known.write_text(f"[127.0.0.1]:{port} {entries[1]} {entries[2]}\n")
        path = PODMAN_SOCK if make is lab else ""
        engine = make(
            sshd,
            base_url=ssh_url(sshd, path, port=str(port)),  # type: ignore[operator]
            known_hosts=str(known),
        )
        opener = DockerEngine if engine.runtime == "docker" else PodmanEngine
        assert engine.endpoint is not None
        opened = opener.open(engine.endpoint, TIMEOUT)
        assert opened.list_containers() is not None
    finally:
        # Stop it whole: the listener and its per-connection children (which would
        # otherwise keep serving the connections already made).
        for pid in _children(proc.pid):
            os.kill(pid, 9)
        proc.terminate()
        proc.wait(timeout=30)
    # An engine already open whose sshd then stops: an OpsError, within the timeout.
    began = time.monotonic()
    with pytest.raises(ContainerRuntimeNotFoundError):
        for _ in range(3):  # a pooled connection may answer once more
            opened.list_containers()
            opened.inspect("kstlib-no-such-container-" + uuid.uuid4().hex[:6])
    print(f"open engine after its sshd stopped: error after {time.monotonic() - began:.2f}s")
    err = _open(engine)
    assert err.ssh_problem == "refused"  # type: ignore[attr-defined]
    assert str(err).startswith(f"The {engine.runtime} engine at ssh://root@127.0.0.1:{port}")
    assert "cannot be reached: ssh was refused: no sshd listens there" in str(err)


def test_doctor_reports_each_named_engine(sshd: dict[str, str], tmp_path: Path) -> None:
    e, p = edge(sshd), lab(sshd)
    config = _write(
        tmp_path / "doctor.yml",
        {
            "edge": {
                "backend": "docker",
                "base_url": e.base_url,
                "identity": e.identity,
                "known_hosts": e.known_hosts,
            },
            "lab": {
                "backend": "podman",
                "base_url": p.base_url,
                "identity": p.identity,
                "known_hosts": p.known_hosts,
            },
            "ghost": {
                "backend": "docker",
                "base_url": "ssh://root@kstlib-no-such-host.invalid",
                "timeout": 3,
            },
        },
    )
    done = _cli(config, "doctor", "--json")
    checks = {c["backend"]: c for c in json.loads(done.stdout)["backends"]}
    assert checks["engine edge"]["available"] and checks["engine edge"]["version"].startswith(
        "Docker"
    )
    assert checks["engine lab"]["available"] and checks["engine lab"]["version"].startswith(
        "Podman"
    )
    assert not checks["engine ghost"]["available"]
    assert "cannot be resolved" in checks["engine ghost"]["detail"]


def test_the_cli_starts_and_stops_a_session_on_a_named_ssh_engine(
    sshd: dict[str, str], tmp_path: Path
) -> None:
    p = lab(sshd)
    config = _write(
        tmp_path / "cli.yml",
        {
            "lab": {
                "backend": "podman",
                "base_url": p.base_url,
                "identity": p.identity,
                "known_hosts": p.known_hosts,
            },
        },
    )
    name = unique("cli")
    try:
        done = _cli(
            config,
            "start",
            name,
            "--engine",
            "lab",
            "-i",
            TEST_IMAGE,
            "--json",
            "--",
            "sh",
            "-c",
            "echo up; sleep 60",
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["runtime"] == "podman"
        status = _cli(config, "status", name, "--engine", "lab", "--json")
        assert json.loads(status.stdout)["state"] == "running", status.stderr
        waited = _cli(config, "wait", name, "--engine", "lab", "--for", "^up", "-t", "10")
        assert waited.stdout.strip() == "up", waited.stderr
    finally:
        stopped = _cli(config, "stop", name, "--engine", "lab", "-f")
    assert stopped.returncode == 0, stopped.stderr
    assert _cli(config, "status", name, "--engine", "lab").returncode == 3


def test_a_swarm_engine_is_one_more_named_engine(tmp_path: Path) -> None:
    manager = harness("swarm-up", "the swarm manager").get("KSTLIB_TEST_SWARM_MANAGER")
    if not manager:
        engine_missing("the swarm manager", "no KSTLIB_TEST_SWARM_MANAGER")
    config = _write(tmp_path / "swarm.yml", {"cluster": {"backend": "swarm", "base_url": manager}})
    done = _cli(config, "list", "--engine", "cluster", "--json")
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert all(row["engine"] == "cluster" for row in json.loads(done.stdout))
    gone = _write(
        tmp_path / "gone.yml",
        {"cluster": {"backend": "swarm", "base_url": "unix:///nonexistent-kstlib-swarm.sock"}},
    )
    down = _cli(gone, "list")
    assert [line for line in down.stderr.splitlines() if "engine cluster" in line] != [], (
        down.returncode,
        down.stderr,
    )


def test_podman_over_ssh_pulls_through_the_checked_tunnel_and_refuses_attach(
    sshd: dict[str, str],
) -> None:
    from kstlib.ops.engines.endpoints import connect
    from kstlib.ops.exceptions import SessionAttachError

    registry = os.environ.get("KSTLIB_TEST_REGISTRY") or harness("up", "the registry").get(
        "KSTLIB_TEST_REGISTRY"
    )
    p = lab(sshd)
    name = unique("pull")
    bot = SessionManager(
        name,
        engine=p,
        image=f"{registry}/kstlib/pulltest:1",
        pull="always",
        insecure_registries=[str(registry)],
        command=["sleep", "60"],
    )
    try:
        assert bot.start().is_running
        assert p.endpoint is not None
        with pytest.raises(SessionAttachError, match="not supported"):
            connect("podman", p.endpoint, TIMEOUT).attach_socket(name)
    finally:
        bot.stop(graceful=False)
