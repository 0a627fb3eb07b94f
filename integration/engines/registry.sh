# shellcheck shell=bash
# Two image registries on loopback (sourced by engines.sh, which sets the variables used here).

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
        port="$(free_port "$2" "the $kind registry")"
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
    env -C "$dir" setsid docker-registry serve "$dir/config.yml" </dev/null >>"$lg" 2>&1 &
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
