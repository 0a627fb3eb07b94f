# kstlib.ops tmux session wrapper (POSIX sh). tmux runs it as the pane's process:
#   sh wrapper.sh TMUX_BIN RESTART_MODE MOST_RESTARTS RUN_FILE COMMAND...
# It runs COMMAND as its only child, records the exit status in the pane option
# @kstlib-exit (tmux loses the status of a process that exits at once), applies
# the restart policy with a back-off, and prints the run's end-of-output mark.
# The run file (0600) holds the end-mark nonce on its first line, then the
# environment as "export KEY='value'" lines; it is read through a descriptor and
# deleted before anything else runs, so no value ever sits on a command line or
# stays at rest.
#
# The environment is applied in this very shell, so every variable and function
# of the wrapper is named __kstlib_* (kstlib refuses env keys with that prefix)
# and everything it needs is resolved before the environment applies: no key
# (PATH, IFS, TMUX, a name of ours) can change the end mark, which session's
# pane is written, or the restart policy. The nonce is never exported.
__kstlib_t=$1 __kstlib_mode=$2 __kstlib_most=$3 __kstlib_f=$4
shift 4
__kstlib_pane=$TMUX_PANE __kstlib_tmux_env=$TMUX __kstlib_ex=${__kstlib_f%.env}.exit
case $__kstlib_t in  # kstlib passes an absolute path: no subshell to resolve it
    /*) ;;
    *) __kstlib_x=$(command -v -- "$__kstlib_t") && __kstlib_t=$__kstlib_x ;;
esac
if [ "$__kstlib_mode" != no ]; then
    __kstlib_sleep=$(command -v sleep) __kstlib_date=$(command -v date)
fi
exec 3<"$__kstlib_f" && rm -f -- "$__kstlib_f"
# The first line is the nonce; the rest (from the descriptor's offset, which
# cat shares) is the environment. A line read byte-wise leaves the offset there.
IFS= read -r __kstlib_nonce <&3
__kstlib_envs=$(cat <&3) || exit 125
exec 3<&-
eval "$__kstlib_envs"
unset __kstlib_envs

# Say why a command cannot run as a shell would, but without this script's name.
__kstlib_run() {
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

__kstlib_note() {
    TMUX=$__kstlib_tmux_env "$__kstlib_t" set-option -p -t "$__kstlib_pane" "$1" "$2" 2>/dev/null
}

# An exit for the collector: the file (kept if it is gone: never made again here),
# then the mark in the output. Both carry the run's number: it tells it once.
__kstlib_exited() {
    [ -f "$__kstlib_ex" ] && printf '%s %s %s %s\n' "$__kstlib_n" "$1" "$2" "$3" \
        2>/dev/null >>"$__kstlib_ex"
    printf '\033]7707;kstlib-ev;%s;exit;%s;%s;%s\007' "$__kstlib_nonce" "$1" "$2" "$__kstlib_n"
}

__kstlib_stop=0 __kstlib_n=0 __kstlib_delay=100 __kstlib_began=0
# TERM/INT only end the loop: the command keeps the default dispositions and
# its own traps. HUP keeps its default, so a vanished terminal takes us along.
# One that came before a run began (a C-c right after start) is the run's end.
trap '__kstlib_stop=143' TERM
trap '__kstlib_stop=130' INT
while :; do
    if [ "$__kstlib_stop" != 0 ]; then
        __kstlib_s=$__kstlib_stop
        __kstlib_note @kstlib-exit "$__kstlib_s"
        __kstlib_exited "$__kstlib_s" 1 0
        break
    fi
    [ "$__kstlib_mode" = no ] || __kstlib_began=$("$__kstlib_date" +%s)
    # Event marks for the collector (the run's nonce makes them unforgeable).
    printf '\033]7707;kstlib-ev;%s;run;%s\007' "$__kstlib_nonce" "$__kstlib_n"
    __kstlib_run "$@"
    __kstlib_s=$?
    if [ "$__kstlib_mode" = no ]; then
        __kstlib_note @kstlib-exit "$__kstlib_s"
    else
        # The last run's code and end time stay readable while it restarts.
        TMUX=$__kstlib_tmux_env "$__kstlib_t" set-option -p -t "$__kstlib_pane" \
            @kstlib-exit "$__kstlib_s" \; set-option -p -t "$__kstlib_pane" \
            @kstlib-last "$__kstlib_s $("$__kstlib_date" +%s)" 2>/dev/null
    fi
    __kstlib_exited "$__kstlib_s" "$__kstlib_stop" 1
    [ "$__kstlib_stop" != 0 ] && break
    case $__kstlib_mode in
        always|unless-stopped) ;;
        on-failure)
            [ "$__kstlib_s" -ne 0 ] || break
            [ "$__kstlib_most" -eq 0 ] || [ "$__kstlib_n" -lt "$__kstlib_most" ] || break ;;
        *) break ;;
    esac
    # Back-off as the engines do it: 100 ms doubling up to 10 s, reset once a
    # run lasted 10 s.
    [ "$(($("$__kstlib_date" +%s) - __kstlib_began))" -ge 10 ] && __kstlib_delay=100
    __kstlib_n=$((__kstlib_n + 1))
    __kstlib_note @kstlib-restarts "$__kstlib_n"
    "$__kstlib_sleep" "$((__kstlib_delay / 1000)).$((__kstlib_delay % 1000 / 100))$((__kstlib_delay % 100 / 10))$((__kstlib_delay % 10))"
    [ "$__kstlib_stop" != 0 ] && break
    __kstlib_delay=$((__kstlib_delay * 2))
    [ "$__kstlib_delay" -le 10000 ] || __kstlib_delay=10000
done
printf '\033]7707;kstlib-end;%s\007' "$__kstlib_nonce"
exit "$__kstlib_s"
