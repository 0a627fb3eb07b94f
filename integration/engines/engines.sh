#!/usr/bin/env bash
# Real engines for the kstlib.ops integration tests: tmux, Docker, Podman,
# a two-node Docker Swarm and an sshd on loopback.
#
#   engines.sh up      install what is missing (apt), start dockerd and the
#                      Podman API service if nothing answers yet, build the
#                      test image localhost/kstlib-test:latest in both engines,
#                      start two image registries on 127.0.0.1 (one open, one
#                      that requires a login) and push the pull test image
#                      kstlib/pulltest:1 to both; then swarm-up and sshd-up
#                      (KSTLIB_ENGINES_SWARM=0 / KSTLIB_ENGINES_SSHD=0: not those)
#   engines.sh down    stop the daemons, registries, swarm and sshd that this
#                      script started (pid files)
#   engines.sh status  tell whether each engine and registry answers (exit 0 if all do;
#                      a swarm or sshd that was never started is not an error)
#   engines.sh env     print export lines for tests (CONTAINERS_CONF, registries,
#                      swarm sockets, ssh port/key/known_hosts/config, ...)
#   engines.sh swarm-up    a two-node Docker Swarm of two private dockerd
#                          (manager 127.0.0.1, worker 127.0.0.2, under $STATE/swarm)
#   engines.sh swarm-down  stop those two dockerd (the swarm's state is kept)
#   engines.sh sshd-up     a private sshd on 127.0.0.1 (key login as root, $STATE/sshd)
#   engines.sh sshd-down   stop it
#   engines.sh tmux35-up   tmux 3.5a from bookworm-backports, unpacked under $STATE/tmux35
#                          (for the control-mode channel's tests; /usr/bin/tmux is kept)
#
# Endpoints: Docker unix:///var/run/docker.sock, Podman a service of the
# harness's own on unix://$STATE/podman/podman.sock (never one that already
# answers elsewhere: see podman.sh). State (pid files, logs) lives in
# $KSTLIB_ENGINES_STATE (default /tmp/kstlib-engines).
# Registries: Debian's docker-registry (distribution 2.8) over plain HTTP on
# loopback, state under $STATE/registry/{open,auth}/ (config, storage, port,
# pid, log). The login registry's throw-away credentials are generated into
# $STATE/registry/auth/ (0600 files, never on a command line): 'credentials'
# (user and password, one per line), 'docker-config/config.json' (a Docker
# config.json with that login) and 'htpasswd'.
# The parts sourced below say, by each engine flag, why it is needed.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
CONF="$HERE/containers.conf"
STATE="${KSTLIB_ENGINES_STATE:-/tmp/kstlib-engines}"
IMAGE="localhost/kstlib-test:latest"
DOCKER_SOCK=/var/run/docker.sock
WAIT_S="${KSTLIB_ENGINES_WAIT:-30}"
BUSYBOX="${KSTLIB_BUSYBOX:-/bin/busybox}"
IMAGE_PATH_ENV="PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Applets the tests rely on; every other applet busybox lists is linked too.
APPLETS="sh sleep echo seq cat true false env printf touch ls kill"

# The parts, each a set of functions (no code runs while sourcing them).
# shellcheck source=lib.sh
source "$HERE/lib.sh"
# shellcheck source=docker.sh
source "$HERE/docker.sh"
# shellcheck source=podman.sh
source "$HERE/podman.sh"
# shellcheck source=image.sh
source "$HERE/image.sh"
# shellcheck source=registry.sh
source "$HERE/registry.sh"
# shellcheck source=swarm.sh
source "$HERE/swarm.sh"
# shellcheck source=sshd.sh
source "$HERE/sshd.sh"
# shellcheck source=tmux35.sh
source "$HERE/tmux35.sh"

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
    local podman_sock
    podman_sock="$(podman_socket)"
    if answers "$podman_sock"; then
        v="$(engine_version "$podman_sock")"
        printf 'engines: %-7s %-36s %s\n' podman "unix://$podman_sock" "${v:-?}"
    else
        printf 'engines: %-7s %-36s %s\n' podman "unix://$podman_sock" "NOT ANSWERING$(no_access "$podman_sock")"
        rc=1
    fi
    report_registries || rc=1
    report_swarm || rc=1
    report_sshd || rc=1
    report_tmux35
    return $rc
}

cmd_up() {
    mkdir -p "$STATE"
    ensure_packages
    start_docker
    start_podman
    build_images
    start_registries
    # Both measured cheap here (swarm ~2 s, sshd ~1 s from nothing): on by
    # default; KSTLIB_ENGINES_SWARM=0 / KSTLIB_ENGINES_SSHD=0 leave them out.
    [ "${KSTLIB_ENGINES_SWARM:-1}" = 0 ] || start_swarm
    [ "${KSTLIB_ENGINES_SSHD:-1}" = 0 ] || start_sshd
    # A second tmux for the control channel's tests only: without it (no network,
    # say) the rest still comes up, and those tests say what is missing.
    (cmd_tmux35_up) || log "WARNING: tmux 3.5a not fetched (engines.sh tmux35-up); its tests need it"
    report
}

cmd_down() {
    mkdir -p "$STATE"
    stop_pidfile docker "$STATE/dockerd.pid" dockerd
    stop_podman
    stop_pidfile "registry (open)" "$REG_DIR/open/pid" docker-registry
    stop_pidfile "registry (auth)" "$REG_DIR/auth/pid" docker-registry
    cmd_swarm_down
    cmd_sshd_down
}

cmd_env() {
    printf 'export CONTAINERS_CONF=%q\n' "$CONF"
    printf 'export TESTCONTAINERS_RYUK_DISABLED=true\n'
    local podman_sock
    podman_sock="$(podman_socket)"
    printf 'export CONTAINER_HOST=%q\n' "unix://$podman_sock"
    printf 'export KSTLIB_TEST_PODMAN_URL=%q\n' "unix://$podman_sock"
    printf 'export KSTLIB_TEST_PODMAN_SOCK=%q\n' "$podman_sock"
    local open auth
    open="$(reg_port open)"
    auth="$(reg_port auth)"
    if [ -n "$open" ]; then
        printf 'export KSTLIB_TEST_REGISTRY=%q\n' "127.0.0.1:$open"
        printf 'export KSTLIB_TEST_PULL_IMAGE=%q\n' "$PULL_REPO:$PULL_TAG"
    fi
    if [ -n "$auth" ]; then
        printf 'export KSTLIB_TEST_AUTH_REGISTRY=%q\n' "127.0.0.1:$auth"
        printf 'export KSTLIB_TEST_REGISTRY_CREDENTIALS=%q\n' "$REG_DIR/auth/credentials"
        printf 'export KSTLIB_TEST_REGISTRY_DOCKER_CONFIG=%q\n' "$REG_DIR/auth/docker-config"
        printf 'export KSTLIB_TEST_REGISTRY_AUTH_JSON=%q\n' "$REG_DIR/auth/auth.json"
    fi
    if swarm_ours manager; then
        printf 'export KSTLIB_TEST_SWARM_MANAGER=%q\n' "unix://$(swarm_sock manager)"
        printf 'export KSTLIB_TEST_SWARM_WORKER=%q\n' "unix://$(swarm_sock worker)"
        # For fault tests: kill the worker's dockerd by this pid; swarm-up brings it back.
        printf 'export KSTLIB_TEST_SWARM_WORKER_PIDFILE=%q\n' "$(swarm_pidfile worker)"
    fi
    if sshd_ours; then
        printf 'export KSTLIB_TEST_SSH_HOST=127.0.0.1\n'
        printf 'export KSTLIB_TEST_SSH_PORT=%q\n' "$(sshd_port)"
        printf 'export KSTLIB_TEST_SSH_USER=root\n'
        printf 'export KSTLIB_TEST_SSH_ALIAS=%q\n' "$SSH_ALIAS"
        printf 'export KSTLIB_TEST_SSH_KEY=%q\n' "$SSHD_DIR/id_ed25519"
        printf 'export KSTLIB_TEST_SSH_KNOWN_HOSTS=%q\n' "$SSHD_DIR/known_hosts"
        printf 'export KSTLIB_TEST_SSH_CONFIG=%q\n' "$SSHD_DIR/ssh_config"
        printf 'export KSTLIB_TEST_SSH_BIN=%q\n' "$SSHD_DIR/bin"
        printf 'export KSTLIB_TEST_SSH_HOME=%q\n' "$SSHD_DIR/home"
    fi
    env_tmux35
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
status) report ;;
env) cmd_env ;;
swarm-up) cmd_swarm_up ;;
swarm-down) cmd_swarm_down ;;
sshd-up) cmd_sshd_up ;;
sshd-down) cmd_sshd_down ;;
tmux35-up) cmd_tmux35_up ;;
*)
    echo "usage: $(basename "$0") up|down|status|env|swarm-up|swarm-down|sshd-up|sshd-down|tmux35-up" >&2
    exit 2
    ;;
esac
