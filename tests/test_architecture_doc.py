"""docs/architecture.md lists every module of ``kstlib/``, and only modules that exist.

Each module appears as its path under ``kstlib/`` in backticks (``ops/tmux/runner.py``),
so a module added, moved or renamed without a line in the map fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "kstlib"
DOC = ROOT / "docs" / "architecture.md"


def modules() -> set[str]:
    return {p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py")}


def listed() -> set[str]:
    """The backticked paths of the doc's module tables (first column of each row)."""
    return set(re.findall(r"^\| `([\w/]+\.py)` \|", DOC.read_text(), flags=re.MULTILINE))


def test_every_module_of_kstlib_is_in_the_architecture_doc() -> None:
    found = modules()
    assert len(found) > 50  # the whole package was walked
    assert sorted(found - listed()) == []


def test_the_architecture_doc_names_no_module_that_does_not_exist() -> None:
    assert sorted(listed() - modules()) == []


def test_a_module_missing_from_the_doc_would_be_seen() -> None:
    assert "ops/manager.py" in listed()
    assert "ops/no_such_module.py" not in listed()
