"""What a notebook shows for logs() and a pull's progress, checked as HTML (no browser)."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest

from kstlib.ops.display import LogText, PlainLine, sgr_to_html
from kstlib.ops.images import PullProgress
from kstlib.ops.images import notebook_progress


@pytest.mark.parametrize(
    ("text", "html"),
    [
        ("\x1b[31mred\x1b[0m plain", '<span style="color:#cd3131">red</span> plain'),
        (
            "\x1b[1;92mok\x1b[22m!",
            '<span style="color:#23d18b;font-weight:bold">ok</span>'
            '<span style="color:#23d18b">!</span>',
        ),
        ("\x1b[38;5;196mx\x1b[39my", '<span style="color:#ff0000">x</span>y'),
        ("\x1b[48;2;1;2;3mx\x1b[m", '<span style="background-color:#010203">x</span>'),
        ("\x1b[4munder\x1b[24m", '<span style="text-decoration:underline">under</span>'),
        ("<script>&\"'", "&lt;script&gt;&amp;\"'"),
        ("a\x1b[2Kb\x1b]0;title\x07c\x1b(Bd", "abcd"),
        ("\x1b[31m<b>\x1b[0m", '<span style="color:#cd3131">&lt;b&gt;</span>'),
    ],
)
def test_sgr_colours_render_and_everything_else_is_escaped(text: str, html: str) -> None:
    assert sgr_to_html(text) == html


def test_log_text_is_the_text_with_an_html_view() -> None:
    raw = "\x1b[31merror\x1b[0m: <disk> full\nnext"
    text = LogText(raw)
    assert isinstance(text, str) and text == raw and repr(text) == repr(raw)
    assert text.splitlines() == raw.splitlines()
    view = text._repr_html_()
    assert view.startswith('<pre class="kstlib-logs">') and view.endswith("</pre>")
    assert '<span style="color:#cd3131">error</span>: &lt;disk&gt; full\nnext' in view
    assert "\x1b" not in view


class _Printer:
    """IPython's pretty printer, as far as ``_repr_pretty_`` uses it."""

    def __init__(self) -> None:
        self.out: list[str] = []

    def text(self, value: str) -> None:
        self.out.append(value)


def test_a_pull_in_a_notebook_ends_as_text_not_a_quoted_repr(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shown: list[Any] = []

    class Handle:
        def update(self, obj: Any) -> None:
            shown.append(obj)

    def display(obj: Any, display_id: bool = False) -> Handle:
        shown.append(obj)
        return Handle()

    ipython = types.ModuleType("IPython")
    ipython_display = types.ModuleType("IPython.display")
    ipython_display.display = display  # type: ignore[attr-defined]
    ipython.get_ipython = lambda: types.SimpleNamespace(kernel=object())  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", ipython_display)
    show = notebook_progress()
    assert show is not None
    image = "127.0.0.1:5000/team/app<1>"
    show(PullProgress(image, None, "pulling"))
    show(PullProgress(image, None, "complete"))
    last = shown[-1]
    assert isinstance(last, PlainLine)
    printer = _Printer()
    last._repr_pretty_(printer, False)
    assert printer.out == [f"Pulled {image} (0 layers)"]  # no quotes around it
    assert last._repr_html_() == "<code>Pulled 127.0.0.1:5000/team/app&lt;1&gt; (0 layers)</code>"
