"""The pytest plugin's owner rule: a run is alive while its lock is held; without a lock,
only an owner of this boot, pid namespace and host is judged by its pid (issue 21, point 6)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from kstlib.ops.models import SessionConfig
from kstlib.ops.pytest_plugin.owner import (
    claim,
    hold_lock,
    owner_token,
    parse_token,
    read_records,
    release_lock,
    write_record,
)
from kstlib.ops.pytest_plugin.sessions import OWNER_LABEL, config_hash

HOLDER = """
import sys, time
from pathlib import Path
from kstlib.ops.pytest_plugin.owner import hold_lock, owner_token
token = owner_token()
assert hold_lock(Path(sys.argv[1]), token)
print(token, flush=True)
time.sleep(600)
"""


def _here(pid: str = "999999999") -> str:
    """A mark of this boot, namespace and host, for pid ``pid``."""
    return ":".join([pid, "1", *owner_token().split(":")[2:]])


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "owners"
    path.mkdir(mode=0o700)
    return path


def test_the_mark_names_pid_start_boot_namespace_and_host() -> None:
    pid, start, boot, pidns, _host = owner_token().split(":")
    assert pid == str(os.getpid()) and start.isdigit()
    assert boot == Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert pidns == str(os.stat("/proc/self/ns/pid").st_ino)
    assert parse_token(owner_token()).here  # type: ignore[union-attr]


@pytest.mark.parametrize("token", ["", "x:1", "0:1", "1:2:3", "-4:1", "1:2:3:4:5:6"])
def test_what_is_not_a_mark_is_never_judged(folder: Path, token: str) -> None:
    assert parse_token(token) is None
    with claim(folder, token) as dead:
        assert dead is False


def test_a_held_lock_is_a_live_run_wherever_it_runs(folder: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        token = holder.stdout.readline().strip()
        # Make the mark say "another pid namespace, another host": the lock still rules.
        write_record(folder / "r.json", {"owner": token, "name": "x"})
        with claim(folder, token) as dead:
            assert dead is False
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        with claim(folder, token) as dead:
            assert dead is True
        (folder / "r.json").unlink()
        with claim(folder, token) as dead:
            assert dead is True
        assert list(folder.glob("*.lock")) == []  # no record of that run left: lock dropped
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_our_own_lock_is_held(folder: Path) -> None:
    token = owner_token()
    assert hold_lock(folder, token) and hold_lock(folder, token)  # once per process
    try:
        with claim(folder, token) as dead:
            assert dead is False
    finally:
        release_lock(folder, token)
    assert list(folder.glob("*.lock")) == []


@pytest.mark.parametrize(
    ("kind", "judged_dead"),
    [
        ("here", True),
        ("other-pid-namespace", False),
        ("other-boot", False),
        ("other-host", False),
        ("unknown-namespace", False),
        ("old-mark", False),
        ("here-alive", False),
    ],
)
def test_without_a_lock_only_this_namespace_is_judged(
    folder: Path, kind: str, judged_dead: bool
) -> None:
    pid, start, boot, pidns, host = _here().split(":")
    token = {
        "here": _here(),
        "other-pid-namespace": ":".join([pid, start, boot, str(int(pidns) + 1), host]),
        "other-boot": ":".join([pid, start, str(uuid.uuid4()), pidns, host]),
        "other-host": ":".join([pid, start, boot, pidns, "ci-runner-7"]),
        "unknown-namespace": ":".join([pid, start, boot, "?", host]),
        "old-mark": f"{pid}:{start}",
        "here-alive": owner_token(),
    }[kind]
    with claim(folder, token) as dead:
        assert dead is judged_dead


def test_a_reused_pid_is_not_its_owner(folder: Path) -> None:
    """pid 1 runs here, but not the process the mark names (another start time)."""
    with claim(folder, _here("1")) as dead:
        assert dead is True


def test_records_are_private_and_symlinks_skipped(folder: Path) -> None:
    write_record(folder / "a.json", {"owner": "1:2", "name": "a"})
    assert (folder / "a.json").stat().st_mode & 0o777 == 0o600
    (folder / "b.json").symlink_to(folder / "a.json")
    (folder / "c.json").write_text("not json")
    assert [(p.name, r["name"]) for p, r in read_records(folder)] == [("a.json", "a")]
    assert json.loads((folder / "a.json").read_text())["owner"] == "1:2"


def test_the_reuse_hash_follows_the_config_not_our_marks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    base = SessionConfig(name="db", backend="container", image="localhost/kstlib-test:latest",
                         command=["sleep", "9"], env={"PASSWORD": "one"})
    same = config_hash(base)
    assert same == config_hash(base.with_overrides(labels={OWNER_LABEL: "1:2"}))
    assert same != config_hash(base.with_overrides(env={"PASSWORD": "two"}))
    assert "one" not in same
    key = tmp_path / "state" / "kstlib" / "ops" / "pytest-owners" / "reuse.key"
    assert key.stat().st_mode & 0o777 == 0o600 and len(key.read_bytes()) == 32


def test_a_testcontainers_engine_whose_socket_is_gone_holds_nothing() -> None:
    from kstlib.ops.pytest_plugin.reaper import reap_testcontainers

    record = {"session_id": "s", "engines": [["docker", "unix:///nonexistent/docker.sock"]]}
    assert reap_testcontainers(record) == ("done", [])


def test_reuse_without_start_is_refused_before_anything() -> None:
    from kstlib.ops.exceptions import SessionConfigError
    from kstlib.ops.pytest_plugin.sessions import SessionFactory

    with pytest.raises(SessionConfigError) as caught:
        SessionFactory("t", keep=False)(["sleep", "9"], reuse=True, start=False)
    assert caught.value.field == "start"
