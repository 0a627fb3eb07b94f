# shellcheck shell=bash
# A second tmux, 3.5a, for the control-mode channel's tests (sourced by
# engines.sh, which sets the variables used here). The channel is used only
# with tmux >= 3.4 (3.3a, Debian bookworm's /usr/bin/tmux, crashes with it:
# docs/performance.md), so its tests need a newer tmux beside the system's.
# 3.5a comes from bookworm-backports, fetched with an apt configuration of its
# own under $STATE/tmux35 (its sources list, package lists and cache there:
# the system's apt sources are never changed) and unpacked there with
# `dpkg -x`; /usr/bin/tmux is left as it is. Its one library bookworm lacks
# by default, libjemalloc2, comes from bookworm main with apt-get install.
# `engines.sh env` exports KSTLIB_TEST_TMUX35 (the binary) once it is there.

TMUX35_DIR="$STATE/tmux35"
TMUX35_BIN="$TMUX35_DIR/usr/bin/tmux"
TMUX35_VERSION="${KSTLIB_TMUX35_VERSION:-3.5a-2~bpo12+1}"
TMUX35_SOURCE="deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-backports main"

tmux35_ok() { # the unpacked binary runs and is 3.5a
    [ -x "$TMUX35_BIN" ] && [ "$("$TMUX35_BIN" -V 2>/dev/null)" = "tmux 3.5a" ]
}

jemalloc_ok() {
    dpkg-query -W -f='${Status}' libjemalloc2 2>/dev/null | grep -q 'ok installed'
}

tmux35_apt() { # apt-get with the private configuration: nothing of the system's lists
    apt-get -q -o DPkg::Lock::Timeout=600 \
        -o Dir::Etc::SourceList="$TMUX35_DIR/sources.list" \
        -o Dir::Etc::SourceParts="$TMUX35_DIR/sources.list.d" \
        -o Dir::State::Lists="$TMUX35_DIR/lists" \
        -o Dir::Cache="$TMUX35_DIR/cache" \
        -o APT::Sandbox::User=root \
        "$@"
}

cmd_tmux35_up() {
    mkdir -p "$STATE"
    if tmux35_ok && jemalloc_ok; then
        return 0
    fi
    { command -v apt-get && command -v dpkg; } >/dev/null 2>&1 ||
        die "tmux 3.5a: apt-get and dpkg are needed to fetch it from bookworm-backports"
    local alog="$STATE/tmux35.log" deb
    export DEBIAN_FRONTEND=noninteractive
    if ! jemalloc_ok; then
        is_root || die "tmux 3.5a needs libjemalloc2: apt-get install -y libjemalloc2 (as root)"
        log "tmux 3.5a: installing libjemalloc2 (apt-get, log: $alog)"
        apt-get -q -o DPkg::Lock::Timeout=600 install -y libjemalloc2 >>"$alog" 2>&1 ||
            { tail -n 20 "$alog" >&2; die "apt-get install libjemalloc2 failed (see $alog)"; }
    fi
    if ! tmux35_ok; then
        log "tmux 3.5a: fetching tmux=$TMUX35_VERSION from bookworm-backports into $TMUX35_DIR (log: $alog)"
        mkdir -p "$TMUX35_DIR/lists/partial" "$TMUX35_DIR/cache/archives/partial" \
            "$TMUX35_DIR/sources.list.d" "$TMUX35_DIR/debs"
        printf '%s\n' "$TMUX35_SOURCE" >"$TMUX35_DIR/sources.list"
        rm -f "$TMUX35_DIR"/debs/tmux_*.deb
        if ! { tmux35_apt update &&
            (cd "$TMUX35_DIR/debs" && tmux35_apt download "tmux=$TMUX35_VERSION"); } >>"$alog" 2>&1; then
            tail -n 20 "$alog" >&2 || true
            die "fetching tmux=$TMUX35_VERSION failed (see $alog)"
        fi
        deb="$(find "$TMUX35_DIR/debs" -maxdepth 1 -name 'tmux_*.deb' | head -n 1)"
        [ -n "$deb" ] || die "tmux 3.5a: apt-get download left no .deb (see $alog)"
        rm -rf "${TMUX35_DIR:?}/usr" "${TMUX35_DIR:?}/etc"
        dpkg -x "$deb" "$TMUX35_DIR" >>"$alog" 2>&1 || die "dpkg -x $deb failed (see $alog)"
    fi
    tmux35_ok || die "tmux 3.5a: $TMUX35_BIN does not run as tmux 3.5a (see $alog)"
    log "tmux 3.5a: $TMUX35_BIN"
}

report_tmux35() { # never an error: the tests that need it say so
    if tmux35_ok; then
        printf 'engines: %-7s %-36s %s\n' tmux35 "$TMUX35_BIN" "$("$TMUX35_BIN" -V)"
    else
        printf 'engines: %-7s %-36s %s\n' tmux35 "-" "not fetched (engines.sh tmux35-up)"
    fi
}

env_tmux35() {
    if tmux35_ok; then
        printf 'export KSTLIB_TEST_TMUX35=%q\n' "$TMUX35_BIN"
    fi
}
