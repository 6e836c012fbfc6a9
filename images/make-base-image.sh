#!/usr/bin/env bash
# Make a minimal Debian bookworm + Python 3.11 image with no registry: debootstrap a root
# filesystem from the Debian mirror this machine's apt already uses, and `docker import` it.
#
#   images/make-base-image.sh [--force] [TAG]      (default TAG: mutator-base:bookworm-py311)
#
# The image has a virtualenv at /opt/venv first on PATH, so `python` and `pip` work as anywhere
# else (Debian's own pip refuses to install: the system Python is "externally managed").
# Exits at once when TAG exists, unless --force. Needs root, debootstrap and a Docker engine.
set -euo pipefail

force=0
tag=""
for arg in "$@"; do
    case "$arg" in
        --force) force=1 ;;
        -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "make-base-image: unknown option $arg" >&2; exit 2 ;;
        *) tag="$arg" ;;
    esac
done
tag="${tag:-mutator-base:bookworm-py311}"
suite="${DEBIAN_SUITE:-bookworm}"

if [ "$force" = 0 ] && docker image inspect "$tag" >/dev/null 2>&1; then
    echo "make-base-image: $tag exists (--force to rebuild)"
    exit 0
fi
for tool in debootstrap docker; do
    command -v "$tool" >/dev/null || { echo "make-base-image: $tool is not installed" >&2; exit 1; }
done
if [ "$(id -u)" != 0 ]; then
    echo "make-base-image: debootstrap needs root (run with sudo)" >&2
    exit 1
fi

# The mirror apt uses here (deb822 .sources first, then one-line lists), else Debian's CDN.
mirror="${DEBIAN_MIRROR:-}"
if [ -z "$mirror" ]; then
    mirror="$(
        { cat /etc/apt/sources.list.d/*.sources 2>/dev/null || true; } \
            | awk '/^URIs:/ {print $2}' | grep -v -e security -e '^$' | grep '/debian/\?$' | head -n1
    )" || true
fi
if [ -z "$mirror" ]; then
    mirror="$(
        { cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true; } \
            | awk '$1 == "deb" && $2 !~ /^\[/ {print $2} $1 == "deb" && $2 ~ /^\[/ {print $3}' \
            | grep -v security | grep '/debian/\?$' | head -n1
    )" || true
fi
mirror="${mirror:-http://deb.debian.org/debian}"

work="$(mktemp -d /tmp/mutator-base.XXXXXX)"
rootfs="$work/rootfs"
cleanup() {
    # debootstrap may leave /proc and /sys mounted inside the rootfs when it fails
    for mount in proc sys dev/pts dev; do umount -l "$rootfs/$mount" 2>/dev/null || true; done
    rm -rf --one-file-system "$work"
}
trap cleanup EXIT

echo "make-base-image: debootstrap $suite from $mirror (a few minutes)"
started=$SECONDS
debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
    "$suite" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
    tail -n 20 "$work/debootstrap.log" >&2
    echo "make-base-image: debootstrap failed (log above)" >&2
    exit 1
}

chroot "$rootfs" /usr/bin/python3 -m venv /opt/venv
chroot "$rootfs" /opt/venv/bin/python -m pip --version >/dev/null
printf 'deb %s %s main\n' "$mirror" "$suite" >"$rootfs/etc/apt/sources.list"
# What no container needs: package caches, documentation, manuals, other languages' messages.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
    "$rootfs"/var/log/* "$rootfs"/tmp/* "$rootfs"/root/.cache
find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'C.*' -exec rm -rf {} + 2>/dev/null || true
: >"$rootfs/etc/resolv.conf"  # the engine provides its own
: >"$rootfs/etc/hostname"

tar --numeric-owner -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PYTHONDONTWRITEBYTECODE=1' \
    --change 'CMD ["python"]' \
    --message "debootstrap $suite minbase + python3 from $mirror" \
    - "$tag" >/dev/null
echo "make-base-image: $tag ready in $((SECONDS - started)) s ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'))"
