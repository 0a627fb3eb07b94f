"""The tmux backend: :class:`TmuxRunner` and what it is made of.

Internal package: the public API is :mod:`kstlib.ops` (``kstlib.ops.__all__``).

* :mod:`~kstlib.ops.tmux.runner`: the session lifecycle (start, stop, status, list).
* :mod:`~kstlib.ops.tmux.logs`: reading, following and waiting on a session's output.
* :mod:`~kstlib.ops.tmux.client`: the server connection, bounded calls, pane queries.
* :mod:`~kstlib.ops.tmux.call`: one tmux call with its timeout, escaping, error translation.
* :mod:`~kstlib.ops.tmux.pane`: the query format and its parsing.
* :mod:`~kstlib.ops.tmux.files`: the server's private folder and each run's files.
* :mod:`~kstlib.ops.tmux.collector`: the per-server log collector program.
* ``wrapper.sh``: the per-session shell wrapper (exit status, restarts, end mark).

Example:
    >>> from kstlib.ops.tmux import TmuxRunner
    >>> TmuxRunner(socket_name="kstlib-doc").exists("nope")
    False
"""

from kstlib.ops.tmux.pane import MANAGED_OPTION
from kstlib.ops.tmux.runner import TmuxRunner
from kstlib.ops.tmux.sockets import user_sockets

#: Upstream kstlib's name: the user's live tmux servers other than the default one.
discover_tmux_sockets = user_sockets

__all__ = ["MANAGED_OPTION", "TmuxRunner", "discover_tmux_sockets"]
