"""logs() as a notebook cell's value: the session's colours as HTML, on a real tmux session."""

from __future__ import annotations

import pytest

from kstlib.ops import SessionManager
from kstlib.ops.display import LogText

from .conftest import unique


@pytest.mark.tmux
def test_logs_of_a_coloured_session_render_as_html(tmux_socket: str) -> None:
    bot = SessionManager(
        unique("nb"),
        command=r"printf '\033[31mERROR\033[0m <disk> & \033[1mfull\033[0m\n'",
        socket_name=tmux_socket,
    )
    bot.start()
    try:
        assert bot.wait(timeout=10) == 0
        text = bot.logs()
        assert isinstance(text, LogText)
        assert text == "\x1b[31mERROR\x1b[0m <disk> & \x1b[1mfull\x1b[0m"
        view = text._repr_html_()
        assert '<span style="color:#cd3131">ERROR</span> &lt;disk&gt; &amp; ' in view
        assert '<span style="font-weight:bold">full</span>' in view
        assert "\x1b" not in view
        assert bot.logs(ansi=False)._repr_html_() == (
            '<pre class="kstlib-logs">ERROR &lt;disk&gt; &amp; full</pre>'
        )
    finally:
        bot.stop(graceful=False)
