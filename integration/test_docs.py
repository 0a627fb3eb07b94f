"""Every code block of README.md and docs/ runs as a reader would run it.

Python blocks of one page run in order in one namespace (a reader keeps their
interpreter open); console blocks run each ``$ kstlib ...`` line with the
CLI. A block that cannot run here says so right above its fence:

    <!-- docs-test: skip (why) -->

A block that shows a file the reader saves says so, and is written into
the reader's folder before the blocks after it run:

    <!-- docs-test: file kstlib.conf.yml [other names] -->

A block that waits for a session to end says which one the reader would stop
elsewhere, and when (the test stops it then, from another thread):

    <!-- docs-test: stop bot after 3 s -->

The reader's own things the pages lean on are there too: ``bot.py`` and
``api.py`` in their folder, ``run-smoke-tests`` and an ``ssh`` that holds a
tunnel open on their PATH, ``alert()`` and ``run_migrations()`` in the page's
namespace. A console block's lines run in one shell, in order (a variable set
by one line is there for the next); the output a page shows under a line is
checked when it is a ``kstlib:`` line, an exit code, or the output of ``echo``.

Commands of the repository's own set-up (``make``, the benchmark, the fault
suite) are ``shell`` blocks, not ``console``: they are not kstlib examples,
and :func:`test_shell_blocks_hold_no_kstlib_example` keeps them so.

Each page runs with a private tmux default server (``TMUX_TMPDIR``), its own
state and config folders and a scratch working folder, and everything it
started is removed afterwards. The example images the pages name
(:data:`DOC_IMAGES`) are played, in both engines, by a stand-in made from the
test image: its ``python``, ``nginx`` and ``postgres`` say what they were
asked to run and then run until stopped (a one-off ``-c CODE``, ``-t`` or
``-v`` exits at once). Only
names an engine lacks are tagged, and only those are removed afterwards.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w+)\s*$")
SKIP = re.compile(r"<!--\s*docs-test:\s*skip\s*\((.+?)\)\s*-->")
STOP = re.compile(r"<!--\s*docs-test:\s*stop\s+([A-Za-z_]\w*)\s+after\s+(\d+)\s*s\s*-->")
FILE = re.compile(r"<!--\s*docs-test:\s*file\s+(.+?)\s*-->")
RUNNABLE = {"python", "console"}
TEST_IMAGE = "localhost/kstlib-test:latest"
DOCKER_URL = os.environ.get("KSTLIB_TEST_DOCKER_URL", "unix:///var/run/docker.sock")
PODMAN_URL = os.environ.get("KSTLIB_TEST_PODMAN_URL", "unix:///run/podman/podman.sock")
#: The images the pages' examples name; a stand-in plays them.
DOC_IMAGES = ("postgres:16", "nginx:1.27", "localhost/myapp:1.4")
_STANDIN = (
    "#!/bin/sh\n"
    "# plays the applications the docs name: says what it runs, then runs until stopped\n"
    'case "$1" in -c|-t|-v|--version) exit 0;; esac\n'
    'echo "$(basename "$0") $*: ready"\n'
    "while :; do sleep 3600; done\n"
)


@dataclass
class Block:
    page: Path
    line: int
    lang: str
    code: str
    skip: str | None
    files: tuple[str, ...] = ()
    stop: tuple[str, float] | None = None

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The fenced code blocks of a page, with their skip marker if any."""
    out: list[Block] = []
    lines = page.read_text().splitlines()
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if fence is None:
            i += 1
            continue
        lang = fence.group(1)
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        i += 1
        before = "\n".join(lines[max(0, start - 3) : start])
        marker = SKIP.search(before)
        named = FILE.search(before)
        stop = STOP.search(before)
        out.append(Block(page, start + 1, lang, "\n".join(body), marker.group(1) if marker else None,
                         tuple(named.group(1).split()) if named else (),
                         (stop.group(1), float(stop.group(2))) if stop else None))
    return out


def _standin(runtime: str, url: str) -> list[str]:
    """Tag the stand-in image under every :data:`DOC_IMAGES` name the engine lacks."""
    script = "; ".join([
        f"printf %s {shlex.quote(_STANDIN)} > /bin/docs-standin",
        "chmod 755 /bin/docs-standin",
        *(f"ln -s docs-standin /bin/{app}" for app in ("python", "nginx", "postgres")),
    ])
    if runtime == "docker":
        import docker

        client: Any = docker.DockerClient(base_url=url)
        missing = [n for n in DOC_IMAGES if not client.images.list(name=n)]
    else:
        import podman

        client = podman.PodmanClient(base_url=url)
        missing = [n for n in DOC_IMAGES if not client.images.exists(n)]
    if missing:
        box = client.containers.run(TEST_IMAGE, detach=True, tty=True, stdin_open=True)
        try:
            code, out = box.exec_run(["sh", "-c", script])[:2]
            assert code == 0, out
            image = box.commit()
        finally:
            box.remove(force=True)
        for ref in missing:
            repo, _, tag = ref.rpartition(":")
            if runtime == "podman" and "/" not in repo:
                repo = f"docker.io/library/{repo}"  # what Podman resolves a short name to
            image.tag(repo, tag)
        if runtime == "docker" and REGISTRY:
            # The pages' registry examples pull it for real, from the test registry.
            image.tag(f"{REGISTRY}/{REGISTRY_REPO}", "1")
            client.images.push(f"{REGISTRY}/{REGISTRY_REPO}", "1")
    client.close()
    return missing


#: The test registry (integration/engines); the pages' examples say 127.0.0.1:5000.
REGISTRY = os.environ.get("KSTLIB_TEST_REGISTRY", "")
REGISTRY_REPO = "team/app"
DOCS_REGISTRY = "127.0.0.1:5000"


def as_run_here(code: str) -> str:
    """A block's code with the docs' example registry replaced by the test registry."""
    return code.replace(DOCS_REGISTRY, REGISTRY) if REGISTRY else code


def _untag(runtime: str, url: str, refs: list[str]) -> None:
    if runtime == "docker":
        import docker

        client: Any = docker.DockerClient(base_url=url)
    else:
        import podman

        client = podman.PodmanClient(base_url=url)
    pulled = [f"{REGISTRY}/{REGISTRY_REPO}:1"] if REGISTRY else []
    for ref in [*refs, *pulled]:
        with contextlib.suppress(Exception):
            client.images.remove(ref)
    client.close()


@pytest.fixture(scope="module")
def doc_images() -> Iterator[None]:
    """The docs' example images, in every engine that answers."""
    made: list[tuple[str, str, list[str], list[str]]] = []
    for runtime, url in (("docker", DOCKER_URL), ("podman", PODMAN_URL)):
        try:
            made.append((runtime, url, _standin(runtime, url), _volumes(runtime, url)))
        except Exception as err:  # an engine that is not there: its blocks fail and say why
            print(f"docs: no stand-in images on {runtime}: {err}", file=sys.stderr)
    yield
    for runtime, url, refs, volumes in made:
        _untag(runtime, url, refs)
        _volumes(runtime, url, remove=volumes)  # only those the pages made


#: Named volumes the pages' examples mount (the engines create them on first use).
DOC_VOLUMES = ("myapp-cache",)


def _volumes(runtime: str, url: str, remove: list[str] | None = None) -> list[str]:
    """The :data:`DOC_VOLUMES` the engine lacks; with ``remove``, remove those first."""
    if runtime == "docker":
        import docker

        client: Any = docker.DockerClient(base_url=url)
    else:
        import podman

        client = podman.PodmanClient(base_url=url)
    for name in remove or []:
        with contextlib.suppress(Exception):
            client.volumes.get(name).remove()
    absent = []
    for name in DOC_VOLUMES:
        try:
            client.volumes.get(name)
        except Exception:
            absent.append(name)
    client.close()
    return absent


#: Programs of the reader's that the pages run (on PATH in the reader's world).
READER_TOOLS = {
    "run-smoke-tests": "#!/bin/sh\necho 'smoke tests passed'\n",
    # A tunnel that stays open until it is stopped (no bastion here).
    "ssh": "#!/bin/sh\necho \"ssh $*: tunnel open\"\nwhile :; do sleep 3600; done\n",
}


def reader_functions(calls: list[str]) -> dict[str, object]:
    """The reader's own functions the pages call; each notes that it ran."""
    def alert(line: str) -> None:
        calls.append(f"alert: {line}")

    def run_migrations() -> None:
        calls.append("run_migrations")

    return {"alert": alert, "run_migrations": run_migrations}


@contextlib.contextmanager
def reader_world(tmp: Path) -> Iterator[dict[str, str]]:
    """A private tmux default server, state, config and cwd for one page."""
    saved_env = dict(os.environ)
    saved_cwd = os.getcwd()
    (tmp / "tmux").mkdir(mode=0o700)
    (tmp / "work").mkdir()
    os.environ.update(
        TMUX_TMPDIR=str(tmp / "tmux"),
        XDG_STATE_HOME=str(tmp / "state"),
        XDG_CONFIG_HOME=str(tmp / "config"),
    )
    # What the pages' examples assume is in the reader's folder.
    (tmp / "work" / "bot.py").write_text(
        "import os, time\n"
        "print(f\"connected to exchange ({os.environ.get('MODE', 'test')} mode)\", flush=True)\n"
        "while True:\n    time.sleep(1)\n"
    )
    (tmp / "work" / "api.py").write_text(
        "import time\nprint('listening on 127.0.0.1:8000', flush=True)\n"
        "while True:\n    time.sleep(1)\n"
    )
    (tmp / "work" / "data").mkdir()  # a bind mount's source (Podman wants it to exist)
    (tmp / "bin").mkdir()
    for tool, body in READER_TOOLS.items():
        (tmp / "bin" / tool).write_text(body)
        (tmp / "bin" / tool).chmod(0o755)
    os.environ["PATH"] = f"{tmp / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    os.environ.pop("TMUX", None)
    os.environ.pop("KSTLIB_CONFIG", None)
    os.chdir(tmp / "work")
    try:
        yield dict(os.environ)
    finally:
        os.chdir(saved_cwd)
        subprocess.run(["tmux", "kill-server"], capture_output=True, check=False,
                       env=dict(os.environ))
        os.environ.clear()
        os.environ.update(saved_env)


MARK = "@@docs-step"


def run_console(block: Block, env: dict[str, str]) -> None:
    """Run the block's ``$ kstlib ...`` lines in one shell; what the page shows must appear."""
    env = dict(env, PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}")
    steps: list[tuple[str, list[str]]] = []
    for raw in as_run_here(block.code).splitlines():
        if raw.startswith("$ "):
            steps.append((raw[2:].split(" #", 1)[0].strip(), []))
        elif steps:
            steps[-1][1].append(raw)
    script = ["exec 2>&1"]
    for i, (command, _) in enumerate(steps):
        words = shlex.split(command)[:1]
        if words != ["kstlib"] and words != ["echo"] and not ASSIGN_KSTLIB.match(command):
            pytest.fail(f"{block.where}: only kstlib commands run here; mark the block "
                        f"'<!-- docs-test: skip (why) -->' for {command!r}", pytrace=False)
        script += [command, f"printf '\\n{MARK} {i} %d\\n' $?"]
    done = subprocess.run(["bash", "-c", "\n".join(script)], capture_output=True, text=True,
                          env=env, timeout=120 * len(steps), check=False)
    said: list[list[str]] = [[] for _ in steps]
    codes: list[int | None] = [None for _ in steps]
    i = 0
    for line in done.stdout.splitlines():
        if line.startswith(MARK):
            _, n, code = line.split()
            codes[int(n)] = int(code)
            i = int(n) + 1
        elif line and i < len(steps):
            said[i].append(line)
    for (command, shown), out, code in zip(steps, said, codes):
        expected = [line for line in shown if line.startswith("kstlib:") or line.isdigit()]
        if command.startswith("echo "):
            expected = [line for line in shown if line.strip()]
        missing = [line for line in expected if line not in out]
        if code is None or missing:
            pytest.fail(f"{block.where}: {command!r} did not print {missing} (exit {code}); "
                        "it printed:\n" + "\n".join(out), pytrace=False)
        if not expected and code not in (0, 3):
            pytest.fail(f"{block.where}: {command!r} exited {code}:\n" + "\n".join(out),
                        pytrace=False)


#: ``name=$(kstlib ...)``: a kstlib command whose output a script keeps.
ASSIGN_KSTLIB = re.compile(r"^[A-Za-z_]\w*=\$\(kstlib\s")


def page_ids() -> list[str]:
    return [str(p.relative_to(ROOT)) for p in PAGES]


@pytest.mark.parametrize("page", PAGES, ids=page_ids())
def test_every_code_block_of_the_page_runs(page: Path, tmp_path: Path, doc_images: None) -> None:
    every = blocks(page)
    runnable = [b for b in every if b.lang in RUNNABLE]
    if not runnable:
        return
    calls: list[str] = []
    namespace: dict[str, object] = {"__name__": "__docs__", **reader_functions(calls)}
    ran = 0
    began = datetime.now(timezone.utc) - timedelta(seconds=2)  # engine clocks round down
    with reader_world(tmp_path) as env:
        try:
            for block in every:
                for file in block.files:
                    Path(file).write_text(block.code + "\n")
                if block.skip or block.lang not in RUNNABLE:
                    continue
                with stopping(block, namespace):
                    if block.lang == "python":
                        try:
                            run_python(block, namespace)
                        except Exception as err:
                            pytest.fail(f"{block.where}: {type(err).__name__}: {err}",
                                        pytrace=False)
                    else:
                        run_console(block, env)
                ran += 1
        finally:
            cleanup(namespace, began, page)
    assert ran + sum(1 for b in runnable if b.skip) == len(runnable)


def run_python(block: Block, namespace: dict[str, object]) -> None:
    """Run a Python block; top-level ``await`` (a notebook cell) runs in an event loop."""
    import ast
    import asyncio
    import inspect

    code = compile(as_run_here(block.code), block.where, "exec",
                   flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(code, namespace)  # noqa: S307 - the docs' own example
    if inspect.iscoroutine(result):
        asyncio.run(result)


@contextlib.contextmanager
def stopping(block: Block, namespace: dict[str, object]) -> Iterator[None]:
    """Stop the block's ``stop NAME after N s`` session from another thread (what a reader does)."""
    if block.stop is None:
        yield
        return
    import threading

    name, after = block.stop
    manager: Any = namespace.get(name)
    assert manager is not None, f"{block.where}: no {name!r} in the page to stop"
    timer = threading.Timer(after, lambda: manager.stop(graceful=False))
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        timer.join()


def cleanup(namespace: dict[str, object], since: datetime | None = None,
            page: Path | None = None) -> None:
    """Stop every session a page's managers still have, and the containers it started.

    A container counts as the page's when kstlib made it after the page began
    and the page names it (other tests' containers have names of their own).
    """
    import warnings

    from kstlib.ops import ContainerRunner, OpsError, SessionManager
    from kstlib.ops.discovery import list_sessions

    from kstlib.ops.aio import AsyncSessionManager

    for value in namespace.values():
        if isinstance(value, AsyncSessionManager):
            value = value.sync
        if isinstance(value, SessionManager):
            with contextlib.suppress(OpsError):
                value.stop(graceful=False)
    if since is None or page is None:
        return
    words = set(re.findall(r"[A-Za-z][A-Za-z0-9_-]*", page.read_text()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = list_sessions(tmux=False)
    for row in rows:
        if row.managed and row.name in words and row.created_at is not None \
                and row.created_at >= since:
            with contextlib.suppress(OpsError):
                ContainerRunner(runtime=row.runtime).stop(row.name, graceful=False)


def test_markers_say_why() -> None:
    for page in PAGES:
        for block in blocks(page):
            if block.skip is not None:
                assert len(block.skip.strip()) > 5, f"{block.where}: say why it cannot run"


def test_skipped_blocks_stay_few() -> None:
    """At least 90% of the examples run (26 of 42 were skipped before the stand-ins ran)."""
    runnable = [b for p in PAGES for b in blocks(p) if b.lang in RUNNABLE]
    skipped = [b.where for b in runnable if b.skip]
    assert len(skipped) <= len(runnable) // 10, skipped


def test_shell_blocks_hold_no_kstlib_example() -> None:
    """``shell`` blocks are the repository's own set-up commands, never a kstlib example."""
    for page in PAGES:
        for block in blocks(page):
            if block.lang != "shell":
                continue
            lines = block.code.splitlines()
            prompted = [line[2:] for line in lines if line.startswith("$ ")]
            for line in prompted or lines:  # the commands, not the output they show
                command = line.split(" #", 1)[0]
                assert not re.search(r"(^|[\s;&|(])kstlib(\s|$)", command), f"{block.where}: {command}"
                assert "import kstlib" not in command, f"{block.where}: {command}"


def test_most_of_the_docs_runs() -> None:
    """Guard against a harness that would skip everything: the runnable blocks stay run."""
    run = [b for p in PAGES for b in blocks(p) if b.lang in RUNNABLE and not b.skip]
    assert len(run) >= 16, [b.where for b in run]
    assert {b.page.name for b in run} >= {"README.md", "cli.md", "exceptions.md",
                                         "guide-automation.md", "guide-notebooks.md"}
