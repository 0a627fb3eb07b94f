"""``kstlib.ops.__all__`` is the documented surface, and the API reference keeps in step with it."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import kstlib.ops as ops

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = ("api.md", "exceptions.md", "registries.md")


def _documented() -> tuple[str, set[str]]:
    text = "\n".join((DOCS / page).read_text() for page in PAGES)
    modules = set(re.findall(r"^\.\. automodule:: (\S+)\n\s+:members:", text, re.MULTILINE))
    return text, modules


def test_every_public_name_is_importable_and_documented() -> None:
    text, modules = _documented()
    missing = []
    for name in ops.__all__:
        obj = getattr(ops, name)
        home = getattr(obj, "__module__", "")
        named = f"kstlib.ops.{name}" in text or re.search(rf"\b{name}\b", text) is not None
        if not named and home not in modules:
            missing.append(name)
    assert missing == []


def test_engine_config_is_exported_from_one_public_path() -> None:
    from kstlib.ops.config import EngineConfig

    assert ops.EngineConfig is EngineConfig and "EngineConfig" in ops.__all__
    assert sorted(ops.__all__) == sorted(set(ops.__all__)) == ops.__dir__()


def test_the_kstlib_logger_has_a_null_handler() -> None:
    import logging

    importlib.import_module("kstlib")
    assert any(isinstance(h, logging.NullHandler) for h in logging.getLogger("kstlib").handlers)
