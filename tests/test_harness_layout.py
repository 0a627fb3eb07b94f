"""The engines harness is small sourced parts that shellcheck passes.

``integration/engines/engines.sh`` is the dispatcher; each part it sources is a
set of functions of under 300 lines. Every file the parts name by a path inside
the repository exists. shellcheck comes with the harness (``engines.sh up``
installs it); under ``KSTLIB_REQUIRE_ENGINES=1`` a machine without it fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HARNESS = ROOT / "integration" / "engines"
PARTS = sorted(HARNESS.glob("*.sh"))
MAX_LINES = 300


def test_the_dispatcher_sources_every_part_and_only_parts_that_exist() -> None:
    text = (HARNESS / "engines.sh").read_text()
    sourced = re.findall(r'^source "\$HERE/([\w.-]+)"$', text, flags=re.MULTILINE)
    assert sourced, "engines.sh sources no part"
    for name in sourced:
        assert (HARNESS / name).is_file(), f"engines.sh sources {name}, which the repo lacks"
    assert sorted([*sourced, "engines.sh"]) == [p.name for p in PARTS]


@pytest.mark.parametrize("part", PARTS, ids=lambda p: p.name)
def test_each_part_is_small(part: Path) -> None:
    assert len(part.read_text().splitlines()) <= MAX_LINES


@pytest.mark.parametrize("part", PARTS, ids=lambda p: p.name)
def test_a_part_names_no_repo_file_it_lacks(part: Path) -> None:
    """Files named as ``$HERE/NAME``, a repo path with a suffix, or a ``*.md`` exist."""
    text = part.read_text()
    paths = [HARNESS / n for n in re.findall(r"\$HERE/([\w./-]+)", text)]
    paths += [
        ROOT / n
        for n in re.findall(r"\b((?:integration|docs|tests|benchmarks)/[\w./-]+\.\w+)", text)
    ]
    for path in paths:
        assert path.exists(), f"{part.name} names {path.relative_to(ROOT)}, which the repo lacks"
    for doc in re.findall(r"\b([\w-]+\.md)\b", text):
        assert list(ROOT.rglob(doc)), f"{part.name} names {doc}, which the repo lacks"


def test_shellcheck_passes_on_every_part() -> None:
    exe = shutil.which("shellcheck")
    if exe is None:
        if os.environ.get("KSTLIB_REQUIRE_ENGINES") == "1":
            pytest.fail(
                "KSTLIB_REQUIRE_ENGINES=1 but shellcheck is missing (engines.sh up installs it)"
            )
        pytest.skip("shellcheck is not installed (engines.sh up installs it)")
    # Each part alone (its own findings), then the dispatcher following its sources.
    names = [p.name for p in PARTS]
    done = subprocess.run(
        [exe, "-x", *names], cwd=HARNESS, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_bash_parses_the_harness() -> None:
    for part in PARTS:
        done = subprocess.run(
            ["bash", "-n", str(part)], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, f"{part.name}: {done.stderr}"


@pytest.mark.parametrize("part", PARTS, ids=lambda p: p.name)
def test_the_harness_never_uses_the_users_home(part: Path) -> None:
    """No command of the harness reads or writes ``~`` (``~/.ssh`` above all): its files live in $STATE."""
    for number, line in enumerate(part.read_text().splitlines(), 1):
        code = line.split(" #", 1)[0] if not line.lstrip().startswith("#") else ""
        assert "~/" not in code and "$HOME" not in code and "${HOME" not in code, (
            f"{part.name}:{number}: {line.strip()}"
        )


def test_the_podman_service_is_the_harness_own_on_its_own_socket() -> None:
    """The harness starts Podman on a socket under $STATE and never adopts one that answers elsewhere."""
    text = (HARNESS / "podman.sh").read_text()
    assert 'PODMAN_SOCK="$PODMAN_DIR/podman.sock"' in text
    assert 'PODMAN_DIR="$STATE/podman"' in text
    start = text[text.index("start_podman() {") :]
    start = start[: start.index("\n}\n")]
    # It reuses a service only when the pid file names its own, alive.
    assert 'podman_ours "$PODMAN_PIDFILE" && answers "$PODMAN_SOCK"' in start
    assert "/run/podman" not in start
    env = (HARNESS / "engines.sh").read_text()
    assert "export CONTAINER_HOST=" in env and "export KSTLIB_TEST_PODMAN_URL=" in env


def test_every_daemon_starts_in_a_folder_of_its_own() -> None:
    # A daemon's working folder is where it may drop files by relative path: a
    # Podman service started from the checkout left an empty `oom` file at the
    # repository's root each time a container ran out of memory.
    starts = [
        (part.name, line.strip())
        for part in PARTS
        for line in part.read_text().splitlines()
        if re.search(r"\bsetsid\b", line) and not line.lstrip().startswith("#")
    ]
    assert starts, "the harness starts no daemon"
    for name, line in starts:
        assert re.search(r'\benv -C "\$\w+" setsid\b', line), f"{name}: {line}"
