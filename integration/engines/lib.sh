# shellcheck shell=bash
# Helpers shared by every part of the test engines harness (sourced by engines.sh, which sets the variables used here).

log() { printf 'engines: %s\n' "$*"; }
die() { printf 'engines: ERROR: %s\n' "$*" >&2; exit 1; }
is_root() { [ "$(id -u)" -eq 0 ]; }

# --- talking to the engine APIs (curl over a unix socket) -------------------
api() { # api SOCK PATH [extra curl args...]
    curl -fsS --max-time 5 --unix-socket "$1" "http://localhost$2" "${@:3}"
}
answers() { [ -S "$1" ] && api "$1" /_ping -o /dev/null 2>/dev/null; }
engine_version() { # engine_version SOCK -> e.g. "Docker/20.10.24+dfsg1 (linux)"
    # The Server header of /_ping (Podman's /version takes ~0.4 s).
    local hdrs
    hdrs="$(api "$1" /_ping -D - -o /dev/null 2>/dev/null)" || return 0
    if [[ $hdrs =~ [Ss]erver:\ ([^$'\r\n']*) ]]; then
        printf '%s' "${BASH_REMATCH[1]}"
    fi
}
no_access() { # a hint when the socket exists but this user may not use it
    if [ -S "$1" ] && { [ ! -r "$1" ] || [ ! -w "$1" ]; }; then
        printf ' (no permission on the socket for uid %s)' "$(id -u)"
    fi
}
has_image() { api "$1" "/images/$IMAGE/json" -o /dev/null 2>/dev/null; }

# CLIs, pinned to our endpoints whatever the caller's environment says.
docker_cli() { docker -H "unix://$DOCKER_SOCK" "$@"; }
podman_cli() {
    env -u CONTAINER_HOST -u CONTAINER_CONNECTION CONTAINERS_CONF="$CONF" podman "$@"
}

# --- packages ----------------------------------------------------------------
busybox_ok() {
    if [ -n "${KSTLIB_BUSYBOX:-}" ]; then
        [ -x "$BUSYBOX" ]
    elif command -v dpkg-query >/dev/null 2>&1; then
        dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed'
    else
        [ -x "$BUSYBOX" ]
    fi
}

missing_packages() {
    local m=()
    command -v tmux >/dev/null 2>&1 || m+=(tmux)
    command -v podman >/dev/null 2>&1 || m+=(podman)
    { command -v dockerd && command -v docker; } >/dev/null 2>&1 || m+=(docker.io)
    command -v runc >/dev/null 2>&1 || m+=(runc)
    command -v curl >/dev/null 2>&1 || m+=(curl)
    busybox_ok || m+=(busybox-static)
    if [ "${KSTLIB_ENGINES_SSHD:-1}" != 0 ]; then
        [ -x /usr/sbin/sshd ] || m+=(openssh-server)
        command -v ssh-keygen >/dev/null 2>&1 || m+=(openssh-client)
    fi
    command -v docker-registry >/dev/null 2>&1 || m+=(docker-registry)
    command -v htpasswd >/dev/null 2>&1 || m+=(apache2-utils)
    printf '%s' "${m[*]:-}"
}

# The harness's own lint (tests/test_harness_layout.py runs it on these parts):
# installed with the rest when apt can, otherwise a warning, never a stop.
DEV_PACKAGES="shellcheck"

missing_dev_packages() {
    local p m=()
    for p in $DEV_PACKAGES; do
        command -v "$p" >/dev/null 2>&1 || m+=("$p")
    done
    printf '%s' "${m[*]:-}"
}

ensure_packages() {
    local missing dev
    missing="$(missing_packages)"
    dev="$(missing_dev_packages)"
    if [ -n "$dev" ] && { ! is_root || ! command -v apt-get >/dev/null 2>&1; }; then
        log "WARNING: $dev missing (apt-get install -y $dev): tests/test_harness_layout.py needs it"
        dev=""
    fi
    missing="$(printf '%s %s' "$missing" "$dev" | xargs)"
    [ -z "$missing" ] && return 0
    if ! is_root || ! command -v apt-get >/dev/null 2>&1; then
        die "missing packages: $missing
engines:   install them as root, e.g.: apt-get install -y $missing
engines:   (Debian names; 'docker.io' provides dockerd + docker, 'busybox-static' a static /bin/busybox)"
    fi
    local alog="$STATE/apt.log" apt=(apt-get -q -o DPkg::Lock::Timeout=600)
    log "installing: $missing (apt-get, log: $alog)"
    export DEBIAN_FRONTEND=noninteractive
    # shellcheck disable=SC2086  # word splitting of the package list is intended
    if ! { "${apt[@]}" update && "${apt[@]}" install -y $missing; } >"$alog" 2>&1; then
        tail -n 20 "$alog" >&2 || true
        die "apt-get failed (see $alog)"
    fi
    missing="$(printf '%s %s' "$(missing_packages)" "$(missing_dev_packages)" | xargs)"
    [ -z "$missing" ] || die "still missing after apt-get: $missing (see $alog)"
}

# --- daemons -----------------------------------------------------------------
wait_for() { # wait_for NAME SOCK PID LOG
    local name="$1" sock="$2" pid="$3" lg="$4" i
    for ((i = 0; i < WAIT_S * 10; i++)); do
        answers "$sock" && return 0
        if ! kill -0 "$pid" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    {
        printf 'engines: ERROR: %s did not answer at unix://%s within %ss; last lines of %s:\n' \
            "$name" "$sock" "$WAIT_S" "$lg"
        tail -n 25 "$lg" | sed 's/^/    /' || true
    } >&2
    exit 1
}

stop_pidfile() { # stop_pidfile NAME PIDFILE COMMAND-NAME
    local name="$1" pf="$2" comm="$3" pid i
    if [ ! -f "$pf" ]; then
        log "$name: not started by engines.sh, left alone"
        return 0
    fi
    pid="$(cat "$pf")"
    if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null &&
        tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "$comm"; then
        log "$name: stopping pid $pid"
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 300; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "$name: pid $pid still running after 30 s, sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    else
        log "$name: pid $pid from $pf is gone"
    fi
    rm -f "$pf"
}

port_busy() { # port_busy PORT [ADDR]: something accepts TCP connections there (default 127.0.0.1)
    (exec 3<>"/dev/tcp/${2:-127.0.0.1}/$1") 2>/dev/null
}

udp_busy() { # udp_busy PORT: a socket is bound to that UDP port (needs ss; else: not known, no)
    command -v ss >/dev/null 2>&1 && [ -n "$(ss -Hlun "sport = :$1" 2>/dev/null)" ]
}

port_holder() { # port_holder PORT [tcp|udp] -> what listens there, for a message
    local who="" flag=-Hltnp
    [ "${2:-tcp}" = udp ] && flag=-Hlunp
    if command -v ss >/dev/null 2>&1; then
        who="$(ss "$flag" "sport = :$1" 2>/dev/null | awk '{ print $4, $6 }' | head -n 3 | paste -sd ';' -)"
    fi
    printf '%s' "${who:-a program of this machine}"
}

free_port() { # free_port PREFERRED [WHAT [ADDR...]] -> the first port from PREFERRED on, free on each ADDR
    local p="$1" what="${2:-a registry}" addr busy
    local addrs=("${@:3}")
    [ ${#addrs[@]} = 0 ] && addrs=(127.0.0.1)
    while :; do
        busy=0
        for addr in "${addrs[@]}"; do
            port_busy "$p" "$addr" && busy=1
        done
        [ "$busy" = 0 ] && break
        p=$((p + 2))
        [ "$p" -lt "$(($1 + 200))" ] ||
            die "no free port for $what from $1 to $(($1 + 198)) on ${addrs[*]} (port $1: $(port_holder "$1"))"
    done
    # On stderr: the caller captures the port from stdout.
    [ "$p" = "$1" ] || log "port $1 (for $what) is taken by $(port_holder "$1"): using $p" >&2
    printf '%s' "$p"
}
