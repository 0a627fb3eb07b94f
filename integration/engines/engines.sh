#!/usr/bin/env bash
# Real engines for the kstlib.ops integration tests: tmux, Docker, Podman.
#
#   engines.sh up      install what is missing (apt), start dockerd and the
#                      Podman API service if nothing answers yet, build the
#                      test image localhost/kstlib-test:latest in both engines
#   engines.sh down    stop the daemons that this script started (pid files)
#   engines.sh status  tell whether each engine answers (exit 0 if all do)
#   engines.sh env     print export lines for tests (CONTAINERS_CONF, ...)
#
# Endpoints: Docker unix:///var/run/docker.sock, Podman
# unix:///run/podman/podman.sock. State (pid files, logs) lives in
# $KSTLIB_ENGINES_STATE (default /tmp/kstlib-engines).
# See shared ENGINES.md for why each flag below is needed on these machines.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
CONF="$HERE/containers.conf"
STATE="${KSTLIB_ENGINES_STATE:-/tmp/kstlib-engines}"
IMAGE="localhost/kstlib-test:latest"
DOCKER_SOCK=/var/run/docker.sock
PODMAN_SOCK=/run/podman/podman.sock
WAIT_S="${KSTLIB_ENGINES_WAIT:-30}"
BUSYBOX="${KSTLIB_BUSYBOX:-/bin/busybox}"
IMAGE_PATH_ENV="PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Applets the tests rely on; every other applet busybox lists is linked too.
APPLETS="sh sleep echo seq cat true false env printf touch ls kill"

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
    printf '%s' "${m[*]:-}"
}

ensure_packages() {
    local missing
    missing="$(missing_packages)"
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
    missing="$(missing_packages)"
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

start_docker() {
    if answers "$DOCKER_SOCK"; then
        return 0
    fi
    is_root || die "no Docker daemon answers at unix://$DOCKER_SOCK and starting one needs root"
    local lg="$STATE/dockerd.log" pid
    log "docker: starting dockerd (log: $lg)"
    # --bridge=none: never the default bridge (172.17.0.0/16 must never be a
    # traffic target here); containers get only a loopback interface.
    setsid dockerd --host "unix://$DOCKER_SOCK" --bridge=none \
        --iptables=false --ip6tables=false </dev/null >>"$lg" 2>&1 &
    pid=$!
    echo "$pid" >"$STATE/dockerd.pid"
    wait_for dockerd "$DOCKER_SOCK" "$pid" "$lg"
}

start_podman() {
    if answers "$PODMAN_SOCK"; then
        check_foreign_podman
        return 0
    fi
    is_root || die "no Podman service answers at unix://$PODMAN_SOCK and starting one needs root"
    local lg="$STATE/podman.log" pid
    log "podman: starting 'podman system service' (log: $lg)"
    mkdir -p "$(dirname "$PODMAN_SOCK")"
    rm -f "$PODMAN_SOCK"
    env -u CONTAINER_HOST -u CONTAINER_CONNECTION CONTAINERS_CONF="$CONF" \
        setsid podman system service --time=0 "unix://$PODMAN_SOCK" \
        </dev/null >>"$lg" 2>&1 &
    pid=$!
    echo "$pid" >"$STATE/podman.pid"
    wait_for podman "$PODMAN_SOCK" "$pid" "$lg"
}

# A Podman service that this script did not start may lack containers.conf;
# its containers then fail (RLIMIT_NOFILE / hybrid cgroups). Warn only.
check_foreign_podman() {
    local pf="$STATE/podman.pid" info
    if [ -f "$pf" ] && kill -0 "$(cat "$pf")" 2>/dev/null; then
        return 0
    fi
    info="$(api "$PODMAN_SOCK" /info 2>/dev/null)" || return 0
    if [[ $info != *'"CgroupDriver":"cgroupfs"'* ]]; then
        log "WARNING: the running Podman service was not started with $CONF;"
        log "WARNING: its containers may fail here (restart it: engines.sh down; kill it; engines.sh up)"
    fi
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

# --- test image --------------------------------------------------------------
make_rootfs_tar() { # make_rootfs_tar OUT.tar
    local out="$1" root a
    [ -x "$BUSYBOX" ] || die "static busybox not found at $BUSYBOX (apt-get install busybox-static)"
    root="$(mktemp -d "$STATE/rootfs.XXXXXX")"
    mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,proc,sys,dev}
    chmod 1777 "$root/tmp"
    cp "$BUSYBOX" "$root/bin/busybox"
    chmod 0755 "$root/bin/busybox"
    for a in $("$BUSYBOX" --list 2>/dev/null || true) $APPLETS; do
        case "$a" in busybox | */*) continue ;; esac
        ln -sf busybox "$root/bin/$a"
    done
    ln -sf ../../bin/env "$root/usr/bin/env"
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
        >"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
    tar --numeric-owner --owner=0 --group=0 -C "$root" -cf "$out" .
    rm -rf "$root"
}

build_images() {
    local need_docker=0 need_podman=0 tar
    has_image "$DOCKER_SOCK" || need_docker=1
    has_image "$PODMAN_SOCK" || need_podman=1
    [ $need_docker = 0 ] && [ $need_podman = 0 ] && return 0
    tar="$STATE/kstlib-test-rootfs.tar"
    make_rootfs_tar "$tar"
    local changes=(--change 'CMD ["sh"]' --change "ENV $IMAGE_PATH_ENV")
    if [ $need_docker = 1 ]; then
        log "docker: importing $IMAGE from static busybox"
        docker_cli import "${changes[@]}" "$tar" "$IMAGE" >/dev/null
    fi
    if [ $need_podman = 1 ]; then
        log "podman: importing $IMAGE from static busybox"
        podman_cli import --quiet "${changes[@]}" "$tar" "$IMAGE" >/dev/null
    fi
    rm -f "$tar"
}

# --- subcommands -------------------------------------------------------------
report() { # one line per engine; returns 1 if any does not answer
    local rc=0 v
    if command -v tmux >/dev/null 2>&1; then
        printf 'engines: %-7s %-36s %s\n' tmux "local (tmux server per session)" "$(tmux -V)"
    else
        printf 'engines: %-7s %-36s %s\n' tmux "-" "NOT INSTALLED"
        rc=1
    fi
    if answers "$DOCKER_SOCK"; then
        v="$(engine_version "$DOCKER_SOCK")"
        printf 'engines: %-7s %-36s %s\n' docker "unix://$DOCKER_SOCK" "${v:-?}"
    else
        printf 'engines: %-7s %-36s %s\n' docker "unix://$DOCKER_SOCK" "NOT ANSWERING$(no_access "$DOCKER_SOCK")"
        rc=1
    fi
    if answers "$PODMAN_SOCK"; then
        v="$(engine_version "$PODMAN_SOCK")"
        printf 'engines: %-7s %-36s %s\n' podman "unix://$PODMAN_SOCK" "${v:-?}"
    else
        printf 'engines: %-7s %-36s %s\n' podman "unix://$PODMAN_SOCK" "NOT ANSWERING$(no_access "$PODMAN_SOCK")"
        rc=1
    fi
    return $rc
}

cmd_up() {
    mkdir -p "$STATE"
    ensure_packages
    start_docker
    start_podman
    build_images
    report
}

cmd_down() {
    mkdir -p "$STATE"
    stop_pidfile docker "$STATE/dockerd.pid" dockerd
    stop_pidfile podman "$STATE/podman.pid" "podman system service"
}

cmd_env() {
    printf 'export CONTAINERS_CONF=%q\n' "$CONF"
    printf 'export TESTCONTAINERS_RYUK_DISABLED=true\n'
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
status) report ;;
env) cmd_env ;;
*)
    echo "usage: $(basename "$0") up|down|status|env" >&2
    exit 2
    ;;
esac
