"""Images from real registries on loopback, pulled by a real Docker daemon and Podman service.

``integration/engines/engines.sh up`` starts two registries (``engines.sh env``
exports them): one open, one that requires a login. Every test pushes an image
of its own (the registry's pulltest image plus a fresh random layer, under a
unique tag, through the registry's HTTP API), so a pull moves real data, the
engine cannot have it beforehand, and no two tests or workers share an image.
What a test pulls is removed from the engine afterwards; every container it
starts is removed too.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import logging
import os
import pickle
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from kstlib.ops import SessionConfigError, SessionStartError
from kstlib.ops.container import ContainerRunner
from kstlib.ops.exceptions import ImagePullError, SessionNotFoundError
from kstlib.ops.manager import SessionManager
from kstlib.ops.images import PullProgress, RegistryAuth, pull_image

from .conftest import ENGINE_URLS, TEST_IMAGE, engine_missing, unique

RUNTIMES = [
    pytest.param("docker", marks=pytest.mark.docker, id="docker"),
    pytest.param("podman", marks=pytest.mark.podman, id="podman"),
]
ROOT = Path(__file__).resolve().parent.parent
REPO = "kstlib/pulltest"
BASE_TAG = "1"
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
LAYER_TYPE = "application/vnd.docker.image.rootfs.diff.tar.gzip"
CONFIG_TYPE = "application/vnd.docker.container.image.v1+json"
#: The fresh layer of each test image: enough for progress with byte counts, small for CI.
LAYER_BYTES = 768 * 1024
#: Final statuses of a layer: every layer a pull names ends in one of them.
LAYER_END = {"done", "exists"}
STEP_ORDER = {"waiting": 0, "downloading": 1, "verifying": 2, "downloaded": 3, "extracting": 4}


# -- the registries ------------------------------------------------------------------------


@dataclass(frozen=True)
class Registries:
    open: str
    auth: str
    user: str
    password: str

    def http(self, registry: str) -> requests.Session:
        session = requests.Session()
        session.trust_env = False
        if registry == self.auth:
            session.auth = (self.user, self.password)
        return session

    def push_unique(self, registry: str, tag: str | None = None) -> str:
        """Push the pulltest image plus a fresh random layer as ``registry/REPO:TAG``; the reference."""
        tag = tag or f"t-{uuid.uuid4().hex[:12]}"
        http = self.http(registry)
        base = f"http://{registry}/v2/{REPO}"
        got = http.get(f"{base}/manifests/{BASE_TAG}", headers={"Accept": MANIFEST_V2}, timeout=10)
        got.raise_for_status()
        manifest = got.json()
        config = http.get(f"{base}/blobs/{manifest['config']['digest']}", timeout=10).json()
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w") as tar:
            info = tarfile.TarInfo(f"kstlib-{tag}.bin")
            payload = os.urandom(LAYER_BYTES)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
        layer = gzip.compress(raw.getvalue(), mtime=0)
        diff_id = "sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()
        config["rootfs"]["diff_ids"].append(diff_id)
        config.setdefault("history", []).append({"created_by": f"kstlib test layer {tag}"})
        config_blob = json.dumps(config).encode()
        layer_digest = self._upload(http, base, layer)
        config_digest = self._upload(http, base, config_blob)
        manifest["config"] = {"mediaType": CONFIG_TYPE, "size": len(config_blob),
                              "digest": config_digest}
        manifest["layers"].append({"mediaType": LAYER_TYPE, "size": len(layer),
                                   "digest": layer_digest})
        put = http.put(f"{base}/manifests/{tag}", data=json.dumps(manifest),
                       headers={"Content-Type": MANIFEST_V2}, timeout=10)
        put.raise_for_status()
        return f"{registry}/{REPO}:{tag}"

    @staticmethod
    def _upload(http: requests.Session, base: str, blob: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        start = http.post(f"{base}/blobs/uploads/", timeout=10)
        start.raise_for_status()
        location = start.headers["Location"]
        if location.startswith("/"):
            location = base.split("/v2/")[0] + location
        sep = "&" if "?" in location else "?"
        done = http.put(f"{location}{sep}digest={digest}", data=blob,
                        headers={"Content-Type": "application/octet-stream"}, timeout=30)
        done.raise_for_status()
        return digest


@pytest.fixture(scope="module")
def registries() -> Registries:
    open_reg = os.environ.get("KSTLIB_TEST_REGISTRY")
    auth_reg = os.environ.get("KSTLIB_TEST_AUTH_REGISTRY")
    creds = os.environ.get("KSTLIB_TEST_REGISTRY_CREDENTIALS")
    if not (open_reg and auth_reg and creds):
        engine_missing("the test registries",
                       "KSTLIB_TEST_REGISTRY is not set (source <(engines.sh env))")
    assert open_reg and auth_reg and creds
    user, password = Path(creds).read_text().split("\n")[:2]
    regs = Registries(open_reg, auth_reg, user, password)
    for reg in (open_reg, auth_reg):
        try:
            code = regs.http(reg).get(f"http://{reg}/v2/", timeout=5).status_code
        except requests.RequestException as err:
            engine_missing("the test registries", f"{reg} does not answer ({err})")
        assert code == 200, (reg, code)
    return regs


# -- engines ---------------------------------------------------------------------------------


class Engine:
    """The test's own view of one engine: does it have an image, remove one."""

    def __init__(self, runtime: str) -> None:
        self.runtime = runtime
        self.runner = ContainerRunner(runtime=runtime, base_url=ENGINE_URLS[runtime], timeout=30)
        try:
            self.adapter: Any = self.runner.engine
        except Exception as err:
            engine_missing(runtime, str(err))
        self.pulled: list[str] = []
        self.names: list[str] = []

    def has(self, image: str) -> bool:
        return bool(self.adapter.image_exists(image))

    def remove(self, image: str) -> None:
        with contextlib.suppress(Exception):
            if self.runtime == "docker":
                self.adapter.api.remove_image(image, force=True)
            else:
                self.adapter.client.images.remove(image, force=True)

    def name(self, prefix: str = "reg") -> str:
        self.names.append(unique(prefix))
        return self.names[-1]

    def image(self, registries: Registries, registry: str | None = None) -> str:
        """A unique image in a registry, not in this engine; removed from it afterwards."""
        ref = registries.push_unique(registry or registries.open)
        self.pulled.append(ref)
        assert not self.has(ref)
        return ref

    def cleanup(self) -> None:
        for name in self.names:
            with contextlib.suppress(SessionNotFoundError):
                self.runner.stop(name, graceful=False)
        for image in self.pulled:
            self.remove(image)


@pytest.fixture(params=RUNTIMES)
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    eng = Engine(str(request.param))
    yield eng
    eng.cleanup()


def check_events(events: list[PullProgress], image: str, layers: bool = True) -> None:
    """Ordered: 'pulling' first, one 'complete' last, each layer's steps forward and ended."""
    assert events, "no progress event"
    assert events[0].status == "pulling" and events[0].image == image
    assert events[-1].status == "complete" and events[-1].layer is None
    assert [e.status for e in events].count("complete") == 1
    assert all(e.image == image for e in events)
    steps: dict[str, int] = {}
    ended: set[str] = set()
    for event in events[1:-1]:
        if event.layer is None:
            continue
        assert event.layer not in ended, f"layer {event.layer} moved after it ended"
        if event.status in LAYER_END:
            ended.add(event.layer)
        elif event.status in STEP_ORDER:
            rank = STEP_ORDER[event.status]
            assert rank >= steps.get(event.layer, -1), (event, steps)
            steps[event.layer] = rank
        if event.current is not None and event.total is not None:
            assert 0 <= event.current <= event.total
    named = {e.layer for e in events if e.layer is not None}
    assert named == ended, (named, ended)
    assert bool(named) is layers, named


# -- pull on start ---------------------------------------------------------------------------


def test_start_pulls_an_image_only_in_the_registry_and_runs(
    engine: Engine, registries: Registries
) -> None:
    image = engine.image(registries)
    name = engine.name()
    events: list[PullProgress] = []
    mgr = SessionManager(name, backend="container", runtime=engine.runtime,
                         base_url=ENGINE_URLS[engine.runtime], image=image,
                         command=["sh", "-c", "ls /kstlib-*.bin; sleep 60"],
                         on_progress=events.append)
    status = mgr.start()
    assert status.is_running and status.image == image
    assert engine.has(image)
    check_events(events, image)
    assert len({e.layer for e in events if e.layer}) == 3  # busybox, base random, our random
    if engine.runtime == "docker":
        # Docker counts the bytes of the layer it downloads (ours is new to it).
        sized = [e for e in events if e.status == "downloading" and e.total]
        assert sized and max(e.total or 0 for e in sized) > LAYER_BYTES // 2
    tag = image.rsplit(":", 1)[1]
    deadline = time.monotonic() + 15
    while f"kstlib-{tag}.bin" not in mgr.logs() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert f"/kstlib-{tag}.bin" in mgr.logs()


def test_pull_never_refuses_a_missing_image_and_leaves_nothing(
    engine: Engine, registries: Registries
) -> None:
    image = engine.image(registries)
    name = engine.name()
    events: list[PullProgress] = []
    cfg_events = SessionManager(name, backend="container", runtime=engine.runtime,
                                base_url=ENGINE_URLS[engine.runtime], image=image,
                                command="sleep 60", pull="never", on_progress=events.append)
    with pytest.raises(SessionStartError) as info:
        cfg_events.start()
    err = info.value
    assert not isinstance(err, ImagePullError)
    assert err.name == name and err.backend == engine.runtime
    assert "pull policy is 'never'" in str(err) and image in str(err)
    assert events == []
    assert not engine.has(image) and not engine.runner.exists(name)


def test_pull_always_asks_the_registry_even_when_the_engine_has_the_image(
    engine: Engine, registries: Registries
) -> None:
    image = engine.image(registries)
    first = pull_image(image, runtime=engine.runtime, base_url=ENGINE_URLS[engine.runtime])
    assert first.image == image and first.runtime == engine.runtime and engine.has(image)

    def start(pull: str) -> list[PullProgress]:
        events: list[PullProgress] = []
        name = engine.name()
        SessionManager(name, backend="container", runtime=engine.runtime,
                       base_url=ENGINE_URLS[engine.runtime], image=image, command="sleep 60",
                       pull=pull, on_progress=events.append).start()
        engine.runner.stop(name, graceful=False)
        return events

    assert start("missing") == []  # present: no registry call at all
    again = start("always")
    # Asked the registry again: Docker finds it up to date (no layer moves),
    # Podman 4 copies the blobs again.
    check_events(again, image, layers=engine.runtime == "podman")
    if engine.runtime == "docker":
        assert any("up to date" in e.detail for e in again)

    # The same image under a name whose registry does not answer: "missing" runs
    # it from the engine, "always" must go to the registry and fails.
    dead = f"127.0.0.1:{free_port()}/{REPO}:{image.rsplit(':', 1)[1]}"
    tag_locally(engine, image, dead)
    engine.pulled.append(dead)
    name = engine.name()
    mgr = SessionManager(name, backend="container", runtime=engine.runtime,
                         base_url=ENGINE_URLS[engine.runtime], image=dead, command="sleep 60")
    assert mgr.start(pull="missing").is_running
    mgr.stop(graceful=False)
    with pytest.raises(ImagePullError) as info:
        mgr.start(pull="always")
    assert info.value.kind == "unreachable" and not engine.runner.exists(name)


def tag_locally(engine: Engine, image: str, ref: str) -> None:
    repo, tag = ref.rsplit(":", 1)
    if engine.runtime == "docker":
        engine.adapter.api.tag(image, repo, tag)
    else:
        engine.adapter.client.images.get(image).tag(repo, tag)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- credentials --------------------------------------------------------------------------


def write_auth_file(path: Path, registries: Registries, password: str | None = None) -> Path:
    import base64

    token = base64.b64encode(f"{registries.user}:{password or registries.password}".encode())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"auths": {registries.auth: {"auth": token.decode()}}}))
    path.chmod(0o600)
    return path


@pytest.mark.parametrize("source", ["config.json", "auth.json"])
def test_right_credentials_from_the_users_files_pull_from_the_login_registry(
    engine: Engine, registries: Registries, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    source: str,
) -> None:
    image = engine.image(registries, registries.auth)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    if source == "config.json":  # Docker's file: for Docker, and for Podman as Podman does
        monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
        write_auth_file(tmp_path / "docker" / "config.json", registries)
    else:  # Podman's file, through $REGISTRY_AUTH_FILE
        monkeypatch.delenv("DOCKER_CONFIG", raising=False)
        monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "auth.json"))
        write_auth_file(tmp_path / "auth.json", registries)
    name = engine.name()
    events: list[PullProgress] = []
    status = SessionManager(name, backend="container", runtime=engine.runtime,
                            base_url=ENGINE_URLS[engine.runtime], image=image,
                            command="sleep 60", on_progress=events.append).start()
    assert status.is_running and engine.has(image)
    check_events(events, image)


def test_explicit_registry_auth_names_an_environment_variable(
    engine: Engine, registries: Registries, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = engine.image(registries, registries.auth)
    monkeypatch.setenv("HOME", str(tmp_path))  # no credentials file anywhere
    for var in ("DOCKER_CONFIG", "REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR"):
        monkeypatch.delenv(var, raising=False)
    variable = f"KSTLIB_TEST_REG_PASS_{uuid.uuid4().hex[:6].upper()}"
    monkeypatch.setenv(variable, registries.password)
    auth = {"username": registries.user, "password_env": variable}
    result = pull_image(image, runtime=engine.runtime, base_url=ENGINE_URLS[engine.runtime],
                        registry_auth=auth)
    assert result.image == image and engine.has(image)
    monkeypatch.delenv(variable)
    with pytest.raises(SessionConfigError, match=variable):
        pull_image(image, runtime=engine.runtime, base_url=ENGINE_URLS[engine.runtime],
                   registry_auth=auth)


class CmdlineWatch:
    """Scans every process's command line while a pull runs, for a secret."""

    def __init__(self, secret: str) -> None:
        self.secret = secret.encode()
        self.hits: list[str] = []
        self.scans = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for proc in Path("/proc").iterdir():
                if not proc.name.isdigit():
                    continue
                with contextlib.suppress(OSError):
                    if self.secret in (proc / "cmdline").read_bytes():
                        self.hits.append(proc.name)
            self.scans += 1

    def __enter__(self) -> CmdlineWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def test_login_registry_errors_tell_the_cause_apart_and_never_show_the_password(
    engine: Engine, registries: Registries, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    image = engine.image(registries, registries.auth)
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in ("DOCKER_CONFIG", "REGISTRY_AUTH_FILE", "XDG_RUNTIME_DIR"):
        monkeypatch.delenv(var, raising=False)
    wrong = f"wrong-{uuid.uuid4().hex}"
    url = ENGINE_URLS[engine.runtime]
    errors: dict[str, ImagePullError] = {}
    seen_text: list[str] = []

    def fails(key: str, ref: str, **kw: Any) -> None:
        name = engine.name()
        mgr = SessionManager(name, backend="container", runtime=engine.runtime, base_url=url,
                             image=ref, command="sleep 60", **kw)
        seen_text.append(repr(mgr.config))
        with pytest.raises(ImagePullError) as info:
            mgr.start()
        errors[key] = info.value
        assert info.value.__cause__ is not None
        assert not engine.runner.exists(name) and not engine.has(ref)

    with CmdlineWatch(registries.password) as watch_right, CmdlineWatch(wrong) as watch_wrong:
        fails("wrong password", image,
              registry_auth=RegistryAuth(registries.user, password=wrong))
        fails("no credentials", image)
        fails("missing tag", f"{registries.auth}/{REPO}:no-such-tag-{uuid.uuid4().hex[:6]}",
              registry_auth={"username": registries.user, "password": registries.password})
        stopped = f"127.0.0.1:{free_port()}/{REPO}:1"
        fails("stopped registry", stopped,
              registry_auth={"username": registries.user, "password": registries.password})
        # and a pull that works, with the password in the call
        pull_image(image, runtime=engine.runtime, base_url=url,
                   registry_auth={"username": registries.user, "password": registries.password})
    assert engine.has(image)
    assert watch_right.scans > 0 and watch_right.hits == [] and watch_wrong.hits == []

    kinds = {key: err.kind for key, err in errors.items()}
    assert kinds == {"wrong password": "unauthorized", "no credentials": "unauthorized",
                     "missing tag": "not_found", "stopped registry": "unreachable"}
    messages = {key: str(err) for key, err in errors.items()}
    assert len(set(messages.values())) == 4
    assert "refused the credentials" in messages["wrong password"]
    assert "requires a login" in messages["no credentials"]
    assert "no such image or tag" in messages["missing tag"]
    assert f"{stopped.split('/')[0]} is unreachable" in messages["stopped registry"]
    for err in errors.values():
        text = str(err)
        assert text.count(". ") == 0 and text.endswith("."), text  # one sentence
        assert err.image in text and err.registry in text
        seen_text.extend([text, repr(err), str(err.args), str(pickle.loads(pickle.dumps(err)))])
    seen_text.append(caplog.text)
    seen_text.extend(str(r.args) for r in caplog.records)
    for secret in (registries.password, wrong):
        assert not any(secret in text for text in seen_text)


def test_a_registry_that_never_answers_is_a_timeout(
    engine: Engine, registries: Registries
) -> None:
    with socket.socket() as silent:  # accepts connections (the kernel does), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        image = f"127.0.0.1:{silent.getsockname()[1]}/{REPO}:1"
        with pytest.raises(ImagePullError) as info:
            pull_image(image, runtime=engine.runtime, base_url=ENGINE_URLS[engine.runtime],
                       timeout=3)
    assert info.value.kind == "timeout", info.value
    assert "got no answer within 3 s" in str(info.value)
    assert not engine.has(image)


@pytest.mark.podman
def test_podman_refuses_plain_http_unless_allowed(registries: Registries) -> None:
    eng = Engine("podman")
    try:
        image = eng.image(registries)
        with pytest.raises(ImagePullError) as info:
            pull_image(image, runtime="podman", base_url=ENGINE_URLS["podman"], insecure=False)
        assert info.value.kind == "tls" and "insecure_registries" in str(info.value)
        assert not eng.has(image)
        # loopback counts as insecure by default, as Docker treats it
        assert pull_image(image, runtime="podman", base_url=ENGINE_URLS["podman"]).image == image
    finally:
        eng.cleanup()


# -- the CLI -----------------------------------------------------------------------------------


def cli_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TMUX", "KSTLIB_CONFIG", "XDG_"))}
    env.update(HOME=str(tmp_path / "home"), XDG_STATE_HOME=str(tmp_path / "state"),
               XDG_CONFIG_HOME=str(tmp_path / "config"),
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])))
    env.pop("DOCKER_CONFIG", None)
    env.pop("REGISTRY_AUTH_FILE", None)
    return env


def test_cli_start_piped_prints_only_the_result(
    engine: Engine, registries: Registries, tmp_path: Path
) -> None:
    image = engine.image(registries)
    name = engine.name()
    proc = subprocess.run(
        [sys.executable, "-m", "kstlib", "ops", "start", name, "--runtime", engine.runtime,
         "-i", image, "--json", "-c", "sleep 60"],
        env=cli_env(tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert json.loads(proc.stdout)["image"] == image and engine.has(image)


def test_cli_pull_json_and_error_keep_the_password_out(
    engine: Engine, registries: Registries, tmp_path: Path
) -> None:
    image = engine.image(registries, registries.auth)
    env = cli_env(tmp_path)
    env["REGISTRY_AUTH_FILE"] = str(write_auth_file(tmp_path / "auth.json", registries))
    env["DOCKER_CONFIG"] = str(write_auth_file(tmp_path / "docker" / "config.json",
                                               registries).parent)
    cmd = [sys.executable, "-m", "kstlib", "ops", "pull", image, "--runtime", engine.runtime]
    with CmdlineWatch(registries.password) as watch:
        ok = subprocess.run([*cmd, "--json"], env=env, capture_output=True, text=True,
                            timeout=120, check=False)
    assert ok.returncode == 0, ok.stderr
    data = json.loads(ok.stdout)
    assert set(data) == {"image", "runtime", "image_id"}
    assert (data["image"], data["runtime"]) == (image, engine.runtime) and data["image_id"]
    assert ok.stderr == "" and engine.has(image)
    wrong = f"wrong-{uuid.uuid4().hex}"
    write_auth_file(tmp_path / "auth.json", registries, wrong)
    write_auth_file(tmp_path / "docker" / "config.json", registries, wrong)
    engine.remove(image)
    bad = subprocess.run([*cmd, "--json"], env=env, capture_output=True, text=True,
                         timeout=120, check=False)
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.startswith("kstlib: error: ") and "refused the credentials" in bad.stderr
    assert watch.scans > 0 and watch.hits == []
    for text in (ok.stdout, ok.stderr, bad.stdout, bad.stderr):
        assert registries.password not in text and wrong not in text


@pytest.fixture
def tmux_server() -> Iterator[tuple[str, Path]]:
    if shutil.which("tmux") is None:
        engine_missing("tmux", "tmux is not on PATH")
    tmpdir = Path(tempfile.mkdtemp(prefix="kr-", dir="/tmp"))
    socket_path = tmpdir / "sock"
    yield str(socket_path), tmpdir
    subprocess.run(["tmux", "-S", str(socket_path), "kill-server"], capture_output=True,
                   check=False)
    shutil.rmtree(tmpdir, ignore_errors=True)


def test_cli_start_on_a_terminal_shows_a_progress_bar(
    engine: Engine, registries: Registries, tmp_path: Path, tmux_server: tuple[str, Path]
) -> None:
    socket_path, tmpdir = tmux_server
    image = engine.image(registries)
    name = engine.name()
    env = cli_env(tmp_path)
    env["TERM"] = "xterm"
    script = tmpdir / "run.sh"
    done, go = tmpdir / "done", tmpdir / "go"
    exports = "".join(
        f"export {k}='{env[k]}'\n"
        for k in ("PYTHONPATH", "HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME", "TERM")
    )
    script.write_text(
        "#!/bin/sh\n" + exports +
        f"cd {tmp_path}\n"
        f"while [ ! -e {go} ]; do sleep 0.05; done\n"
        f"{sys.executable} -m kstlib ops start {name} --runtime {engine.runtime} "
        f"-i {image} -c 'sleep 60' -q; echo \"exit=$?\" > {done}\n"
        "exec sleep 600\n"
    )
    script.chmod(0o700)
    raw = tmpdir / "raw"
    tmux = ["tmux", "-S", socket_path]
    subprocess.run([*tmux, "-f", "/dev/null", "new-session", "-d", "-x", "200", "-y", "20",
                    "-s", "pull", str(script)], check=True)
    # Everything the pane receives, each redraw of the bar included, besides the screen.
    subprocess.run([*tmux, "pipe-pane", "-t", "pull", f"cat > {raw}"], check=True)
    go.touch()
    deadline = time.monotonic() + 120
    while not done.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert done.read_text().strip() == "exit=0"
    screen = subprocess.run([*tmux, "capture-pane", "-p", "-t", "pull"], capture_output=True,
                            text=True, check=True).stdout
    lines = [line.rstrip() for line in screen.splitlines() if line.strip()]
    # What a person sees: the bar's line, finished; -q prints nothing else.
    assert len(lines) == 1 and lines[0].startswith(f"Pulled {image}: 3 layers"), screen
    deadline = time.monotonic() + 5
    while b"Pulled" not in raw.read_bytes() and time.monotonic() < deadline:
        time.sleep(0.05)
    stream = raw.read_bytes().decode(errors="replace")
    frames = [f for f in stream.split("\r") if f.startswith("Pulling ")]
    assert all(f.startswith(f"Pulling {image} [") for f in frames), frames
    # the bar fills: layers counted as they end, all three at the last redraw
    assert frames[0].startswith(f"Pulling {image} [{'-' * 24}]"), frames[0]
    assert f"[{'#' * 24}]" in frames[-1] and "3/3 layers" in frames[-1], frames[-1]
    assert engine.runner.status(name).is_running
