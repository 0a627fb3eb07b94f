"""A real session lifecycle on tmux: start, status, output, stop.

Run it with ``make demo``. It uses a private tmux socket, so it never touches
your own tmux sessions, and removes everything it made.
"""

from __future__ import annotations

import os
import time

from kstlib.ops import SessionManager, SessionNotFoundError


def main() -> None:
    socket = f"kstlib-demo-{os.getpid()}"
    bot = SessionManager(
        "demo-bot",
        socket_name=socket,
        env={"GREETING": "hello from kstlib.ops"},
        command=[
            "sh",
            "-c",
            'trap \'echo "got SIGTERM, cleaning up"; exit 0\' TERM; '
            'echo "$GREETING"; i=0; while true; do i=$((i+1)); echo "tick $i"; sleep 0.2; done',
        ],
    )
    try:
        print(f"1. start   {bot!r} on tmux socket {socket!r}")
        st = bot.start()
        print(f"           state={st.state} pid={st.pid}")

        time.sleep(1)
        st = bot.status()
        print(f"2. status  state={st.state} pid={st.pid} managed={st.managed} "
              f"created_at={st.created_at:%Y-%m-%d %H:%M:%S %Z}")

        print("3. logs    (last 4 lines)")
        for line in bot.logs(lines=4).splitlines():
            print(f"           | {line}")

        began = time.monotonic()
        bot.stop(graceful=True, timeout=5)
        print(f"4. stop    SIGTERM sent; its trap exited the process in {time.monotonic() - began:.2f} s")

        try:
            bot.status()
        except SessionNotFoundError as err:
            print(f"5. status  after stop -> {type(err).__name__}: {err}")

        fast = SessionManager("demo-fast", socket_name=socket)
        fast.start("echo 'bye'; exit 3")
        time.sleep(0.3)
        st = fast.status()
        print(f"6. a command that exits by itself: state={st.state} exit_code={st.exit_code} "
              f"output={fast.logs()!r}")
        fast.stop()
    finally:
        from kstlib.ops import TmuxRunner

        TmuxRunner(socket_name=socket).kill_server()
    print("done: nothing left behind")


if __name__ == "__main__":
    main()
