"""``import kstlib.ops`` loads no engine SDK and none of what a first call needs later.

The names of :mod:`kstlib.ops` beyond the exceptions load on first use
(PEP 562 ``__getattr__``); the import's time is measured in the benchmark
(``benchmarks/bench.py``, rows ``import kstlib.ops``), not asserted here.
Each check runs in a fresh interpreter, where nothing is imported yet.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SDKS = ("docker", "podman", "libtmux", "paramiko", "requests", "urllib3", "yaml")


def _loaded_after(statement: str) -> list[str]:
    """The top-level modules loaded by ``statement`` in a fresh interpreter."""
    probe = (
        "import sys, json; before = set(sys.modules); "
        f"{statement}; "
        "print(json.dumps(sorted(m for m in set(sys.modules) - before)))"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    return list(json.loads(done.stdout))


def test_import_kstlib_ops_loads_no_sdk_and_no_model() -> None:
    loaded = _loaded_after("import kstlib.ops")
    assert not [m for m in loaded if m.split(".")[0] in SDKS]
    ours = sorted(m for m in loaded if m.startswith("kstlib"))
    assert ours == ["kstlib", "kstlib.exceptions", "kstlib.ops", "kstlib.ops.exceptions"]
    assert "dataclasses" not in loaded


@pytest.mark.parametrize("name", ["SessionManager", "SessionConfig", "list_sessions"])
def test_a_first_name_loads_no_engine_sdk(name: str) -> None:
    loaded = _loaded_after(f"from kstlib.ops import {name}")
    assert not [m for m in loaded if m.split(".")[0] in SDKS]


def test_every_public_name_resolves_and_is_the_defining_modules() -> None:
    import kstlib.ops as ops

    for name in ops.__all__:
        value = getattr(ops, name)
        assert value is not None, name
    assert ops.SessionConfig is __import__("kstlib.ops.models", fromlist=["x"]).SessionConfig
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = ops.nope  # type: ignore[attr-defined]
