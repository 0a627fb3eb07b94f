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
    if [ "${KSTLIB_ENGINES_SSHD:-1}" != 0 ]; then
        [ -x /usr/sbin/sshd ] || m+=(openssh-server)
        command -v ssh-keygen >/dev/null 2>&1 || m+=(openssh-client)
    fi
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

# --- a two-node Docker Swarm (swarm-up / swarm-down; `up` runs swarm-up) ----
# Two more dockerd beside the shared one (which is never touched): each with
# its own data root, exec root (and so its own managed containerd), pid file
# and unix socket under $STATE/swarm. The manager advertises 127.0.0.1, the
# worker 127.0.0.2 (two loopback addresses, so the 2377/7946/4789 ports do not
# clash). No iptables here: no overlay network, no ingress routing mesh; tasks
# use the host network. Images come from the open loopback registry.
SWARM_DIR="$STATE/swarm"
SWARM_NODES="manager worker"
SWARM_PORT=2377
SWARM_LABEL_ROLE="worker"

swarm_sock() { printf '%s' "$SWARM_DIR/$1.sock"; }
swarm_addr() { if [ "$1" = manager ]; then printf '127.0.0.1'; else printf '127.0.0.2'; fi; }
swarm_cli() { # swarm_cli NODE ARGS... (the docker CLI pinned to that node)
    env -u DOCKER_HOST -u DOCKER_CONTEXT docker -H "unix://$(swarm_sock "$1")" "${@:2}"
}
swarm_pidfile() { printf '%s' "$SWARM_DIR/$1/dockerd.pid"; }
swarm_ours() { # swarm_ours NODE: our dockerd for that node is alive
    local pf pid
    pf="$(swarm_pidfile "$1")"
    [ -f "$pf" ] || return 1
    pid="$(cat "$pf")"
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null &&
        tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "dockerd.*$(swarm_sock "$1")"
}
swarm_state() { # swarm_state NODE -> inactive|pending|active|error|locked|? and role
    swarm_cli "$1" info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}} {{.Swarm.NodeID}}' 2>/dev/null || true
}
swarm_ready_nodes() { # how many nodes the manager sees Ready
    swarm_cli manager node ls --format '{{.Status}} {{.Hostname}} {{.ID}}' 2>/dev/null |
        awk '$1 == "Ready" { n++ } END { print n + 0 }'
}

start_swarm_daemon() { # start_swarm_daemon NODE
    local node="$1" dir="$SWARM_DIR/$1" sock lg pid
    sock="$(swarm_sock "$node")"
    if swarm_ours "$node" && answers "$sock"; then
        return 0
    fi
    if swarm_ours "$node"; then # alive but not answering: replace it
        stop_pidfile "swarm-$node" "$(swarm_pidfile "$node")" dockerd
    fi
    is_root || die "starting the swarm's dockerd ($node) needs root"
    # A dockerd that was killed leaves its pid file; dockerd refuses to start
    # while that pid exists (an unreaped zombie here counts): it is not ours.
    rm -f "$(swarm_pidfile "$node")"
    mkdir -p "$dir/data" "$dir/exec"
    chmod 0700 "$dir"
    rm -f "$sock"
    lg="$dir/dockerd.log"
    log "swarm ($node): starting dockerd on unix://$sock (log: $lg)"
    # --exec-root of its own: dockerd then runs a containerd of its own too
    # (no containerd namespace shared with the main daemon).
    setsid dockerd --host "unix://$sock" --data-root "$dir/data" --exec-root "$dir/exec" \
        --pidfile "$(swarm_pidfile "$node")" --bridge=none --iptables=false --ip6tables=false \
        </dev/null >>"$lg" 2>&1 &
    pid=$!
    wait_for "swarm dockerd ($node)" "$sock" "$pid" "$lg"
}

swarm_form() { # init the manager, join the worker, label it; each step only if needed
    local m w token mid wid i
    read -r m _ mid <<<"$(swarm_state manager)"
    if [ "$m" != active ]; then
        log "swarm: init on the manager (advertise 127.0.0.1, listen 127.0.0.1:$SWARM_PORT)"
        swarm_cli manager swarm init --advertise-addr 127.0.0.1 \
            --listen-addr "127.0.0.1:$SWARM_PORT" >/dev/null
        read -r m _ mid <<<"$(swarm_state manager)"
        [ "$m" = active ] || die "swarm init on the manager failed (state: ${m:-?})"
    fi
    swarm_no_ingress
    read -r w _ wid <<<"$(swarm_state worker)"
    # A worker in (or trying to reach) a swarm the manager does not know (the
    # manager's state was wiped): make it leave and join again.
    if [ -n "$w" ] && [ "$w" != inactive ] &&
        ! swarm_cli manager node inspect "${wid:-none}" >/dev/null 2>&1; then
        log "swarm: the worker ($w) belongs to another swarm, leaving it"
        swarm_cli worker swarm leave --force >/dev/null 2>&1 || true
        w=inactive
    fi
    if [ "$w" != active ]; then
        token="$(swarm_cli manager swarm join-token -q worker)"
        log "swarm: the worker joins (advertise 127.0.0.2, listen 127.0.0.2:$SWARM_PORT)"
        # Through the API with the body on stdin: the join token never appears
        # on a command line (`docker swarm join --token` would show it).
        printf '{"ListenAddr": "127.0.0.2:%s", "AdvertiseAddr": "127.0.0.2", "RemoteAddrs": ["127.0.0.1:%s"], "JoinToken": "%s"}' \
            "$SWARM_PORT" "$SWARM_PORT" "$token" |
            curl -fsS --max-time 60 --unix-socket "$(swarm_sock worker)" -X POST \
                -H 'Content-Type: application/json' --data-binary @- \
                http://localhost/swarm/join -o /dev/null ||
            die "the worker could not join the swarm (see $SWARM_DIR/worker/dockerd.log)"
    fi
    for ((i = 0; i < WAIT_S * 10; i++)); do
        read -r w _ wid <<<"$(swarm_state worker)"
        [ "$w" = active ] && [ "$(swarm_ready_nodes)" = 2 ] && break
        sleep 0.1
    done
    [ "$(swarm_ready_nodes)" = 2 ] || die "the swarm has not 2 Ready nodes within ${WAIT_S}s: $(swarm_cli manager node ls 2>&1)"
    # A worker whose state was wiped joined as a new node: forget the old one.
    local stale
    for stale in $(swarm_cli manager node ls --format '{{.ID}} {{.Status}}' | awk '$2 != "Ready" { print $1 }'); do
        log "swarm: removing the stale node $stale"
        swarm_cli manager node rm --force "$stale" >/dev/null
    done
    if [ "$(swarm_cli manager node inspect "$wid" --format '{{index .Spec.Labels "role"}}' 2>/dev/null)" != "$SWARM_LABEL_ROLE" ]; then
        swarm_cli manager node update --label-add "role=$SWARM_LABEL_ROLE" "$wid" >/dev/null
    fi
    if [ "$(swarm_cli manager node inspect "$mid" --format '{{index .Spec.Labels "role"}}' 2>/dev/null)" != manager ]; then
        swarm_cli manager node update --label-add role=manager "$mid" >/dev/null
    fi
}

swarm_no_ingress() {
    # The routing mesh needs iptables, which these machines lack: a task on the
    # "ingress" overlay would run but never be reachable, and its sandbox would
    # add a docker_gwbridge bridge (172.18.0.0/16) to the machine's network.
    # Without the ingress network, an ingress-mode published port is refused
    # when the service is created ("service needs ingress network"); host-mode
    # ports and the host network work. Removed once, right after init, before
    # any task exists; a docker_gwbridge our nodes made (no endpoints) goes too.
    local node i
    if api "$(swarm_sock manager)" /networks/ingress -o /dev/null 2>/dev/null; then
        log "swarm: removing the ingress network (no routing mesh without iptables)"
        api "$(swarm_sock manager)" /networks/ingress -X DELETE -o /dev/null 2>/dev/null ||
            die "could not remove the swarm's ingress network (a task still uses it?)"
        for ((i = 0; i < WAIT_S * 10; i++)); do
            api "$(swarm_sock manager)" /networks/ingress -o /dev/null 2>/dev/null || break
            sleep 0.1
        done
    fi
    for node in $SWARM_NODES; do
        if api "$(swarm_sock "$node")" /networks/docker_gwbridge -o /dev/null 2>/dev/null; then
            log "swarm ($node): removing docker_gwbridge"
            api "$(swarm_sock "$node")" /networks/docker_gwbridge -X DELETE -o /dev/null 2>/dev/null ||
                log "WARNING: swarm ($node): docker_gwbridge is still in use"
        fi
    done
}

swarm_pull() { # the pull test image on both nodes (proves each can pull from the registry)
    local port ref node
    port="$(reg_port open)"
    ref="127.0.0.1:$port/$PULL_REPO:$PULL_TAG"
    for node in $SWARM_NODES; do
        if ! api "$(swarm_sock "$node")" "/images/$ref/json" -o /dev/null 2>/dev/null; then
            log "swarm ($node): pulling $ref"
            swarm_cli "$node" pull -q "$ref" >/dev/null ||
                die "swarm ($node) could not pull $ref"
        fi
    done
}

cmd_swarm_up() {
    mkdir -p "$SWARM_DIR"
    chmod 0700 "$SWARM_DIR"
    ensure_packages
    if ! reg_answers open || ! reg_has_image open; then
        # The registry (and the image it serves) come from the main engines.
        start_docker
        start_podman
        build_images
        start_registries
    fi
    start_swarm
    report_swarm
}

start_swarm() { # the registry must answer already
    local node
    for node in $SWARM_NODES; do
        start_swarm_daemon "$node"
    done
    swarm_form
    swarm_pull
}

cmd_swarm_down() {
    local node m i found
    for node in worker manager; do
        stop_pidfile "swarm-$node" "$(swarm_pidfile "$node")" dockerd
        swarm_ours "$node" && continue
        # What dockerd leaves mounted once it is gone (network namespaces under
        # its exec root; its data root, mounted twice after a crash and a
        # restart): unmount ours only, the last mounted first.
        for i in 1 2 3; do
            found=0
            while read -r m; do
                found=1
                umount "$m" 2>/dev/null || true
            done < <(awk -v d="$SWARM_DIR/$node/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | tac)
            [ "$found" = 0 ] && break
        done
    done
}

report_swarm() { # one line per node; returns 1 only if it was started and does not answer
    local rc=0 node sock st v
    for node in $SWARM_NODES; do
        sock="$(swarm_sock "$node")"
        if ! swarm_ours "$node"; then
            printf 'engines: %-7s %-36s %s\n' "$node" "unix://$sock" "swarm node, not started (engines.sh swarm-up)"
            continue
        fi
        if answers "$sock"; then
            v="$(engine_version "$sock")"
            read -r st _ <<<"$(swarm_state "$node")"
            if [ "$node" = manager ] && [ "$st" = active ]; then
                st="$st, $(swarm_ready_nodes) nodes ready"
            fi
            printf 'engines: %-7s %-36s %s\n' "$node" "unix://$sock" "${v:-?}, swarm $(swarm_addr "$node") ${st:-?}"
            [[ $st == active* ]] || rc=1
        else
            printf 'engines: %-7s %-36s %s\n' "$node" "unix://$sock" "swarm node, NOT ANSWERING"
            rc=1
        fi
    done
    return $rc
}

# --- a private sshd on loopback (sshd-up / sshd-down; `up` runs sshd-up) ----
# Debian's openssh-server, run as a second sshd of our own: its own config,
# host key, port on 127.0.0.1, pid file and log under $STATE/sshd. The
# machine's /etc/ssh and any system sshd are never read nor touched (the
# package's own /etc/ssh files are created by apt, but never used here).
# A throw-away client key may log in as root (key only); known_hosts holds our
# host key. For tools that run the plain `ssh` client themselves (the docker
# CLI, the docker SDK with use_ssh_client=True, podman-py), $STATE/sshd/bin/ssh
# is a wrapper that adds `-F $STATE/sshd/ssh_config`; for paramiko (the docker
# SDK's default ssh transport reads ~/.ssh/config and ~/.ssh/known_hosts only)
# $STATE/sshd/home is a HOME whose .ssh holds the same config, key and
# known_hosts.
SSHD_DIR="$STATE/sshd"
SSH_ALIAS="kstlib-local"

sshd_port() { cat "$SSHD_DIR/port" 2>/dev/null || true; }
sshd_ours() {
    local pf="$SSHD_DIR/sshd.pid" pid
    [ -f "$pf" ] || return 1
    pid="$(cat "$pf")"
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null &&
        tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "sshd -D -f $SSHD_DIR/sshd_config"
}
ssh_ok() { # a real login with the throw-away key, the host key checked
    ssh -F "$SSHD_DIR/ssh_config" -o ConnectTimeout=3 "$SSH_ALIAS" true </dev/null 2>/dev/null
}

ensure_sshd_package() {
    [ -x /usr/sbin/sshd ] && command -v ssh-keygen >/dev/null 2>&1 && command -v ssh >/dev/null 2>&1 &&
        return 0
    if ! is_root || ! command -v apt-get >/dev/null 2>&1; then
        die "missing /usr/sbin/sshd: install it as root, e.g.: apt-get install -y openssh-server"
    fi
    local alog="$STATE/apt.log" apt=(apt-get -q -o DPkg::Lock::Timeout=600)
    log "installing: openssh-server (apt-get, log: $alog; its service is not started by this script)"
    if ! { "${apt[@]}" update && DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y \
        --no-install-recommends openssh-server openssh-client; } >>"$alog" 2>&1; then
        tail -n 20 "$alog" >&2 || true
        die "apt-get failed (see $alog)"
    fi
    [ -x /usr/sbin/sshd ] || die "still no /usr/sbin/sshd after apt-get (see $alog)"
}

sshd_files() { # keys, authorized_keys, configs (created once; 0600, directories 0700)
    local d="$SSHD_DIR" port="$1"
    (
        umask 077
        mkdir -p "$d/bin" "$d/home/.ssh"
        [ -s "$d/ssh_host_ed25519_key" ] ||
            ssh-keygen -q -t ed25519 -N '' -C kstlib-test-host -f "$d/ssh_host_ed25519_key"
        [ -s "$d/id_ed25519" ] ||
            ssh-keygen -q -t ed25519 -N '' -C kstlib-test-client -f "$d/id_ed25519"
        cp "$d/id_ed25519.pub" "$d/authorized_keys"
        # known_hosts: the alias's real address with its port (what ssh looks up).
        printf '[127.0.0.1]:%s %s\n' "$port" "$(cut -d' ' -f1,2 "$d/ssh_host_ed25519_key.pub")" \
            >"$d/known_hosts"
        {
            printf '# kstlib.ops test sshd: loopback only, key login only (generated by engines.sh)\n'
            printf 'ListenAddress 127.0.0.1:%s\n' "$port"
            printf 'HostKey %s\n' "$d/ssh_host_ed25519_key"
            printf 'PidFile %s\n' "$d/sshd.pid"
            printf 'AuthorizedKeysFile %s\n' "$d/authorized_keys"
            printf 'PermitRootLogin prohibit-password\n'
            printf 'PubkeyAuthentication yes\nPasswordAuthentication no\n'
            printf 'KbdInteractiveAuthentication no\nUsePAM no\n'
            # $STATE lives under /tmp (mode 1777), which StrictModes refuses for
            # an authorized_keys path; the files themselves are 0600.
            printf 'StrictModes no\n'
            # podman-py forwards a unix socket (ssh -L sock:/run/podman/podman.sock).
            printf 'AllowStreamLocalForwarding yes\nAllowTcpForwarding yes\n'
            printf 'X11Forwarding no\nPrintMotd no\nLogLevel VERBOSE\n'
        } >"$d/sshd_config"
        for f in "$d/ssh_config" "$d/home/.ssh/config"; do
            {
                printf '# kstlib.ops test sshd client config (generated by engines.sh)\n'
                printf 'Host %s 127.0.0.1\n' "$SSH_ALIAS"
                printf '    HostName 127.0.0.1\n    Port %s\n    User root\n' "$port"
                printf '    IdentityFile %s\n    IdentitiesOnly yes\n' "$d/id_ed25519"
                printf '    UserKnownHostsFile %s\n    GlobalKnownHostsFile /dev/null\n' "$d/known_hosts"
                printf '    StrictHostKeyChecking yes\n    BatchMode yes\n    LogLevel ERROR\n'
            } >"$f"
        done
        cp "$d/known_hosts" "$d/home/.ssh/known_hosts"
        cp "$d/id_ed25519" "$d/home/.ssh/id_ed25519"
        cp "$d/id_ed25519.pub" "$d/home/.ssh/id_ed25519.pub"
        printf '#!/bin/sh\n# ssh with the kstlib.ops test config (for tools that run `ssh` themselves)\nexec /usr/bin/ssh -F %s "$@"\n' \
            "$d/ssh_config" >"$d/bin/ssh"
    )
    chmod 0700 "$d" "$d/bin" "$d/home" "$d/home/.ssh"
    chmod 0755 "$d/bin/ssh"
    chmod 0600 "$d/ssh_host_ed25519_key" "$d/id_ed25519" "$d/authorized_keys" "$d/known_hosts" \
        "$d/sshd_config" "$d/ssh_config" "$d/home/.ssh/config" "$d/home/.ssh/known_hosts" \
        "$d/home/.ssh/id_ed25519"
}

cmd_sshd_up() {
    start_sshd
    report_sshd
}

start_sshd() {
    mkdir -p "$SSHD_DIR"
    chmod 0700 "$SSHD_DIR"
    ensure_sshd_package
    local port pid lg="$SSHD_DIR/sshd.log" i
    port="$(sshd_port)"
    if sshd_ours && [ -n "$port" ] && ssh_ok; then
        return 0
    fi
    sshd_ours && stop_pidfile sshd "$SSHD_DIR/sshd.pid" "sshd -D -f $SSHD_DIR/sshd_config"
    is_root || die "starting the test sshd needs root (it logs in as root to reach the engines' sockets)"
    if [ -z "$port" ] || port_busy "$port"; then
        port="$(free_port 2222)"
    fi
    echo "$port" >"$SSHD_DIR/port"
    sshd_files "$port"
    # sshd's privilege separation directory is compiled in (/run/sshd, what the
    # package's own service would create); nothing else outside $STATE.
    mkdir -p /run/sshd
    chmod 0755 /run/sshd
    /usr/sbin/sshd -t -f "$SSHD_DIR/sshd_config" || die "sshd rejects $SSHD_DIR/sshd_config"
    log "sshd: starting a private sshd on 127.0.0.1:$port (log: $lg)"
    : >"$lg"
    setsid /usr/sbin/sshd -D -f "$SSHD_DIR/sshd_config" -E "$lg" </dev/null >>"$lg" 2>&1 &
    pid=$!
    for ((i = 0; i < WAIT_S * 10; i++)); do
        port_busy "$port" && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    # sshd writes its PidFile itself; the same pid as ours (-D: no fork).
    if ! ssh_ok; then
        {
            printf 'engines: ERROR: the test sshd does not let the test key in at 127.0.0.1:%s; last lines of %s:\n' \
                "$port" "$lg"
            tail -n 25 "$lg" | sed 's/^/    /' || true
        } >&2
        exit 1
    fi
}

cmd_sshd_down() {
    stop_pidfile sshd "$SSHD_DIR/sshd.pid" "sshd -D -f $SSHD_DIR/sshd_config"
}

report_sshd() { # returns 1 only if it was started and does not let us in
    local port
    port="$(sshd_port)"
    if ! sshd_ours; then
        printf 'engines: %-7s %-36s %s\n' sshd "ssh://127.0.0.1:${port:-?}" "private sshd, not started (engines.sh sshd-up)"
        return 0
    fi
    if ssh_ok; then
        printf 'engines: %-7s %-36s %s\n' sshd "ssh://root@127.0.0.1:$port" \
            "$(/usr/sbin/sshd -V 2>&1 | head -n1 | cut -d, -f1), key login as root, ssh -F $SSHD_DIR/ssh_config $SSH_ALIAS"
        return 0
    fi
    printf 'engines: %-7s %-36s %s\n' sshd "ssh://root@127.0.0.1:$port" "private sshd, NO LOGIN"
    return 1
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
    report_swarm || rc=1
    report_sshd || rc=1
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
    report
}

cmd_down() {
    mkdir -p "$STATE"
    stop_pidfile docker "$STATE/dockerd.pid" dockerd
    stop_pidfile podman "$STATE/podman.pid" "podman system service"
    stop_pidfile "registry (open)" "$REG_DIR/open/pid" docker-registry
    stop_pidfile "registry (auth)" "$REG_DIR/auth/pid" docker-registry
    cmd_swarm_down
    cmd_sshd_down
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
*)
    echo "usage: $(basename "$0") up|down|status|env|swarm-up|swarm-down|sshd-up|sshd-down" >&2
    exit 2
    ;;
esac
