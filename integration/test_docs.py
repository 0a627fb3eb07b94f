"""Every code block of README.md and docs/ runs as a reader would run it.

Python blocks of one page run in order in one namespace (a reader keeps their
interpreter open); console blocks run each ``$ kstlib ...`` line with the
CLI. A block that cannot run here says so right above its fence:

    <!-- docs-test: skip (why) -->

Each page runs with a private tmux default server (``TMUX_TMPDIR``), its own
state and config folders and a scratch working folder, and everything it
started is removed afterwards.
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
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w+)\s*$")
SKIP = re.compile(r"<!--\s*docs-test:\s*skip\s*\((.+?)\)\s*-->")
RUNNABLE = {"python", "console"}


@dataclass
class Block:
    page: Path
    line: int
    lang: str
    code: str
    skip: str | None

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
        out.append(Block(page, start + 1, lang, "\n".join(body), marker.group(1) if marker else None))
    return out


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


def run_console(block: Block, env: dict[str, str]) -> None:
    """Run each ``$ kstlib ...`` line in a shell; the page's ``kstlib:`` lines must appear."""
    env = dict(env, PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}")
    steps: list[tuple[str, list[str]]] = []
    for raw in block.code.splitlines():
        if raw.startswith("$ "):
            steps.append((raw[2:].split(" #", 1)[0].strip(), []))
        elif steps:
            steps[-1][1].append(raw)
    for command, shown in steps:
        if shlex.split(command)[:1] != ["kstlib"]:
            pytest.fail(f"{block.where}: only kstlib commands run here; mark the block "
                        f"'<!-- docs-test: skip (why) -->' for {command!r}", pytrace=False)
        done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, env=env,
                              timeout=120, check=False)
        said = (done.stdout + done.stderr).splitlines()
        expected = [line for line in shown if line.startswith("kstlib:") or line.isdigit()]
        missing = [line for line in expected if line not in said]
        if missing:
            pytest.fail(f"{block.where}: {command!r} did not print {missing}; it printed:\n"
                        + "\n".join(said), pytrace=False)
        if not expected and done.returncode not in (0, 3):
            pytest.fail(f"{block.where}: {command!r} exited {done.returncode}:\n"
                        + "\n".join(said), pytrace=False)


def page_ids() -> list[str]:
    return [str(p.relative_to(ROOT)) for p in PAGES]


@pytest.mark.parametrize("page", PAGES, ids=page_ids())
def test_every_code_block_of_the_page_runs(page: Path, tmp_path: Path) -> None:
    runnable = [b for b in blocks(page) if b.lang in RUNNABLE]
    if not runnable:
        return
    namespace: dict[str, object] = {"__name__": "__docs__"}
    ran = 0
    with reader_world(tmp_path) as env:
        try:
            for block in runnable:
                if block.skip:
                    continue
                if block.lang == "python":
                    try:
                        exec(compile(block.code, block.where, "exec"), namespace)
                    except Exception as err:
                        pytest.fail(f"{block.where}: {type(err).__name__}: {err}", pytrace=False)
                else:
                    run_console(block, env)
                ran += 1
        finally:
            cleanup(namespace)
    assert ran + sum(1 for b in runnable if b.skip) == len(runnable)


def cleanup(namespace: dict[str, object]) -> None:
    """Stop every session a page's managers still have."""
    from kstlib.ops import OpsError, SessionManager

    for value in namespace.values():
        if isinstance(value, SessionManager):
            with contextlib.suppress(OpsError):
                value.stop(graceful=False)


def test_markers_say_why() -> None:
    for page in PAGES:
        for block in blocks(page):
            if block.skip is not None:
                assert len(block.skip.strip()) > 5, f"{block.where}: say why it cannot run"


def test_most_of_the_docs_runs() -> None:
    """Guard against a harness that would skip everything: the runnable blocks stay run."""
    run = [b for p in PAGES for b in blocks(p) if b.lang in RUNNABLE and not b.skip]
    assert len(run) >= 16, [b.where for b in run]
    assert {b.page.name for b in run} >= {"README.md", "cli.md", "exceptions.md",
                                         "guide-automation.md", "guide-notebooks.md"}
