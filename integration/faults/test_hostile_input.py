"""Hostile input: property-based (hypothesis) and targeted cases.

Every input either makes a valid config or raises SessionConfigError (never
another exception), before anything is created on an engine. Shell
metacharacters in an argv stay literal on every backend, oversized inputs are
refused, and env values never show in a process command line while a
container starts.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kstlib.ops import (
    OpsError,
    SessionConfig,
    SessionConfigError,
    SessionManager,
    SessionNotFoundError,
    TmuxRunner,
)
from kstlib.ops.config import load_config, parse_config
from kstlib.ops.container import ContainerRunner

from ..conftest import ENGINE_URLS, TEST_IMAGE, engine_missing, unique
from ..waiting import eventually
from .conftest import Report, log_files, shared_runner
from .engines import PrivateEngine

pytestmark = pytest.mark.faults

EXAMPLES = int(os.environ.get("KSTLIB_FAULTS_EXAMPLES", "60"))
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)

# -- strategies ---------------------------------------------------------------------

NASTY = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\n",
    "a\nb",
    "\r\n",
    "\t",
    "\udc80",  # a lone surrogate: not encodable as UTF-8
    "a\ud800b",
    "$(id)",
    "`id`",
    "a;b",
    "a && b",
    "a|b",
    "'",
    '"',
    "\\",
    "-rf",
    "--help",
    "=",
    ":",
    "::",
    "a:b:c:d",
    "/",
    "../../etc/passwd",
    "%s%n",
    "{}",
    "${HOME}",
    "~",
    "*",
    "\x1b[31m",
    "é",
    "名前",
    "🙂",
    "a" * 65,
    "a" * 300,
    "9lives",
    "-x",
    "0",
    "NaN",
]
text = st.one_of(st.sampled_from(NASTY), st.text(max_size=80))
scalar = st.one_of(
    text,
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.binary(max_size=20),
)
junk = st.recursive(
    scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(st.one_of(text, st.integers(), st.none()), inner, max_size=4),
    ),
    max_leaves=8,
)
FIELDS = {
    "name": junk,
    "command": st.one_of(junk, st.lists(text, max_size=5)),
    "env": st.one_of(junk, st.dictionaries(text, st.one_of(text, st.integers()), max_size=4)),
    "volumes": st.one_of(junk, st.lists(text, max_size=3)),
    "ports": st.one_of(junk, st.lists(text, max_size=3)),
    "image": junk,
    "working_dir": junk,
    "labels": st.one_of(junk, st.dictionaries(text, text, max_size=3)),
    "restart": junk,
    "memory": junk,
    "cpus": junk,
    "runtime": junk,
    "socket_name": junk,
    "socket_path": junk,
    "base_url": junk,
    "backend": junk,
}


def only_config_errors(fn: Callable[[], Any]) -> Any:
    """Call ``fn``; a SessionConfigError is fine, any other exception fails the test."""
    try:
        return fn()
    except SessionConfigError as err:
        assert str(err), "a SessionConfigError without a message"
        return err


# -- configs --------------------------------------------------------------------------


@PROPERTY
@given(data=st.data())
def test_any_field_value_is_a_valid_config_or_a_config_error(data: Any, report: Report) -> None:
    field = data.draw(st.sampled_from(sorted(FIELDS)), label="field")
    value = data.draw(FIELDS[field], label="value")
    kwargs: dict[str, Any] = {"name": "ok", "backend": "container", "image": TEST_IMAGE}
    kwargs[field] = value
    out = only_config_errors(lambda: SessionConfig(**kwargs))
    if isinstance(out, SessionConfigError):
        assert out.field, f"no field named for {field}={value!r}: {out}"
    report.count(f"hostile input: SessionConfig({field}=...)")


def test_every_nasty_string_in_every_field(report: Report) -> None:
    """Deterministic: each NASTY string (alone, and in a list or a mapping) in each field."""
    for field in sorted(FIELDS):
        for nasty in NASTY:
            for value in (nasty, [nasty], ["echo", nasty], {nasty: "v"}, {"K": nasty}):
                kwargs: dict[str, Any] = {"name": "ok", "backend": "container", "image": TEST_IMAGE}
                kwargs[field] = value
                only_config_errors(lambda kwargs=kwargs: SessionConfig(**kwargs))
                report.count("hostile input: nasty strings x fields (deterministic)")


@PROPERTY
@given(name=junk, options=st.dictionaries(st.sampled_from(sorted(FIELDS)), junk, max_size=3))
def test_session_manager_accepts_or_refuses_with_config_error(
    name: Any, options: dict[str, Any], report: Report
) -> None:
    options.pop("backend", None)
    options.pop("name", None)
    only_config_errors(lambda: SessionManager(name, backend="tmux", **options))
    report.count("hostile input: SessionManager(name, **options)")


yaml_value = st.recursive(
    st.one_of(text, st.integers(), st.floats(allow_nan=False), st.booleans(), st.none()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(text, inner, max_size=3)
    ),
    max_leaves=10,
)
SESSION_KEYS = ["backend", "command", "working_dir", "env", "image", "volumes", "ports",
                "runtime", "restart", "memory", "cpus", "labels", "socket_name", "colour"]
session_def = st.dictionaries(st.sampled_from(SESSION_KEYS), yaml_value, max_size=4)
config_doc = st.one_of(
    yaml_value,
    st.fixed_dictionaries(
        {"ops": st.one_of(
            yaml_value,
            st.fixed_dictionaries({"sessions": st.dictionaries(text, session_def, max_size=3)}),
            st.dictionaries(
                st.sampled_from(["default_backend", "container_runtime", "tmux_socket",
                                 "tmux_binary", "engines", "sessions", "other"]),
                yaml_value, max_size=3),
        )}
    ),
)


@PROPERTY
@given(doc=config_doc)
def test_config_documents_load_or_raise_config_error(doc: Any, report: Report) -> None:
    try:
        source = yaml.safe_dump(doc, allow_unicode=True)
    except yaml.YAMLError:
        return
    cfg = only_config_errors(lambda: parse_config(source, source="hostile.yml"))
    if not isinstance(cfg, SessionConfigError):
        # Every session it defines builds a valid SessionConfig (or says why not).
        sessions = (doc.get("ops") or {}).get("sessions") if isinstance(doc, dict) else None
        for name in sessions or {}:
            if isinstance(name, str):
                only_config_errors(lambda name=name: cfg.session(name))
    report.count("hostile input: config documents (YAML)")


@PROPERTY
@given(raw=st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode)))
def test_config_files_of_any_bytes_load_or_raise_config_error(
    raw: bytes, tmp_path_factory: pytest.TempPathFactory, report: Report
) -> None:
    path = tmp_path_factory.mktemp("cfg") / "kstlib.conf.yml"
    path.write_bytes(raw)
    only_config_errors(lambda: load_config(path))
    report.count("hostile input: config files (raw bytes)")


# -- lookups and starts on real engines: nothing is created ---------------------------


@pytest.fixture(scope="module")
def hostile_tmux() -> Iterator[TmuxRunner]:
    import shutil

    if shutil.which("tmux") is None:
        engine_missing("tmux", "tmux is not on PATH")
    runner = TmuxRunner(socket_name=f"kf-hostile-{uuid.uuid4().hex[:6]}")
    yield runner
    runner.kill_server()


@pytest.fixture
def backends(
    hostile_tmux: TmuxRunner, private_engines: Callable[[str], PrivateEngine]
) -> dict[str, Any]:
    """One runner per backend: tmux (own server), private Docker, shared Podman."""
    docker = private_engines("docker")
    shared_runner("podman")
    return {
        "tmux": hostile_tmux,
        "docker": ContainerRunner(runtime="docker", base_url=docker.url, timeout=30),
        "podman": ContainerRunner(runtime="podman", base_url=ENGINE_URLS["podman"], timeout=30),
    }


def _names(runner: Any) -> set[str]:
    return {s.name for s in runner.list_sessions()}


@PROPERTY
@given(name=junk)
def test_lookups_with_hostile_names_never_escape_the_tree(
    name: Any, backends: dict[str, Any], report: Report
) -> None:
    for backend, runner in backends.items():
        for op in ("status", "exists", "logs", "stop"):
            try:
                out = getattr(runner, op)(name)
            except (SessionConfigError, SessionNotFoundError):
                continue
            except OpsError as err:
                raise AssertionError(f"{backend}.{op}({name!r}): {type(err).__name__}: {err}") from err
            assert op == "exists" and out is False, f"{backend}.{op}({name!r}) -> {out!r}"
        report.count(f"hostile input: {backend} lookups (status, exists, logs, stop)", 4)


@pytest.fixture(scope="module")
def before_after() -> dict[str, Any]:
    return {}


@settings(PROPERTY, max_examples=max(EXAMPLES * 2 // 3, 1))
@given(data=st.data())
def test_invalid_options_at_start_create_nothing(
    data: Any, backends: dict[str, Any], report: Report
) -> None:
    backend = data.draw(st.sampled_from(sorted(backends)), label="backend")
    runner = backends[backend]
    field = data.draw(
        st.sampled_from(["command", "env", "volumes", "ports", "image", "working_dir",
                         "labels", "memory", "restart"]),
        label="field",
    )
    value = data.draw(FIELDS[field], label="value")
    name = unique("kf-hostile")
    kwargs: dict[str, Any] = {"command": ["sleep", "300"]}
    if backend == "tmux":
        if field in ("image", "volumes", "ports", "labels", "memory"):
            field = "env"
        kwargs.update(backend="tmux", socket_name=runner.socket_name)
    else:
        kwargs.update(backend="container", runtime=backend, base_url=runner.base_url,
                      image=TEST_IMAGE)
    before = _names(runner)
    mgr = SessionManager(name, **kwargs)
    try:
        mgr.start(**{field: value})
    except SessionConfigError:
        report.count(f"hostile input: refused at start on {backend}")
    except OpsError as err:
        # Valid syntax the engine refuses (a missing image, a bad path): a start
        # error is fine, as long as nothing is left behind.
        report.count(f"hostile input: engine refused at start on {backend} ({type(err).__name__})")
    else:
        mgr.stop(graceful=False)
        report.count(f"hostile input: valid, started and stopped on {backend}")
    assert name not in _names(runner)
    if backend != "podman":  # Podman's listing shares storage with other users
        assert _names(runner) <= before


# -- metacharacters stay literal --------------------------------------------------------

META = ["$(touch /tmp/kf-pwned)", "`touch /tmp/kf-pwned`", "a;touch /tmp/kf-pwned",
        "x\ny", "$HOME", "'q'", '"dq"', "|", "&&", ">", "*", "\\"]


_wait_for = partial(eventually, timeout=15, interval=0.05)


def test_shell_metacharacters_in_argv_stay_literal_on_every_backend(
    backends: dict[str, Any], report: Report
) -> None:
    pwned = Path("/tmp/kf-pwned")
    pwned.unlink(missing_ok=True)
    expected = " ".join(META)
    for backend, runner in backends.items():
        name = unique("kf-meta")
        if backend == "tmux":
            cfg = SessionConfig(name=name, command=["echo", *META])
        else:
            cfg = SessionConfig(name=name, backend="container", image=TEST_IMAGE,
                                command=["echo", *META])
        try:
            runner.start(cfg)
            assert _wait_for(lambda runner=runner, name=name: "x" in runner.logs(name))
            runner.wait(name, timeout=15)
            assert runner.logs(name, lines=None) == expected, backend
            if backend != "tmux":
                exec_cfg = SessionConfig(name=name, backend="container", image=TEST_IMAGE,
                                         command=["sleep", "300"])
                runner.start(exec_cfg)
                code, out = runner.exec(name, ["echo", *META])
                assert (code, out) == (0, expected + "\n"), backend
                code, out = runner.exec(name, ["ls", "/tmp"])
                assert "kf-pwned" not in out
        finally:
            with contextlib.suppress(SessionNotFoundError):
                runner.stop(name, graceful=False)
        report.count(f"metacharacters literal: {backend} ({len(META)} arguments)")
    assert not pwned.exists(), "a metacharacter was run by a shell"


# -- oversized input -------------------------------------------------------------------


def test_oversized_inputs_are_refused_cleanly(
    backends: dict[str, Any], tmp_path: Path, report: Report
) -> None:
    huge_value = "v" * (10 * 1024 * 1024)
    many_keys = {f"K{i}": "v" for i in range(10_000)}
    cases: dict[str, dict[str, Any]] = {
        "a 10 MB env value": {"env": {"BIG": huge_value}},
        "10 000 env keys": {"env": many_keys},
        "a 10 MB command": {"command": "echo " + huge_value},
        "a 10 MB argv": {"command": ["echo", huge_value]},
        "100 000 argv items": {"command": ["echo"] + ["a"] * 100_000},
        "a 10 000 character name": {"name": "a" * 10_000},
    }
    for what, options in cases.items():
        for backend, runner in backends.items():
            before = _names(runner)
            name = options.get("name", unique("kf-big"))
            kwargs = {k: v for k, v in options.items() if k != "name"}
            if backend == "tmux":
                kwargs.update(backend="tmux", socket_name=runner.socket_name)
            else:
                kwargs.update(backend="container", runtime=backend, base_url=runner.base_url,
                              image=TEST_IMAGE)
            began = time.monotonic()
            with pytest.raises(SessionConfigError) as info:
                SessionManager(name, **kwargs).start()
            assert time.monotonic() - began < 5
            assert len(str(info.value)) < 500, "the message echoes the oversized input"
            assert name not in _names(runner)
            if backend != "podman":
                assert _names(runner) <= before
            report.count(f"oversized: {what} on {backend}")
    # In a config file: a 10 MB value, and 10 000 env keys.
    big = tmp_path / "big.yml"
    big.write_text(yaml.safe_dump({"ops": {"sessions": {"bot": {"env": {"BIG": huge_value}}}}}))
    with pytest.raises(SessionConfigError):
        load_config(big).session("bot")
    many = tmp_path / "many.yml"
    many.write_text(yaml.safe_dump({"ops": {"sessions": {"bot": {"env": many_keys}}}}))
    with pytest.raises(SessionConfigError):
        load_config(many).session("bot")
    report.count("oversized: config files (10 MB value, 10 000 env keys)", 2)


# -- env values and command lines --------------------------------------------------------


class CmdlineWatcher:
    """Polls every process's /proc/PID/cmdline (and environ of none) for a secret."""

    def __init__(self, secret: str) -> None:
        self.secret = secret.encode()
        self.seen: list[str] = []
        self.sweeps = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = str(os.getpid())
        while not self._stop.is_set():
            for entry in os.listdir("/proc"):
                if not entry.isdigit() or entry == me:
                    continue
                try:
                    with open(f"/proc/{entry}/cmdline", "rb") as f:
                        data = f.read()
                except OSError:
                    continue
                if self.secret in data:
                    self.seen.append(data.replace(b"\0", b" ").decode(errors="replace")[:120])
            self.sweeps += 1

    def __enter__(self) -> CmdlineWatcher:
        self._thread.start()
        while self.sweeps == 0:
            time.sleep(0.001)
        return self

    def __exit__(self, *exc: object) -> None:
        before = self.sweeps
        while self.sweeps < before + 2:  # one whole sweep after the call returned
            time.sleep(0.001)
        self._stop.set()
        self._thread.join(5)


def test_env_values_never_in_a_command_line_while_a_container_starts(
    backends: dict[str, Any], report: Report
) -> None:
    for backend in ("docker", "podman"):
        runner = backends[backend]
        sweeps = 0
        for _ in range(3):
            secret = f"kf-secret-{uuid.uuid4().hex}"
            name = unique("kf-env")
            cfg = SessionConfig(name=name, backend="container", image=TEST_IMAGE,
                                command=["sh", "-c", "echo started; sleep 300"],
                                env={"TOKEN": secret})
            try:
                with CmdlineWatcher(secret) as watcher:
                    runner.start(cfg)
                    _wait_for(lambda runner=runner, name=name: "started" in runner.logs(name))
                assert watcher.seen == [], f"{backend}: the env value is in {watcher.seen}"
                assert runner.exec(name, ["sh", "-c", "echo $TOKEN"]) == (0, secret + "\n")
                sweeps += watcher.sweeps
            finally:
                with contextlib.suppress(SessionNotFoundError):
                    runner.stop(name, graceful=False)
        report.count(f"env secrecy: {backend} starts watched", 3)
        report.figure(f"env secrecy: {backend}", f"3 starts, {sweeps} /proc sweeps, value never seen")


def test_tmux_env_values_never_in_a_command_line_while_a_session_starts(
    backends: dict[str, Any], state_home: str, report: Report
) -> None:
    # The same watcher as for containers: on tmux the value travels in a 0600
    # run file, never on the tmux client's, the server's or the wrapper's argv.
    runner = backends["tmux"]
    sweeps = 0
    for _ in range(10):
        secret = f"kf-secret-{uuid.uuid4().hex}"
        name = unique("kf-env")
        with CmdlineWatcher(secret) as watcher:
            runner.start(SessionConfig(name=name, command=["sh", "-c", "echo $T; sleep 300"],
                                       env={"T": secret}))
            _wait_for(lambda name=name: runner.logs(name) == secret)
        runner.stop(name, graceful=False)
        assert watcher.seen == [], f"tmux: the env value is in {watcher.seen}"
        sweeps += watcher.sweeps
    report.count("env secrecy: tmux starts watched", 10)
    report.figure("env secrecy: tmux", f"10 starts, {sweeps} /proc sweeps, value never seen")
    assert all("kf-env" not in p for p in log_files(state_home))
