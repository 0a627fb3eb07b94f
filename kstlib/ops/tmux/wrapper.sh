# kstlib.ops tmux session wrapper (POSIX sh). tmux runs it as the pane's process:
#   sh wrapper.sh TMUX_BIN RESTART_MODE MOST_RESTARTS RUN_FILE COMMAND...
# It runs COMMAND as its only child, records the exit status in the pane option
# @kstlib-exit (tmux loses the status of a process that exits at once), applies
# the restart policy with a back-off, and prints the run's end-of-output mark.
# The run file (0600) holds the environment and the end-mark nonce; it is read
# through a descriptor and deleted before anything else runs, so no value ever
# sits on a command line or stays at rest.
t=$1 mode=$2 most=$3 f=$4
shift 4
pane=$TMUX_PANE tmux_env=$TMUX
if [ "$mode" != no ]; then
    sleep_bin=$(command -v sleep) date_bin=$(command -v date)
fi
exec 3<"$f" && rm -f -- "$f"
unset _kstlib_nonce
. /dev/fd/3
exec 3<&-

# Say why a command cannot run as a shell would, but without this script's name.
run() {
    if ! command -v -- "$1" >/dev/null 2>&1; then
        printf '%s: not found\n' "$1" >&2
        return 127
    fi
    case $1 in */*) if [ -d "$1" ] || [ ! -x "$1" ]; then
        printf '%s: Permission denied\n' "$1" >&2
        return 126
    fi ;; esac
    "$@"
}

note() { TMUX=$tmux_env "$t" set-option -p -t "$pane" "$1" "$2" 2>/dev/null; }

stop=0 n=0 delay=100
# TERM/INT only end the loop: the command keeps the default dispositions and
# its own traps. HUP keeps its default, so a vanished terminal takes us along.
trap 'stop=1' TERM INT
while :; do
    [ "$mode" = no ] || began=$("$date_bin" +%s)
    run "$@"
    s=$?
    note @kstlib-exit "$s"
    [ "$stop" = 1 ] && break
    case $mode in
        always|unless-stopped) ;;
        on-failure) [ "$s" -ne 0 ] || break; [ "$most" -eq 0 ] || [ "$n" -lt "$most" ] || break ;;
        *) break ;;
    esac
    # Back-off as the engines do it: 100 ms doubling up to 10 s, reset once a
    # run lasted 10 s.
    [ $(($("$date_bin" +%s) - began)) -ge 10 ] && delay=100
    n=$((n + 1))
    note @kstlib-restarts "$n"
    "$sleep_bin" "$((delay / 1000)).$((delay % 1000 / 100))$((delay % 100 / 10))$((delay % 10))"
    [ "$stop" = 1 ] && break
    delay=$((delay * 2))
    [ "$delay" -le 10000 ] || delay=10000
done
printf '\033]7707;kstlib-end;%s\007' "$_kstlib_nonce"
exit "$s"
