"""The container rows: kstlib's ContainerRunner against the docker SDK, podman-py and the CLIs."""

from __future__ import annotations

import os
import shutil
import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from typing import Any

from benchmarks.runner import (
    Bench,
    CONTAINERS_CONF,
    DOCKER_URL,
    IMAGE,
    LOG_LINES,
    PODMAN_URL,
    TRAP_SCRIPT,
    Variant,
    run_cli,
    shielded,
    uid,
)

# -- containers ----------------------------------------------------------------------------


class Engine:
    """The raw SDK and CLI sides of one engine, for the baselines and the setup."""

    runtime: str
    url: str

    def __init__(self) -> None:
        self.prefix = f"kb{os.getpid()}-{uid()}"
        self.counter = iter(range(1_000_000))

    def name(self, tag: str) -> str:
        return f"{self.prefix}-{tag}{next(self.counter)}"

    # raw SDK, one client reused
    def inspect(self, name: str) -> dict[str, Any]:
        raise NotImplementedError

    def exists(self, name: str) -> bool:
        raise NotImplementedError

    def logs_fn(self, name: str) -> Callable[[], bytes]:
        raise NotImplementedError

    def list_all(self) -> list[Any]:
        raise NotImplementedError

    def create_start(self, name: str, command: list[str], *, tty: bool = True) -> str:
        raise NotImplementedError

    def stop_only(self, ref: str) -> None:
        raise NotImplementedError

    def stop_remove(self, ref: str) -> None:
        raise NotImplementedError

    def kill_remove(self, ref: str) -> None:
        raise NotImplementedError

    def exit_code(self, ref: str) -> int:
        raise NotImplementedError

    def mine(self) -> list[str]:
        raise NotImplementedError

    def versions(self) -> dict[str, str]:
        raise NotImplementedError

    # CLI
    cli_base: list[str]
    cli_env: dict[str, str]

    def cli(self, *args: str) -> str:
        return run_cli(self.cli_base + list(args), env=self.cli_env)


class DockerSide(Engine):
    runtime = "docker"
    url = DOCKER_URL

    def __init__(self) -> None:
        super().__init__()
        import docker

        self.client = docker.DockerClient(base_url=self.url, version="auto", timeout=60)
        self.api = self.client.api
        self.cli_base = [shutil.which("docker") or "docker"]
        self.cli_env = {**os.environ, "DOCKER_HOST": self.url}
        self.cli_env.pop("DOCKER_CONTEXT", None)

    def inspect(self, name: str) -> dict[str, Any]:
        return dict(self.api.inspect_container(name))

    def exists(self, name: str) -> bool:
        import docker.errors

        try:
            self.api.inspect_container(name)
        except docker.errors.NotFound:
            return False
        return True

    def logs_fn(self, name: str) -> Callable[[], bytes]:
        return lambda: self.api.logs(name, stdout=True, stderr=True, tail=100)

    def list_all(self) -> list[Any]:
        return list(self.api.containers(all=True))

    def create_start(self, name: str, command: list[str], *, tty: bool = True) -> str:
        created = self.api.create_container(
            IMAGE,
            command=command,
            name=name,
            tty=tty,
            stdin_open=tty,
            labels={"io.kstlib.managed": "true"},
            host_config=self.api.create_host_config(init=True),
        )
        self.api.start(created["Id"])
        return str(created["Id"])

    def stop_only(self, ref: str) -> None:
        self.api.stop(ref, timeout=10)

    def stop_remove(self, ref: str) -> None:
        self.api.stop(ref, timeout=10)
        self.api.remove_container(ref, v=True, force=True)

    def kill_remove(self, ref: str) -> None:
        self.api.remove_container(ref, v=True, force=True)

    def exit_code(self, ref: str) -> int:
        return int(self.api.inspect_container(ref)["State"]["ExitCode"])

    def mine(self) -> list[str]:
        return [c["Id"] for c in self.api.containers(all=True, filters={"name": self.prefix})]

    def versions(self) -> dict[str, str]:
        import docker

        server = self.api.version()
        return {
            "docker_engine": server.get("Version", "?"),
            "docker_api": server.get("ApiVersion", "?"),
            "docker_sdk": docker.__version__,
            "docker_cli": run_cli([*self.cli_base, "--version"], env=self.cli_env).strip(),
        }


class PodmanSide(Engine):
    runtime = "podman"
    url = PODMAN_URL

    def __init__(self) -> None:
        super().__init__()
        import podman

        self.client = podman.PodmanClient(base_url=self.url, timeout=60)
        self.objects: dict[str, Any] = {}
        self.cli_base = [shutil.which("podman") or "podman"]
        env = {**os.environ}
        env.setdefault("CONTAINERS_CONF", str(CONTAINERS_CONF))
        for key in ("CONTAINER_HOST", "CONTAINER_CONNECTION"):
            env.pop(key, None)
        self.cli_env = env

    def inspect(self, name: str) -> dict[str, Any]:
        return dict(self.client.containers.get(name).attrs)

    def exists(self, name: str) -> bool:
        return bool(self.client.containers.exists(name))

    def logs_fn(self, name: str) -> Callable[[], bytes]:
        container = self.client.containers.get(name)  # fetched once, reused like the client

        def fetch() -> bytes:
            out = container.logs(stdout=True, stderr=True, tail=100)
            return out if isinstance(out, bytes) else b"".join(out)

        return fetch

    def list_all(self) -> list[Any]:
        return list(self.client.containers.list(all=True, sparse=True))

    def create_start(self, name: str, command: list[str], *, tty: bool = True) -> str:
        container = self.client.containers.create(
            IMAGE,
            command,
            name=name,
            tty=tty,
            stdin_open=tty,
            init=True,
            labels={"io.kstlib.managed": "true"},
        )
        container.start()
        # Kept, as a user keeps the object create() returned: stop() then costs one call.
        self.objects[str(container.id)] = container
        return str(container.id)

    def stop_only(self, ref: str) -> None:
        self.objects[ref].stop(timeout=10)

    def stop_remove(self, ref: str) -> None:
        self.objects.pop(ref).stop(timeout=10)
        self.client.containers.remove(ref, force=True, v=True)

    def kill_remove(self, ref: str) -> None:
        import podman.errors

        with suppress(podman.errors.APIError):
            self.client.containers.get(ref).kill(signal=int(signal.SIGKILL))
        self.client.containers.remove(ref, force=True, v=True)

    def exit_code(self, ref: str) -> int:
        return int(self.client.containers.get(ref).attrs["State"]["ExitCode"])

    def mine(self) -> list[str]:
        found = self.client.containers.list(all=True, sparse=True, filters={"name": self.prefix})
        return [str(c.id) for c in found]

    def versions(self) -> dict[str, str]:
        import podman

        server = self.client.version()  # type: ignore[no-untyped-call]
        return {
            "podman_service": server.get("Version", "?"),
            "podman_api": server.get("ApiVersion", "?"),
            "podman_sdk": podman.__version__,
            "podman_cli": run_cli([*self.cli_base, "--version"], env=self.cli_env).strip(),
        }


def bench_containers(bench: Bench, side: Engine) -> None:
    from kstlib.ops import BackendType, ContainerRunner, SessionConfig

    rt = side.runtime
    runner = ContainerRunner(runtime=rt, base_url=side.url)
    bench.facts.update(side.versions())
    main = side.name("main")

    def config(name: str, command: list[str]) -> Any:
        return SessionConfig(
            name=name, backend=BackendType.CONTAINER, image=IMAGE, command=tuple(command)
        )

    try:
        runner.start(config(main, ["sh", "-c", f"seq 1 {LOG_LINES}; sleep 86400"]))
        deadline = time.monotonic() + 20
        while runner.logs(main, 1) != str(LOG_LINES):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{rt}: the main container printed nothing in 20 s")
            time.sleep(0.05)
        expected = [str(i) for i in range(LOG_LINES - 99, LOG_LINES + 1)]
        assert runner.logs(main, 100).split("\n") == expected
        raw_logs = side.logs_fn(main)
        got = raw_logs().decode().replace("\r\n", "\n").split("\n")
        assert got[-101:-1] == expected, (len(got), got[:3], got[-5:])
        assert side.cli("logs", "--tail", "100", main).split("\n")[-101:-1] == expected

        count = len(side.list_all())
        bench.log(f"{rt:6} {count} containers on the engine")
        bench.facts[f"{rt}_size_1_actual"] = count
        bench.measure(
            rt,
            "status",
            {
                "kstlib": Variant(lambda _: runner.status(main)),
                "raw": Variant(lambda _: side.inspect(main)),
                "cli": Variant(lambda _: side.cli("inspect", main)),
            },
            size=count,
        )
        exists_cli = (
            ["container", "exists", main]
            if rt == "podman"
            else ["container", "inspect", "-f", "{{.Id}}", main]
        )
        bench.measure(
            rt,
            "exists",
            {
                "kstlib": Variant(lambda _: runner.exists(main)),
                "raw": Variant(lambda _: side.exists(main)),
                "cli": Variant(lambda _: side.cli(*exists_cli)),
            },
            note="podman raw: containers.exists(); docker raw: inspect_container()",
        )
        bench.measure(
            rt,
            "logs(100)",
            {
                "kstlib": Variant(lambda _: runner.logs(main, 100)),
                "raw": Variant(lambda _: raw_logs()),
                "cli": Variant(lambda _: side.cli("logs", "--tail", "100", main)),
            },
            note="docker raw: APIClient.logs (inspects first); podman raw: Container.logs",
        )
        bench.measure(
            rt,
            "list_sessions",
            {
                "kstlib": Variant(lambda _: runner.list_sessions()),
                "raw": Variant(lambda _: side.list_all()),
                "cli": Variant(lambda _: side.cli("ps", "-a", "--format", "json")),
            },
            size=count,
        )
        container_start_stop(bench, side, runner, config)
        container_graceful(bench, side, runner, config)

        want = bench.settings.container_sizes[-1] - count
        if want > 0:
            t0 = time.perf_counter()
            with ThreadPoolExecutor(max_workers=4) as pool:
                list(
                    pool.map(
                        lambda i: side.create_start(
                            side.name("fill"), ["sleep", "86400"], tty=False
                        ),
                        range(want),
                    )
                )
            bench.log(f"{rt:6} created {want} containers in {time.perf_counter() - t0:.1f} s")
        count = len(side.list_all())
        bench.log(f"{rt:6} {count} containers on the engine")
        bench.measure(
            rt,
            "list_sessions",
            {
                "kstlib": Variant(lambda _: runner.list_sessions()),
                "raw": Variant(lambda _: side.list_all()),
                "cli": Variant(lambda _: side.cli("ps", "-a", "--format", "json")),
            },
            size=count,
        )
        bench.measure(
            rt,
            "status",
            {
                "kstlib": Variant(lambda _: runner.status(main)),
                "raw": Variant(lambda _: side.inspect(main)),
                "cli": Variant(lambda _: side.cli("inspect", main)),
            },
            size=count,
        )
    finally:
        with shielded():
            cleanup_containers(bench, side)


def container_start_stop(
    bench: Bench, side: Engine, runner: Any, config: Callable[..., Any]
) -> None:
    rt = side.runtime
    sleep = ["sleep", "86400"]

    def kstlib_run(_: object) -> None:
        name = side.name("ss")
        runner.start(config(name, sleep))
        runner.stop(name)

    def raw_run(_: object) -> None:
        side.stop_remove(side.create_start(side.name("ss"), sleep))

    def cli_run(_: object) -> None:
        name = side.name("ss")
        side.cli(
            "run",
            "-d",
            "--init",
            "-t",
            "-i",
            "--label",
            "io.kstlib.managed=true",
            "--name",
            name,
            IMAGE,
            *sleep,
        )
        side.cli("stop", "-t", "10", name)
        side.cli("rm", "-v", name)

    bench.measure(
        rt,
        "start+stop",
        {
            "kstlib": Variant(kstlib_run),
            "raw": Variant(raw_run),
            "cli": Variant(cli_run),
        },
        heavy=True,
        note="create+start, then graceful stop (t=10) + remove",
    )


def container_graceful(bench: Bench, side: Engine, runner: Any, config: Callable[..., Any]) -> None:
    """stop() of a container whose process traps SIGTERM, default timeout (10 s)."""
    rt = side.runtime
    command = ["sh", "-c", TRAP_SCRIPT]
    # Check once that the trap runs (exit code 0, not 143 or 137).
    ref = side.create_start(side.name("gchk"), command)
    time.sleep(0.3)
    t0 = time.perf_counter()
    side.stop_only(ref)
    took = time.perf_counter() - t0
    code = side.exit_code(ref)
    side.kill_remove(ref)
    bench.facts[f"{rt}_trap_exit_code"] = code
    bench.log(f"{rt:6} SIGTERM trap check: exit code {code} after {took:.2f} s")

    def kstlib_prep() -> str:
        name = side.name("gs")
        runner.start(config(name, command))
        time.sleep(0.2)  # let the shell install its trap
        return name

    def raw_prep() -> str:
        ref = side.create_start(side.name("gs"), command)
        time.sleep(0.2)
        return ref

    def cli_run(ref: str) -> None:
        side.cli("stop", "-t", "10", ref)
        side.cli("rm", "-v", ref)

    bench.measure(
        rt,
        "graceful stop",
        {
            "kstlib": Variant(lambda name: runner.stop(name), kstlib_prep),
            "raw": Variant(side.stop_remove, raw_prep),
            "cli": Variant(cli_run, raw_prep),
        },
        heavy=True,
        note="SIGTERM-trapping process, timeout 10 s; stop + remove",
    )


def cleanup_containers(bench: Bench, side: Engine) -> None:
    try:
        refs = side.mine()
    except Exception as err:
        bench.log(f"{side.runtime}: cannot list containers to clean up: {err}")
        return

    def remove(ref: str) -> None:
        try:
            side.kill_remove(ref)
        except Exception as err:
            bench.log(f"{side.runtime}: cannot remove {ref[:12]}: {err}")

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(remove, refs))
    left = side.mine()
    if left:
        bench.log(f"{side.runtime}: {len(left)} containers could not be removed: {left}")


def engine_answers(url: str) -> bool:
    import socket as socketlib

    path = url[len("unix://") :]
    try:
        with socketlib.socket(socketlib.AF_UNIX, socketlib.SOCK_STREAM) as sock:
            sock.settimeout(3)
            sock.connect(path)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: localhost\r\n\r\n")
            return b" 200" in sock.recv(64).split(b"\r\n", 1)[0]
    except OSError:
        return False
