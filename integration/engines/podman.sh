# shellcheck shell=bash
# The Podman API service (sourced by engines.sh, which sets the variables used here).

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
