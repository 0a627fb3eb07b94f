"""tmux key names: when a ``send_keys`` string is one key, not text to type.

``send_keys(name, "C-c", enter=False)`` means Ctrl-C, as upstream kstlib and
tmux's own ``send-keys`` read it; ``send_keys(name, "ls -l")`` is text. A
string that is exactly one tmux key name (optional ``C-``/``M-``/``S-``
modifiers, then a named key or, after a modifier, one character) is sent as
that key unless the caller says otherwise (``literal=``).

Example:
    >>> [is_key_name(k) for k in ("C-c", "M-x", "Enter", "PageUp", "F12", "S-Up", "C-M-a")]
    [True, True, True, True, True, True, True]
    >>> [is_key_name(k) for k in ("ls", "c", "C-", "F13", "Enter ", "end", "C-cc")]
    [False, False, False, False, False, False, False]
"""

from __future__ import annotations

import re

__all__ = ["is_key_name"]

# The named keys of tmux's key-string.c, as spelt there: tmux itself takes "end"
# as End, but a lower-case word is far more likely text.
_NAMED = (
    "F1|F2|F3|F4|F5|F6|F7|F8|F9|F10|F11|F12|IC|Insert|DC|Delete|Home|End|NPage|PageDown|PgDn"
    "|PPage|PageUp|PgUp|Tab|BTab|Space|BSpace|Enter|Escape|Up|Down|Left|Right"
    r"|KP/|KP\*|KP-|KP7|KP8|KP9|KP\+|KP4|KP5|KP6|KP1|KP2|KP3|KPEnter|KP0|KP\."
)
_KEY = re.compile(rf"(?:[CMS]-)*(?:{_NAMED})|(?:[CMS]-)+[!-~]")


def is_key_name(keys: str) -> bool:
    """Whether ``keys`` is exactly one tmux key name (``C-c``, ``Escape``, ``F5`` ...).

    Example:
        >>> is_key_name("Escape"), is_key_name("Escape now")
        (True, False)
    """
    return _KEY.fullmatch(keys) is not None
