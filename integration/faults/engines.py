"""Private engine instances the fault tests may kill, and sockets that misbehave.

The shared dockerd and Podman service (started by ``integration/engines/engines.sh``)
are never stopped or killed here: other tests and other people use them. Each
fault test that needs a dying engine gets its own:

* :class:`PrivateDocker`: a second ``dockerd`` with its own data root, exec
  root, pid file and unix socket under a temporary folder; the test image is
  copied into it from the shared daemon (``save`` -> ``load``).
* :class:`PrivatePodman`: a second ``podman system service`` on its own unix
  socket (it shares Podman's storage, so it sees the shared containers too).
* :class:`HangServer`: a unix socket that accepts connections and never answers.
* :class:`FaultProxy`: a unix socket in front of an engine that forwards until
  told to hang (existing and new connections get no answer).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from ..conftest import DOCKER_URL, TEST_IMAGE

HERE = Path(__file__).resolve().parent
CONTAINERS_CONF = HERE.parent / "engines" / "containers.conf"
START_WAIT_S = 30.0


def ping(path: str, timeout: float = 1.0) -> bool:
    """Whether an engine API answers ``GET /_ping`` with 200 on the unix socket ``path``."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(path)
            s.sendall(b"GET /_ping HTTP/1.0\r\nHost: localhost\r\n\r\n")
            data = s.recv(64)
        return data.startswith(b"HTTP/1.") and b" 200 " in data[:16]
    except OSError:
        return False


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if text.encode() in cmdline and int(entry) != os.getpid():
            found.append(int(entry))
    return found


def _unmount_under(root: str) -> None:
    try:
        with open("/proc/self/mountinfo") as f:
            points = [line.split()[4] for line in f]
    except OSError:
        return
    for point in sorted((p for p in points if p.startswith(root)), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)


class PrivateEngine:
    """An engine process this test owns: start, kill (SIGKILL), restart, close."""

    runtime = ""

    def __init__(self) -> None:
        self.root = tempfile.mkdtemp(prefix=f"kf-{self.runtime[0]}-", dir="/tmp")
        self.sock = os.path.join(self.root, "api.sock")
        self.url = f"unix://{self.sock}"
        self.log = os.path.join(self.root, "engine.log")
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.kills = 0
        self.start_seconds: list[float] = []

    def _argv(self) -> list[str]:
        raise NotImplementedError

    def _env(self) -> dict[str, str]:
        return dict(os.environ)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        assert not self.alive, "already running"
        began = time.monotonic()
        for attempt in (1, 2):
            with open(self.log, "ab") as log:
                self.proc = subprocess.Popen(
                    self._argv(),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self._env(),
                    start_new_session=True,
                )
            deadline = time.monotonic() + START_WAIT_S
            while time.monotonic() < deadline:
                if ping(self.sock):
                    self.starts += 1
                    self.start_seconds.append(time.monotonic() - began)
                    return
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
            tail = Path(self.log).read_text(errors="replace")[-2000:]
            # On a loaded machine dockerd may give up on its own containerd
            # after a kill; one more start is what an operator would do.
            if attempt == 1 and "timeout waiting for containerd" in tail:
                self.stop_quietly()
                continue
            break
        raise RuntimeError(f"private {self.runtime} did not answer at {self.url}:\n{tail}")

    def stop_quietly(self) -> None:
        """End a start attempt that failed (its process, if any)."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def kill(self) -> None:
        """SIGKILL the engine process (its socket file stays: a stale socket)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
            self.kills += 1

    def ensure_running(self) -> None:
        if not self.alive:
            self.start()

    def _remove_containers(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Remove what the tests left, stop the engine, and delete its folder."""
        with contextlib.suppress(Exception):
            self.ensure_running()
            self._remove_containers()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        for pid in _processes_mentioning(self.root):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _unmount_under(self.root)
        shutil.rmtree(self.root, ignore_errors=True)


class PrivateDocker(PrivateEngine):
    """A second dockerd on a unix socket under a temporary folder."""

    runtime = "docker"

    def _argv(self) -> list[str]:
        r = self.root
        return [
            "dockerd",
            "--bridge=none",
            "--iptables=false",
            "--ip6tables=false",
            "--data-root",
            f"{r}/data",
            "--exec-root",
            f"{r}/exec",
            "--pidfile",
            f"{r}/dockerd.pid",
            "-H",
            self.url,
        ]

    def start(self) -> None:
        first = self.starts == 0
        self._forget_dead_containerd()
        super().start()
        if first:
            self._load_image()

    def _forget_dead_containerd(self) -> None:
        # A killed dockerd takes its containerd along (parent-death signal),
        # but nothing here reaps that zombie: its pid stays "alive" and the
        # next dockerd would wait for it forever. Drop the stale pid file.
        pidfile = Path(self.root, "exec", "containerd", "containerd.pid")
        try:
            pid = int(pidfile.read_text().strip())
        except (OSError, ValueError):
            return
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            state = "gone"
        if state in ("Z", "X", "gone"):
            pidfile.unlink(missing_ok=True)

    def _load_image(self) -> None:
        import docker

        src = docker.DockerClient(base_url=DOCKER_URL, timeout=60)
        dst = docker.DockerClient(base_url=self.url, timeout=60)
        try:
            data = b"".join(src.images.get(TEST_IMAGE).save(named=True))
            dst.images.load(data)
        finally:
            src.close()
            dst.close()

    def _remove_containers(self) -> None:
        import docker

        client = docker.APIClient(base_url=self.url, timeout=30)
        try:
            for c in client.containers(all=True):
                with contextlib.suppress(Exception):
                    client.remove_container(c["Id"], force=True, v=True)
        finally:
            client.close()


class PrivatePodman(PrivateEngine):
    """A second ``podman system service`` (Podman's storage is shared)."""

    runtime = "podman"

    def __init__(self) -> None:
        super().__init__()
        self.made: set[str] = set()  # names to remove at the end (storage is shared)

    def _argv(self) -> list[str]:
        return ["podman", "system", "service", "--time=0", self.url]

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("CONTAINER_HOST",)}
        env.setdefault("CONTAINERS_CONF", str(CONTAINERS_CONF))
        return env

    def _remove_containers(self) -> None:
        import podman

        client = podman.PodmanClient(base_url=self.url, timeout=30)
        try:
            for name in self.made:
                with contextlib.suppress(Exception):
                    client.containers.remove(name, force=True, v=True)
        finally:
            client.close()


class HangServer:
    """A unix socket that accepts every connection and never answers."""

    def __init__(self, root: str) -> None:
        self.path = os.path.join(root, "hang.sock")
        self.url = f"unix://{self.path}"
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        self.listener.listen(64)
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, name="hang-server", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.accepted.append(conn)  # read nothing, answer nothing

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.thread.join(5)
        for conn in self.accepted:
            conn.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


class FaultProxy:
    """A unix socket in front of an engine socket; ``hang()`` makes it stop answering.

    While hanging, bytes from clients are read and dropped and nothing goes
    back, on pooled connections and new ones alike. ``resume()`` serves again
    (connections opened while hanging stay dead: clients reconnect).
    """

    def __init__(self, target: str, root: str) -> None:
        self.target = target
        self.path = os.path.join(root, "proxy.sock")
        self.url = f"unix://{self.path}"
        self.hanging = threading.Event()
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        self.listener.listen(64)
        self._threads = [threading.Thread(target=self._accept, name="fault-proxy", daemon=True)]
        self._threads[0].start()

    def hang(self) -> None:
        self.hanging.set()

    def resume(self) -> None:
        self.hanging.clear()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream: socket.socket | None = None
            if not self.hanging.is_set():
                upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    upstream.connect(self.target)
                except OSError:
                    upstream.close()
                    client.close()
                    continue
            with self._lock:
                self._conns += [client] + ([upstream] if upstream else [])
            t = threading.Thread(target=self._pump, args=(client, upstream), daemon=True)
            t.start()

    def _pump(self, client: socket.socket, upstream: socket.socket | None) -> None:
        import select

        sockets = [client] + ([upstream] if upstream else [])
        try:
            while not self._stop.is_set():
                readable, _, _ = select.select(sockets, [], [], 0.05)
                for s in readable:
                    data = s.recv(65536)
                    if not data:
                        return
                    if self.hanging.is_set() or upstream is None:
                        continue  # swallow requests and answers alike
                    (upstream if s is client else client).sendall(data)
        except OSError:
            return
        finally:
            for s in sockets:
                with contextlib.suppress(OSError):
                    s.close()

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        with self._lock:
            for s in self._conns:
                with contextlib.suppress(OSError):
                    s.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
