# shellcheck shell=bash
# A two-node Docker Swarm (sourced by engines.sh, which sets the variables used here).

# --- a two-node Docker Swarm (swarm-up / swarm-down; `up` runs swarm-up) ----
# Two more dockerd beside the shared one (which is never touched): each with
# its own data root, exec root (and so its own managed containerd), pid file
# and unix socket under $STATE/swarm. The manager advertises 127.0.0.1, the
# worker 127.0.0.2 (two loopback addresses, so the 2377/7946/4789 ports do not
# clash). A control port (2377) or data path port (4789/udp) that something else
# of the machine holds (its own swarm) is replaced by a free one when the swarm
# is formed ($SWARM_DIR/port); the gossip port 7946 cannot be moved, so a taken
# one stops swarm-up with what holds it. No iptables here: no overlay network, no ingress routing mesh; tasks
# use the host network. Images come from the open loopback registry.
SWARM_DIR="$STATE/swarm"
SWARM_NODES="manager worker"
SWARM_PORT=2377 # the control port of a swarm formed before $SWARM_DIR/port existed
SWARM_GOSSIP_PORT=7946
SWARM_DATA_PORT=4789
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
    env -C "$dir" setsid dockerd --host "unix://$sock" --data-root "$dir/data" --exec-root "$dir/exec" \
        --pidfile "$(swarm_pidfile "$node")" --bridge=none --iptables=false --ip6tables=false \
        </dev/null >>"$lg" 2>&1 &
    pid=$!
    wait_for "swarm dockerd ($node)" "$sock" "$pid" "$lg"
}

gossip_free() { # gossip_free ADDR: the fixed gossip port is free there, else stop and say who holds it
    if port_busy "$SWARM_GOSSIP_PORT" "$1"; then
        die "port $SWARM_GOSSIP_PORT on $1 (swarm gossip, fixed by Docker) is taken by $(port_holder "$SWARM_GOSSIP_PORT"); stop that (a swarm of this machine?) or run with KSTLIB_ENGINES_SWARM=0"
    fi
}

swarm_ports() { # the control and data path ports of a new swarm: free ones, kept in $SWARM_DIR/port
    local data="$SWARM_DATA_PORT"
    SWARM_PORT="$(free_port 2377 "the swarm's control port" 127.0.0.1 127.0.0.2)"
    while udp_busy "$data"; do
        log "port $data/udp (swarm data path) is taken by $(port_holder "$data" udp): trying $((data + 1))"
        data=$((data + 1))
        [ "$data" -lt "$((SWARM_DATA_PORT + 100))" ] || die "no free UDP port for the swarm's data path"
    done
    SWARM_DATA_PORT="$data"
    echo "$SWARM_PORT" >"$SWARM_DIR/port"
}

swarm_form() { # init the manager, join the worker, label it; each step only if needed
    local m w token mid wid i
    [ -s "$SWARM_DIR/port" ] && SWARM_PORT="$(cat "$SWARM_DIR/port")"
    read -r m _ mid <<<"$(swarm_state manager)"
    if [ "$m" != active ]; then
        swarm_ports
        gossip_free 127.0.0.1
        log "swarm: init on the manager (advertise 127.0.0.1, listen 127.0.0.1:$SWARM_PORT, data path $SWARM_DATA_PORT/udp)"
        swarm_cli manager swarm init --advertise-addr 127.0.0.1 \
            --listen-addr "127.0.0.1:$SWARM_PORT" --data-path-port "$SWARM_DATA_PORT" >/dev/null ||
            die "swarm init on the manager failed (see $SWARM_DIR/manager/dockerd.log)"
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
        gossip_free 127.0.0.2
        port_busy "$SWARM_PORT" 127.0.0.2 &&
            die "port $SWARM_PORT on 127.0.0.2 (the worker's swarm port) is taken by $(port_holder "$SWARM_PORT")"
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
