"""How kstlib's text results look as a notebook cell's value.

Internal module: the public API is :mod:`kstlib.ops` (``kstlib.ops.__all__``).

A session's output keeps its colours (SGR escape sequences such as
``\\x1b[31m``); shown raw in a notebook they read as noise. :class:`LogText`,
what ``SessionManager.logs()`` returns, is the text itself (a ``str``) with an
HTML view that renders the colours and escapes everything else.
:class:`PlainLine` is a line for a display that updates in place (a pull's
progress): shown as the text, never as a quoted ``str`` repr.

Example:
    >>> LogText("\\x1b[31mred\\x1b[0m <b>").splitlines()
    ['\\x1b[31mred\\x1b[0m <b>']
    >>> LogText("\\x1b[31mred\\x1b[0m <b>")._repr_html_()
    '<pre class="kstlib-logs"><span style="color:#cd3131">red</span> &lt;b&gt;</pre>'
"""

from __future__ import annotations

import html
import re
from typing import Any

__all__ = ["LogText", "PlainLine", "sgr_to_html"]

# Every escape sequence: CSI (ESC [ ... final), OSC (ESC ] ... BEL or ST), the other
# ESC sequences (intermediate bytes, then a final one: ESC ( B), and a lone ESC.
_ESCAPE = re.compile(r"\x1b(?:\[([0-9;:?]*)([@-~])|\][^\x07\x1b]*(?:\x07|\x1b\\)|[ -/]*[0-~])?")
_BASE = (
    "#000000",
    "#cd3131",
    "#0dbc79",
    "#e5e510",
    "#2472c8",
    "#bc3fbc",
    "#11a8cd",
    "#e5e5e5",
)
_BRIGHT = (
    "#666666",
    "#f14c4c",
    "#23d18b",
    "#f5f543",
    "#3b8eea",
    "#d670d6",
    "#29b8db",
    "#ffffff",
)


def _xterm(n: int) -> str | None:
    """The colour of xterm-256 palette entry ``n``."""
    if 0 <= n < 8:
        return _BASE[n]
    if 8 <= n < 16:
        return _BRIGHT[n - 8]
    if 16 <= n < 232:
        n -= 16
        steps = (0, 95, 135, 175, 215, 255)
        return f"#{steps[n // 36]:02x}{steps[n // 6 % 6]:02x}{steps[n % 6]:02x}"
    if 232 <= n < 256:
        level = 8 + 10 * (n - 232)
        return f"#{level:02x}{level:02x}{level:02x}"
    return None


def _extended(codes: list[int], i: int) -> tuple[str | None, int]:
    """A ``38;5;N`` / ``38;2;R;G;B`` colour at ``codes[i]`` (the 5 or 2), and the next index."""
    if i < len(codes) and codes[i] == 5 and i + 1 < len(codes):
        return _xterm(codes[i + 1]), i + 2
    if i < len(codes) and codes[i] == 2 and i + 3 < len(codes):
        r, g, b = (max(0, min(255, c)) for c in codes[i + 1 : i + 4])
        return f"#{r:02x}{g:02x}{b:02x}", i + 4
    return None, len(codes)


def _apply(style: dict[str | int, Any], params: str) -> None:
    """Update ``style`` with one SGR sequence's parameters (``"1;31"``)."""
    codes = [int(p) if p.isdigit() else 0 for p in params.replace(":", ";").split(";")]
    i = 0
    while i < len(codes):
        code = codes[i]
        i += 1
        if code == 0:
            style.clear()
        elif code in (1, 2, 3, 4, 9):
            style[code] = True
        elif code == 22:
            style.pop(1, None)
            style.pop(2, None)
        elif code in (23, 24, 29):
            style.pop({23: 3, 24: 4, 29: 9}[code], None)
        elif 30 <= code <= 37 or 90 <= code <= 97:
            style["fg"] = _BASE[code - 30] if code < 90 else _BRIGHT[code - 90]
        elif 40 <= code <= 47 or 100 <= code <= 107:
            style["bg"] = _BASE[code - 40] if code < 100 else _BRIGHT[code - 100]
        elif code in (38, 48):
            colour, i = _extended(codes, i)
            if colour is not None:
                style["fg" if code == 38 else "bg"] = colour
        elif code == 39:
            style.pop("fg", None)
        elif code == 49:
            style.pop("bg", None)


def _css(style: dict[str | int, Any]) -> str:
    rules = []
    if "fg" in style:
        rules.append(f"color:{style['fg']}")
    if "bg" in style:
        rules.append(f"background-color:{style['bg']}")
    for code, rule in (
        (1, "font-weight:bold"),
        (2, "opacity:0.7"),
        (3, "font-style:italic"),
        (4, "text-decoration:underline"),
        (9, "text-decoration:line-through"),
    ):
        if style.get(code):
            rules.append(rule)
    return ";".join(rules)


def sgr_to_html(text: str) -> str:
    """``text`` as HTML: SGR colours and attributes as styled spans, the rest escaped.

    Escape sequences other than SGR (cursor moves, titles) are dropped.

    Example:
        >>> sgr_to_html("a \\x1b[1;32mok\\x1b[0m & \\x1b]0;title\\x07done")
        'a <span style="color:#0dbc79;font-weight:bold">ok</span> &amp; done'
    """
    out: list[str] = []
    style: dict[str | int, Any] = {}
    pos = 0

    def emit(chunk: str) -> None:
        if not chunk:
            return
        css = _css(style)
        body = html.escape(chunk, quote=False)
        out.append(f'<span style="{css}">{body}</span>' if css else body)

    for match in _ESCAPE.finditer(text):
        emit(text[pos : match.start()])
        pos = match.end()
        if match.group(2) == "m":
            _apply(style, match.group(1) or "0")
    emit(text[pos:])
    return "".join(out)


class LogText(str):
    """A session's output: the text itself, with an HTML view for notebooks.

    Example:
        >>> text = LogText("\\x1b[1mbold\\x1b[0m")
        >>> text == "\\x1b[1mbold\\x1b[0m", isinstance(text, str)
        (True, True)
    """

    __slots__ = ()

    def _repr_html_(self) -> str:
        """The output as HTML with its colours (what Jupyter shows as a cell's value)."""
        return f'<pre class="kstlib-logs">{sgr_to_html(str(self))}</pre>'


class PlainLine(str):
    """A line of text that a notebook shows as itself, not as a quoted ``str`` repr.

    Example:
        >>> line = PlainLine("Pulled app:1 (2 layers)")
        >>> line._repr_html_()
        '<code>Pulled app:1 (2 layers)</code>'
    """

    __slots__ = ()

    def _repr_html_(self) -> str:
        """The line as HTML (escaped)."""
        return f"<code>{html.escape(str(self), quote=False)}</code>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython's plain-text view: the text, without quotes."""
        printer.text(str(self))
