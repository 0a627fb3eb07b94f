"""Images from registries without an engine: events, credentials, errors, config, CLI pieces.

The engines' own words below were recorded from Docker 20.10 and Podman 4.3.1
pulling from the loopback registries of ``engines.sh``; translation is tested
with genuine SDK exception instances.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import pickle
import sys
import types
from pathlib import Path
from typing import Any

import docker.errors
import podman.errors
import pytest
import requests
import urllib3.exceptions

from kstlib.cli import state
from kstlib.cli.parser import parse_args
from kstlib.cli.progress import ProgressBar, terminal_progress
from kstlib.ops.config import parse_config
from kstlib.ops.engines import docker as docker_engine
from kstlib.ops.engines import podman as podman_engine
from kstlib.ops.engines.adapter import PullOptions
from kstlib.ops.engines.pull import PullTracker, translate_pull_error
from kstlib.ops.exceptions import (
    ContainerRuntimeNotFoundError,
    ImagePullError,
    SessionConfigError,
    SessionStartError,
)
from kstlib.ops.images import (
    PullProgress,
    RegistryAuth,
    auth_files,
    classify,
    find_credentials,
    is_insecure,
    notebook_progress,
    pull_failure,
    registry_of,
    split_reference,
)
from kstlib.ops.models import SessionConfig
from kstlib.ops.translate import CallContext, Op

IMAGE = "127.0.0.1:5000/kstlib/pulltest:1"
DOCKER_STREAM: list[dict[str, Any]] = [
    {"status": "Pulling from kstlib/pulltest", "id": "1"},
    {"status": "Already exists", "progressDetail": {}, "id": "4eb182f51dd1"},
    {"status": "Pulling fs layer", "progressDetail": {}, "id": "ff67cf588786"},
    {
        "status": "Downloading",
        "progressDetail": {"current": 36445, "total": 3146862},
        "id": "ff67cf588786",
    },
    {"status": "Verifying Checksum", "progressDetail": {}, "id": "ff67cf588786"},
    {"status": "Download complete", "progressDetail": {}, "id": "ff67cf588786"},
    {
        "status": "Extracting",
        "progressDetail": {"current": 3146862, "total": 3146862},
        "id": "ff67cf588786",
    },
    {"status": "Pull complete", "progressDetail": {}, "id": "ff67cf588786"},
    {"status": "Digest: sha256:58b4096e17a822ec21f7cb918aeb1fb5a767a14b116c3a146d287f202eb339c5"},
    {"status": "Status: Downloaded newer image for 127.0.0.1:5000/kstlib/pulltest:1"},
]
PODMAN_STREAM: list[dict[str, Any]] = [
    {"stream": "Trying to pull 127.0.0.1:5000/kstlib/pulltest:1...\n"},
    {"stream": "Getting image source signatures\n"},
    {
        "stream": "Copying blob sha256:ff67cf5887868af30d42854059dc38ce023ceed8b5f94ced999bfa7a4f6ea311\n"
    },
    {
        "stream": "Copying blob sha256:4eb182f51dd1d2d511ea5453efa35429f42c16a3af550b81587c14e22cc9ab6a\n"
    },
    {
        "stream": "Copying config sha256:eb09f023043c56c7a6561c68764cf8de570a66e6b987efc134b0c1ec1c3d2fe5\n"
    },
    {"stream": "Writing manifest to image destination\n"},
    {"stream": "Storing signatures\n"},
    {
        "images": ["eb09f023043c"],
        "id": "eb09f023043c56c7a6561c68764cf8de570a66e6b987efc134b0c1ec1c3d2fe5",
    },
]
#: (engine's words, kind) as the engines reported them.
RECORDED = [
    (
        "manifest for 127.0.0.1:5000/kstlib/pulltest:nope not found: manifest unknown: "
        "manifest unknown",
        "not_found",
    ),
    (
        'Head "http://127.0.0.1:5001/v2/kstlib/pulltest/manifests/1": no basic auth credentials',
        "unauthorized",
    ),
    ("unauthorized: authentication required", "unauthorized"),
    (
        'Get "http://127.0.0.1:5999/v2/": dial tcp 127.0.0.1:5999: connect: connection refused',
        "unreachable",
    ),
    (
        'Get "https://nosuchhost.invalid:5000/v2/": dial tcp: lookup nosuchhost.invalid on '
        "10.255.255.53:53: no such host",
        "unreachable",
    ),
    (
        "initializing source docker://127.0.0.1:5000/kstlib/pulltest:1: pinging container "
        'registry 127.0.0.1:5000: Get "https://127.0.0.1:5000/v2/": http: server gave HTTP '
        "response to HTTPS client",
        "tls",
    ),
    (
        "initializing source docker://127.0.0.1:5000/kstlib/pulltest:nope: reading manifest nope "
        "in 127.0.0.1:5000/kstlib/pulltest: manifest unknown: manifest unknown",
        "not_found",
    ),
    (
        "initializing source docker://127.0.0.1:5001/kstlib/pulltest:1: reading manifest 1 in "
        "127.0.0.1:5001/kstlib/pulltest: unauthorized: authentication required",
        "unauthorized",
    ),
    ('Get "https://r.example:443/v2/": x509: certificate signed by unknown authority', "tls"),
    ('Get "https://10.0.0.9/v2/": dial tcp 10.0.0.9:443: i/o timeout', "timeout"),
    (
        "pull access denied for nope, repository does not exist or may require 'docker login'",
        "not_found",
    ),
]


# -- events ----------------------------------------------------------------------------------


def test_docker_stream_becomes_ordered_events_ending_in_complete(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="kstlib.ops")
    seen: list[PullProgress] = []
    tracker = PullTracker(IMAGE, "docker", seen.append)
    for item in DOCKER_STREAM:
        tracker.feed(item)
    tracker.finish()
    steps = [(e.layer, e.status) for e in seen]
    assert steps[0] == (None, "pulling") and steps[-1] == (None, "complete")
    assert [s for lay, s in steps if lay == "ff67cf588786"] == [
        "waiting",
        "downloading",
        "verifying",
        "downloaded",
        "extracting",
        "done",
    ]
    assert ("4eb182f51dd1", "exists") in steps
    assert seen[-1].total == 3146862 and tracker.error is None
    per_layer = [r.getMessage() for r in caplog.records if "layer" in r.getMessage()]
    assert per_layer == [
        f"pull {IMAGE}: layer 4eb182f51dd1 already present",
        f"pull {IMAGE}: layer ff67cf588786 pulled (3146862 bytes)",
    ]


def test_podman_stream_names_each_blob_and_closes_them_before_complete() -> None:
    seen: list[PullProgress] = []
    tracker = PullTracker(IMAGE, "podman", seen.append)
    for item in PODMAN_STREAM:
        tracker.feed(item)
    tracker.finish()
    layered = [(e.layer, e.status) for e in seen if e.layer]
    assert layered == [
        ("ff67cf588786", "downloading"),
        ("4eb182f51dd1", "downloading"),
        ("ff67cf588786", "done"),
        ("4eb182f51dd1", "done"),
    ]
    assert seen[-1].is_final and tracker.image_id and tracker.image_id.startswith("eb09f023")
    assert all(e.current is None for e in seen)  # Podman 4 gives no byte counts


def test_an_error_item_stops_without_complete() -> None:
    seen: list[PullProgress] = []
    tracker = PullTracker(IMAGE, "docker", seen.append)
    tracker.feed(
        {
            "errorDetail": {"message": "unauthorized: authentication required"},
            "error": "unauthorized: authentication required",
        }
    )
    assert tracker.error == "unauthorized: authentication required"
    assert [e.status for e in seen] == ["pulling"]


# -- references, insecure registries -----------------------------------------------------


@pytest.mark.parametrize(
    ("image", "registry", "split"),
    [
        (
            "127.0.0.1:5000/kstlib/pulltest:1",
            "127.0.0.1:5000",
            ("127.0.0.1:5000/kstlib/pulltest", "1"),
        ),
        (
            "127.0.0.1:5000/kstlib/pulltest",
            "127.0.0.1:5000",
            ("127.0.0.1:5000/kstlib/pulltest", "latest"),
        ),
        ("alpine", "docker.io", ("alpine", "latest")),
        ("library/alpine:3.20", "docker.io", ("library/alpine", "3.20")),
        ("localhost/app:2", "localhost", ("localhost/app", "2")),
        ("quay.io/a/b@sha256:" + "a" * 64, "quay.io", ("quay.io/a/b", "sha256:" + "a" * 64)),
    ],
)
def test_registry_and_tag_of_a_reference(image: str, registry: str, split: tuple[str, str]) -> None:
    assert registry_of(image) == registry
    assert split_reference(image) == split


def test_insecure_only_where_said_and_on_loopback() -> None:
    assert is_insecure("127.0.0.1:5000") and is_insecure("127.3.4.5") and is_insecure("[::1]:5")
    assert is_insecure("localhost:5000")
    assert not is_insecure("10.1.2.3:5000") and not is_insecure("registry.example.com")
    assert is_insecure("10.1.2.3:5000", ["10.1.2.3:5000"])
    assert is_insecure("reg.lan:5000", ["reg.lan"])
    assert not is_insecure("reg.lan:5000", ["reg.lan:6000"])


# -- credentials -----------------------------------------------------------------------------


def auth_file(path: Path, registry: str, user: str, password: str) -> Path:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"auths": {registry: {"auth": token}}}))
    return path


def user_pass(found: dict[str, str] | None) -> tuple[str, str] | None:
    return None if found is None else (found["username"], found["password"])


def test_credentials_come_from_the_files_in_each_engines_order(tmp_path: Path) -> None:
    home = tmp_path / "home"
    auth_file(home / ".docker" / "config.json", "r:5000", "from-docker", "pd")
    auth_file(home / ".config" / "containers" / "auth.json", "r:5000", "from-podman", "pp")
    env = {"HOME": str(home)}
    docker_auth, docker_src = find_credentials("r:5000", "docker", env=env)
    podman_auth, podman_src = find_credentials("r:5000", "podman", env=env)
    assert user_pass(docker_auth) == ("from-docker", "pd")
    assert docker_src.endswith(".docker/config.json")
    assert user_pass(podman_auth) == ("from-podman", "pp")
    assert podman_src.endswith("containers/auth.json")
    # $REGISTRY_AUTH_FILE, then $XDG_RUNTIME_DIR, come first for Podman
    xdg = auth_file(tmp_path / "run" / "containers" / "auth.json", "r:5000", "from-xdg", "px")
    env["XDG_RUNTIME_DIR"] = str(tmp_path / "run")
    assert find_credentials("r:5000", "podman", env=env)[1] == str(xdg)
    explicit = auth_file(tmp_path / "explicit.json", "r:5000", "from-env-file", "pe")
    env["REGISTRY_AUTH_FILE"] = str(explicit)
    assert user_pass(find_credentials("r:5000", "podman", env=env)[0]) == ("from-env-file", "pe")
    # Docker's config.json also serves Podman when no auth.json has the registry
    assert find_credentials("other:1", "podman", env=env) == (None, "none")
    auth_file(home / ".docker" / "config.json", "other:1", "d", "x")
    assert user_pass(find_credentials("other:1", "podman", env=env)[0]) == ("d", "x")
    # $DOCKER_CONFIG moves Docker's file
    env["DOCKER_CONFIG"] = str(tmp_path / "dc")
    auth_file(tmp_path / "dc" / "config.json", "r:5000", "dc", "y")
    assert user_pass(find_credentials("r:5000", "docker", env=env)[0]) == ("dc", "y")
    assert [p.name for p in auth_files("docker", env)][0] == "config.json"


def test_explicit_registry_auth_wins_and_reads_its_variable_at_pull_time(tmp_path: Path) -> None:
    auth = RegistryAuth("ci", password_env="REG_PASS_X")
    env = {"HOME": str(tmp_path), "REG_PASS_X": "s3cr3t-value"}
    assert find_credentials("r:1", "docker", auth, env=env) == (
        {"username": "ci", "password": "s3cr3t-value"},
        "registry_auth",
    )
    scoped = RegistryAuth("ci", "pw", registry="other:1")
    assert find_credentials("r:1", "docker", scoped, env=env) == (None, "none")
    with pytest.raises(SessionConfigError, match="REG_PASS_X"):
        auth.auth_config(env={})


def test_a_broken_credentials_file_names_the_file_not_its_content(tmp_path: Path) -> None:
    path = tmp_path / "auth.json"
    path.write_text('{"auths": {"r:1": {"auth": "not base64 !!! hunter2"}}}')
    with pytest.raises(SessionConfigError) as info:
        find_credentials(
            "r:1", "podman", env={"REGISTRY_AUTH_FILE": str(path), "HOME": str(tmp_path)}
        )
    assert str(path) in str(info.value) and "hunter2" not in str(info.value)


def test_registry_auth_hides_its_password_and_checks_its_shape() -> None:
    auth = RegistryAuth("ci", password="hunter2-secret")
    cfg = SessionConfig(name="db", backend="container", image="r:1/a:1", registry_auth=auth)
    for text in (repr(auth), repr(cfg), str(cfg)):
        assert "hunter2-secret" not in text
    assert "password='***'" in repr(auth)
    for bad, words in [
        ({"username": "u"}, "give a password or password_env"),
        ({"username": "u", "password": "p", "password_env": "P"}, "not both"),
        ({"username": "u", "password_env": "1BAD"}, "not an environment"),
        ({"username": "", "password": "p"}, "username"),
        ({"username": "u", "password": "p", "registry": "a/b"}, "host[:port]"),
        ("u:p", "expected a mapping"),
    ]:
        with pytest.raises(SessionConfigError, match="registry_auth") as info:
            SessionConfig(name="db", backend="container", image="x:1", registry_auth=bad)
        assert words in str(info.value)
        assert "hunter2" not in str(info.value)


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("words", "kind"), RECORDED)
def test_each_recorded_engine_error_has_its_kind(words: str, kind: str) -> None:
    assert classify(words) == kind


def test_each_kind_has_its_own_sentence() -> None:
    texts = {}
    for words, kind in RECORDED:
        err = pull_failure(
            IMAGE,
            "docker",
            words,
            session="bot",
            credentials="registry_auth" if kind == "unauthorized" else "none",
        )
        assert isinstance(err, SessionStartError) and err.kind == kind
        message = str(err)
        assert message.endswith(".") and ". " not in message, message
        assert message.startswith(
            f"Could not start session 'bot' on the docker backend: could not pull image '{IMAGE}': "
        )
        texts.setdefault(kind, message)
    unique_sentences = {
        m.split(": could not pull image", 1)[1].split("(")[0] for m in texts.values()
    }
    assert len(unique_sentences) == len(texts) == 5
    no_login = pull_failure(IMAGE, "podman", "unauthorized: authentication required")
    assert "requires a login and no credentials were found" in str(no_login)
    assert str(no_login).startswith(f"Could not pull image '{IMAGE}' on podman: ")
    timeout = pull_failure(IMAGE, "podman", "i/o timeout", timeout=7)
    assert "no answer within 7 s" in str(timeout)


def test_pull_error_pickles_with_its_fields() -> None:
    err = pull_failure(IMAGE, "podman", "manifest unknown", session="bot")
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.kind, copy.image, copy.registry, copy.session, copy.name, str(copy)) == (
        "not_found",
        IMAGE,
        "127.0.0.1:5000",
        "bot",
        "bot",
        str(err),
    )
    assert copy.reason == err.reason and IMAGE in copy.reason


def ctx(runtime: str) -> CallContext:
    return CallContext(Op.START, "bot", runtime, "unix:///x.sock", 4.0, image=IMAGE)


def docker_api_error(status: int, explanation: str) -> docker.errors.APIError:
    response = requests.Response()
    response.status_code = status
    cls = docker.errors.NotFound if status == 404 else docker.errors.APIError
    return cls("error", response=response, explanation=explanation)


def test_sdk_errors_of_a_pull_become_pull_errors_with_the_cause() -> None:
    table = docker_engine.table()
    refused = docker_api_error(500, RECORDED[3][0])
    out = translate_pull_error(refused, table, ctx("docker"), credentials="none", session="bot")
    assert isinstance(out, ImagePullError) and out.kind == "unreachable"
    missing = docker_api_error(404, RECORDED[0][0])
    out = translate_pull_error(missing, table, ctx("docker"), credentials="none", session="bot")
    assert isinstance(out, ImagePullError) and out.kind == "not_found"
    # a read that timed out (the engine went silent) is the pull's timeout
    try:
        raise requests.exceptions.ConnectionError(
            urllib3.exceptions.ReadTimeoutError(None, "/images/create", "read timed out")
        )
    except requests.exceptions.ConnectionError as silent:
        out = translate_pull_error(silent, table, ctx("docker"), credentials="none", session=None)
    assert isinstance(out, ImagePullError) and out.kind == "timeout" and "4 s" in str(out)
    # the engine's socket is gone: no engine, not a registry problem
    gone = requests.exceptions.ConnectionError(FileNotFoundError(2, "No such file"))
    out = translate_pull_error(gone, table, ctx("docker"), credentials="none", session=None)
    assert isinstance(out, ContainerRuntimeNotFoundError)
    # podman-py's transport error: an APIError without a status, the cause inside
    try:
        try:
            raise requests.exceptions.ConnectionError(ConnectionRefusedError(111, "refused"))
        except requests.exceptions.ConnectionError as cause:
            raise podman.errors.APIError("http://x/images/pull", explanation="failed") from cause
    except podman.errors.APIError as wrapped:
        out = translate_pull_error(
            wrapped, podman_engine.table(), ctx("podman"), credentials="none", session=None
        )
    assert isinstance(out, ContainerRuntimeNotFoundError)


# -- config, state, CLI -------------------------------------------------------------------


def test_session_config_pull_fields_are_checked() -> None:
    cfg = SessionConfig(
        name="w",
        backend="container",
        image="x:1",
        pull="ALWAYS",
        insecure_registries=["reg.lan:5000"],
    )
    assert (cfg.pull, cfg.insecure_registries) == ("always", ("reg.lan:5000",))
    assert SessionConfig(name="w").pull == "missing"
    for field, value in [
        ("pull", "sometimes"),
        ("pull", 1),
        ("insecure_registries", "reg"),
        ("insecure_registries", ["a b"]),
        ("on_progress", 5),
    ]:
        with pytest.raises(SessionConfigError) as info:
            SessionConfig(name="w", backend="container", image="x:1", **{field: value})
        assert info.value.field == field
    # a callback does not make two configs different, nor shows in a repr
    assert SessionConfig(name="w", on_progress=print) == SessionConfig(name="w")
    assert "on_progress" not in repr(SessionConfig(name="w", on_progress=print))


def test_config_file_keys_with_lines_and_defaults() -> None:
    cfg = parse_config(
        "ops:\n"
        "  pull: always\n"
        "  insecure_registries: [reg.lan:5000]\n"
        "  sessions:\n"
        "    db:\n"
        "      backend: docker\n"
        "      image: reg.lan:5000/pg:16\n"
        "      registry_auth: {username: ci, password_env: REG_PASS}\n"
        "      insecure_registries: ['other:1']\n"
        "    job:\n"
        "      backend: podman\n"
        "      image: x:1\n"
        "      pull: never\n",
        source="k.yml",
    )
    db = cfg.session("db")
    assert db.pull == "always" and db.insecure_registries == ("reg.lan:5000", "other:1")
    assert db.registry_auth == RegistryAuth("ci", password_env="REG_PASS")
    assert cfg.session("job").pull == "never"
    from kstlib.ops.models import BackendType

    defaults = cfg.defaults_for("adhoc", BackendType.CONTAINER)
    assert defaults["pull"] == "always" and defaults["insecure_registries"] == ("reg.lan:5000",)
    with pytest.raises(SessionConfigError, match=r"^k\.yml:2: ops\.pull: "):
        parse_config("ops:\n  pull: sometimes\n", source="k.yml")
    with pytest.raises(SessionConfigError, match=r"^k\.yml:4: ops\.sessions\.a\.registry_auth"):
        parse_config(
            "ops:\n  sessions:\n    a:\n      registry_auth: {username: u}\n"
            "      backend: docker\n      image: x:1\n",
            source="k.yml",
        )


def test_last_start_record_keeps_no_password_and_no_callback(tmp_path: Path) -> None:
    secret = "hunter2-in-code"
    state.save(
        SessionConfig(
            name="a",
            backend="container",
            image="x:1",
            on_progress=print,
            registry_auth={"username": "u", "password": secret},
        ),
        directory=tmp_path,
    )
    text = (tmp_path / "a.json").read_text()
    assert secret not in text and "on_progress" not in text
    first = state.load("a", directory=tmp_path)
    assert first is not None and first.config.registry_auth is None
    state.save(
        SessionConfig(
            name="b",
            backend="container",
            image="x:1",
            registry_auth={"username": "u", "password_env": "P"},
        ),
        directory=tmp_path,
    )
    loaded = state.load("b", directory=tmp_path)
    assert loaded is not None and loaded.config.registry_auth == RegistryAuth("u", password_env="P")


def test_cli_pull_options() -> None:
    args = parse_args(["ops", "start", "db", "-i", "r:5000/a:1", "--pull", "always"])
    assert args.pull == "always"
    args = parse_args(
        ["ops", "pull", "r:5000/a:1", "--runtime", "podman", "--insecure", "--json", "-t", "30"]
    )
    assert (args.image, args.runtime, args.insecure, args.json, args.timeout) == (
        "r:5000/a:1",
        "podman",
        True,
        True,
        30.0,
    )
    from kstlib.cli import main

    assert main(["ops", "start", "db", "-i", "x:1", "--pull", "sometimes"]) == 2


def test_progress_bar_draws_on_one_line_and_stays_quiet_off_a_terminal() -> None:
    out = io.StringIO()
    bar = ProgressBar(out, width=70)
    bar(PullProgress(IMAGE, None, "pulling"))
    bar(PullProgress(IMAGE, "aaaaaaaaaaaa", "downloading", 50, 100))
    bar(PullProgress(IMAGE, "bbbbbbbbbbbb", "exists"))
    frames = out.getvalue().split("\r")[1:]
    assert all(len(f.replace("\x1b[K", "")) <= 69 for f in frames), frames
    assert "[############------------] 0.0/0.0 MB 1/2 layers" in frames[-1]
    assert frames[-1].startswith("Pulling ...") and "ulltest:1 [" in frames[-1]
    bar.close()
    assert out.getvalue().endswith("\n")
    assert terminal_progress(io.StringIO()) is None


def test_notebook_display_only_in_a_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    assert notebook_progress() is None  # no IPython: nothing at all
    shown: list[Any] = []

    class Handle:
        def update(self, obj: Any) -> None:
            shown.append(("update", obj))

    def display(obj: Any, display_id: bool = False) -> Handle:
        shown.append(("display", obj))
        return Handle()

    ipython = types.ModuleType("IPython")
    ipython_display = types.ModuleType("IPython.display")
    ipython_display.display = display  # type: ignore[attr-defined]
    shell = types.SimpleNamespace(kernel=None)
    ipython.get_ipython = lambda: shell  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", ipython_display)
    assert notebook_progress() is None  # a terminal IPython: no display either
    shell.kernel = object()
    show = notebook_progress()
    assert show is not None
    show(PullProgress(IMAGE, None, "pulling"))
    show(PullProgress(IMAGE, "aaaaaaaaaaaa", "downloading", 1_000_000, 2_000_000))
    show(PullProgress(IMAGE, None, "complete"))
    assert [kind for kind, _ in shown] == ["display", "update", "update"]  # one display, updated
    assert shown[1][1] == f"Pulling {IMAGE}: 0/1 layers, 1.0/2.0 MB"
    assert shown[-1][1] == f"Pulled {IMAGE} (1 layers)"


# -- the start path (an engine stand-in: a hang on create cannot be made on demand) ----------


class StubEngine:
    runtime = "docker"
    endpoint = "unix:///stub.sock"
    timeout = 5.0

    def __init__(self, create_errors: list[Exception]) -> None:
        self.create_errors = create_errors
        self.calls: list[str] = []

    def inspect(self, name: str, op: Op = Op.READ) -> Any:
        from kstlib.ops.exceptions import SessionNotFoundError

        self.calls.append("inspect")
        if "start" not in self.calls:
            raise SessionNotFoundError(name, self.runtime)
        from kstlib.ops.engines.adapter import ContainerInfo

        return ContainerInfo(id="abc", name=name, state="running", pid=42)

    def create(self, spec: Any) -> str:
        self.calls.append("create")
        if self.create_errors:
            raise self.create_errors.pop(0)
        return "abc"

    def start(self, ref: str, name: str) -> None:
        self.calls.append("start")

    def processes(self, ref: str) -> list[tuple[int, int, str]]:
        return [(42, 1, "/sbin/docker-init -- app"), (43, 42, "app")]  # the init handed over

    def pull(self, image: str, tracker: PullTracker, options: PullOptions) -> str:
        self.calls.append("pull")
        tracker.finish()
        return "sha256:x"

    def image_exists(self, image: str) -> bool:
        self.calls.append("image_exists")
        return False


def stub_runner(engine: StubEngine) -> Any:
    from kstlib.ops.container import ContainerRunner

    runner = ContainerRunner(runtime="docker", base_url="unix:///stub.sock")
    runner._engine = engine  # type: ignore[assignment]
    return runner


def start_cfg(pull: str = "missing", **kw: Any) -> SessionConfig:
    return SessionConfig(
        name="bot",
        backend="container",
        image="127.0.0.1:5000/a:1",
        command="sleep 1",
        pull=pull,
        **kw,
    )


def test_a_create_that_fails_for_another_reason_pulls_nothing() -> None:
    from kstlib.ops.engines.errors import timed_out

    hang = timed_out(Op.START, "bot", "docker", "unix:///stub.sock", 5)
    engine = StubEngine([hang])
    with pytest.raises(SessionStartError) as info:
        stub_runner(engine).start(start_cfg())
    assert info.value is hang
    assert engine.calls == ["inspect", "create"]


def test_a_missing_image_is_pulled_then_created_unless_never() -> None:
    from kstlib.ops.engines.errors import image_missing

    def missing() -> Exception:
        return image_missing(
            Op.START,
            "bot",
            "docker",
            "unix:///stub.sock",
            image="127.0.0.1:5000/a:1",
            detail="No such image",
        )

    engine = StubEngine([])  # the image is there: not one call more than before
    assert stub_runner(engine).start(start_cfg()).is_running
    assert engine.calls == ["inspect", "create", "start", "inspect"]
    events: list[PullProgress] = []
    engine = StubEngine([missing()])
    assert stub_runner(engine).start(start_cfg(on_progress=events.append)).is_running
    assert engine.calls == ["inspect", "create", "pull", "create", "start", "inspect"]
    assert events[-1].is_final
    engine = StubEngine([missing()])
    with pytest.raises(SessionStartError, match="pull policy is 'never'") as info:
        stub_runner(engine).start(start_cfg("never"))
    assert not isinstance(info.value, ImagePullError)
    assert engine.calls == ["inspect", "create"]
    engine = StubEngine([])
    assert stub_runner(engine).start(start_cfg("always")).is_running
    assert engine.calls == ["inspect", "pull", "create", "start", "inspect"]


def test_an_error_of_the_progress_callback_reaches_the_caller_untranslated() -> None:
    def broken(event: PullProgress) -> None:
        raise KeyError("my bug")

    with pytest.raises(KeyError):
        PullTracker(IMAGE, "docker", broken)
    tracker = PullTracker(IMAGE, "docker", None)
    tracker.callback = broken
    with pytest.raises(KeyError) as info:
        tracker.feed(DOCKER_STREAM[1])
    assert tracker.callback_error is info.value
