#!/usr/bin/env bash
# Installs everything reseau's build, tests and demo need, from Debian's
# archive (Debian 12). Idempotent; needs root. Also fetches, for the cross
# builds, CMocka's source tarball and libevent's Debian source package (its
# upstream tarball and Debian's patches, the libevent backend built for
# Windows) into subprojects/packagecache/, each checked by sha256; Debian's
# patches of libevent are extracted into subprojects/packagefiles/libevent-debian/,
# where subprojects/libevent.wrap applies them.
set -euo pipefail
RS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

need_root() {
    if [ "$(id -u)" != 0 ]; then
        echo "install-deps: run as root (or install the packages listed in $0 yourself)" >&2
        exit 1
    fi
}

packages=(meson ninja-build pkg-config gcc clang libclang-rt-14-dev libevent-dev libcmocka-dev libuv1-dev
          gcc-mingw-w64-x86-64 wine wine64 python3 netcat-openbsd valgrind doxygen cmake man-db)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

cmocka_tarball="$RS_ROOT/subprojects/packagecache/cmocka-1.1.5.tar.xz"
cmocka_sha=f0ccd8242d55e2fd74b16ba518359151f6f8383ff8aef4976e48393f77bba8b6

# libevent for the mingw cross build (-Dio_backend=libevent): Debian 12's
# source package, pinned to one version; subprojects/libevent.wrap names the
# same files and patches.
libevent_version=2.1.12-stable-8+deb12u1
libevent_orig="$RS_ROOT/subprojects/packagecache/libevent_2.1.12-stable.orig.tar.gz"
libevent_orig_sha=92e6de1be9ec176428fd2367677e61ceffc2ee1cb119035037a27d346b0403bb
libevent_debian="$RS_ROOT/subprojects/packagecache/libevent_$libevent_version.debian.tar.xz"
libevent_debian_sha=0c721f8a55e6a9e225f62f151f477675ed901400b56003bb424ef2eea74f370d
libevent_patches="$RS_ROOT/subprojects/packagefiles/libevent-debian"

if [ ${#missing[@]} -gt 0 ] || [ ! -f "$cmocka_tarball" ] || [ ! -f "$libevent_orig" ] ||
   [ ! -f "$libevent_debian" ]; then
    need_root
    # A deb-src entry for the source packages, derived from the machine's
    # own binary entries (no archive host is named here).
    if ! grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ &&
       ! grep -qs '^deb-src' /etc/apt/sources.list; then
        if [ -f /etc/apt/sources.list.d/debian.sources ]; then
            sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources \
                > /etc/apt/sources.list.d/reseau-deb-src.sources
        elif [ -f /etc/apt/sources.list ]; then
            sed -n 's/^deb /deb-src /p' /etc/apt/sources.list > /etc/apt/sources.list.d/reseau-deb-src.list
        fi
    fi
    apt-get update -q
    if [ ${#missing[@]} -gt 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
    fi
fi

if [ ! -f "$cmocka_tarball" ]; then
    tmp="$(mktemp -d)"
    chmod 755 "$tmp"
    (cd "$tmp" && apt-get source --download-only cmocka >/dev/null)
    mkdir -p "$(dirname "$cmocka_tarball")"
    cp "$tmp"/cmocka_1.1.5.orig.tar.xz "$cmocka_tarball"
    rm -rf "$tmp"
fi
echo "$cmocka_sha  $cmocka_tarball" | sha256sum -c --quiet -

if [ ! -f "$libevent_orig" ] || [ ! -f "$libevent_debian" ]; then
    tmp="$(mktemp -d)"
    chmod 755 "$tmp"
    (cd "$tmp" && apt-get source --download-only "libevent=$libevent_version" >/dev/null)
    mkdir -p "$(dirname "$libevent_orig")"
    cp "$tmp/$(basename "$libevent_orig")" "$libevent_orig"
    cp "$tmp/$(basename "$libevent_debian")" "$libevent_debian"
    rm -rf "$tmp"
fi
echo "$libevent_orig_sha  $libevent_orig" | sha256sum -c --quiet -
echo "$libevent_debian_sha  $libevent_debian" | sha256sum -c --quiet -
# The patches, from the checked tarball only (refreshed if it changed).
if [ ! -f "$libevent_patches/series" ] || [ "$libevent_debian" -nt "$libevent_patches/series" ]; then
    rm -rf "$libevent_patches"
    mkdir -p "$libevent_patches"
    tar -xJf "$libevent_debian" -C "$libevent_patches" --strip-components=2 debian/patches
    touch "$libevent_patches/series"
fi
