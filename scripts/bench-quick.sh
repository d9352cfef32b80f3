#!/bin/sh
# Smoke run of the benchmark tool for CI: builds it and runs every workload
# once with tiny counts (--quick). It proves the tool and every peer work;
# the figures are not judged. Fails only if a workload fails.
#
#   scripts/bench-quick.sh          native build (libevent backend + peers)
#   scripts/bench-quick.sh iocp     cross build, run under Wine (IOCP + raw IOCP floor)
#
# Build directories: build/bench-quick and build/bench-quick-iocp.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
target=${1:-native}

case $target in
native)
    build=$root/build/bench-quick
    [ -d "$build" ] || meson setup "$build" "$root" --wrap-mode=nodownload -Dbench=true \
        -Dtests=false -Dexamples=false >/dev/null
    ninja -C "$build" >/dev/null
    "$build/bench/reseau-bench" --quick
    # fanin to a round-trip count (the path of differential counts).
    "$build/bench/reseau-bench" --quick --workload fanin --conns 50 --ops 500
    ;;
iocp)
    build=$root/build/bench-quick-iocp
    [ -d "$build" ] || meson setup "$build" "$root" --wrap-mode=nodownload -Dbench=true \
        -Dtests=false -Dexamples=false --cross-file "$root/cross/mingw-w64-x86_64.ini" >/dev/null
    ninja -C "$build" >/dev/null
    RS_ROOT=$root
    export RS_ROOT
    # shellcheck source=scripts/wine-env.sh
    . "$root/scripts/wine-env.sh"
    wine_env_start
    status=0
    wine "$build/bench/reseau-bench.exe" --quick || status=$?
    wine "$build/bench/reseau-bench.exe" --quick --workload fanin --conns 20 --ops 200 ||
        status=$?
    wine_env_stop
    exit "$status"
    ;;
*)
    echo "usage: scripts/bench-quick.sh [native|iocp]" >&2
    exit 2
    ;;
esac
