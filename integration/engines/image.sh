# shellcheck shell=bash
# The test image, imported into both engines from a static busybox (sourced by engines.sh, which sets the variables used here).

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
