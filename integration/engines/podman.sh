# shellcheck shell=bash
# The harness's own Podman API service (sourced by engines.sh, which sets the variables used here).
#
# `podman system service` on a socket of the harness ($STATE/podman/podman.sock),
# started with containers.conf. A service that already answers elsewhere (the
# machine's /run/podman/podman.sock) is never used: its configuration (default
# network, cgroup manager, log driver) is not the one the tests are written for.
# `engines.sh env` exports the socket as CONTAINER_HOST (what kstlib and
# podman-py read) and KSTLIB_TEST_PODMAN_URL / KSTLIB_TEST_PODMAN_SOCK.
PODMAN_DIR="$STATE/podman"
PODMAN_SOCK="$PODMAN_DIR/podman.sock"
PODMAN_PIDFILE="$PODMAN_DIR/podman.pid"
# Where an earlier version of this harness ran its service (pid file $STATE/podman.pid):
# still used by `env` and `status` while it runs and the harness's own socket does not.
LEGACY_PODMAN_SOCK=/run/podman/podman.sock
LEGACY_PODMAN_PIDFILE="$STATE/podman.pid"

podman_ours() { # podman_ours PIDFILE: the service that pid file names is alive
    local pid
    [ -f "$1" ] || return 1
    pid="$(cat "$1")"
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null &&
        tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "podman system service"
}

podman_socket() { # the socket the tests use: the harness's own, else an earlier harness's
    if ! podman_ours "$PODMAN_PIDFILE" && podman_ours "$LEGACY_PODMAN_PIDFILE"; then
        printf '%s' "$LEGACY_PODMAN_SOCK"
    else
        printf '%s' "$PODMAN_SOCK"
    fi
}

start_podman() {
    if podman_ours "$PODMAN_PIDFILE" && answers "$PODMAN_SOCK"; then
        return 0
    fi
    podman_ours "$PODMAN_PIDFILE" && stop_pidfile podman "$PODMAN_PIDFILE" "podman system service"
    is_root || die "starting the harness's Podman service (unix://$PODMAN_SOCK) needs root"
    local lg="$PODMAN_DIR/podman.log" pid
    mkdir -p "$PODMAN_DIR"
    chmod 0700 "$PODMAN_DIR"
    rm -f "$PODMAN_SOCK"
    log "podman: starting 'podman system service' on unix://$PODMAN_SOCK (log: $lg)"
    env -u CONTAINER_HOST -u CONTAINER_CONNECTION CONTAINERS_CONF="$CONF" \
        env -C "$PODMAN_DIR" setsid podman system service --time=0 "unix://$PODMAN_SOCK" \
        </dev/null >>"$lg" 2>&1 &
    pid=$!
    echo "$pid" >"$PODMAN_PIDFILE"
    wait_for podman "$PODMAN_SOCK" "$pid" "$lg"
}

stop_podman() { # the harness's service, and an earlier harness's one
    stop_pidfile podman "$PODMAN_PIDFILE" "podman system service"
    if [ -f "$LEGACY_PODMAN_PIDFILE" ]; then
        stop_pidfile "podman ($LEGACY_PODMAN_SOCK)" "$LEGACY_PODMAN_PIDFILE" "podman system service"
    fi
}
