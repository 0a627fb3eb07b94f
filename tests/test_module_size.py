"""No kstlib module grows past 600 lines: past that, split it by concern (see docs/architecture)."""

from __future__ import annotations

from pathlib import Path

import kstlib

LIMIT = 600


def test_every_module_is_under_the_limit() -> None:
    root = Path(kstlib.__file__).parent
    sizes = {str(p.relative_to(root)): len(p.read_text().splitlines()) for p in root.rglob("*.py")}
    assert len(sizes) > 50  # the whole package was read
    assert {path: n for path, n in sizes.items() if n > LIMIT} == {}
