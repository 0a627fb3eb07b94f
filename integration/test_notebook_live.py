"""The notebook guide's live table, executed headlessly in a real kernel against real Docker.

The guide's "A live table" cells become a notebook run by nbclient in an
ipykernel started with this virtualenv's Python; the table must be displayed
once and then updated in place (``update_display_data`` on the same display id).
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from .conftest import unique

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "guide-notebooks.md"
KERNEL = "kstlib-live-test"


def section_cells(title: str) -> list[str]:
    """The ``python`` blocks of the guide's section ``title``."""
    text = GUIDE.read_text()
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    body = text[start : end if end != -1 else None]
    return re.findall(r"```python\n(.*?)```", body, re.DOTALL)


class Recording(NotebookClient):  # type: ignore[misc]
    """Keeps every message the kernel sent about a cell, as ``(type, content)``.

    The type is kept as it came: nbclient rewrites an ``update_display_data``
    header to ``display_data`` when it applies the update to the notebook.
    """

    messages: list[tuple[str, dict[str, Any]]]

    def process_message(self, msg: dict[str, Any], cell: Any, cell_index: int) -> Any:
        self.messages.append((msg["header"]["msg_type"], msg["content"]))
        return super().process_message(msg, cell, cell_index)


@pytest.fixture
def kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernel spec that runs this virtualenv's Python, with this tree first on the path."""
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": KERNEL, "language": "python"})
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    return KERNEL


def test_the_guide_s_live_table_updates_in_place_in_a_kernel(kernel: str) -> None:
    name = unique("nb-worker")
    cells = [code.replace("nb-worker", name) for code in section_cells("A live table")]
    assert cells and "fleet.show()" in cells[0]
    probe = "import sys; print(sys.executable)"
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(probe), *map(nbformat.v4.new_code_cell, cells)]
    )
    client = Recording(nb, kernel_name=kernel, timeout=180)
    client.messages = []
    try:
        client.execute()
    finally:
        from kstlib.ops import ContainerRunner, OpsError

        with contextlib.suppress(OpsError):  # the guide stopped it
            ContainerRunner(runtime="docker").stop(name, graceful=False)
    assert nb.cells[0].outputs[0]["text"].strip() == sys.executable  # this virtualenv's kernel
    kinds = [kind for kind, _ in client.messages]
    assert "error" not in kinds, [c for _, c in client.messages if "ename" in c]
    shown = [c for kind, c in client.messages if kind == "display_data"]
    updates = [c for kind, c in client.messages if kind == "update_display_data"]
    assert len(shown) == 1  # one display...
    display_id = shown[0]["transient"]["display_id"]
    assert name not in shown[0]["data"]["text/html"]  # shown before it started
    assert updates  # ...then updated in place
    assert {c["transient"]["display_id"] for c in updates} == {display_id}
    last = updates[-1]["data"]
    assert f"<td>{name}</td>" in last["text/html"]
    row = re.search(rf"<tr><td>{re.escape(name)}</td>.*?</tr>", last["text/html"])
    assert row is not None and "<td>exited</td>" in row.group(0) and "<td>3</td>" in row.group(0)
    assert "text/plain" in last and name in last["text/plain"]
    # the notebook keeps the last table where the first was shown
    output = nb.cells[1].outputs[0]
    assert output["output_type"] == "display_data"
    assert output["data"]["text/html"] == last["text/html"]
