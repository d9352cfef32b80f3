#!/usr/bin/env bash
# Installs everything reseau's build, tests and demo need, from Debian's
# archive (Debian 12). Idempotent; needs root. Also fetches CMocka's source
# tarball (for the cross build) into subprojects/packagecache/.
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

if [ ${#missing[@]} -gt 0 ] || [ ! -f "$cmocka_tarball" ]; then
    need_root
    # A deb-src entry for CMocka's source package, derived from the machine's
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
