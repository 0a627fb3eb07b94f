#!/usr/bin/env bash
# Real engines for the kstlib.ops integration tests: tmux, Docker, Podman.
#
#   engines.sh up      install what is missing (apt), start dockerd and the
#                      Podman API service if nothing answers yet, build the
#                      test image localhost/kstlib-test:latest in both engines,
#                      start two image registries on 127.0.0.1 (one open, one
#                      that requires a login) and push the pull test image
#                      kstlib/pulltest:1 to both
#   engines.sh down    stop the daemons and registries that this script started (pid files)
#   engines.sh status  tell whether each engine and registry answers (exit 0 if all do)
#   engines.sh env     print export lines for tests (CONTAINERS_CONF, registries, ...)
#
# Endpoints: Docker unix:///var/run/docker.sock, Podman
# unix:///run/podman/podman.sock. State (pid files, logs) lives in
# $KSTLIB_ENGINES_STATE (default /tmp/kstlib-engines).
# Registries: Debian's docker-registry (distribution 2.8) over plain HTTP on
# loopback, state under $STATE/registry/{open,auth}/ (config, storage, port,
# pid, log). The login registry's throw-away credentials are generated into
# $STATE/registry/auth/ (0600 files, never on a command line): 'credentials'
# (user and password, one per line), 'docker-config/config.json' (a Docker
# config.json with that login) and 'htpasswd'.
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
    command -v docker-registry >/dev/null 2>&1 || m+=(docker-registry)
    command -v htpasswd >/dev/null 2>&1 || m+=(apache2-utils)
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

# --- registries --------------------------------------------------------------
# Two registries on loopback: "open" (anyone may pull and push) and "auth"
# (htpasswd: only the generated user). Both engines treat 127.0.0.0/8 as an
# insecure (plain HTTP) registry: Docker by itself, Podman when told
# (tls_verify=False), so no TLS certificate is needed.
REG_DIR="$STATE/registry"
PULL_REPO="kstlib/pulltest"
PULL_TAG="1"
REG_USER="kstlib"
# Size of the random layer: enough that a pull moves real data, small for CI.
REG_RANDOM_KIB="${KSTLIB_REGISTRY_RANDOM_KIB:-3072}"
MANIFEST_TYPES="application/vnd.docker.distribution.manifest.v2+json,application/vnd.oci.image.manifest.v1+json"

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() { # free_port PREFERRED -> the first free port from PREFERRED on
    local p="$1"
    while port_busy "$p"; do
        p=$((p + 2))
        [ "$p" -lt "$(($1 + 200))" ] || die "no free port for a registry near $1"
    done
    printf '%s' "$p"
}

reg_port() { cat "$REG_DIR/$1/port" 2>/dev/null || true; }

reg_http_code() { # reg_http_code PORT [curl args...] -> HTTP status of /v2/ (000: no answer)
    curl -sS --max-time 3 -o /dev/null -w '%{http_code}' "${@:2}" \
        "http://127.0.0.1:$1/v2/" 2>/dev/null || true
}

reg_ours() { # reg_ours KIND: our registry process of that kind is alive
    local dir="$REG_DIR/$1" pid
    [ -f "$dir/pid" ] || return 1
    pid="$(cat "$dir/pid")"
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null &&
        tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "docker-registry serve $dir/config.yml"
}

reg_answers() { # reg_answers KIND: it runs and answers /v2/ as it should (200 open, 401 auth)
    local port want=200 code
    reg_ours "$1" || return 1
    port="$(reg_port "$1")"
    [ -n "$port" ] || return 1
    [ "$1" = auth ] && want=401
    code="$(reg_http_code "$port")"
    [ "$code" = "$want" ]
}

reg_credentials() { # the login registry's user, password, htpasswd and config files (0600)
    local dir="$REG_DIR/auth" pass
    if [ ! -s "$dir/credentials" ] || [ ! -s "$dir/htpasswd" ]; then
        log "registry: generating throw-away credentials in $dir"
        pass="$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24)"
        (
            umask 077
            printf '%s\n%s\n' "$REG_USER" "$pass" >"$dir/credentials"
            # -i: the password comes on stdin, never on a command line.
            printf '%s\n' "$pass" | htpasswd -iBc "$dir/htpasswd" "$REG_USER" 2>/dev/null
        )
    fi
    chmod 0600 "$dir/credentials" "$dir/htpasswd"
}

reg_client_files() { # config.json, auth.json and a curl netrc for the login registry's port
    local dir="$REG_DIR/auth" port="$1" user pass token
    user="$(sed -n 1p "$dir/credentials")"
    pass="$(sed -n 2p "$dir/credentials")"
    token="$(printf '%s:%s' "$user" "$pass" | base64 -w0)"
    (
        umask 077
        mkdir -p "$dir/docker-config"
        printf '{"auths": {"127.0.0.1:%s": {"auth": "%s"}}}\n' "$port" "$token" \
            >"$dir/docker-config/config.json"
        cp "$dir/docker-config/config.json" "$dir/auth.json"
        printf 'machine 127.0.0.1 login %s password %s\n' "$user" "$pass" >"$dir/netrc"
    )
    chmod 0700 "$dir/docker-config"
    chmod 0600 "$dir/docker-config/config.json" "$dir/auth.json" "$dir/netrc"
}

start_registry() { # start_registry KIND PREFERRED-PORT
    local kind="$1" dir="$REG_DIR/$1" port pid lg i code
    mkdir -p "$dir/data"
    chmod 0700 "$REG_DIR" "$dir"
    [ "$kind" = auth ] && reg_credentials
    if reg_answers "$kind"; then
        [ "$kind" = auth ] && reg_client_files "$(reg_port auth)"
        return 0
    fi
    if reg_ours "$kind"; then # alive but not answering as it should: replace it
        stop_pidfile "registry-$kind" "$dir/pid" docker-registry
    fi
    # The port it had (the images stay in its storage), else a free one.
    port="$(reg_port "$kind")"
    if [ -z "$port" ] || port_busy "$port"; then
        port="$(free_port "$2")"
    fi
    {
        printf 'version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n'
        printf 'storage:\n  filesystem:\n    rootdirectory: %s\n' "$dir/data"
        printf 'http:\n  addr: 127.0.0.1:%s\n' "$port"
        if [ "$kind" = auth ]; then
            printf 'auth:\n  htpasswd:\n    realm: kstlib-test\n    path: %s\n' "$dir/htpasswd"
        fi
    } >"$dir/config.yml"
    echo "$port" >"$dir/port"
    lg="$dir/registry.log"
    log "registry ($kind): starting docker-registry on 127.0.0.1:$port (log: $lg)"
    setsid docker-registry serve "$dir/config.yml" </dev/null >>"$lg" 2>&1 &
    pid=$!
    echo "$pid" >"$dir/pid"
    for ((i = 0; i < WAIT_S * 10; i++)); do
        code="$(reg_http_code "$port")"
        [ "$code" = 200 ] || [ "$code" = 401 ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if ! reg_answers "$kind"; then
        {
            printf 'engines: ERROR: registry (%s) did not answer at http://127.0.0.1:%s/v2/; last lines of %s:\n' \
                "$kind" "$port" "$lg"
            tail -n 25 "$lg" | sed 's/^/    /' || true
        } >&2
        exit 1
    fi
    [ "$kind" = auth ] && reg_client_files "$port"
    return 0
}

reg_has_image() { # reg_has_image KIND
    local port extra=()
    port="$(reg_port "$1")"
    [ "$1" = auth ] && extra=(--netrc-file "$REG_DIR/auth/netrc")
    curl -fsS --max-time 5 -o /dev/null -H "Accept: $MANIFEST_TYPES" "${extra[@]}" \
        "http://127.0.0.1:$port/v2/$PULL_REPO/manifests/$PULL_TAG" 2>/dev/null
}

push_pull_image() { # the test image (busybox + a random layer) into every registry lacking it
    local kinds=() kind port ref build tmp
    for kind in open auth; do
        reg_has_image "$kind" || kinds+=("$kind")
    done
    [ ${#kinds[@]} = 0 ] && return 0
    tmp="$(mktemp -d "$STATE/pulltest.XXXXXX")"
    build="localhost/kstlib-pulltest-build:$$"
    head -c "$((REG_RANDOM_KIB * 1024))" /dev/urandom >"$tmp/random.bin"
    printf 'FROM %s\nCOPY random.bin /kstlib-pulltest.bin\n' "$IMAGE" >"$tmp/Dockerfile"
    log "registry: building $PULL_REPO:$PULL_TAG (busybox + ${REG_RANDOM_KIB} KiB of random bytes)"
    DOCKER_BUILDKIT=0 docker_cli build -q -t "$build" "$tmp" >/dev/null 2>"$tmp/build.err" || {
        cat "$tmp/build.err" >&2
        die "could not build the pull test image"
    }
    for kind in "${kinds[@]}"; do
        port="$(reg_port "$kind")"
        ref="127.0.0.1:$port/$PULL_REPO:$PULL_TAG"
        log "registry ($kind): pushing $ref"
        docker_cli tag "$build" "$ref"
        if [ "$kind" = auth ]; then
            DOCKER_CONFIG="$REG_DIR/auth/docker-config" docker_cli push "$ref" >"$tmp/push.log" 2>&1
        else
            DOCKER_CONFIG="$tmp" docker_cli push "$ref" >"$tmp/push.log" 2>&1
        fi || {
            cat "$tmp/push.log" >&2
            die "could not push $ref"
        }
        docker_cli rmi "$ref" >/dev/null
    done
    docker_cli rmi "$build" >/dev/null
    rm -rf "$tmp"
}

start_registries() {
    start_registry open 5000
    start_registry auth 5001
    push_pull_image
}

report_registries() { # one line per registry; returns 1 if one does not answer
    local rc=0 kind port what
    for kind in open auth; do
        port="$(reg_port "$kind")"
        what="registry"
        [ "$kind" = auth ] && what="registry (login)"
        if [ -n "$port" ] && reg_answers "$kind"; then
            if reg_has_image "$kind"; then
                printf 'engines: %-7s %-36s %s\n' "$kind" "http://127.0.0.1:$port" "$what, $PULL_REPO:$PULL_TAG"
            else
                printf 'engines: %-7s %-36s %s\n' "$kind" "http://127.0.0.1:$port" "$what, NO $PULL_REPO:$PULL_TAG"
                rc=1
            fi
        else
            printf 'engines: %-7s %-36s %s\n' "$kind" "http://127.0.0.1:${port:-?}" "$what, NOT ANSWERING"
            rc=1
        fi
    done
    return $rc
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
    report_registries || rc=1
    return $rc
}

cmd_up() {
    mkdir -p "$STATE"
    ensure_packages
    start_docker
    start_podman
    build_images
    start_registries
    report
}

cmd_down() {
    mkdir -p "$STATE"
    stop_pidfile docker "$STATE/dockerd.pid" dockerd
    stop_pidfile podman "$STATE/podman.pid" "podman system service"
    stop_pidfile "registry (open)" "$REG_DIR/open/pid" docker-registry
    stop_pidfile "registry (auth)" "$REG_DIR/auth/pid" docker-registry
}

cmd_env() {
    printf 'export CONTAINERS_CONF=%q\n' "$CONF"
    printf 'export TESTCONTAINERS_RYUK_DISABLED=true\n'
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
