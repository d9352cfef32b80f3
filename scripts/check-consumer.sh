#!/usr/bin/env bash
# Builds tests/consumer/consumer.c the three ways a user would and runs it:
# against the installed shared library through pkg-config, against the
# installed static library (pkg-config --static), and with reseau as a meson
# subproject. Prints CMocka-style result lines for the scenario summary.
#   check-consumer.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build="$(cd "$1" && pwd)"
src="$(cd "$2" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=0

step() { # name, command...
    local name="$1"
    shift
    echo "[ RUN      ] $name"
    if "$@" >"$work/$name.log" 2>&1; then
        echo "[       OK ] $name"
    else
        cat "$work/$name.log"
        echo "[  FAILED  ] $name"
        failed=1
    fi
}

install_tree() {
    meson install -C "$build" --no-rebuild --destdir "$work/root" --quiet
}

pc_dir() {
    dirname "$(find "$work/root" -name reseau.pc | head -n 1)"
}

pkg_shared() {
    local pcdir
    pcdir="$(pc_dir)"
    export PKG_CONFIG_PATH="$pcdir" PKG_CONFIG_SYSROOT_DIR="$work/root"
    # shellcheck disable=SC2046
    cc -std=c11 -Wall -Wextra -Wpedantic -Werror "$src/tests/consumer/consumer.c" \
        $(pkg-config --cflags --libs reseau) -o "$work/consumer-shared"
    LD_LIBRARY_PATH="$(dirname "$(find "$work/root" -name 'libreseau.so' | head -n 1)")" \
        "$work/consumer-shared"
    # Only the rs_ API is exported.
    local lib
    lib="$(find "$work/root" -name 'libreseau.so.*.*' | head -n 1)"
    ! nm -D --defined-only "$lib" | awk '{print $3}' | grep -v '^rs_' | grep -v '^$'
    nm -D --defined-only "$lib" | awk '{print $3}' | grep -q '^rs_event_loop_new$'
}

pkg_static() {
    local pcdir libdir
    pcdir="$(pc_dir)"
    libdir="$(dirname "$(find "$work/root" -name 'libreseau.a' | head -n 1)")"
    export PKG_CONFIG_PATH="$pcdir" PKG_CONFIG_SYSROOT_DIR="$work/root"
    # shellcheck disable=SC2046
    cc -std=c11 -Wall -Wextra -Wpedantic -Werror "$src/tests/consumer/consumer.c" \
        $(pkg-config --cflags reseau) "$libdir/libreseau.a" \
        $(pkg-config --static --libs reseau | sed 's/-lreseau//') -o "$work/consumer-static"
    "$work/consumer-static"
}

subproject() {
    local proj="$work/subproject"
    mkdir -p "$proj/subprojects/reseau"
    cp "$src/tests/consumer/consumer.c" "$proj/"
    cp "$src/tests/consumer/meson.build.in" "$proj/meson.build"
    (cd "$src" && tar --exclude='./build*' --exclude=./.git -cf - .) |
        (cd "$proj/subprojects/reseau" && tar xf -)
    meson setup "$proj/build" "$proj" --wrap-mode=nodownload --force-fallback-for=reseau \
        -Dreseau:tests=false -Dreseau:examples=false
    ninja -C "$proj/build"
    "$proj/build/consumer"
}

step test_consumer_install_layout install_tree
step test_consumer_pkg_config_shared pkg_shared
step test_consumer_pkg_config_static pkg_static
step test_consumer_meson_subproject subproject
exit $failed
