"""``kstlib.ops.__all__`` is the documented surface, and the API reference keeps in step with it."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import kstlib.ops as ops

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
#: The pages that document the surface (the exceptions have their own page).
PAGES = ("api.md", "registries.md")
DIRECTIVE = re.compile(r"^\.\. (auto\w+):: (\S+)", re.MULTILINE)
#: Modules users import by name: the namespace, the exceptions, the pytest plugin (pytest11).
PUBLIC_MODULES = ("ops/__init__.py", "ops/exceptions.py", "ops/pytest_plugin/")


def _directives() -> list[tuple[str, str]]:
    return [d for page in PAGES for d in DIRECTIVE.findall((DOCS / page).read_text())]


def test_every_public_name_is_importable_and_documented() -> None:
    documented = {target for _, target in _directives()}
    exceptions = (DOCS / "exceptions.md").read_text()
    assert ".. automodule:: kstlib.ops.exceptions" in exceptions
    missing = []
    for name in ops.__all__:
        obj = getattr(ops, name)
        if isinstance(obj, type) and issubclass(obj, ops.OpsError):
            continue  # documented with its tree on the exceptions page
        if f"kstlib.ops.{name}" not in documented:
            missing.append(name)
    assert missing == []


def test_the_api_pages_document_only_the_public_surface() -> None:
    outside = [
        (kind, target)
        for kind, target in _directives()
        if (kind, target) != ("automodule", "kstlib.ops")
        and target.removeprefix("kstlib.ops.") not in ops.__all__
    ]
    assert outside == []


def test_the_docs_name_one_import_path_per_public_name() -> None:
    # e.g. RegistryAuth is kstlib.ops.RegistryAuth, never kstlib.ops.images.RegistryAuth.
    names = "|".join(n for n in ops.__all__ if n[0].isupper() or "_" in n)
    other = re.compile(rf"kstlib\.ops\.(?!exceptions\b)[a-z_][\w.]*\.({names})\b")
    found = [
        f"{page.name}: {m.group(0)}"
        for page in sorted(DOCS.glob("*.md"))
        for m in other.finditer(page.read_text())
    ]
    found += [
        f"{page.name}: {m.group(0)}"
        for page in sorted(DOCS.glob("*.md"))
        for m in re.finditer(rf"from kstlib\.ops\.(?!exceptions\b)[\w.]+ import .*\b({names})\b",
                             page.read_text())
    ]
    assert found == []


def _says_internal(path: Path) -> bool:
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    return re.search(r"\binternal\b", doc, re.IGNORECASE) is not None


def _internal(path: Path) -> bool:
    """A leading underscore on the path, or its docstring or a package's below ``ops/`` says so."""
    ops_dir = ROOT / "kstlib" / "ops"
    rel = path.relative_to(ops_dir)
    if any(part.startswith("_") and part != "__init__.py" for part in rel.parts):
        return True
    packages = [p / "__init__.py" for p in path.parents if ops_dir in p.parents]
    return any(_says_internal(candidate) for candidate in [path, *packages])


def test_every_module_outside_the_public_surface_is_marked_internal() -> None:
    unmarked = []
    for path in sorted((ROOT / "kstlib" / "ops").rglob("*.py")):
        rel = path.relative_to(ROOT / "kstlib").as_posix()
        if not rel.startswith(PUBLIC_MODULES) and not _internal(path):
            unmarked.append(rel)
    assert unmarked == []


def test_engine_config_is_exported_from_one_public_path() -> None:
    from kstlib.ops.config import EngineConfig

    assert ops.EngineConfig is EngineConfig and "EngineConfig" in ops.__all__
    assert sorted(ops.__all__) == sorted(set(ops.__all__)) == ops.__dir__()


def test_the_kstlib_logger_has_a_null_handler() -> None:
    import logging

    importlib.import_module("kstlib")
    assert any(isinstance(h, logging.NullHandler) for h in logging.getLogger("kstlib").handlers)
