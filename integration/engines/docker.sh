# shellcheck shell=bash
# The shared Docker daemon (sourced by engines.sh, which sets the variables used here).

start_docker() {
    if answers "$DOCKER_SOCK"; then
        return 0
    fi
    is_root || die "no Docker daemon answers at unix://$DOCKER_SOCK and starting one needs root"
    local lg="$STATE/dockerd.log" pid
    log "docker: starting dockerd (log: $lg)"
    # --bridge=none: never the default bridge (172.17.0.0/16 must never be a
    # traffic target here); containers get only a loopback interface.
    env -C "$STATE" setsid dockerd --host "unix://$DOCKER_SOCK" --bridge=none \
        --iptables=false --ip6tables=false </dev/null >>"$lg" 2>&1 &
    pid=$!
    echo "$pid" >"$STATE/dockerd.pid"
    wait_for dockerd "$DOCKER_SOCK" "$pid" "$lg"
}
